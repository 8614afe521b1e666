// The adaptive limits against a modelled dependency (test/unit/admission/simulation.ts): 16
// workers × 20 ms ± 20 %, so a capacity C of 0.8 requests per ms. Each pitfall the issue names
// is a test here.
import { describe, expect, it } from 'vitest';
import { aimd, gradient2, type LimitAlgorithm, vegas } from '../../../src/index.js';
import { type Backend, limitAt, type Run, share, simulate } from './simulation.js';

const backend: Backend = { workers: 16, serviceMs: 20, jitter: 0.2 };
const C = backend.workers / backend.serviceMs;

function p99(run: Run, from: number, to: number): number {
  const rtts = run.arrivals
    .filter((a) => a.at >= from && a.at < to && a.rejected === undefined)
    .map((a) => a.rttMs)
    .filter((r) => !Number.isNaN(r))
    .sort((a, b) => a - b);
  return rtts[Math.floor(rtts.length * 0.99)]!;
}

function admittedPerMs(run: Run, from: number, to: number): number {
  return run.arrivals.filter((a) => a.at >= from && a.at < to && a.rejected === undefined).length / (to - from);
}

function median(values: number[]): number {
  return [...values].sort((a, b) => a - b)[values.length >> 1]!;
}

function limitsBetween(run: Run, from: number, to: number): number[] {
  return run.limits.filter(([t]) => t >= from && t < to).map(([, l]) => l);
}

describe('limit algorithm options', () => {
  it.each([
    ['gradient2', () => gradient2({ minLimit: 0 }), /gradient2: option "minLimit" must be between 1 and/],
    ['gradient2', () => gradient2({ minLimit: 10, maxLimit: 5 }), /gradient2: option "maxLimit" must be at least minLimit \(10\), got 5/],
    ['gradient2', () => gradient2({ initialLimit: 500, maxLimit: 100 }), /option "initialLimit" must be between minLimit \(1\) and maxLimit \(100\), got 500/],
    ['gradient2', () => gradient2({ rttTolerance: 0.9 }), /option "rttTolerance" must be at least 1, got 0.9/],
    ['gradient2', () => gradient2({ smoothing: 0 }), /option "smoothing" must be a ratio/],
    ['gradient2', () => gradient2({ windowMs: 0 }), /option "windowMs" must be greater than 0 ms/],
    ['gradient2', () => gradient2({ tolerance: 2 } as never), /gradient2: unknown option "tolerance"/],
    ['vegas', () => vegas({ alpha: 4, beta: 3 }), /vegas: option "beta" must be greater than 4, got 3/],
    ['vegas', () => vegas({ minSamples: 0 }), /vegas: option "minSamples" must be between 1/],
    ['aimd', () => aimd({ backoffRatio: 1 }), /aimd: option "backoffRatio" must be less than 1, got 1/],
    ['aimd', () => aimd({ dropAboveMs: -1 }), /aimd: option "dropAboveMs"/],
  ])('%s refuses bad options', (_name, make, message) => {
    expect(make).toThrow(message);
  });

  it('defaults: limits 1 … 1000 from 20; one strategy object configures many controllers', () => {
    const g = gradient2();
    expect([g.kind, g.minLimit, g.maxLimit, g.initialLimit]).toEqual(['gradient2', 1, 1000, 20]);
    const a = g.create();
    const b = g.create();
    for (let i = 0; i < 50; i++) a.sample(i * 10, 5, 20, false);
    expect(a.limit).toBeGreaterThan(20);
    expect(b.limit).toBe(20);
  });
});

