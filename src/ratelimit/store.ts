import type { RateLimitDecision } from '../core/errors.js';
import type { RateLimitAlgorithm } from './algorithm.js';
import type { SettleStatus, StoreLease, StoreReservation } from './reservation.js';

/** A decision, and which store made it (`'memory'`, `'redis'`, or `'local'` during a Redis outage). */
export interface LimiterDecision extends RateLimitDecision {
  readonly store: string;
}

/**
 * What decisions do while a remote store cannot answer: `'local'` decides with an in-memory
 * store, `'fail-open'` admits, `'fail-closed'` denies (with `store: 'fail-closed'` and a short
 * `retryAfterMs`).
 * @example
 * const monthly = quota({ limit: 10_000, period: 'month', store: redisStore(client), onStoreError: 'fail-open' });
 */
export type StoreErrorMode = 'fail-open' | 'fail-closed' | 'local';

/** Every {@link StoreErrorMode}, for the options that take one. @internal */
export const storeErrorModes: readonly StoreErrorMode[] = ['fail-open', 'fail-closed', 'local'];

/** One limit of a compound call (compound.ts), as a store runs it: its store key, algorithm, name and cost. */
export interface CompoundOperation {
  readonly key: string;
  readonly algorithm: RateLimitAlgorithm;
  readonly name: string;
  readonly cost: number;
}

/** A compound call's answer: every limit's decision, and the first that denied (1-based; 0: none). */
export interface CompoundAnswer {
  readonly decisions: LimiterDecision[];
  readonly denied: number;
}

/**
 * Where limiter state lives. A store applies an algorithm's pure functions to the state it keeps
 * per key; the memory store answers synchronously, a remote one with a promise.
 */
export interface RateLimitStore {
  /** Reported in every decision this store makes. */
  readonly name: string;
  /**
   * Takes `cost` units for `key`; a remote store stops waiting when `signal` aborts. A limiter
   * passes its own `onStoreError` (when it has one), which a remote store follows instead of its
   * own setting; a store that cannot fail ignores it.
   */
  consume(
    key: string,
    algorithm: RateLimitAlgorithm,
    cost: number,
    signal?: AbortSignal,
    onStoreError?: StoreErrorMode,
  ): LimiterDecision | Promise<LimiterDecision>;
  peek(
    key: string,
    algorithm: RateLimitAlgorithm,
    cost: number,
    onStoreError?: StoreErrorMode,
  ): LimiterDecision | Promise<LimiterDecision>;
  refund(key: string, algorithm: RateLimitAlgorithm, cost: number): void | Promise<void>;
  reset(key: string): void | Promise<void>;
  /**
   * Takes `cost` units for `key` as `consume` does and, when admitted, records a lease on them
   * for `leaseMs`: units not settled by then go back to the key. Optional: a store without it
   * cannot hold reservations (`reserve` on its limiters throws).
   */
  reserve?(
    key: string,
    algorithm: RateLimitAlgorithm,
    cost: number,
    leaseMs: number,
    signal?: AbortSignal,
    onStoreError?: StoreErrorMode,
  ): StoreReservation | Promise<StoreReservation>;
  /**
   * Ends `lease` (made by `reserve` on `key`) at `actual` units: gives back the difference when
   * `actual` is below the lease's units, charges it (past the limit if need be, at most
   * `maxCharge`) when above; a lease that has run out has already given its units back, so the
   * whole `actual` is charged. Required with `reserve`.
   */
  settle?(key: string, algorithm: RateLimitAlgorithm, lease: StoreLease, actual: number, maxCharge: number): SettleStatus | Promise<SettleStatus>;
  /**
   * Decides every limit of a compound call at once under the hash tag `tag`: charges all of them
   * when all admit, none otherwise (none either with `peekOnly`). Optional: a remote store
   * without it cannot hold compound limits (the memory store decides them in compound.ts).
   */
  compound?(tag: string, limits: readonly CompoundOperation[], onStoreError: StoreErrorMode | undefined, peekOnly?: boolean): Promise<CompoundAnswer>;
  /** Sets (undefined: clears) the algorithm of the limit named `policy` for compound calls under `tag`. Required with `compound`. */
  setCompoundLimit?(tag: string, policy: string, algorithm: RateLimitAlgorithm | undefined): Promise<void>;
}
