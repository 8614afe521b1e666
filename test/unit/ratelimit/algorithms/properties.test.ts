// Randomized sequences of 10 000 operations per configuration, replayable from their seed. Each
// step checks the decision rules every algorithm shares, and the algorithm's admissions against
// an independent reference model of what it promises.
import { describe, expect, it } from 'vitest';
import type { RateLimitDecision } from '../../../../src/core/errors.js';
import type { AlgorithmState, RateLimitAlgorithm } from '../../../../src/ratelimit/algorithm.js';
import { fixedWindow, gcra, type GcraAlgorithm, slidingWindow } from '../../../../src/ratelimit/algorithms/index.js';
import { between, expectSane, seededRandom } from './support.js';

const OPERATIONS = 10_000;

/** What an algorithm promises, computed the plain way from the admissions it made. */
interface Reference {
  /** Whether `cost` units at `t` should be admitted. */
  admits(t: number, cost: number): boolean;
  /** Records an admission and checks the promise over every interval ending now. */
  record(t: number, cost: number): void;
}

/**
 * GCRA as a token bucket: `level` µs of capacity, refilling one µs per µs up to tau = burst × T.
 * A different formulation from the algorithm's (which stores a theoretical arrival time), so the
 * two must agree on every decision. It also checks the promise itself: over any interval, the
 * units admitted never exceed burst + elapsed / T.
 */
function gcraReference(a: GcraAlgorithm): Reference {
  const T = a.emissionIntervalUs;
  const tau = a.burst * T;
  let level = tau;
  let last = -Infinity;
  let admitted = 0; // units admitted so far
  let lowest = Infinity; // min over past admissions i of (units before i) × T − t_i
  const levelAt = (now: number) => Math.min(tau, level + (now - last));
  return {
    admits(t, cost) {
      return cost * T <= levelAt(Math.round(t * 1000));
    },
    record(t, cost) {
      const now = Math.round(t * 1000);
      level = levelAt(now) - cost * T;
      last = now;
      lowest = Math.min(lowest, admitted * T - now);
      admitted += cost;
      // For the interval from admission i to this one: (admitted − before_i) × T ≤ tau + (now − t_i).
      if (admitted * T - now - lowest > tau) expect.fail(`GCRA admitted more than burst + elapsed / T at ${t}`);
    },
  };
}

/** Fixed windows: a count per window, never above the limit. */
function fixedReference(limit: number, W: number): Reference {
  const counts = new Map<number, number>();
  const countAt = (t: number) => counts.get(Math.floor(Math.floor(t) / W)) ?? 0;
  return {
    admits(t, cost) {
      return countAt(t) + cost <= limit;
    },
    record(t, cost) {
      const w = Math.floor(Math.floor(t) / W);
      counts.set(w, countAt(t) + cost);
      if (counts.get(w)! > limit) expect.fail(`fixed window ${w} admitted ${counts.get(w)} > ${limit}`);
    },
  };
}

/** Sliding window: the weighted estimate of the admissions, never above the limit. */
function slidingReference(limit: number, W: number): Reference {
  const counts = new Map<number, number>();
  const estimate = (t: number) => {
    const ms = Math.floor(t);
    const w = Math.floor(ms / W);
    const elapsed = ms - w * W;
    // Scaled by W so it stays a whole number.
    return (counts.get(w - 1) ?? 0) * (W - elapsed) + (counts.get(w) ?? 0) * W;
  };
  return {
    admits(t, cost) {
      return estimate(t) + cost * W <= limit * W;
    },
    record(t, cost) {
      const w = Math.floor(Math.floor(t) / W);
      counts.set(w, (counts.get(w) ?? 0) + cost);
      if (estimate(t) > limit * W) expect.fail(`sliding estimate ${estimate(t) / W} > ${limit} at ${t}`);
    },
  };
}

interface Case {
  name: string;
  algorithm: RateLimitAlgorithm;
  /** The largest cost the algorithm takes. */
  maxCost: number;
  /** A typical gap between admissions, in ms, and the window (or bucket refill time). */
  gapMs: number;
  spanMs: number;
  reference: () => Reference;
}

