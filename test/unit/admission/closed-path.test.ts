import { describe, expect, it } from 'vitest';
import { ADMITTED, type AdmissionController, type AdmissionControllerOptions } from '../../../src/admission/controller.js';
import { admissionController, type AdmissionRejection, ManualClock, type Permit, type PermitOutcome } from '../../../src/index.js';
import type { PriorityLevel } from '../../../src/admission/priority.js';
import { random } from './simulation.js';

/** Everything a decision reads or writes, for comparing two controllers. */
function stateOf(c: AdmissionController): unknown {
  const s = c as unknown as Record<string, unknown>;
  return {
    running: s.running,
    limit: s.currentLimit,
    every: s.every,
    countdown: s.countdown,
    lastNow: s.lastNow,
    shedding: s.shedding,
    estimator: s.estimator,
  };
}

type Held = { level: PriorityLevel; permit: Permit | undefined };

/**
 * Drives two controllers with the same seeded traffic: `fast` tries the closed path first
 * (`admitUntimed`, as adaptiveConcurrency does) and falls back on `decideFor`; `full` always asks
 * `decideFor`. Their answers and every piece of state must stay the same.
 */
async function replay(seed: number, options: Omit<AdmissionControllerOptions, 'clock' | 'loadSignal'>, steps: number): Promise<number> {
  const next = random(seed);
  const clock = new ManualClock(1_000);
  let pressure = false;
  const loadSignal = { check: () => (pressure ? 'busy' : null) };
  const fast = admissionController({ ...options, clock, loadSignal });
  const full = admissionController({ ...options, clock, loadSignal });
  const heldFast: Held[] = [];
  const heldFull: Held[] = [];
  let closed = 0;
  for (let step = 0; step < steps; step++) {
    const r = next();
    if (r < 0.55) {
      // An arrival of a random class (mostly the default one), never with a tenant.
      const level = (next() < 0.7 ? 2 : Math.floor(next() * 4)) as PriorityLevel;
      let a: ReturnType<AdmissionController['decideFor']>;
      if (fast.admitUntimed(level)) {
        a = ADMITTED;
        closed++;
      } else {
        a = fast.decideFor(level, undefined, false, undefined, true);
      }
      const b = full.decideFor(level, undefined, false, undefined, true);
      if (a === ADMITTED || b === ADMITTED) {
        expect(a).toBe(b);
        heldFast.push({ level, permit: undefined });
        heldFull.push({ level, permit: undefined });
      } else {
        // Nothing queues (maxQueue 0): a permit or a rejection.
        const x = a as Permit | AdmissionRejection;
        const y = b as Permit | AdmissionRejection;
        expect('reason' in x ? x.reason : 'permit').toBe('reason' in y ? y.reason : 'permit');
        if (!('reason' in x) && !('reason' in y)) {
          heldFast.push({ level, permit: x });
          heldFull.push({ level, permit: y });
        }
      }
    } else if (r < 0.95 && heldFast.length > 0) {
      // A release, of a random held permit, with a random outcome.
      const i = Math.floor(next() * heldFast.length);
      const u = next();
      const outcome: PermitOutcome = u < 0.8 ? 'success' : u < 0.9 ? 'dropped' : 'ignore';
      const [x] = heldFast.splice(i, 1);
      const [y] = heldFull.splice(i, 1);
      if (x!.permit === undefined) fast.exit(x!.level, outcome);
      else x!.permit.release(outcome);
      if (y!.permit === undefined) full.exit(y!.level, outcome);
      else y!.permit.release(outcome);
    } else {
      // Time passes (mostly a little), and now and then the load signal flips.
      const v = next();
      await clock.advance(v < 0.8 ? Math.floor(next() * 3) : v < 0.97 ? 30 : 150);
      if (next() < 0.1) pressure = !pressure;
    }
    expect(stateOf(fast)).toEqual(stateOf(full));
  }
  return closed;
}

describe('adaptiveConcurrency closed path (admitUntimed)', () => {
  it('admits untimed below the limit without reading the clock, and leaves a timed arrival to decideFor', () => {
    let reads = 0;
    const clock = new ManualClock(1_000);
    const counting = { now: () => (reads++, clock.now()), setTimeout: clock.setTimeout.bind(clock), clearTimeout: clock.clearTimeout.bind(clock) };
    const c = admissionController({ limit: 10, clock: counting as unknown as ManualClock });
    // The first arrival is timed: the closed path declines it and changes nothing.
    expect(c.admitUntimed(2)).toBe(false);
    expect(c.inFlight).toBe(0);
    expect(reads).toBe(0);
  });

  for (const [name, options] of [
    ['gradient2 (the default)', {}],
    ['a fixed limit of 8', { limit: 8 }],
    ['a fixed limit of 3, no fairness', { limit: 3, fairness: false }],
  ] as const) {
    it(`makes the decisions and state changes decideFor makes, over seeded traffic: ${name}`, async () => {
      let closed = 0;
      for (let seed = 1; seed <= 6; seed++) closed += await replay(seed, options, 3_000);
      // The comparison means something only if the closed path was taken.
      expect(closed).toBeGreaterThan(500);
    });
  }
});
