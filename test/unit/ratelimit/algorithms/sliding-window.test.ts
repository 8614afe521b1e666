import { describe, expect, it } from 'vitest';
import { slidingWindow } from '../../../../src/ratelimit/algorithms/index.js';
import { expectSane, Key } from './support.js';

// Window starts that are multiples of 1 000 ms: 0 and a realistic wall-clock time.
const starts = [0, 1_700_000_000_000];

describe.each(starts)('slidingWindow (window starting at %i)', (t0) => {
  it('admits exactly limit units at once, then denies until the weighted estimate has room', () => {
    const key = new Key(slidingWindow({ limit: 10, windowMs: 1_000 }));
    for (let i = 1; i <= 10; i++) {
      expect(key.consume(t0)).toEqual({ allowed: true, limit: 10, remaining: 10 - i, resetMs: 2_000, retryAfterMs: 0 });
    }
    // In the next window these 10 count as 10 × (1000 − elapsed) / 1000; one more fits once that
    // is at most 9, i.e. 100 ms into the next window.
    expect(key.consume(t0)).toEqual({ allowed: false, limit: 10, remaining: 0, resetMs: 2_000, retryAfterMs: 1_100 });
    expect(key.consume(t0 + 1_099).allowed).toBe(false);
    expect(key.consume(t0 + 1_100)).toMatchObject({ allowed: true, remaining: 0 });
  });

  it('the previous window counts in proportion to its share still inside the sliding window', () => {
    const key = new Key(slidingWindow({ limit: 10, windowMs: 1_000 }));
    key.burst(t0 + 900, 10);
    // At the boundary the previous window still counts in full.
    expect(key.peek(t0 + 1_000)).toMatchObject({ allowed: false, remaining: 0, retryAfterMs: 100 });
    // Half-way through the next window, half of it does: room for 5.
    expect(key.peek(t0 + 1_500)).toMatchObject({ allowed: true, remaining: 4, resetMs: 1_500 });
    expect(key.burst(t0 + 1_500, 10)).toBe(5);
    expect(key.peek(t0 + 1_500)).toMatchObject({ allowed: false, remaining: 0, retryAfterMs: 100 });
    // Two windows later nothing is counted.
    expect(key.peek(t0 + 3_000, 10)).toMatchObject({ allowed: true, remaining: 0, resetMs: 2_000 });
  });

  it('never admits a window-boundary double burst', () => {
    const key = new Key(slidingWindow({ limit: 10, windowMs: 1_000 }));
    expect(key.burst(t0 + 999, 10)).toBe(10);
    expect(key.burst(t0 + 1_000, 10)).toBe(0);
    expect(key.burst(t0 + 1_001, 10)).toBe(0);
    // Over [t0 + 999, t0 + 1 999) the estimate allows only what has left the window.
    expect(key.burst(t0 + 1_999, 20)).toBe(9);
  });

  it('weighs a cost as that many units', () => {
    const key = new Key(slidingWindow({ limit: 10, windowMs: 1_000 }));
    expect(key.consume(t0 + 200, 4)).toEqual({ allowed: true, limit: 10, remaining: 6, resetMs: 1_800, retryAfterMs: 0 });
    // 7 more fit once the 4 weigh at most 3: 250 ms into the next window.
    expect(key.consume(t0 + 300, 7)).toEqual({ allowed: false, limit: 10, remaining: 6, resetMs: 1_700, retryAfterMs: 950 });
    expect(key.consume(t0 + 300, 6)).toMatchObject({ allowed: true, remaining: 0 });
    // Next window: previous = 10; a cost of 4 fits once 10 × (1000 − e) / 1000 ≤ 6, at e = 400.
    expect(key.consume(t0 + 1_000, 4)).toMatchObject({ allowed: false, retryAfterMs: 400 });
    expect(key.consume(t0 + 1_399, 4).allowed).toBe(false);
    expect(key.consume(t0 + 1_400, 4)).toMatchObject({ allowed: true, remaining: 0 });
  });

  it('a cost of the whole limit waits until nothing is counted', () => {
    const key = new Key(slidingWindow({ limit: 5, windowMs: 1_000 }));
    key.consume(t0 + 100, 1);
    expect(key.consume(t0 + 200, 5)).toMatchObject({ allowed: false, retryAfterMs: 1_800, resetMs: 1_800 });
    expect(key.consume(t0 + 1_999, 5).allowed).toBe(false);
    expect(key.consume(t0 + 2_000, 5)).toMatchObject({ allowed: true, remaining: 0 });
  });

  it('retryAfterMs can span into the window after next when the current window is heavy', () => {
    // W = 10 ms, limit 100: one unit of the current window weighs more than the whole next window
    // can shed per ms, so a full-limit cost waits for two windows to pass.
    const key = new Key(slidingWindow({ limit: 100, windowMs: 10 }));
    key.consume(t0 + 3, 100);
    expect(key.peek(t0 + 4, 100)).toMatchObject({ allowed: false, retryAfterMs: 16 });
    expect(key.peek(t0 + 19, 100).allowed).toBe(false);
    expect(key.peek(t0 + 20, 100).allowed).toBe(true);
  });

  it('a denial returns the very state it was given', () => {
    const algorithm = slidingWindow({ limit: 3, windowMs: 1_000 });
    const first = algorithm.consume(undefined, t0, 3);
    expect(first.state).toEqual([t0, 3, 0]);
    const denied = algorithm.consume(first.state, t0 + 1_200, 1);
    expect(denied.decision.allowed).toBe(false);
    expect(denied.state).toBe(first.state);
    expect(denied.state).toEqual([t0, 3, 0]);
  });

  it('peek gives the decision consume would give and changes nothing', () => {
    const algorithm = slidingWindow({ limit: 8, windowMs: 1_000 });
    const state = algorithm.consume(undefined, t0 + 700, 6).state;
    const snapshot = [...state!];
    for (const [t, cost] of [
      [t0 + 700, 2],
      [t0 + 700, 3],
      [t0 + 1_250, 3],
      [t0 + 1_800, 7],
      [t0 + 2_100, 8],
    ] as const) {
      const peeked = algorithm.peek(state, t, cost);
      expectSane(peeked);
      expect(state).toEqual(snapshot);
      expect(algorithm.consume(state, t, cost).decision).toEqual(peeked);
    }
  });

  it('refund gives units back from the current window, then the previous one, never below zero', () => {
    const algorithm = slidingWindow({ limit: 10, windowMs: 1_000 });
    const key = new Key(algorithm);
    key.consume(t0 + 500, 8);
    key.consume(t0 + 1_000, 2);
    expect(key.state).toEqual([t0 + 1_000, 2, 8]);
    key.refund(t0 + 1_000, 5);
    expect(key.state).toEqual([t0 + 1_000, 0, 5]);
    expect(key.peek(t0 + 1_000)).toMatchObject({ remaining: 4, resetMs: 2_000 });
    key.refund(t0 + 1_000, 10);
    expect(key.state).toBeUndefined();
    // No credit: the next burst is still only `limit` units.
    key.refund(t0 + 1_000, 10);
    expect(key.burst(t0 + 1_000, 20)).toBe(10);
    expect(algorithm.refund(undefined, t0, 1)).toEqual({ state: undefined, ttlMs: 1 });
  });

  it('keeps its state exactly as long as it matters', () => {
    const algorithm = slidingWindow({ limit: 10, windowMs: 1_000 });
    const outcome = algorithm.consume(undefined, t0 + 250, 10);
    expect(outcome.ttlMs).toBe(1_750);
    expect(outcome.ttlMs).toBe(outcome.decision.resetMs);
    expect(algorithm.peek(outcome.state, t0 + 1_999, 10).allowed).toBe(false);
    expect(algorithm.peek(outcome.state, t0 + 2_000, 10)).toEqual(algorithm.peek(undefined, t0 + 2_000, 10));
  });

  it('a clock that steps back keeps what it counted', () => {
    const key = new Key(slidingWindow({ limit: 10, windowMs: 1_000 }));
    key.burst(t0 + 1_500, 10);
    expect(key.peek(t0 + 900)).toMatchObject({ allowed: false, remaining: 0 });
    expect(key.burst(t0 + 900, 5)).toBe(0);
  });

  it('describes itself', () => {
    expect(slidingWindow({ limit: 7, windowMs: 60_000 })).toMatchObject({ kind: 'sliding-window', limit: 7, windowMs: 60_000 });
  });
});
