import { countOption, durationOption, show } from '../../core/validate.js';

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
