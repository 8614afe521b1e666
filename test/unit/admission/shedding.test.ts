// Priority shedding, per-tenant fairness and the load signal, against the modelled dependency of
// test/unit/admission/simulation.ts (16 workers × 20 ms ± 20 %: C = 0.8 requests per ms).
import { describe, expect, it } from 'vitest';
import { admissionController, type Permit } from '../../../src/index.js';
import type { PriorityLevel } from '../../../src/admission/priority.js';
import { type Arrival, type Backend, share, simulate } from './simulation.js';

const backend: Backend = { workers: 16, serviceMs: 20, jitter: 0.2 };
const C = backend.workers / backend.serviceMs;
const criticalOrSheddable = (u: number): PriorityLevel => (u < 0.3 ? 3 : 0);

function rejected(a: Arrival): boolean {
  return a.rejected !== undefined;
}

/** Intervals of `ms` in which a request of a class was rejected while a lower class was admitted. */
function inversions(arrivals: Arrival[], from: number, to: number, ms = 100): { bad: number; total: number } {
  let bad = 0;
  let total = 0;
  for (let t = from; t < to; t += ms) {
    const inInterval = arrivals.filter((a) => a.at >= t && a.at < t + ms);
    total++;
    const lowestRejected = Math.max(-1, ...inInterval.filter(rejected).map((a) => a.priority));
    if (inInterval.some((a) => !rejected(a) && a.priority < lowestRejected)) bad++;
  }
  return { bad, total };
}

