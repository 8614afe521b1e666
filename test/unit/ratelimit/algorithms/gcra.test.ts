import { describe, expect, it } from 'vitest';
import { gcra } from '../../../../src/ratelimit/algorithms/index.js';
import { expectSane, Key } from './support.js';

// A realistic wall-clock start as well as 0, so large timestamps are exercised too.
const starts = [0, 1_700_000_000_123];

describe.each(starts)('gcra (clock starting at %i)', (t0) => {
  it('admits exactly burst units at once, then denies for one emission interval', () => {
    const key = new Key(gcra({ limit: 10, periodMs: 1_000 }));
    for (let i = 1; i <= 10; i++) {
      const d = key.consume(t0);
      expect(d).toEqual({ allowed: true, limit: 10, remaining: 10 - i, resetMs: 100 * i, retryAfterMs: 0 });
    }
    expect(key.consume(t0)).toEqual({ allowed: false, limit: 10, remaining: 0, resetMs: 1_000, retryAfterMs: 100 });
  });

  it('a burst smaller than the limit caps what arrives at once, not the rate', () => {
    const key = new Key(gcra({ limit: 10, periodMs: 1_000, burst: 3 }));
    expect(key.burst(t0, 5)).toBe(3);
    expect(key.peek(t0)).toMatchObject({ allowed: false, limit: 3, retryAfterMs: 100 });
    // Sustained, it still admits 10 per second: one every 100 ms.
    let allowed = 0;
    for (let t = t0 + 100; t <= t0 + 1_000; t += 100) allowed += key.burst(t, 2);
    expect(allowed).toBe(10);
  });

  it('a burst larger than the limit lets a key save up beyond one period', () => {
    const key = new Key(gcra({ limit: 10, periodMs: 1_000, burst: 25 }));
    expect(key.burst(t0, 30)).toBe(25);
    expect(key.peek(t0)).toMatchObject({ allowed: false, limit: 25, resetMs: 2_500, retryAfterMs: 100 });
  });

  it('refills one unit per periodMs / limit, exactly on the interval', () => {
    const key = new Key(gcra({ limit: 10, periodMs: 1_000 }));
    key.burst(t0, 10);
    expect(key.consume(t0 + 99)).toMatchObject({ allowed: false, retryAfterMs: 1 });
    expect(key.consume(t0 + 100)).toMatchObject({ allowed: true, remaining: 0 });
    expect(key.consume(t0 + 100)).toMatchObject({ allowed: false, retryAfterMs: 100 });
    expect(key.consume(t0 + 450)).toMatchObject({ allowed: true, remaining: 2 });
    expect(key.peek(t0 + 1_450)).toMatchObject({ allowed: true, remaining: 9, resetMs: 100 });
  });

  it('rounds a fractional interval up to a whole µs and waits whole ms for it', () => {
    // 3 per second: one unit every 333 334 µs (333 333.3 rounded up).
    const algorithm = gcra({ limit: 3, periodMs: 1_000 });
    expect(algorithm.emissionIntervalUs).toBe(333_334);
    const key = new Key(algorithm);
    expect(key.burst(t0, 3)).toBe(3);
    expect(key.peek(t0)).toMatchObject({ allowed: false, resetMs: 1_001, retryAfterMs: 334 });
    expect(key.consume(t0 + 333).allowed).toBe(false);
    expect(key.consume(t0 + 334).allowed).toBe(true);
    // Three intervals come to 1 000 002 µs: the bucket is full again at 1 001 ms, not before.
    expect(key.peek(t0 + 1_000, 3).allowed).toBe(false);
    expect(key.peek(t0 + 1_001 + 334, 3).allowed).toBe(true);
  });

  it('weighs a cost as that many units', () => {
    const key = new Key(gcra({ limit: 10, periodMs: 1_000 }));
    expect(key.consume(t0, 4)).toEqual({ allowed: true, limit: 10, remaining: 6, resetMs: 400, retryAfterMs: 0 });
    // 7 more would need 1 100 ms of bucket: wait the 100 ms over.
    expect(key.consume(t0, 7)).toEqual({ allowed: false, limit: 10, remaining: 6, resetMs: 400, retryAfterMs: 100 });
    expect(key.consume(t0 + 100, 7)).toMatchObject({ allowed: true, remaining: 0, resetMs: 1_000 });
    expect(key.consume(t0 + 100, 10)).toMatchObject({ allowed: false, retryAfterMs: 1_000 });
  });

  it('a cost of the whole burst is admitted on an idle key and then waits a full bucket', () => {
    const key = new Key(gcra({ limit: 5, periodMs: 500, burst: 8 }));
    expect(key.consume(t0, 8)).toMatchObject({ allowed: true, remaining: 0, resetMs: 800 });
    expect(key.consume(t0 + 1, 8)).toMatchObject({ allowed: false, retryAfterMs: 799 });
    expect(key.consume(t0 + 800, 8).allowed).toBe(true);
  });

  it('a denial returns the very state it was given', () => {
    const algorithm = gcra({ limit: 2, periodMs: 1_000 });
    const first = algorithm.consume(undefined, t0, 2);
    const denied = algorithm.consume(first.state, t0 + 10, 1);
    expect(denied.decision.allowed).toBe(false);
    expect(denied.state).toBe(first.state);
    expect(denied.state).toEqual(first.state);
    expect(denied.ttlMs).toBe(990);
  });

  it('peek gives the decision consume would give and changes nothing', () => {
    const algorithm = gcra({ limit: 4, periodMs: 1_000 });
    let state = algorithm.consume(undefined, t0, 3).state;
    const snapshot = [...state!];
    for (const [t, cost] of [
      [t0, 1],
      [t0, 2],
      [t0 + 260, 2],
      [t0 + 5_000, 4],
    ] as const) {
      const peeked = algorithm.peek(state, t, cost);
      expect(state).toEqual(snapshot);
      expect(algorithm.consume(state, t, cost).decision).toEqual(peeked);
    }
    state = algorithm.consume(state, t0, 1).state;
    expect(algorithm.peek(state, t0, 1)).toMatchObject({ allowed: false, retryAfterMs: 250 });
  });

  it('refund gives units back, and never past full capacity', () => {
    const algorithm = gcra({ limit: 10, periodMs: 1_000 });
    const key = new Key(algorithm);
    key.consume(t0, 6);
    key.refund(t0, 2);
    expect(key.peek(t0)).toMatchObject({ remaining: 5, resetMs: 500 });
    key.refund(t0 + 100, 10);
    expect(key.state).toBeUndefined();
    expect(key.peek(t0 + 100)).toMatchObject({ allowed: true, remaining: 9 });
    // A refund on an idle key creates no credit: the next burst is still only `burst` units.
    key.refund(t0 + 200, 10);
    expect(key.burst(t0 + 200, 20)).toBe(10);
    expect(algorithm.refund(undefined, t0, 1)).toEqual({ state: undefined, ttlMs: 1 });
  });

  it('keeps its state exactly as long as it matters', () => {
    const algorithm = gcra({ limit: 10, periodMs: 1_000 });
    const outcome = algorithm.consume(undefined, t0, 7);
    expect(outcome.ttlMs).toBe(700);
    expect(outcome.ttlMs).toBe(outcome.decision.resetMs);
    expect(algorithm.peek(outcome.state, t0 + 699, 10).allowed).toBe(false);
    expect(algorithm.peek(outcome.state, t0 + 700, 10)).toEqual(algorithm.peek(undefined, t0 + 700, 10));
  });

  it('reports the rate as the algorithm limit and the burst as the decision limit', () => {
    const algorithm = gcra({ limit: 100, periodMs: 60_000, burst: 20 });
    expect(algorithm).toMatchObject({ kind: 'gcra', limit: 100, windowMs: 60_000, burst: 20, emissionIntervalUs: 600_000 });
    const d = algorithm.peek(undefined, t0, 1);
    expectSane(d);
    expect(d).toEqual({ allowed: true, limit: 20, remaining: 19, resetMs: 600, retryAfterMs: 0 });
  });

  it('a clock that steps back admits nothing extra', () => {
    const key = new Key(gcra({ limit: 10, periodMs: 1_000 }));
    key.burst(t0 + 5_000, 10);
    expect(key.consume(t0 + 4_000)).toMatchObject({ allowed: false, resetMs: 2_000, retryAfterMs: 1_100 });
  });
});

