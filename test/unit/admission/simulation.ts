// A discrete-event model of a dependency with a fixed capacity, for the admission tests: `workers`
// serve one request at a time for `serviceMs` ± `jitter` (uniform), requests beyond them wait in
// the dependency's own FIFO. Arrivals are Poisson, each with a class and a tenant. No timers: the
// model owns the clock the controller reads.
import { admissionController, type AdmissionController, type AdmissionControllerOptions, type AdmissionRejectReason, type Clock, type Permit } from '../../../src/index.js';
import type { PriorityLevel } from '../../../src/admission/priority.js';

/** A seeded PRNG (xorshift32), so every run of a test sees the same traffic. */
export function random(seed: number): () => number {
  let x = seed | 0 || 1;
  return () => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return (x >>> 0) / 4294967296;
  };
}

export interface Backend {
  workers: number;
  serviceMs: number;
  jitter: number;
}

export interface Phase {
  /** How long, in ms. */
  durationMs: number;
  /** Arrivals per ms. */
  rate: number;
  /** The dependency during this phase (defaults to the previous one's). */
  backend?: Backend;
  /** The class of an arrival, given a uniform draw. @default degraded */
  priority?: (u: number) => PriorityLevel;
  /** The tenant of an arrival, given a uniform draw. @default none */
  tenant?: (u: number) => string | undefined;
}

export interface Arrival {
  at: number;
  priority: PriorityLevel;
  tenant: string | undefined;
  /** The rejection reason, or undefined when admitted (in shadow mode, the would-reject reason). */
  rejected: AdmissionRejectReason | undefined;
  /** When admitted: the latency of its permit, in ms. */
  rttMs: number;
}

export interface Run {
  controller: AdmissionController;
  arrivals: Arrival[];
  /** The limit after each `sampleEveryMs`, as [time, limit]. */
  limits: [number, number][];
}

/** Runs the phases against a controller built with `options` (its clock is the model's). */
export function simulate(options: Omit<AdmissionControllerOptions, 'clock'>, phases: Phase[], seed = 1, sampleEveryMs = 100): Run {
  let now = 0;
  const clock: Clock = {
    now: () => now,
    setTimeout: () => {
      throw new Error('the model has no timers: use maxQueue 0');
    },
    clearTimeout: () => {},
  };
  const controller = admissionController({ ...options, clock });
  const rnd = random(seed);
  // Completion events, kept sorted by time (a binary-search insert: a few thousand at most).
  const done: { at: number; finish: () => void }[] = [];
  const schedule = (at: number, finish: () => void): void => {
    let lo = 0;
    let hi = done.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (done[mid]!.at <= at) lo = mid + 1;
      else hi = mid;
    }
    done.splice(lo, 0, { at, finish });
  };
  let backend = phases[0]!.backend!;
  let busy = 0;
  const waiting: (() => void)[] = [];
  const drain = (): void => {
    while (busy < backend.workers && waiting.length > 0) waiting.shift()!();
  };
  const serve = (onDone: () => void): void => {
    const start = (): void => {
      busy++;
      const ms = backend.serviceMs * (1 + backend.jitter * (2 * rnd() - 1));
      schedule(now + ms, () => {
        busy--;
        onDone();
        drain();
      });
    };
    if (busy < backend.workers) start();
    else waiting.push(start);
  };
  const arrivals: Arrival[] = [];
  const limits: [number, number][] = [];
  let nextSample = sampleEveryMs;
  let phaseStart = 0;
  for (const phase of phases) {
    backend = phase.backend ?? backend;
    drain();
    const end = phaseStart + phase.durationMs;
    let t = phaseStart - Math.log(1 - rnd()) / phase.rate;
    for (;;) {
      const at = Math.min(t, end);
      while (done.length > 0 && done[0]!.at <= at) {
        const event = done.shift()!;
        now = event.at;
        event.finish();
      }
      while (nextSample <= at) {
        limits.push([nextSample, controller.limit]);
        nextSample += sampleEveryMs;
      }
      if (t >= end) break;
      now = t;
      const priority = phase.priority?.(rnd()) ?? 2;
      const tenant = phase.tenant?.(rnd());
      const p = controller.tryAcquire({ priority, tenant });
      const arrival: Arrival = { at: now, priority, tenant, rejected: undefined, rttMs: NaN };
      arrivals.push(arrival);
      if ('reason' in p) {
        arrival.rejected = p.reason;
      } else {
        arrival.rejected = p.wouldReject;
        const permit: Permit = p;
        serve(() => {
          arrival.rttMs = now - permit.startMs;
          permit.release('success');
        });
      }
      t -= Math.log(1 - rnd()) / phase.rate;
    }
    phaseStart = end;
  }
  now = phaseStart;
  return { controller, arrivals, limits };
}

/** The share of `items` for which `test` holds. */
export function share<T>(items: readonly T[], test: (item: T) => boolean): number {
  return items.length === 0 ? 0 : items.filter(test).length / items.length;
}

/** The limit at time `atMs` of a run. */
export function limitAt(run: Run, atMs: number): number {
  let value = NaN;
  for (const [t, l] of run.limits) if (t <= atMs) value = l;
  return value;
}