function gcraCase(options: Parameters<typeof gcra>[0]): Case {
  const a = gcra(options);
  return {
    name: `gcra(${JSON.stringify(options)})`,
    algorithm: a,
    maxCost: a.burst,
    gapMs: Math.max(1, Math.round(a.emissionIntervalUs / 1000)),
    spanMs: Math.ceil((a.burst * a.emissionIntervalUs) / 1000),
    reference: () => gcraReference(a),
  };
}

function windowCase(kind: 'fixed' | 'sliding', limit: number, windowMs: number): Case {
  const make = kind === 'fixed' ? fixedWindow : slidingWindow;
  return {
    name: `${kind}Window({ limit: ${limit}, windowMs: ${windowMs} })`,
    algorithm: make({ limit, windowMs }),
    maxCost: limit,
    gapMs: Math.max(1, Math.round(windowMs / limit)),
    spanMs: windowMs,
    reference: () => (kind === 'fixed' ? fixedReference(limit, windowMs) : slidingReference(limit, windowMs)),
  };
}

const cases: Case[] = [
  gcraCase({ limit: 10, periodMs: 1_000 }),
  gcraCase({ limit: 3, periodMs: 1_000, burst: 5 }),
  gcraCase({ limit: 7, periodMs: 60_000, burst: 2 }),
  gcraCase({ limit: 1_000, periodMs: 1_000, burst: 50 }),
  gcraCase({ limit: 1_000_000, periodMs: 2 ** 31 - 1, burst: 3 }),
  windowCase('fixed', 10, 1_000),
  windowCase('fixed', 3, 7),
  windowCase('fixed', 1_000, 60_000),
  windowCase('sliding', 10, 1_000),
  windowCase('sliding', 3, 7),
  windowCase('sliding', 100, 10),
  windowCase('sliding', 1_000, 60_000),
];

/** A time step: often none, often about one refill gap, sometimes windows long. */
function step(random: () => number, c: Case): number {
  const r = random();
  let ms: number;
  if (r < 0.35) ms = 0;
  else if (r < 0.75) ms = between(random, 1, 2 * c.gapMs);
  else if (r < 0.95) ms = between(random, 1, c.spanMs);
  else ms = between(random, c.spanMs, 3 * c.spanMs);
  // Sometimes a fraction of a ms (in whole µs), as a high-resolution clock would give.
  if (random() < 0.1) ms += between(random, 0, 999) / 1000;
  return ms;
}

function randomCost(random: () => number, max: number): number {
  return random() < 0.6 ? 1 : between(random, 1, max);
}

/** The state a store would still hold at `t`, after checking that a dropped state no longer mattered. */
function live(a: RateLimitAlgorithm, state: AlgorithmState | undefined, expiresAt: number, t: number, maxCost: number) {
  if (state === undefined || expiresAt > t) return state;
  const held = a.peek(state, t, maxCost);
  const fresh = a.peek(undefined, t, maxCost);
  if (held.allowed !== fresh.allowed || held.remaining !== fresh.remaining || held.resetMs !== fresh.resetMs) {
    expect.fail(`state ${JSON.stringify(state)} still mattered after its ttl, at ${t}`);
  }
  return undefined;
}

/** Same decision, field by field (cheaper than toEqual in a 10 000-step loop). */
function same(x: RateLimitDecision, y: RateLimitDecision): boolean {
  return (
    x.allowed === y.allowed &&
    x.limit === y.limit &&
    x.remaining === y.remaining &&
    x.resetMs === y.resetMs &&
    x.retryAfterMs === y.retryAfterMs
  );
}

