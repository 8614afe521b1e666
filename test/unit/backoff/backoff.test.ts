import { describe, expect, it } from 'vitest';
import { isBackoff } from '../../../src/backoff/backoff.js';
import { constant, exponential, type Backoff } from '../../../src/index.js';
import { seeded } from '../retry/support.js';

/** Runs a backoff the way retry does: each delay is passed back as the next call's previous. */
function schedule(backoff: Backoff, count: number): number[] {
  const delays: number[] = [];
  let previous = backoff.initialMs;
  for (let n = 1; n <= count; n++) {
    previous = backoff.next(n, previous);
    delays.push(previous);
  }
  return delays;
}

const justBelowOne = 1 - 2 ** -53;

describe('constant', () => {
  it('returns the same delay for every attempt, whatever the previous delay', () => {
    const backoff = constant(250);
    expect(backoff.initialMs).toBe(250);
    expect([1, 2, 3, 50, 999].map((n) => backoff.next(n, 12_345))).toEqual([250, 250, 250, 250, 250]);
  });

  it('allows a zero delay, meaning retry at once', () => {
    expect(schedule(constant(0), 3)).toEqual([0, 0, 0]);
  });

  it('accepts the largest timer delay, 2^31 − 1 ms', () => {
    expect(constant(2 ** 31 - 1).next(1, 0)).toBe(2 ** 31 - 1);
  });
});

describe('exponential with jitter none', () => {
  it('gives initialMs × factor^(n−1)', () => {
    const backoff = exponential({ initialMs: 100, factor: 2, maxMs: 100_000, jitter: 'none' });
    expect(schedule(backoff, 6)).toEqual([100, 200, 400, 800, 1_600, 3_200]);
  });

  it('caps the delay at maxMs', () => {
    const backoff = exponential({ initialMs: 100, factor: 2, maxMs: 1_000, jitter: 'none' });
    expect(schedule(backoff, 7)).toEqual([100, 200, 400, 800, 1_000, 1_000, 1_000]);
  });

  it('grows by a non-integer factor', () => {
    const backoff = exponential({ initialMs: 100, factor: 1.5, maxMs: 10_000, jitter: 'none' });
    expect(schedule(backoff, 4)).toEqual([100, 150, 225, 337.5]);
  });

  it('stays at maxMs, never Infinity or NaN, for huge attempt numbers', () => {
    const backoff = exponential({ initialMs: 1, factor: 10, maxMs: 5_000, jitter: 'none' });
    for (const n of [400, 1_000, 100_000]) expect(backoff.next(n, 5_000)).toBe(5_000);
  });

  it('with maxMs equal to initialMs is constant', () => {
    expect(schedule(exponential({ initialMs: 300, maxMs: 300, jitter: 'none' }), 4)).toEqual([300, 300, 300, 300]);
  });

  it('defaults to 100 ms doubling up to 30 s', () => {
    const backoff = exponential({ jitter: 'none' });
    expect(backoff.initialMs).toBe(100);
    expect(schedule(backoff, 3)).toEqual([100, 200, 400]);
    expect(backoff.next(20, 0)).toBe(30_000);
  });

  it('defaults maxMs to initialMs when initialMs is above 30 s', () => {
    expect(exponential({ initialMs: 60_000, jitter: 'none' }).next(5, 0)).toBe(60_000);
  });
});

describe('exponential with full jitter', () => {
  it('is the default jitter', () => {
    const backoff = exponential({ initialMs: 100, random: () => 0.5 });
    expect(backoff.next(3, 0)).toBe(200);
  });

  it('scales the exponential ceiling by random()', () => {
    const backoff = exponential({ initialMs: 100, maxMs: 1_000, jitter: 'full', random: () => 0.25 });
    expect(schedule(backoff, 6)).toEqual([25, 50, 100, 200, 250, 250]);
  });

  it('gives 0 when random() is 0 and stays below the ceiling as random() nears 1', () => {
    expect(exponential({ initialMs: 100, jitter: 'full', random: () => 0 }).next(4, 0)).toBe(0);
    const top = exponential({ initialMs: 100, maxMs: 1_000, jitter: 'full', random: () => justBelowOne });
    expect(top.next(4, 0)).toBeLessThan(800);
    expect(top.next(4, 0)).toBeGreaterThan(799.99);
    expect(top.next(10, 0)).toBeLessThan(1_000);
  });

  it('stays in [0, ceiling] and spreads over the whole range with Math.random', () => {
    const backoff = exponential({ initialMs: 100, factor: 2, maxMs: 10_000, jitter: 'full' });
    const ceiling = 800;
    const samples = Array.from({ length: 20_000 }, () => backoff.next(4, 0));
    expect(samples.filter((s) => !(s >= 0 && s <= ceiling))).toEqual([]);
    expect(Math.min(...samples)).toBeLessThan(ceiling * 0.01);
    expect(Math.max(...samples)).toBeGreaterThan(ceiling * 0.99);
    expect(new Set(samples).size).toBeGreaterThan(1_000);
    const mean = samples.reduce((a, b) => a + b, 0) / samples.length;
    expect(mean).toBeGreaterThan(ceiling * 0.45);
    expect(mean).toBeLessThan(ceiling * 0.55);
  });

  it('spreads capped attempts over [0, maxMs] too', () => {
    const backoff = exponential({ initialMs: 100, maxMs: 1_000, jitter: 'full' });
    const samples = Array.from({ length: 5_000 }, () => backoff.next(30, 0));
    expect(Math.max(...samples)).toBeLessThanOrEqual(1_000);
    expect(Math.max(...samples)).toBeGreaterThan(980);
    expect(Math.min(...samples)).toBeLessThan(20);
  });

  it('is deterministic with an injected random', () => {
    const a = exponential({ initialMs: 50, maxMs: 5_000, jitter: 'full', random: seeded(42) });
    const b = exponential({ initialMs: 50, maxMs: 5_000, jitter: 'full', random: seeded(42) });
    const first = schedule(a, 12);
    expect(schedule(b, 12)).toEqual(first);
    expect(new Set(first).size).toBeGreaterThan(1);
  });
});