/*
 * Oracle: the GCRA test table of redis-cell — brandur/redis-cell, redis-cell-impl/src/lib.rs,
 * test `it_rate_limits` (commit 97d409c3a62f2a0f5518c31fc9b4b65afbce2053) — which is the same
 * table as the Go library it was ported from, throttled/throttled, rate_test.go, `TestRateLimit`.
 *
 * Their quota is `max_rate` = 1 per second with `max_burst` = 4. They define the bucket (the
 * "delay variation tolerance") as emission interval × (max_burst + 1), and report
 * limit = max_burst + 1 = 5: max_burst counts the units allowed on top of the first one. Our
 * `burst` is the whole bucket, so burst = max_burst + 1 = 5, with limit 1 per periodMs 1 000
 * (one unit per 1 000 ms, their emission interval). Seconds become ms; their retry_after of −1
 * ("not limited") is our retryAfterMs 0; reset_after is our resetMs.
 *
 * Two rows have no direct counterpart:
 * - row 0 asks for 6 units, more than the bucket holds; they answer "limited, retry never"
 *   (retry_after −1); we refuse such a cost outright with a RangeError naming "cost".
 * - row 12 peeks with a volume of 0 and reports the current state (remaining 4, reset 1 s). Our
 *   cost is at least 1 and peek reports what a consumption of that cost would get, i.e. one unit
 *   less and one interval later (remaining 3, reset 2 s) — then row 13 shows the peek changed
 *   nothing.
 */
