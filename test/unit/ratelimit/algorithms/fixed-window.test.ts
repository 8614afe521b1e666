import { describe, expect, it } from 'vitest';
import { fixedWindow } from '../../../../src/ratelimit/algorithms/index.js';
import { expectSane, Key } from './support.js';

// Window starts that are multiples of 1 000 ms: 0 and a realistic wall-clock time.
const starts = [0, 1_700_000_000_000];

describe.each(starts)('fixedWindow (window starting at %i)', (t0) => {
  it('admits exactly limit units in a window, then denies until the next window starts', () => {
    const key = new Key(fixedWindow({ limit: 10, windowMs: 1_000 }));
    for (let i = 1; i <= 10; i++) {
      expect(key.consume(t0 + 50)).toEqual({ allowed: true, limit: 10, remaining: 10 - i, resetMs: 950, retryAfterMs: 0 });
    }
    expect(key.consume(t0 + 50)).toEqual({ allowed: false, limit: 10, remaining: 0, resetMs: 950, retryAfterMs: 950 });
    expect(key.consume(t0 + 999)).toMatchObject({ allowed: false, retryAfterMs: 1 });
  });

  it('refills completely at the window boundary', () => {
    const key = new Key(fixedWindow({ limit: 10, windowMs: 1_000 }));
    expect(key.burst(t0 + 999, 15)).toBe(10);
    expect(key.peek(t0 + 1_000, 10)).toEqual({ allowed: true, limit: 10, remaining: 0, resetMs: 1_000, retryAfterMs: 0 });
    expect(key.burst(t0 + 1_000, 15)).toBe(10);
  });

  it('aligns windows to multiples of windowMs on the given clock', () => {
    const key = new Key(fixedWindow({ limit: 3, windowMs: 1_000 }));
    expect(key.consume(t0 + 1_234)).toMatchObject({ resetMs: 766 });
    expect(key.state).toEqual([t0 + 1_000, 1]);
    expect(key.consume(t0 + 1_999.9)).toMatchObject({ allowed: true, resetMs: 1 });
    expect(key.consume(t0 + 2_000.5)).toMatchObject({ allowed: true, remaining: 2, resetMs: 1_000 });
  });

  it('aligns negative times the same way', () => {
    const algorithm = fixedWindow({ limit: 3, windowMs: 1_000 });
    expect(algorithm.consume(undefined, -1, 1).state).toEqual([-1_000, 1]);
    expect(algorithm.consume(undefined, -1_000, 1).state).toEqual([-1_000, 1]);
    expect(algorithm.consume(undefined, -1_001, 1)).toMatchObject({ state: [-2_000, 1], ttlMs: 1 });
  });

  it('weighs a cost as that many units', () => {
    const key = new Key(fixedWindow({ limit: 10, windowMs: 1_000 }));
    expect(key.consume(t0, 4)).toEqual({ allowed: true, limit: 10, remaining: 6, resetMs: 1_000, retryAfterMs: 0 });
    expect(key.consume(t0 + 10, 7)).toEqual({ allowed: false, limit: 10, remaining: 6, resetMs: 990, retryAfterMs: 990 });
    expect(key.consume(t0 + 10, 6)).toMatchObject({ allowed: true, remaining: 0 });
    expect(key.consume(t0 + 1_000, 10)).toMatchObject({ allowed: true, remaining: 0 });
  });

  it('a denial returns the very state it was given', () => {
    const algorithm = fixedWindow({ limit: 2, windowMs: 1_000 });
    const first = algorithm.consume(undefined, t0, 2);
    const denied = algorithm.consume(first.state, t0 + 10, 1);
    expect(denied.decision.allowed).toBe(false);
    expect(denied.state).toBe(first.state);
    expect(denied.state).toEqual([t0, 2]);
    expect(denied.ttlMs).toBe(990);
  });

  it('peek gives the decision consume would give and changes nothing', () => {
    const algorithm = fixedWindow({ limit: 5, windowMs: 1_000 });
    const state = algorithm.consume(undefined, t0 + 100, 3).state;
    const snapshot = [...state!];
    for (const [t, cost] of [
      [t0 + 100, 2],
      [t0 + 100, 3],
      [t0 + 999, 5],
      [t0 + 1_000, 5],
    ] as const) {
      const peeked = algorithm.peek(state, t, cost);
      expectSane(peeked);
      expect(state).toEqual(snapshot);
      expect(algorithm.consume(state, t, cost).decision).toEqual(peeked);
    }
  });

  it('refund gives units back, never below zero and never into another window', () => {
    const algorithm = fixedWindow({ limit: 10, windowMs: 1_000 });
    const key = new Key(algorithm);
    key.consume(t0, 7);
    key.refund(t0 + 100, 3);
    expect(key.state).toEqual([t0, 4]);
    expect(key.peek(t0 + 100)).toMatchObject({ remaining: 5 });
    key.refund(t0 + 100, 9);
    expect(key.state).toBeUndefined();
    key.refund(t0 + 100, 10);
    expect(key.burst(t0 + 100, 20)).toBe(10);
    // Units of a past window are not refunded into the current one.
    key.refund(t0 + 1_000, 10);
    expect(key.state).toBeUndefined();
    expect(key.burst(t0 + 1_000, 20)).toBe(10);
    expect(algorithm.refund(undefined, t0, 1)).toEqual({ state: undefined, ttlMs: 1 });
  });

  it('keeps its state exactly as long as it matters', () => {
    const algorithm = fixedWindow({ limit: 10, windowMs: 1_000 });
    const outcome = algorithm.consume(undefined, t0 + 300, 10);
    expect(outcome.ttlMs).toBe(700);
    expect(outcome.ttlMs).toBe(outcome.decision.resetMs);
    expect(algorithm.peek(outcome.state, t0 + 999, 1).allowed).toBe(false);
    expect(algorithm.peek(outcome.state, t0 + 1_000, 10)).toEqual(algorithm.peek(undefined, t0 + 1_000, 10));
  });

  it('a clock that steps back keeps what it counted', () => {
    const key = new Key(fixedWindow({ limit: 10, windowMs: 1_000 }));
    key.burst(t0 + 1_500, 10);
    expect(key.consume(t0 + 900)).toMatchObject({ allowed: false, remaining: 0, retryAfterMs: 1_100 });
  });

  it('describes itself', () => {
    expect(fixedWindow({ limit: 7, windowMs: 60_000 })).toMatchObject({ kind: 'fixed-window', limit: 7, windowMs: 60_000 });
  });
});