describe('exponential with decorrelated jitter', () => {
  it('gives initialMs when random() is 0', () => {
    const backoff = exponential({ initialMs: 100, maxMs: 10_000, jitter: 'decorrelated', random: () => 0 });
    expect(schedule(backoff, 5)).toEqual([100, 100, 100, 100, 100]);
  });

  it('draws from [initialMs, previous × (factor + 1)]', () => {
    const half = exponential({ initialMs: 100, maxMs: 100_000, factor: 2, jitter: 'decorrelated', random: () => 0.5 });
    // previous 100 → upper 300 → 100 + 0.5 × 200 = 200; previous 200 → upper 600 → 350.
    expect(half.next(1, 100)).toBe(200);
    expect(half.next(2, 200)).toBe(350);
    expect(half.next(3, 1_000)).toBe(1_550);
  });

  it('uses initialMs as the previous delay when given a smaller one', () => {
    const backoff = exponential({ initialMs: 100, maxMs: 100_000, jitter: 'decorrelated', random: () => 0.5 });
    expect(backoff.next(2, 0)).toBe(200);
    expect(backoff.next(2, 10)).toBe(200);
  });

  it('never exceeds maxMs', () => {
    const backoff = exponential({ initialMs: 100, maxMs: 1_000, jitter: 'decorrelated', random: () => justBelowOne });
    const delays = schedule(backoff, 10);
    expect(delays[0]).toBeCloseTo(300, 6);
    expect(delays[1]).toBeCloseTo(900, 6);
    expect(delays.slice(2)).toEqual(Array(8).fill(1_000));
  });

  it('stays in [initialMs, maxMs] and within previous × (factor + 1) over a long random chain', () => {
    for (const factor of [1.5, 2, 3]) {
      const initialMs = 20;
      const maxMs = 2_000;
      const backoff = exponential({ initialMs, maxMs, factor, jitter: 'decorrelated' });
      let previous = initialMs;
      const samples: number[] = [];
      const outside: { n: number; previous: number; d: number }[] = [];
      for (let n = 1; n <= 20_000; n++) {
        const d = backoff.next(n, previous);
        const upper = Math.min(maxMs, Math.max(initialMs, previous) * (factor + 1));
        if (!(d >= initialMs && d <= upper)) outside.push({ n, previous, d });
        samples.push(d);
        previous = d;
      }
      expect(outside).toEqual([]);
      expect(Math.min(...samples)).toBeLessThan(initialMs * 1.05);
      expect(Math.max(...samples)).toBeGreaterThan(maxMs * 0.99);
      expect(new Set(samples).size).toBeGreaterThan(1_000);
    }
  });

  it('is deterministic with an injected random', () => {
    const make = (): Backoff => exponential({ initialMs: 10, maxMs: 10_000, jitter: 'decorrelated', random: seeded(7) });
    const first = schedule(make(), 15);
    expect(schedule(make(), 15)).toEqual(first);
    expect(new Set(first).size).toBeGreaterThan(1);
  });

  it('calls random once per delay', () => {
    let calls = 0;
    const backoff = exponential({
      jitter: 'decorrelated',
      random: () => {
        calls++;
        return 0.3;
      },
    });
    schedule(backoff, 4);
    expect(calls).toBe(4);
  });
});

describe('isBackoff', () => {
  it('recognises the built-in backoffs and hand-made ones', () => {
    expect(isBackoff(constant(10))).toBe(true);
    expect(isBackoff(exponential())).toBe(true);
    expect(isBackoff({ initialMs: 0, next: () => 5 })).toBe(true);
  });

  it.each<[string, unknown]>([
    ['null', null],
    ['undefined', undefined],
    ['a number', 100],
    ['a function', () => 100],
    ['an object without next', { initialMs: 10 }],
    ['an object without initialMs', { next: () => 1 }],
    ['an object with a string initialMs', { initialMs: '10', next: () => 1 }],
    // Regression: a NaN initialMs passed as a backoff and made retry's default maxDelayMs NaN.
    ['an object with a NaN initialMs', { initialMs: Number.NaN, next: () => 1 }],
    ['an object with an infinite initialMs', { initialMs: Infinity, next: () => 1 }],
    ['an object with a negative initialMs', { initialMs: -5, next: () => 1 }],
  ])('rejects %s', (_label, value) => {
    expect(isBackoff(value)).toBe(false);
  });
});
