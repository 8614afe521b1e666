import { countOption, durationOption, show } from '../../core/validate.js';
import type { RateLimitDecision } from '../../core/errors.js';
import type { RateLimitAlgorithm } from '../algorithm.js';
import { type FastConsume, fastConsume } from '../fast-path.js';
import type { LimiterDecision } from '../store.js';

/**
 * Largest clock reading the algorithms accept, in ms (2^52 µs, about the year 2112). It keeps
 * every time they compute, in ms or in µs, a whole number below 2^53, where doubles (in
 * JavaScript and in Redis Lua alike) are exact.
 */
export const MAX_NOW_MS = 2 ** 52 / 1000;

/** Throws unless `nowMs` is a finite clock reading within ±{@link MAX_NOW_MS}. */
export function checkNow(owner: string, nowMs: number): void {
  // One comparison pair also rejects NaN; a non-number fails it too (it is a store's bug).
  if (!(nowMs >= -MAX_NOW_MS && nowMs <= MAX_NOW_MS)) {
    throw new RangeError(`${owner}: "nowMs" must be a finite time in ms within ±${MAX_NOW_MS}, got ${show(nowMs)}`);
  }
}

/**
 * Throws unless `cost` is a whole number from 1 to `max` (the most the algorithm could ever
 * admit at once: anything larger would be denied forever, with no honest `retryAfterMs`).
 */
export function checkCost(owner: string, cost: number, max: number): void {
  if (typeof cost !== 'number') {
    throw new TypeError(`${owner}: "cost" must be a number, got ${show(cost)}`);
  }
  if (!Number.isInteger(cost) || cost < 1 || cost > max) {
    throw new RangeError(`${owner}: "cost" must be a whole number from 1 to ${max}, got ${show(cost)}`);
  }
}

/**
 * Checks a refund's `cost` (a whole number of at least 1) and clamps it to `max`: giving back more
 * than the algorithm can ever hold only brings the key to full capacity, so it is not an error.
 */
export function refundUnits(owner: string, cost: number, max: number): number {
  if (typeof cost !== 'number') {
    throw new TypeError(`${owner}: "cost" must be a number, got ${show(cost)}`);
  }
  if (!Number.isInteger(cost) || cost < 1) {
    throw new RangeError(`${owner}: "cost" must be a whole number of at least 1, got ${show(cost)}`);
  }
  return cost < max ? cost : max;
}

/** A required whole-number option (`countOption` without a default). */
export function requiredCount(owner: string, name: string, value: unknown): number {
  if (value === undefined) {
    throw new TypeError(`${owner}: option "${name}" is required (a whole number of at least 1), got undefined`);
  }
  return countOption(owner, name, value, 0);
}

/** A required duration in ms, greater than 0 and at most 2^31 − 1. */
export function requiredDuration(owner: string, name: string, value: unknown): number {
  if (value === undefined) {
    throw new TypeError(`${owner}: option "${name}" is required (a duration in ms), got undefined`);
  }
  return durationOption(owner, name, value, 0, { min: 0, exclusiveMin: true });
}

/**
 * A required window length: a duration that is also a whole number of ms, so window starts are
 * whole numbers on a whole-ms clock (and the Lua scripts can align them with `%` exactly).
 */
export function requiredWindow(owner: string, name: string, value: unknown): number {
  const ms = requiredDuration(owner, name, value);
  if (!Number.isInteger(ms)) {
    throw new RangeError(`${owner}: option "${name}" must be a whole number of ms, got ${show(value)}`);
  }
  return ms;
}

/** Start of the window of length `windowMs` holding `t` (windows aligned to multiples of it). */
export function windowStart(t: number, windowMs: number): number {
  // Floored modulo, as Lua's `%` computes it, so negative times align the same way.
  const r = t % windowMs;
  return r < 0 ? t - r - windowMs : t - r;
}

/** Attaches `fast` to `algorithm` (non-enumerable: see fast-path.ts) and returns `algorithm`. */
export function withFastConsume<A extends RateLimitAlgorithm>(algorithm: A, fast: FastConsume): A {
  settleDecisionShapes();
  Object.defineProperty(algorithm, fastConsume, { value: fast, enumerable: false, writable: false, configurable: false });
  return algorithm;
}

/*
 * Every decision the algorithms return is built by one of the two functions below: one object
 * literal per shape. V8 gives same-shaped literals one hidden class, and settles each number field
 * as small integers until a larger or fractional number (a `remaining` of 2e9, say) is stored in
 * it; the class is then replaced, but code already optimized with the old one may go on building
 * objects on it, each migrated when first used: measured at 5–10× the cost of a whole decision
 * (a gcra limiter next to a fixedWindow one with a large limit). So, before any algorithm decides,
 * one throwaway object of each shape is built with non-numbers in those fields, which settles them
 * as "any value" for good: nothing can change the class afterwards, and small integers are still
 * stored as they are, unboxed. Other code building the same shapes (stores, quotas) is better off
 * calling these functions too.
 */

let shapesSettled = false;

function settleDecisionShapes(): void {
  if (shapesSettled) return;
  const any = null as unknown as number;
  // The result is kept, so that no bundler drops the calls as unused.
  shapesSettled =
    decisionOf(false, any, any, any, any).limit === limiterDecisionOf(false, any, any, any, any, '').limit;
}

/** A decision, as every algorithm returns it. */
export function decisionOf(
  allowed: boolean,
  limit: number,
  remaining: number,
  resetMs: number,
  retryAfterMs: number,
): RateLimitDecision {
  return { allowed, limit, remaining, resetMs, retryAfterMs };
}

/** A decision with the store that made it, in the property order `{ ...decision, store }` gives. */
export function limiterDecisionOf(
  allowed: boolean,
  limit: number,
  remaining: number,
  resetMs: number,
  retryAfterMs: number,
  store: string,
): LimiterDecision {
  return { allowed, limit, remaining, resetMs, retryAfterMs, store };
}