describe('gcra against the redis-cell / throttled table', () => {
  // [row, offset ms, cost, allowed, remaining, resetMs, retryAfterMs]
  type Row = [number, number, number, boolean, number, number, number];
  const rows: Row[] = [
    [1, 0, 1, true, 4, 1_000, 0],
    [2, 0, 1, true, 3, 2_000, 0],
    [3, 0, 1, true, 2, 3_000, 0],
    [4, 0, 1, true, 1, 4_000, 0],
    [5, 0, 1, true, 0, 5_000, 0],
    [6, 0, 1, false, 0, 5_000, 1_000],
    [7, 3_000, 1, true, 2, 3_000, 0],
    [8, 3_100, 1, true, 1, 3_900, 0],
    [9, 4_000, 1, true, 1, 4_000, 0],
    [10, 8_000, 1, true, 4, 1_000, 0],
    [11, 9_500, 1, true, 4, 1_000, 0],
    // row 12 is the peek below
    [13, 9_500, 2, true, 2, 3_000, 0],
    [14, 9_500, 5, false, 2, 3_000, 3_000],
  ];

  it.each(starts)('reproduces every row (clock starting at %i)', (t0) => {
    const algorithm = gcra({ limit: 1, periodMs: 1_000, burst: 5 });
    let state: readonly number[] | undefined;

    // Row 0: a cost above the bucket can never be admitted.
    expect(() => algorithm.consume(state, t0, 6)).toThrow(RangeError);
    expect(() => algorithm.consume(state, t0, 6)).toThrow(/"cost".*6/);

    for (const [row, offset, cost, allowed, remaining, resetMs, retryAfterMs] of rows) {
      if (row === 13) {
        // Row 12: a peek, one unit above and one interval short of the zero-volume row.
        expect(algorithm.peek(state, t0 + 9_500, 1), 'row 12').toEqual({
          allowed: true,
          limit: 5,
          remaining: 3,
          resetMs: 2_000,
          retryAfterMs: 0,
        });
      }
      const outcome = algorithm.consume(state, t0 + offset, cost);
      expect(outcome.decision, `row ${row}`).toEqual({ allowed, limit: 5, remaining, resetMs, retryAfterMs });
      if (!allowed) expect(outcome.state, `row ${row} leaves the state alone`).toBe(state);
      state = outcome.state;
    }
  });
});