// Vegas tolerates a queue of alpha … beta requests at the dependency by design, so its latency
// bound is looser than gradient2's.
describe.each<[string, () => LimitAlgorithm, number]>([
  ['gradient2', () => gradient2(), 1.35],
  ['vegas', () => vegas(), 1.6],
])('%s against a dependency of fixed capacity', (_name, algorithm, latencyBound) => {
  it('slow start: doubles per window while nothing queues, up to what the dependency takes', () => {
    const big: Backend = { workers: 400, serviceMs: 20, jitter: 0.2 };
    const run = simulate({ limit: algorithm() }, [{ durationMs: 3_000, rate: 10, backend: big }]);
    // 20 → 40 → 80 → 160 within a second or so of 250 ms windows.
    expect(limitAt(run, 1_300)).toBeGreaterThanOrEqual(160);
  });

  it('at light load (0.5 C for 120 s) rejects nothing, never lowers the limit, and raises it no further than twice what is used', () => {
    const run = simulate({ limit: algorithm() }, [{ durationMs: 120_000, rate: 0.5 * C, backend }]);
    expect(run.arrivals.filter((a) => a.rejected !== undefined)).toHaveLength(0);
    const limits = limitsBetween(run, 0, 120_000);
    expect(Math.min(...limits)).toBeGreaterThanOrEqual(20);
    // 0.5 C is 8 in flight on average; peaks stay well under 30.
    expect(Math.max(...limits)).toBeLessThanOrEqual(60);
  });

  it('a step from 0.5 C to 3 C: from 5 s after it, admitted p99 within its bound of the unloaded p99 and goodput ≥ 90 % of C', () => {
    const run = simulate({ limit: algorithm() }, [
      { durationMs: 10_000, rate: 0.5 * C, backend },
      { durationMs: 30_000, rate: 3 * C },
    ]);
    const unloaded = p99(run, 0, 10_000);
    expect(p99(run, 15_000, 40_000)).toBeLessThanOrEqual(latencyBound * unloaded);
    expect(admittedPerMs(run, 15_000, 40_000)).toBeGreaterThanOrEqual(0.9 * C);
  });
});

