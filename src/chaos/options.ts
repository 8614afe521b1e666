// What the chaos policy and the HTTP fault-injection adapters share: the switch (`enabled`, `rate`,
// the random source) and the injected latency, validated the same way everywhere.
import { MAX_TIMER_MS, ratioOption, show } from '../core/validate.js';

/** A latency in ms, or a function giving one for each injection (a spread, say). */
export type LatencySource = number | (() => number);

/** The `enabled` option or property: a boolean, true when not given. */
export function enabledOption(owner: string, value: unknown): boolean {
  if (value === undefined) return true;
  if (typeof value !== 'boolean') throw new TypeError(`${owner}: option "enabled" must be a boolean, got ${show(value)}`);
  return value;
}

/**
 * The `rate` option or property: a ratio in (0, 1], required; 0 too when `zeroAllowed` (an HTTP
 * adapter whose faults come only on request, from a header).
 */
export function rateOption(owner: string, value: unknown, zeroAllowed = false): number {
  if (value === undefined) throw new TypeError(`${owner}: option "rate" must be a number, got undefined (the share of calls to inject, in (0, 1])`);
  if (zeroAllowed && value === 0) return 0;
  return ratioOption(owner, 'rate', value, 0);
}

/** The `random` option: a function giving numbers in [0, 1), `Math.random` when not given. */
export function randomOption(owner: string, value: unknown): () => number {
  if (value === undefined) return Math.random;
  if (typeof value !== 'function') throw new TypeError(`${owner}: option "random" must be a function returning a number in [0, 1), got ${show(value)}`);
  return value as () => number;
}

/** The `latencyMs` option: a duration (0 to 2^31 − 1), or a function checked at each injection. */
export function latencyOption(owner: string, value: unknown): LatencySource | undefined {
  if (value === undefined || typeof value === 'function') return value as LatencySource | undefined;
  return latencyValue(owner, value);
}

/** A latency a `latencyMs` function gave (or the option itself), or a TypeError / RangeError naming it. */
export function latencyValue(owner: string, value: unknown): number {
  if (typeof value !== 'number') throw new TypeError(`${owner}: option "latencyMs" must be a number of ms or a function returning one, got ${show(value)}`);
  if (!(value >= 0 && value <= MAX_TIMER_MS)) {
    throw new RangeError(`${owner}: option "latencyMs" must be from 0 to ${MAX_TIMER_MS} ms, got ${show(value)}`);
  }
  return value;
}

/** The latency of one injection: the number, or what the function gives (checked). Throws for a bad one. */
export function latencyOf(owner: string, source: LatencySource): number {
  return typeof source === 'number' ? source : latencyValue(owner, source());
}
