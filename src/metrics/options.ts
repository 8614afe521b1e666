import type { Registry, RegistryContentType } from 'prom-client';
import type { CircuitState } from '../core/diagnostics.js';
import { show } from '../core/validate.js';

// registerMetrics's options, checked, and the label helpers its handlers share: kept apart from
// register.ts, which wires the metrics to the channels.

const OWNER = 'registerMetrics';

/**
 * What the breaker-state gauge reads from a breaker at scrape time: its name and its state. A
 * `CircuitBreakerPolicy` (from `circuitBreaker()`, or `createFetch(...).circuitBreaker(origin)`)
 * has both, and so has an opossum breaker wrapped by `fromOpossum` from `bulwark/opossum`. A
 * state other than `'closed'`, `'open'`, `'half-open'` or `'isolated'` (a wrapped opossum
 * breaker's `'shutdown'`) leaves the gauge at the last state it showed.
 * @example
 * const observed: ObservedBreaker = circuitBreaker({ name: 'payments' });
 */
export interface ObservedBreaker {
  readonly name: string;
  readonly state: CircuitState | (string & {});
  /** `'shadow'` puts `mode="shadow"` on the breaker's state series (bulwark's breakers have it). */
  readonly mode?: string;
}

/** Histogram buckets for calls to other services: 1 ms to 30 s. */
export const DEFAULT_BUCKETS: readonly number[] = Object.freeze([
  0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30,
]);

/**
 * Labels for a message's `mode`: `{ mode: 'shadow' }` for a policy in shadow mode, and nothing for
 * an enforcing one, so that the series of enforcing policies are exactly those of the releases
 * before shadow mode (dashboards and recording rules keep matching them); `mode!="shadow"`
 * selects only what was enforced.
 */
export function modeLabel(mode: unknown): { mode?: string } {
  return mode === 'shadow' ? { mode: 'shadow' } : {};
}

/** A label value from a channel message: the string itself, or `'unknown'` for anything else. */
export function label(value: unknown): string {
  return typeof value === 'string' && value.length > 0 ? value : 'unknown';
}

export function isRegistry(value: unknown): value is Registry<RegistryContentType> {
  if (typeof value !== 'object' || value === null) return false;
  const r = value as Record<string, unknown>;
  return (
    typeof r.registerMetric === 'function' &&
    typeof r.getSingleMetric === 'function' &&
    typeof r.removeSingleMetric === 'function' &&
    typeof r.metrics === 'function'
  );
}

export function prefixOption(value: unknown): string {
  if (value === undefined) return 'bulwark_';
  if (typeof value !== 'string') {
    throw new TypeError(`${OWNER}: option "prefix" must be a string, got ${show(value)}`);
  }
  // Colons are left to recording rules, as Prometheus' naming guide asks of exporters.
  if (value !== '' && !/^[A-Za-z_][A-Za-z0-9_]*$/.test(value)) {
    throw new RangeError(
      `${OWNER}: option "prefix" must hold only letters, digits and underscores and not start with a digit, got ${show(value)}`,
    );
  }
  return value;
}

export function bucketsOption(value: unknown): number[] {
  if (value === undefined) return [...DEFAULT_BUCKETS];
  if (!Array.isArray(value)) {
    throw new TypeError(`${OWNER}: option "durationBuckets" must be an array of seconds, got ${show(value)}`);
  }
  if (value.length === 0) {
    throw new RangeError(`${OWNER}: option "durationBuckets" must hold at least one bucket, got []`);
  }
  let previous = 0;
  for (let i = 0; i < value.length; i++) {
    const b: unknown = value[i];
    if (typeof b !== 'number') {
      throw new TypeError(`${OWNER}: option "durationBuckets[${i}]" must be a number of seconds, got ${show(b)}`);
    }
    if (!Number.isFinite(b) || b <= 0) {
      throw new RangeError(`${OWNER}: option "durationBuckets[${i}]" must be a finite number of seconds above 0, got ${show(b)}`);
    }
    if (b <= previous) {
      throw new RangeError(
        `${OWNER}: option "durationBuckets" must be strictly increasing, got ${show(b)} after ${show(previous)} at index ${i}`,
      );
    }
    previous = b;
  }
  return [...(value as number[])];
}

export function breakersOption(value: unknown): Iterable<ObservedBreaker> | undefined {
  if (value === undefined) return undefined;
  if (
    typeof value !== 'object' ||
    value === null ||
    typeof (value as { [Symbol.iterator]?: unknown })[Symbol.iterator] !== 'function'
  ) {
    throw new TypeError(`${OWNER}: option "circuitBreakers" must be an iterable of circuit breakers, got ${show(value)}`);
  }
  const iterable = value as Iterable<unknown>;
  // A one-shot iterator (a generator, `map.values()`) would be empty at the second scrape: keep
  // what it yields now. A collection (array, Set) is kept as given and read again at each scrape.
  const oneShot = (iterable as { [Symbol.iterator](): unknown })[Symbol.iterator]() === iterable;
  const items = [...iterable];
  const names = new Set<string>();
  items.forEach((item, i) => {
    const b = item as Partial<ObservedBreaker> | null;
    if (typeof b !== 'object' || b === null || typeof b.name !== 'string' || !('state' in b)) {
      throw new TypeError(
        `${OWNER}: option "circuitBreakers" must hold circuit breakers (objects with "name" and "state"), got ${show(item)} at index ${i}`,
      );
    }
    if (names.has(b.name)) {
      throw new TypeError(
        `${OWNER}: option "circuitBreakers" holds two breakers named ${show(b.name)}: give each breaker its own "name"`,
      );
    }
    names.add(b.name);
  });
  return oneShot ? (items as ObservedBreaker[]) : (iterable as Iterable<ObservedBreaker>);
}
