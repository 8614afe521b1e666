// One operation (a decision, a peek or a refund) from the moment it joins a batch until it is
// settled: its promise, the abort listener on its caller's signal, and where it stands. An
// operation settled without Redis (it fell back, was aborted or rejected) keeps its state, so
// that a late answer from Redis can still be accounted for (batch.ts refunds a late admission).
import { offAbort, onAbort } from '../../core/shared-abort.js';

// Where a pending operation stands.
export const WAITING = 0;
export const ANSWERED = 1;
export const FELL_BACK_ALLOWED = 2;
/** Fell back to a denial, was aborted, or was rejected: the caller was not admitted. */
export const NOT_ADMITTED = 3;

/** One decision (or refund) waiting for its batch. */
export interface Pending {
  readonly key: string;
  readonly redisKey: string;
  readonly op: number;
  readonly cost: number;
  /** A reservation's or a settle's lease arguments (see lua/lease.lua); undefined for the others. */
  readonly lease: string | undefined;
  state: number;
  resolve: ((value: unknown) => void) | undefined;
  reject: ((error: unknown) => void) | undefined;
  signal: AbortSignal | undefined;
  onAbort: (() => void) | undefined;
}

/** A waiting operation `op` of `cost` units on `key` (stored in Redis under `redisKey`). */
export function newPending(key: string, redisKey: string, op: number, cost: number, lease?: string): Pending {
  return {
    key,
    redisKey,
    op,
    cost,
    lease,
    state: WAITING,
    resolve: undefined,
    reject: undefined,
    signal: undefined,
    onAbort: undefined,
  };
}

/** The promise its caller awaits, settled through `pending.resolve` and `pending.reject`. */
export function settledBy(pending: Pending): Promise<unknown> {
  return new Promise((resolve, reject) => {
    pending.resolve = resolve;
    pending.reject = reject;
  });
}

/** Rejects `pending` with `signal`'s reason when it aborts while `pending` still waits. */
export function watch(pending: Pending, signal: AbortSignal): void {
  pending.signal = signal;
  pending.onAbort = () => {
    if (pending.state !== WAITING) return;
    pending.state = NOT_ADMITTED;
    pending.reject!(signal.reason);
    release(pending);
  };
  // One shared listener per signal: many decisions on one request's signal add none each.
  onAbort(signal, pending.onAbort);
}

/** Drops what a settled operation held: its abort listener and its promise's functions. */
export function release(pending: Pending): void {
  if (pending.signal !== undefined) offAbort(pending.signal, pending.onAbort!);
  pending.signal = undefined;
  pending.onAbort = undefined;
  pending.resolve = undefined;
  pending.reject = undefined;
}