describe('priority shedding', () => {
  it('30 % critical / 70 % sheddable at 3 C: critical ≥ 99.5 % served, ≥ 99 % of rejections sheddable, goodput ≥ 90 % of C', () => {
    const run = simulate({}, [
      { durationMs: 5_000, rate: 0.5 * C, backend, priority: criticalOrSheddable },
      { durationMs: 30_000, rate: 3 * C, priority: criticalOrSheddable },
    ]);
    const loaded = run.arrivals.filter((a) => a.at >= 10_000);
    expect(share(loaded.filter((a) => a.priority === 3), (a) => !rejected(a))).toBeGreaterThanOrEqual(0.995);
    expect(share(loaded.filter(rejected), (a) => a.priority === 0)).toBeGreaterThanOrEqual(0.99);
    expect(loaded.filter((a) => !rejected(a)).length / 25_000).toBeGreaterThanOrEqual(0.9 * C);
    // Sheddable traffic is shed in part, never all of it (critical alone is 0.9 C here).
    expect(share(loaded.filter((a) => a.priority === 0), (a) => !rejected(a))).toBeGreaterThan(0.005);
  });

  it('a higher class is not turned away while a lower one is admitted, in ≥ 99 % of 100 ms intervals after the step', () => {
    for (const seed of [1, 2, 3]) {
      const run = simulate(
        {},
        [
          { durationMs: 5_000, rate: 0.5 * C, backend, priority: criticalOrSheddable },
          { durationMs: 30_000, rate: 3 * C, priority: criticalOrSheddable },
        ],
        seed,
      );
      // The step's own interval is not counted: no rate of the new traffic is known before it arrives.
      const { bad, total } = inversions(run.arrivals, 5_100, 35_100);
      expect(bad / total).toBeLessThanOrEqual(0.01);
    }
  });

  it('a step from 0.8 C (the limit well above the need) to 3 C: ≥ 99.75 % of critical requests served over five seeds', () => {
    // At the step, the reserve follows the rise in critical arrivals within the window instead of
    // a window later, and a critical request may take a slot a sheddable one holds.
    let critical = 0;
    let refused = 0;
    for (const seed of [1, 2, 3, 4, 5]) {
      const run = simulate(
        {},
        [
          { durationMs: 5_000, rate: 0.8 * C, backend, priority: criticalOrSheddable },
          { durationMs: 5_000, rate: 3 * C, priority: criticalOrSheddable },
        ],
        seed,
      );
      const after = run.arrivals.filter((a) => a.at >= 5_000 && a.priority === 3);
      critical += after.length;
      refused += after.filter(rejected).length;
    }
    expect(1 - refused / critical).toBeGreaterThanOrEqual(0.9975);
  });

  it('the reserve follows a step, not the noise of a steady rate: at 0.85 C over 20 seeds, at most 0.015 % refused', () => {
    // Taking the window's own rate whenever it is higher than the smoothed one refuses about twice
    // as many here (0.022 %; 0.046 % when the reserve was kept at all times): a few early
    // arrivals widen the reserve. With the gate: 0.010 %.
    let refused = 0;
    let total = 0;
    for (let seed = 1; seed <= 20; seed++) {
      const run = simulate(
        {},
        [
          { durationMs: 5_000, rate: 0.5 * C, backend, priority: criticalOrSheddable },
          { durationMs: 20_000, rate: 0.85 * C, priority: criticalOrSheddable },
        ],
        seed,
      );
      const after = run.arrivals.filter((a) => a.at >= 5_000);
      total += after.length;
      refused += after.filter(rejected).length;
    }
    expect(refused / total).toBeLessThanOrEqual(0.00015);
  });

  it('refuses nothing in either class at 0.8 C after 0.5 C, over 40 seeds: the reserve is kept only under overload', () => {
    // Keeping the reserve at all times, 9 sheddable requests were refused here (two seeds): right
    // after the rise, while the limit was still twice what 0.5 C had in flight, and when the
    // dependency's queue swelled to twice its workers for a moment.
    let refused = 0;
    for (let seed = 1; seed <= 40; seed++) {
      const run = simulate(
        {},
        [
          { durationMs: 4_000, rate: 0.5 * C, backend, priority: criticalOrSheddable },
          { durationMs: 6_000, rate: 0.8 * C, priority: criticalOrSheddable },
        ],
        seed,
      );
      // The first second is the cold start (slow start from 20 may reach its limit at once).
      refused += run.arrivals.filter((a) => a.at >= 1_000 && rejected(a)).length;
    }
    expect(refused).toBe(0);
  });

  it('rejects nothing in either class at 0.8 C', () => {
    const run = simulate({}, [
      { durationMs: 5_000, rate: 0.5 * C, backend, priority: criticalOrSheddable },
      { durationMs: 30_000, rate: 0.8 * C },
    ]);
    expect(run.arrivals.filter(rejected)).toHaveLength(0);
  });

  it('sheds in proportion, lowest class first: at 1.5 C over three classes, the lowest is cut in part and the others kept', () => {
    const three = (u: number): PriorityLevel => (u < 0.2 ? 3 : u < 0.5 ? 2 : 0);
    const run = simulate({}, [
      { durationMs: 5_000, rate: 0.5 * C, backend, priority: three },
      { durationMs: 30_000, rate: 1.5 * C, priority: three },
    ]);
    const loaded = run.arrivals.filter((a) => a.at >= 10_000);
    const served = (level: PriorityLevel): number => share(loaded.filter((a) => a.priority === level), (a) => !rejected(a));
    expect(served(3)).toBeGreaterThanOrEqual(0.995);
    // The margin kept for critical bursts costs the middle class a little (the reserve follows a
    // rise in critical arrivals within the window: about 5 % of the middle class here).
    expect(served(2)).toBeGreaterThanOrEqual(0.94);
    // 1.5 C offered, C served: about a third of all traffic goes, all of it from the lowest class
    // (half the traffic): about a third of it is still served.
    expect(served(0)).toBeGreaterThan(0.15);
    expect(served(0)).toBeLessThan(0.6);
  });

  it('decides on arrival: a lower class is refused while the next window keeps a higher class\'s recent refusal in mind', () => {
    const c = admissionController({ limit: 1 });
    const held = c.tryAcquire({ priority: 3 }) as Permit;
    expect(c.tryAcquire({ priority: 3 })).toMatchObject({ reason: 'limit' });
    held.release('success');
    // A slot is free, but a critical request was just refused: a sheddable one may not take it.
    expect(c.tryAcquire({ priority: 0 })).toMatchObject({ reason: 'priority' });
    expect('release' in c.tryAcquire({ priority: 3 })).toBe(true);
  });
});

