import type { RateLimitDecision } from '../core/errors.js';

/**
 * What a store keeps for one key: a short tuple of numbers, so that every store can hold it in
 * one place (the memory store in a Map entry, the Redis store in one key) and the Lua scripts can
 * mirror the TypeScript decision functions exactly.
 */
export type AlgorithmState = readonly number[];

/** The result of one consumption: the decision, and what the store must keep afterwards. */
export interface ConsumeOutcome {
  readonly decision: RateLimitDecision;
  /** The state to store; equal to the input (or undefined when there was none) on a denial. */
  readonly state: AlgorithmState | undefined;
  /** How long the stored state must live, in ms (it is useless after that); always > 0. */
  readonly ttlMs: number;
}

/**
 * A rate-limit algorithm as pure functions of (stored state, time, cost), shared by every store
 * and mirrored in Lua, so it can be unit-tested with a fake clock and cross-checked against Redis.
 * Times are milliseconds on whatever clock the store uses (the Redis store uses the server's).
 * @example
 * const outcome = gcra({ limit: 10, periodMs: 1_000 }).consume(undefined, Date.now(), 1);
 */
export interface RateLimitAlgorithm {
  readonly kind: 'gcra' | 'sliding-window' | 'fixed-window' | 'calendar';
  /** Units admitted per period or window (what `RateLimit-Policy` advertises). */
  readonly limit: number;
  /** The period or window, in ms. */
  readonly windowMs: number;
  /** Takes `cost` units at `nowMs` if they are available; a denial changes nothing. */
  consume(state: AlgorithmState | undefined, nowMs: number, cost: number): ConsumeOutcome;
  /** The decision a consumption of `cost` would get at `nowMs`, changing nothing. */
  peek(state: AlgorithmState | undefined, nowMs: number, cost: number): RateLimitDecision;
  /**
   * Gives back `cost` units (never more than were taken: a refund larger than the key can hold is
   * clamped to it); returns what to store.
   */
  refund(state: AlgorithmState | undefined, nowMs: number, cost: number): Omit<ConsumeOutcome, 'decision'>;
}

/**
 * A calendar quota's algorithm (built by `quota`), which also tells the calendar period holding
 * a time, so that a remote store can align periods to its own clock.
 */
export interface CalendarAlgorithm extends RateLimitAlgorithm {
  readonly kind: 'calendar';
  /** The period holding `nowMs` (epoch ms): `[start, end)` in epoch ms. */
  periodAt(nowMs: number): { readonly start: number; readonly end: number };
}