/** Consumes `cost` at `t` and checks every rule a single decision must follow. */
function checkedConsume(c: Case, state: AlgorithmState | undefined, t: number, cost: number) {
  const a = c.algorithm;
  const at = `at ${t} with cost ${cost} and state ${JSON.stringify(state)}`;
  const before = state === undefined ? '' : state.join();
  const peeked = a.peek(state, t, cost);
  const outcome = a.consume(state, t, cost);
  const d = outcome.decision;
  expectSane(d);
  if (!same(d, peeked)) expect.fail(`peek ${JSON.stringify(peeked)} but consume ${JSON.stringify(d)} ${at}`);
  if ((state === undefined ? '' : state.join()) !== before) expect.fail(`the state was mutated ${at}`);
  if (!(outcome.ttlMs > 0 && Number.isFinite(outcome.ttlMs))) expect.fail(`ttlMs ${outcome.ttlMs} ${at}`);
  if (d.allowed) {
    // `remaining` is exactly how many more units fit right now.
    if (d.remaining >= 1 && !a.peek(outcome.state, t, Math.min(d.remaining, c.maxCost)).allowed) {
      expect.fail(`remaining ${d.remaining} do not fit ${at}`);
    }
    if (d.remaining + 1 <= c.maxCost && a.peek(outcome.state, t, d.remaining + 1).allowed) {
      expect.fail(`more than remaining ${d.remaining} fit ${at}`);
    }
  } else {
    if (outcome.state !== state) expect.fail(`a denial changed the state ${at}`);
    // `retryAfterMs` is exact: then it fits, one ms earlier it does not.
    if (!a.peek(state, t + d.retryAfterMs, cost).allowed) expect.fail(`denied after retryAfterMs ${d.retryAfterMs} ${at}`);
    if (a.peek(state, t + d.retryAfterMs - 1, cost).allowed) expect.fail(`allowed before retryAfterMs ${d.retryAfterMs} ${at}`);
  }
  return outcome;
}

describe.each(cases)('$name over 10 000 random operations', (c) => {
  it.each([1, 2])('keeps every decision sane and never admits more than it promises (seed %i)', (seed) => {
    const random = seededRandom(seed * 7919 + c.name.length);
    const a = c.algorithm;
    const reference = c.reference();
    let t = seed === 1 ? 0 : 1_700_000_000_000;
    let state: AlgorithmState | undefined;
    let expiresAt = -Infinity;
    let allowed = 0;
    for (let i = 0; i < OPERATIONS; i++) {
      t += step(random, c);
      state = live(a, state, expiresAt, t, c.maxCost);
      const cost = randomCost(random, c.maxCost);
      const expected = reference.admits(t, cost);
      const outcome = checkedConsume(c, state, t, cost);
      if (outcome.decision.allowed !== expected) {
        const should = expected ? 'should' : 'should not';
        expect.fail(`step ${i} at ${t}: cost ${cost} ${should} be admitted (state ${JSON.stringify(state)})`);
      }
      if (outcome.decision.allowed) {
        reference.record(t, cost);
        allowed++;
        state = outcome.state;
        expiresAt = t + outcome.ttlMs;
      }
    }
    // The sequence exercised both answers.
    expect(allowed).toBeGreaterThan(OPERATIONS / 20);
    expect(allowed).toBeLessThan(OPERATIONS);
  });

  it('with refunds mixed in, stays sane and never gives back more than full capacity', () => {
    const random = seededRandom(4242 + c.name.length);
    const a = c.algorithm;
    let t = 1_000;
    let state: AlgorithmState | undefined;
    let expiresAt = -Infinity;
    for (let i = 0; i < OPERATIONS; i++) {
      t += step(random, c);
      state = live(a, state, expiresAt, t, c.maxCost);
      const cost = randomCost(random, c.maxCost);
      if (random() < 0.2) {
        const outcome = a.refund(state, t, cost);
        if (!(outcome.ttlMs > 0 && Number.isFinite(outcome.ttlMs))) expect.fail(`refund ttlMs ${outcome.ttlMs}`);
        for (const n of outcome.state ?? []) if (!Number.isFinite(n)) expect.fail(`refund state ${outcome.state}`);
        if (a.kind === 'gcra') {
          // A kept theoretical arrival time is still ahead: something is still counted.
          if (outcome.state !== undefined && !(outcome.state[0]! > Math.round(t * 1000))) expect.fail(`stale tat kept`);
        } else {
          for (const n of outcome.state?.slice(1) ?? []) if (n < 0) expect.fail(`negative count ${outcome.state}`);
        }
        state = outcome.state;
        expiresAt = t + outcome.ttlMs;
        // At most full capacity: after taking one unit, no more than limit − 1 remain.
        const one = a.peek(state, t, 1);
        expectSane(one);
        expectSane(a.peek(state, t, c.maxCost));
        if (one.remaining > one.limit - 1) expect.fail(`refund beyond capacity: ${JSON.stringify(state)}`);
      } else {
        const outcome = checkedConsume(c, state, t, cost);
        state = outcome.state;
        expiresAt = t + outcome.ttlMs;
      }
    }
  });
});