describe('fairness between tenants', () => {
  const tenants = (u: number): string => (u < 10 / 19 ? 'heavy' : `light-${Math.floor((u - 10 / 19) * 19)}`);

  it('one tenant offering 10 × the other nine gets at most its fair share + 10 % (and a permit) of its class', () => {
    for (const limit of [20, undefined]) {
      const run = simulate(limit === undefined ? {} : { limit }, [{ durationMs: 20_000, rate: 3 * C, backend, tenant: tenants }]);
      const admitted = run.arrivals.filter((a) => a.at >= 2_000 && !rejected(a));
      const heavy = share(admitted, (a) => a.tenant === 'heavy');
      expect(heavy).toBeLessThanOrEqual(0.1 * 1.1 + 0.01);
      expect(heavy).toBeGreaterThanOrEqual(0.09);
      // Fairness costs little goodput.
      expect(admitted.length / 18_000).toBeGreaterThanOrEqual(0.95 * C);
    }
  });

  it('with fairness off, the heavy tenant takes what it offers', () => {
    const run = simulate({ limit: 20, fairness: false }, [{ durationMs: 10_000, rate: 3 * C, backend, tenant: tenants }]);
    const admitted = run.arrivals.filter((a) => a.at >= 2_000 && !rejected(a));
    expect(share(admitted, (a) => a.tenant === 'heavy')).toBeGreaterThan(0.45);
  });

  it('a tenant alone may use every slot', () => {
    const c = admissionController({ limit: 5 });
    const permits = [0, 1, 2, 3, 4].map(() => c.tryAcquire({ tenant: 'only' }));
    expect(permits.every((p) => 'release' in p)).toBe(true);
    expect(c.tryAcquire({ tenant: 'only' })).toMatchObject({ reason: 'limit' });
  });
});

describe('the load signal', () => {
  it('while it reports pressure, sheds the lowest class first and in part, never critical; stops when it clears', () => {
    let pressure: string | null = null;
    let now = 0;
    const clock = { now: () => now, setTimeout: () => ({ ref: () => 0, unref: () => 0 }), clearTimeout: () => {} };
    const c = admissionController({ limit: 1_000, loadSignal: { check: () => pressure }, clock });
    /** Served share per class over `ms`, 4 requests (one per class) per ms, each released at once. */
    const offer = (ms: number): number[] => {
      const served = [0, 0, 0, 0];
      for (const end = now + ms; now < end; now += 1) {
        for (let level = 0; level < 4; level++) {
          const a = c.tryAcquire({ priority: level as PriorityLevel });
          if (!('reason' in a)) {
            served[level]!++;
            a.release('ignore');
          } else expect(a.reason).toBe('load');
        }
      }
      return served.map((n) => n / ms);
    };
    expect(offer(500)).toEqual([1, 1, 1, 1]);
    pressure = 'eventLoopDelay';
    // A quarter class per 100 ms window, from the next window on: a quarter of the sheddable
    // requests go, then half ...
    const first = offer(100);
    expect(first[0]).toBeCloseTo(0.75, 1);
    expect(first.slice(1)).toEqual([1, 1, 1]);
    expect(offer(100)[0]).toBeCloseTo(0.5, 1);
    // ... after 500 ms all sheddable and part of best-effort; critical is never shed by load.
    offer(200);
    const later = offer(100);
    expect(later[0]).toBe(0);
    expect(later[1]).toBeGreaterThan(0.5);
    expect(later[1]).toBeLessThan(1);
    offer(2_000);
    expect(offer(100)).toEqual([0, 0, 0, 1]);
    pressure = null;
    offer(1_500);
    expect(offer(100)).toEqual([1, 1, 1, 1]);
  });
});
