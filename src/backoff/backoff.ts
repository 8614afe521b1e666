import { checkOptions, durationOption, enumOption, functionOption, numberOption, show } from '../core/validate.js';

/**
 * A delay schedule. Used by `retry` (delay before attempt n + 1) and by `circuitBreaker`'s
 * `halfOpenAfterMs` (how long the n-th successive open lasts).
 * @example
 * retry({ backoff: exponential({ initialMs: 50, maxMs: 5_000 }) });
 */
export interface Backoff {
  /** The smallest delay the schedule starts from, in ms (checked against `maxDelayMs`). */
  readonly initialMs: number;
  /**
   * The longest delay `next` returns, in ms, when the schedule has one. A breaker caps its open
   * periods at it, restored ones included. @default 2^31 − 1 (no cap of its own)
   */
  readonly maxMs?: number;
  /**
   * The delay after the `n`-th failure (n starts at 1), given the previous delay it returned
   * (`initialMs` before the first).
   */
  next(n: number, previousMs: number): number;
}

/**
 * The same delay every time.
 * @example
 * retry({ backoff: constant(200) });
 */
export function constant(ms: number): Backoff {
  if (ms === undefined) throw new TypeError('constant: option "ms" must be a number, got undefined');
  const delay = durationOption('constant', 'ms', ms, 0);
  return { initialMs: delay, maxMs: delay, next: () => delay };
}

/** Options of {@link exponential}. */
export interface ExponentialOptions {
  /** First delay before jitter, in ms. @default 100 */
  readonly initialMs?: number;
  /** Largest delay, in ms. @default 30000 */
  readonly maxMs?: number;
  /** Growth per attempt (> 1). @default 2 */
  readonly factor?: number;
  /**
   * `'full'`: uniform in [0, the exponential delay]; `'decorrelated'`: uniform in
   * [initialMs, previous × (factor + 1)] (AWS's "decorrelated jitter"); `'none'`: no randomness.
   * @default 'full'
   */
  readonly jitter?: 'full' | 'decorrelated' | 'none';
  /** Source of randomness in [0, 1), for tests. @default Math.random */
  readonly random?: () => number;
}

const exponentialKeys = ['initialMs', 'maxMs', 'factor', 'jitter', 'random'] as const;

/**
 * Delays that grow by `factor` per attempt up to `maxMs`, with jitter so that many clients do
 * not retry in step.
 * @example
 * retry({ maxAttempts: 5, backoff: exponential({ initialMs: 100, maxMs: 10_000, jitter: 'full' }) });
 */
export function exponential(options?: ExponentialOptions): Backoff {
  const o = checkOptions('exponential', options, exponentialKeys);
  // Zero cannot grow: every delay would be 0 (and 0 × Infinity is NaN once factor^n overflows).
  const initialMs = durationOption('exponential', 'initialMs', o.initialMs, 100, { exclusiveMin: true });
  const maxMs = durationOption('exponential', 'maxMs', o.maxMs, Math.max(30_000, initialMs));
  const factor = numberOption('exponential', 'factor', o.factor, 2, { min: 1, exclusiveMin: true });
  const jitter = enumOption('exponential', 'jitter', o.jitter, ['full', 'decorrelated', 'none'], 'full');
  const random = functionOption('exponential', 'random', o.random, Math.random);
  if (maxMs < initialMs) {
    throw new RangeError(`exponential: option "maxMs" (${show(maxMs)}) must not be below "initialMs" (${show(initialMs)})`);
  }
  const ceiling = (n: number): number => Math.min(maxMs, initialMs * factor ** (n - 1));
  switch (jitter) {
    case 'none':
      return { initialMs, maxMs, next: (n) => ceiling(n) };
    case 'full':
      return { initialMs, maxMs, next: (n) => random() * ceiling(n) };
    case 'decorrelated':
      return {
        initialMs,
        maxMs,
        next: (_n, previousMs) => {
          const upper = Math.max(initialMs, previousMs) * (factor + 1);
          return Math.min(maxMs, initialMs + random() * (upper - initialMs));
        },
      };
  }
}

/**
 * Asks a backoff for its `n`-th delay and makes the answer safe to wait on: capped at `maxMs`;
 * NaN (a hand-written backoff gone wrong) replaced by the backoff's `initialMs`; below 0 made 0.
 */
export function nextDelay(backoff: Backoff, n: number, previousMs: number, maxMs: number): number {
  const ms = backoff.next(n, previousMs);
  if (typeof ms !== 'number' || Number.isNaN(ms)) return Math.min(backoff.initialMs, maxMs);
  return ms < 0 ? 0 : Math.min(ms, maxMs);
}

/** True for objects shaped like a {@link Backoff}. */
export function isBackoff(value: unknown): value is Backoff {
  return (
    typeof value === 'object' &&
    value !== null &&
    typeof (value as Backoff).next === 'function' &&
    typeof (value as Backoff).initialMs === 'number' &&
    Number.isFinite((value as Backoff).initialMs) &&
    (value as Backoff).initialMs >= 0
  );
}