describe('gradient2: the pitfalls', () => {
  it('no probe windows: under steady overload the limit never dips to pin concurrency low (Envoy minRTT)', () => {
    const run = simulate({ limit: gradient2() }, [
      { durationMs: 5_000, rate: 0.5 * C, backend },
      { durationMs: 60_000, rate: 3 * C },
    ]);
    const settled = limitsBetween(run, 15_000, 65_000);
    const sorted = [...settled].sort((a, b) => a - b);
    const median = sorted[sorted.length >> 1]!;
    expect(Math.min(...settled)).toBeGreaterThanOrEqual(0.75 * median);
    expect(median).toBeGreaterThanOrEqual(backend.workers);
  });

  it('no baseline drift (failsafe-go #127): service time × 5 for 120 s, the limit does not creep more than 20 % above where it settled', () => {
    const slow: Backend = { ...backend, serviceMs: 100 };
    const run = simulate({ limit: gradient2() }, [
      { durationMs: 10_000, rate: 0.5 * C, backend },
      { durationMs: 20_000, rate: 3 * C },
      { durationMs: 120_000, rate: 3 * C, backend: slow },
    ]);
    const settled = limitAt(run, 45_000);
    expect(settled).toBeGreaterThanOrEqual(backend.workers * 0.75);
    expect(Math.max(...limitsBetween(run, 45_000, 150_000))).toBeLessThanOrEqual(1.2 * settled);
    // Goodput stays near what the slower dependency can do (C / 5).
    expect(admittedPerMs(run, 45_000, 150_000)).toBeGreaterThanOrEqual(0.85 * (C / 5));
  });

  it('no creep at light load either: 0.5 C while service time × 5 for 120 s (2.5× the slowed capacity), the limit stays within 20 % of where it settled', () => {
    // A handful of completions per 250 ms window: the throughput knee is judged over 2 s of the
    // clock, so a window's noise cannot pass for a gain that lets the limit rise 10 % at a time.
    // The harness's dependency (16 workers × 40 ms, slowed to 200 ms): about 20 completions a window.
    const harness: Backend = { ...backend, serviceMs: 40 };
    const slow: Backend = { ...backend, serviceMs: 200 };
    const c = harness.workers / harness.serviceMs;
    const run = simulate({ limit: gradient2() }, [
      { durationMs: 20_000, rate: 0.5 * c, backend: harness },
      { durationMs: 120_000, rate: 0.5 * c, backend: slow },
    ]);
    const settled = median(limitsBetween(run, 30_000, 40_000));
    for (let from = 40_000; from < 140_000; from += 5_000) {
      expect(median(limitsBetween(run, from, from + 5_000))).toBeLessThanOrEqual(1.2 * settled);
    }
    expect(admittedPerMs(run, 30_000, 140_000)).toBeGreaterThanOrEqual(0.9 * (c / 5));
  });

  it('after an overload the limit is back to ≥ 90 % of the light load\'s within 10 s of the load falling (in fact within 2 s)', () => {
    const run = simulate({ limit: gradient2() }, [
      { durationMs: 60_000, rate: 0.5 * C, backend },
      { durationMs: 20_000, rate: 3 * C },
      { durationMs: 20_000, rate: 0.5 * C },
    ]);
    const before = median(limitsBetween(run, 55_000, 60_000));
    expect(median(limitsBetween(run, 65_000, 80_000))).toBeLessThanOrEqual(0.6 * before); // the overload did lower it
    expect(limitAt(run, 82_000)).toBeGreaterThanOrEqual(0.9 * before);
    // ... and no further than the light load had it.
    expect(Math.max(...limitsBetween(run, 80_000, 100_000))).toBeLessThanOrEqual(before * 1.1);
    expect(share(run.arrivals.filter((a) => a.at >= 80_000), (a) => a.rejected !== undefined)).toBe(0);
  });

  it('the recovery does not apply while priority shedding keeps the limit in use: 30 % critical / 70 % sheddable at 3 C', () => {
    const run = simulate({ limit: gradient2() }, [
      { durationMs: 10_000, rate: 0.5 * C, backend, priority: (u) => (u < 0.3 ? 3 : 0) },
      { durationMs: 30_000, rate: 3 * C, priority: (u) => (u < 0.3 ? 3 : 0) },
    ]);
    const before = median(limitsBetween(run, 5_000, 10_000));
    expect(median(limitsBetween(run, 20_000, 40_000))).toBeLessThan(0.9 * before);
  });

  it('capacity halves mid-run: the limit settles within 10 s; after the overload it stays where it was', () => {
    const half: Backend = { ...backend, workers: 8 };
    const run = simulate({ limit: gradient2() }, [
      { durationMs: 10_000, rate: 0.5 * C, backend },
      { durationMs: 20_000, rate: 3 * C },
      { durationMs: 30_000, rate: 3 * C, backend: half },
      { durationMs: 20_000, rate: 0.5 * C, backend },
    ]);
    const before = limitAt(run, 30_000);
    const after = limitsBetween(run, 40_000, 60_000);
    // It fell with the capacity, and from 10 s after the change every sample is within ±20 % (at
    // least ±2) of where it ended (the harness's criterion for "settled").
    const final = median(limitsBetween(run, 50_000, 60_000));
    expect(median(after)).toBeLessThanOrEqual(0.8 * before);
    for (const l of after) expect(Math.abs(l - final)).toBeLessThanOrEqual(Math.max(2, 0.2 * final));
    expect(Math.max(...after) - Math.min(...after)).toBeLessThanOrEqual(Math.max(3, 0.25 * Math.min(...after)));
    // Back at light load the limit is not lowered (and no request is refused).
    expect(limitAt(run, 70_000)).toBeGreaterThanOrEqual(0.9 * limitAt(run, 60_000));
    expect(share(run.arrivals.filter((a) => a.at >= 62_000), (a) => a.rejected !== undefined)).toBe(0);
  });
});

describe('aimd', () => {
  it('adds one per window without drops, multiplies by backoffRatio on a window with one; latency alone never lowers it', () => {
    const e = aimd({ initialLimit: 10, windowMs: 100, minSamples: 1, backoffRatio: 0.5 }).create();
    let now = 0;
    e.sample(now, 5, 10, false);
    const window = (rtt: number, dropped: boolean): void => {
      now += 100;
      e.sample(now, rtt, 10, dropped);
    };
    window(5, false); // slow start: no congestion doubles it
    expect(e.limit).toBe(20);
    window(5, true);
    expect(e.limit).toBe(10);
    window(5_000, false);
    expect(e.limit).toBe(11);
    window(5, false);
    expect(e.limit).toBe(12);
  });

  it('counts a permit slower than dropAboveMs as dropped', () => {
    const e = aimd({ initialLimit: 10, windowMs: 100, minSamples: 1, dropAboveMs: 200 }).create();
    e.sample(0, 5, 10, false);
    e.sample(100, 250, 10, false);
    expect(e.limit).toBe(9);
  });
});
