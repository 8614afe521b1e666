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
import type { LimiterDecision } from '../store.js';
import {
  checkCost,
  checkNow,
  decisionOf,
  limiterDecisionOf,
  refundUnits,
  requiredCount,
  requiredWindow,
  windowStart,
  withFastConsume,
} from './shared.js';

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

  // The state rolled to the current time, filled by roll(): fields of an object rather than
  // closure variables, so that writing a new (non-small-integer) value allocates nothing.
  // `window` is the start of the window last computed: reused while t is inside it, since
  // windowStart() takes a floating-point remainder, the slowest step here (exact either way).
  const r = { start: 0.5, count: 0, t: 0.5, window: Number.NaN };

  function roll(state: AlgorithmState | undefined, nowMs: number): void {
    checkNow('fixedWindow', nowMs);
    const t = Math.floor(nowMs);
    if (!(t >= r.window && t < r.window + W)) r.window = windowStart(t, W);
    const s = r.window;
    r.t = t;
    if (state !== undefined && state.length === 2 && state[0]! >= s) {
      r.start = state[0]!;
      r.count = state[1]!;
    } else {
      r.start = s;
      r.count = 0;
    }
  }

  /** The decision for `cost` units on the rolled state, with `store` as its last property when given. */
  function evaluate(cost: number, store: string): LimiterDecision;
  function evaluate(cost: number, store?: undefined): RateLimitDecision;
  function evaluate(cost: number, store?: string): RateLimitDecision | LimiterDecision {
    const untilEnd = r.start + W - r.t;
    const count = r.count;
    if (count + cost <= limit) {
      r.count = count + cost;
      const remaining = limit - r.count;
      return store === undefined
        ? decisionOf(true, limit, remaining, untilEnd, 0)
        : limiterDecisionOf(true, limit, remaining, untilEnd, 0, store);
    }
    const remaining = count < limit ? limit - count : 0;
    return store === undefined
      ? decisionOf(false, limit, remaining, untilEnd, untilEnd)
      : limiterDecisionOf(false, limit, remaining, untilEnd, untilEnd, store);
  }

  const algorithm: RateLimitAlgorithm = {
    kind: 'fixed-window',
    limit,
    windowMs: W,
    consume(state, nowMs, cost): ConsumeOutcome {
      checkCost('fixedWindow', cost, limit);
      roll(state, nowMs);
      const decision = evaluate(cost);
      return { decision, state: decision.allowed ? [r.start, r.count] : state, ttlMs: decision.resetMs };
    },
    peek(state, nowMs, cost) {
      checkCost('fixedWindow', cost, limit);
      roll(state, nowMs);
      return evaluate(cost);
    },
    refund(state, nowMs, units) {
      const cost = refundUnits('fixedWindow', units, limit);
      roll(state, nowMs);
      if (r.count <= cost) return { state: undefined, ttlMs: 1 };
      return { state: [r.start, r.count - cost], ttlMs: r.start + W - r.t };
    },
  };
  // consume() for the memory store: the same decision with `store` built in, no outcome object.
  return withFastConsume(algorithm, (state, nowMs, cost, store, out, inPlace) => {
    checkCost('fixedWindow', cost, limit);
    roll(state, nowMs);
    const decision = evaluate(cost, store);
    out.keep = decision.allowed;
    if (!decision.allowed) {
      out.state = state;
    } else if (inPlace && state !== undefined && state.length === 2) {
      (state as number[])[0] = r.start;
      (state as number[])[1] = r.count;
      out.state = state;
    } else {
      out.state = [r.start, r.count];
    }
    out.ttlMs = decision.resetMs;
    return decision;
  });
}
