/*
 * GCRA — the Generic Cell Rate Algorithm: a token bucket kept as one timestamp.
 *
 * State tuple (the Lua script stores the same single number):
 *   [0] tatUs  theoretical arrival time, in whole microseconds on the store's clock: the moment
 *              at which the key is back to full capacity. No state, or a tat in the past, means
 *              the key is at full capacity.
 *
 * Constants, fixed at construction:
 *   T   = ceil(round(periodMs * 1000) / limit)   emission interval in µs: one unit refills per T
 *   tau = burst * T                              the whole bucket, in µs (at most 2^42)
 *
 * One decision at time now (µs, a whole number: round(nowMs * 1000); Lua: sec * 1e6 + usec):
 *   backlog = max(tat - now, 0)                  µs of admitted work not yet drained
 *   after   = backlog + cost * T
 *   allowed when after <= tau; then tat := now + after
 *   allowed: remaining = floor((tau - after) / T), resetMs = ceil(after / 1000), retryAfterMs = 0
 *   denied:  remaining = floor(max(tau - backlog, 0) / T), resetMs = ceil(backlog / 1000),
 *            retryAfterMs = ceil((after - tau) / 1000); the state is left as it was
 *   ttlMs = max(resetMs, 1)
 *
 * Every value is a whole number of µs below 2^53, so +, −, × and comparisons are exact in
 * doubles; the only divisions (by T and by 1000) have operands below 2^44, small enough that the
 * rounded quotient never crosses a whole number, so floor/ceil give the exact integer answer in
 * JavaScript and in Lua alike. Rounding T up to a whole µs keeps the rate at or below the
 * configured one; construction refuses a rate that whole microseconds cannot hold within 0.1%.
 */
import type { RateLimitDecision } from '../../core/errors.js';
import { checkOptions, countOption, show } from '../../core/validate.js';
import type { AlgorithmState, ConsumeOutcome, RateLimitAlgorithm } from '../algorithm.js';
import type { LimiterDecision } from '../store.js';
import {
  checkCost,
  checkNow,
  decisionOf,
  limiterDecisionOf,
  refundUnits,
  requiredCount,
  requiredDuration,
  withFastConsume,
} from './shared.js';

/** Options of {@link gcra}. */
export interface GcraOptions {
  /** Units admitted per `periodMs` on average (one unit refills every `periodMs / limit`). Required. */
  readonly limit: number;
  /** The period over which `limit` units are admitted, in ms. Required. */
  readonly periodMs: number;
  /** Units that may arrive at once on an idle key: the size of the bucket. @default limit */
  readonly burst?: number;
}

/** The algorithm {@link gcra} builds, which also tells its bucket size and refill interval. */
export interface GcraAlgorithm extends RateLimitAlgorithm {
  readonly kind: 'gcra';
  /** Units a full bucket holds: the most a single consumption may cost; decisions report it as `limit`. */
  readonly burst: number;
  /** Microseconds in which one unit refills (`periodMs / limit`, rounded up to a whole µs). */
  readonly emissionIntervalUs: number;
}

const keys = ['limit', 'periodMs', 'burst'] as const;

/** The longest a full bucket may take to refill: 2^42 µs, about 50.9 days. */
const MAX_TAU_US = 2 ** 42;

/**
 * Token-bucket rate limiting with constant memory per key: `limit` units per `periodMs` on
 * average, with up to `burst` units at once. Decisions report `burst` as their `limit`, since
 * `remaining` counts down from it.
 * @example
 * rateLimiter({ algorithm: gcra({ limit: 100, periodMs: 60_000, burst: 20 }), store: memoryStore() });
 */
