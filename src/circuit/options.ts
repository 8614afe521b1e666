// What the circuit breaker's constructor checks and derives from its options: the known keys, the
// `breaker` strategy and its tracker, the `halfOpenAfterMs` schedule, and an `initialState`
// snapshot. Kept out of circuit-breaker.ts so that file holds the state machine alone.
import { isBackoff, nextDelay } from '../backoff/backoff.js';
import type { CircuitState } from '../core/diagnostics.js';
import { isAbortError } from '../core/errors.js';
import { durationOption, MAX_TIMER_MS, show } from '../core/validate.js';
import { consecutive, type BreakerStrategy, type FailureTracker, isBreakerStrategy, safeTracker } from './strategies.js';
import type { CircuitBreakerSnapshot } from './types.js';

export const optionKeys = [
  'breaker',
  'halfOpenAfterMs',
  'halfOpenMaxCalls',
  'probeTimeoutMs',
  'handle',
  'handleResult',
  'initialState',
  'mode',
  'store',
  'name',
  'clock',
] as const;

/** Counts every error as a failure except a cancellation by the caller. */
export function defaultHandle(error: unknown): boolean {
  return !isAbortError(error);
}

/** The `breaker` option, checked, with the tracker it created (wrapped) and its slow-call threshold (Infinity: none). */
export interface StrategySettings {
  readonly strategy: BreakerStrategy;
  readonly tracker: FailureTracker;
  readonly timed: boolean;
  readonly slowCallMs: number;
}

/** Checks the `breaker` option; `report` receives what a custom tracker throws. */
export function strategyOption(value: BreakerStrategy | undefined, report: (error: unknown) => void): StrategySettings {
  const strategy = value === undefined ? consecutive(5) : value; // null is an error, not the default
  if (!isBreakerStrategy(strategy)) {
    throw new TypeError(
      `circuitBreaker: option "breaker" must be a strategy such as consecutive(5), countWindow() or timeWindow(), got ${show(strategy)}`,
    );
  }
  const tracker = strategy.create();
  if (typeof tracker !== 'object' || tracker === null || typeof tracker.record !== 'function' || typeof tracker.reset !== 'function') {
    throw new TypeError(`circuitBreaker: option "breaker" must create a tracker with record() and reset(), got ${show(tracker)}`);
  }
  const safe = safeTracker(strategy, tracker, report);
  const timed = strategy.timed;
  const slowCallMs = strategy.slowCallMs === undefined ? Infinity : strategy.slowCallMs;
  if (typeof slowCallMs !== 'number' || !(slowCallMs > 0)) {
    throw new TypeError(`circuitBreaker: option "breaker" has a bad "slowCallMs" (a number > 0), got ${show(slowCallMs)}`);
  }
  return { strategy, tracker: safe, timed, slowCallMs };
}

/** The open periods the `halfOpenAfterMs` option gives: the schedule, the first and the longest. */
export interface OpenSchedule {
  readonly openDelay: (opens: number, previous: number) => number;
  readonly firstOpenDelay: number;
  readonly maxOpenMs: number;
}

/** Checks the `halfOpenAfterMs` option; `report` receives what a custom backoff throws. */
export function openScheduleOption(halfOpen: unknown, report: (error: unknown) => void): OpenSchedule {
  if (isBackoff(halfOpen)) {
    const cap = halfOpen.maxMs === undefined ? MAX_TIMER_MS : halfOpen.maxMs;
    if (typeof cap !== 'number' || !(cap >= halfOpen.initialMs && cap <= MAX_TIMER_MS)) {
      throw new RangeError(
        `circuitBreaker: option "halfOpenAfterMs" is a backoff whose "maxMs" must be from its initialMs (${show(halfOpen.initialMs)}) to ${MAX_TIMER_MS} ms, got ${show(cap)}`,
      );
    }
    const openDelay = (n: number, previous: number): number => {
      // Called from settlement handlers: a custom backoff that throws must not leave the breaker
      // half-opened (a lost transition) nor reject a promise nobody holds.
      try {
        return nextDelay(halfOpen, n, previous, cap);
      } catch (err) {
        report(err);
        return Math.min(halfOpen.initialMs, cap);
      }
    };
    return { openDelay, firstOpenDelay: halfOpen.initialMs, maxOpenMs: cap };
  }
  const ms = durationOption('circuitBreaker', 'halfOpenAfterMs', halfOpen, 10_000);
  return { openDelay: () => ms, firstOpenDelay: ms, maxOpenMs: ms };
}

/**
 * Checks an `initialState` snapshot (each field read once) and returns its fields; `states`: the
 * state names a snapshot may hold.
 */
export function checkSnapshot(snapshot: CircuitBreakerSnapshot, states: readonly CircuitState[]): CircuitBreakerSnapshot {
  const bad = (what: string): never => {
    throw new TypeError(`circuitBreaker: option "initialState" ${what}, got ${show(snapshot)}`);
  };
  if (typeof snapshot !== 'object' || snapshot === null) bad('must be a snapshot from toJSON()');
  const { state, openRemainingMs, opens, savedAt } = snapshot;
  if (!states.includes(state)) bad(`has an unknown state ${show(state)}`);
  if (typeof opens !== 'number' || !Number.isInteger(opens) || opens < 0) bad('has a bad "opens" count');
  if (typeof openRemainingMs !== 'number' || !Number.isFinite(openRemainingMs) || openRemainingMs < 0) {
    bad('has a bad "openRemainingMs"');
  }
  if (openRemainingMs > MAX_TIMER_MS) {
    throw new RangeError(
      `circuitBreaker: option "initialState" has "openRemainingMs" above ${MAX_TIMER_MS} ms (2^31 − 1), which no breaker saves, got ${show(openRemainingMs)}`,
    );
  }
  if (typeof savedAt !== 'number' || !Number.isFinite(savedAt)) bad('has a bad "savedAt"');
  return { state, openRemainingMs, opens, savedAt };
}
