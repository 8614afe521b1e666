/*
 * Fixed window — one counter per window, windows aligned to multiples of windowMs.
 *
 * State tuple (the Lua script stores the same two numbers):
 *   [0] windowStart  start of the window the count belongs to, in whole ms: a multiple of windowMs
 *   [1] count        units admitted in that window
 *
 * One decision at time t = floor(nowMs) (Lua: sec * 1000 + floor(usec / 1000)), W = windowMs:
 *   start = t − (t mod W)                       (floored modulo, Lua's %)
 *   a stored start before start means a new window: count := 0, windowStart := start; a stored
 *   start later than start (the clock stepped back) is kept with its count, so nothing admitted
 *   is forgotten
 *   end = windowStart + W
 *   allowed when count + cost <= limit; then count := count + cost
 *   remaining = max(limit − count, 0) (count after the admission, if any)
 *   resetMs = end − t when count > 0, else 0
 *   retryAfterMs (denied) = end − t: the next window starts empty, and cost ≤ limit fits in it
 *   ttlMs = end − t (at least 1)
 *
 * Only whole-number additions, subtractions and comparisons: exact in doubles, in JavaScript and
 * in Lua.
 */
import type { RateLimitDecision } from '../../core/errors.js';
import { checkOptions } from '../../core/validate.js';
import type { AlgorithmState, ConsumeOutcome, RateLimitAlgorithm } from '../algorithm.js';
import { checkCost, checkNow, refundUnits, requiredCount, requiredWindow, windowStart } from './shared.js';

/** Options of {@link fixedWindow}. */
export interface FixedWindowOptions {
  /** Units admitted per window. Required. */
  readonly limit: number;
  /** The window, in whole ms; windows start at its multiples on the store's clock. Required. */
  readonly windowMs: number;
}

const keys = ['limit', 'windowMs'] as const;

/**
 * Rate limiting with one counter per fixed window of `windowMs`: at most `limit` units per
 * window. The cheapest algorithm, but a client can spend two windows' worth around a boundary;
 * {@link slidingWindow} or {@link gcra} smooth that out.
 * @example
 * rateLimiter({ algorithm: fixedWindow({ limit: 1_000, windowMs: 3_600_000 }), store: memoryStore() });
 */
export function fixedWindow(options: FixedWindowOptions): RateLimitAlgorithm {
  const o = checkOptions('fixedWindow', options, keys);
  const limit = requiredCount('fixedWindow', 'limit', o.limit);
  const W = requiredWindow('fixedWindow', 'windowMs', o.windowMs);

  // The state rolled to the current time, filled by roll().
  let start = 0;
  let count = 0;
  let t = 0;

  function roll(state: AlgorithmState | undefined, nowMs: number): void {
    checkNow('fixedWindow', nowMs);
    t = Math.floor(nowMs);
    const s = windowStart(t, W);
    if (state !== undefined && state.length === 2 && state[0]! >= s) {
      start = state[0]!;
      count = state[1]!;
    } else {
      start = s;
      count = 0;
    }
  }

  function evaluate(cost: number): RateLimitDecision {
    const untilEnd = start + W - t;
    if (count + cost <= limit) {
      count += cost;
      return { allowed: true, limit, remaining: limit - count, resetMs: untilEnd, retryAfterMs: 0 };
    }
    return {
      allowed: false,
      limit,
      remaining: count < limit ? limit - count : 0,
      resetMs: untilEnd,
      retryAfterMs: untilEnd,
    };
  }

  return {
    kind: 'fixed-window',
    limit,
    windowMs: W,
    consume(state, nowMs, cost): ConsumeOutcome {
      checkCost('fixedWindow', cost, limit);
      roll(state, nowMs);
      const decision = evaluate(cost);
      return { decision, state: decision.allowed ? [start, count] : state, ttlMs: decision.resetMs };
    },
    peek(state, nowMs, cost) {
      checkCost('fixedWindow', cost, limit);
      roll(state, nowMs);
      return evaluate(cost);
    },
    refund(state, nowMs, units) {
      const cost = refundUnits('fixedWindow', units, limit);
      roll(state, nowMs);
      if (count <= cost) return { state: undefined, ttlMs: 1 };
      return { state: [start, count - cost], ttlMs: start + W - t };
    },
  };
}