export function gcra(options: GcraOptions): GcraAlgorithm {
  const o = checkOptions('gcra', options, keys);
  const limit = requiredCount('gcra', 'limit', o.limit);
  const periodMs = requiredDuration('gcra', 'periodMs', o.periodMs);
  const burst = countOption('gcra', 'burst', o.burst, limit);

  const exactUs = periodMs * 1000;
  const T = Math.ceil(Math.round(exactUs) / limit);
  if (T < 1 || Math.abs(T * limit - exactUs) > periodMs) {
    throw new RangeError(
      `gcra: option "limit" over "periodMs" (${show(periodMs)}) asks for one unit every ${show(exactUs / limit)} µs, ` +
        `which whole microseconds cannot hold within 0.1%; count in larger units or pick a rate whose interval ` +
        `is a whole number of µs, got ${show(limit)}`,
    );
  }
  const tau = burst * T;
  if (tau > MAX_TAU_US) {
    throw new RangeError(
      `gcra: option "burst" must be at most ${Math.floor(MAX_TAU_US / T)} with this limit and periodMs ` +
        `(a full bucket must refill within 2^42 µs, about 50 days), got ${show(burst)}`,
    );
  }

  // Filled by decide() when it admits: the tat to store. A field of an object rather than a
  // closure variable, so that writing a new (non-small-integer) value allocates nothing.
  const next = { tat: 0.5 };

  /**
   * The decision for `cost` units at `nowMs`, with `store` as its last property when given; sets
   * `next.tat` when it admits.
   */
  function decide(state: AlgorithmState | undefined, nowMs: number, cost: number, store: string): LimiterDecision;
  function decide(state: AlgorithmState | undefined, nowMs: number, cost: number, store?: undefined): RateLimitDecision;
  function decide(
    state: AlgorithmState | undefined,
    nowMs: number,
    cost: number,
    store?: string,
  ): RateLimitDecision | LimiterDecision {
    checkCost('gcra', cost, burst);
    checkNow('gcra', nowMs);
    const now = Math.round(nowMs * 1000);
    const tat = state === undefined || state.length !== 1 ? now : state[0]!;
    const backlog = tat > now ? tat - now : 0;
    const after = backlog + cost * T;
    if (after <= tau) {
      next.tat = now + after;
      const remaining = Math.floor((tau - after) / T);
      const resetMs = Math.ceil(after / 1000);
      return store === undefined
        ? decisionOf(true, burst, remaining, resetMs, 0)
        : limiterDecisionOf(true, burst, remaining, resetMs, 0, store);
    }
    const remaining = backlog < tau ? Math.floor((tau - backlog) / T) : 0;
    const resetMs = Math.ceil(backlog / 1000);
    const retryAfterMs = Math.ceil((after - tau) / 1000);
    return store === undefined
      ? decisionOf(false, burst, remaining, resetMs, retryAfterMs)
      : limiterDecisionOf(false, burst, remaining, resetMs, retryAfterMs, store);
  }

  const algorithm: GcraAlgorithm = {
    kind: 'gcra',
    limit,
    windowMs: periodMs,
    burst,
    emissionIntervalUs: T,
    consume(state, nowMs, cost): ConsumeOutcome {
      const decision = decide(state, nowMs, cost);
      if (!decision.allowed) return { decision, state, ttlMs: decision.resetMs > 1 ? decision.resetMs : 1 };
      // An admitted cost is at least T ≥ 1 µs, so resetMs is at least 1.
      return { decision, state: [next.tat], ttlMs: decision.resetMs };
    },
    peek(state, nowMs, cost) {
      return decide(state, nowMs, cost);
    },
    refund(state, nowMs, units) {
      const cost = refundUnits('gcra', units, burst);
      checkNow('gcra', nowMs);
      if (state === undefined || state.length !== 1) return { state: undefined, ttlMs: 1 };
      const now = Math.round(nowMs * 1000);
      const backlog = state[0]! - now - cost * T;
      // Giving back more than is still counted only brings the key to full capacity.
      if (backlog <= 0) return { state: undefined, ttlMs: 1 };
      return { state: [now + backlog], ttlMs: Math.ceil(backlog / 1000) };
    },
  };
  // consume() for the memory store: the same decision with `store` built in, no outcome object.
  return withFastConsume(algorithm, (state, nowMs, cost, store, out, inPlace) => {
    const decision = decide(state, nowMs, cost, store);
    out.keep = decision.allowed;
    if (decision.allowed) {
      if (inPlace && state !== undefined && state.length === 1) {
        (state as number[])[0] = next.tat;
        out.state = state;
      } else {
        out.state = [next.tat];
      }
      out.ttlMs = decision.resetMs;
    } else {
      out.state = state;
      out.ttlMs = decision.resetMs > 1 ? decision.resetMs : 1;
    }
    return decision;
  });
}
