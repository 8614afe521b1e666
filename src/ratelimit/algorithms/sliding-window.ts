/*
 * Sliding window — the weighted two-window counter.
 *
 * State tuple (the Lua script stores the same three numbers):
 *   [0] windowStart  start of the current window, in whole ms: a multiple of windowMs
 *   [1] current      units admitted in the window starting at windowStart
 *   [2] previous     units admitted in the window before it
 *
 * The sliding window reaches windowMs back from now. It holds all of the current window and the
 * part of the previous one that is still inside it, whose count is assumed spread evenly, so the
 * estimate at elapsed = t − windowStart is
 *   previous × (windowMs − elapsed) / windowMs + current.
 *
 * One decision at time t = floor(nowMs) (Lua: sec * 1000 + floor(usec / 1000)), W = windowMs:
 *   start = t − (t mod W)                       (floored modulo, Lua's %)
 *   roll the state to start: same start → as stored; stored start = start − W → previous :=
 *   current, current := 0; older → both 0; a stored start later than start (the clock stepped
 *   back) is kept as it is, with elapsed clamped to 0, so no admitted unit is forgotten.
 *   used  = previous × (W − elapsed) + current × W  (the estimate scaled by W: a whole number)
 *   after = used + cost × W
 *   allowed when after <= limit × W; then current := current + cost
 *   remaining = floor(max(limit × W − (allowed ? after : used), 0) / W)
 *   resetMs  = time until nothing is counted: windowStart + 2W − t when current > 0,
 *              windowStart + W − t when only previous > 0, else 0
 *   retryAfterMs (denied) = the first whole ms at which the same cost fits, found in the current
 *   window, else the next one (where previous := current), else the one after (empty):
 *     current window: room = limit − current − cost ≥ 0 and k = floor(room × W / previous) ≥ 1
 *                     → at windowStart + W − k
 *     next window:    k = floor((limit − cost) × W / current) (W when current is 0)
 *                     → at windowStart + W + max(W − k, 0) when k ≥ 1
 *     otherwise       → at windowStart + 2W
 *   ttlMs = max(resetMs, 1) (after an admission: windowStart + 2W − t)
 *
 * Construction requires limit × W ≤ 2^52, so every product is a whole number below 2^53 (exact in
 * doubles) and each floor of a quotient by W or by a count is exact, in JavaScript and in Lua.
 */
import type { RateLimitDecision } from '../../core/errors.js';
import { checkOptions, show } from '../../core/validate.js';
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

/** Options of {@link slidingWindow}. */
export interface SlidingWindowOptions {
  /** Units admitted in any window of `windowMs` (as estimated from two fixed windows). Required. */
  readonly limit: number;
  /** The window, in whole ms; the fixed windows it is estimated from start at its multiples. Required. */
  readonly windowMs: number;
}

const keys = ['limit', 'windowMs'] as const;

/** Largest limit × windowMs: keeps the weighted sums and their quotients exact in doubles. */
const MAX_SCALED = 2 ** 52;

/**
 * Rate limiting over a sliding window of `windowMs`, estimated with two counters per key: the
 * previous fixed window's count, weighted by the share of it still inside the sliding window,
 * plus the current window's count. Smooths the burst a fixed window allows at its boundary.
 * @example
 * rateLimiter({ algorithm: slidingWindow({ limit: 100, windowMs: 60_000 }), store: memoryStore() });
 */
export function slidingWindow(options: SlidingWindowOptions): RateLimitAlgorithm {
  const o = checkOptions('slidingWindow', options, keys);
  const limit = requiredCount('slidingWindow', 'limit', o.limit);
  const W = requiredWindow('slidingWindow', 'windowMs', o.windowMs);
  const capacity = limit * W;
  if (capacity > MAX_SCALED) {
    throw new RangeError(
      `slidingWindow: option "limit" times "windowMs" (${W}) must be at most 2^52, so limit must be at most ` +
        `${Math.floor(MAX_SCALED / W)}, got ${show(limit)}`,
    );
  }

  // The state rolled to the current time, filled by roll(): fields of an object rather than
  // closure variables, so that writing a new (non-small-integer) value allocates nothing.
  // `window` is the start of the window last computed: reused while t is inside it, since
  // windowStart() takes a floating-point remainder, the slowest step here (exact either way).
  const r = { start: 0.5, current: 0, previous: 0, t: 0.5, window: Number.NaN };

  /** Reads `state` as of `nowMs` into r.start/current/previous/t. */
  function roll(state: AlgorithmState | undefined, nowMs: number): void {
    checkNow('slidingWindow', nowMs);
    const t = Math.floor(nowMs);
    if (!(t >= r.window && t < r.window + W)) r.window = windowStart(t, W);
    const s = r.window;
    r.t = t;
    if (state === undefined || state.length !== 3) {
      r.start = s;
      r.current = r.previous = 0;
    } else if (state[0]! >= s) {
      r.start = state[0]!;
      r.current = state[1]!;
      r.previous = state[2]!;
    } else if (state[0] === s - W) {
      r.start = s;
      r.previous = state[1]!;
      r.current = 0;
    } else {
      r.start = s;
      r.current = r.previous = 0;
    }
  }

  /** Ms from t until nothing is counted any more. */
  function resetAfter(): number {
    if (r.current > 0) return r.start + 2 * W - r.t;
    if (r.previous > 0) return r.start + W - r.t;
    return 0;
  }

  /**
   * The decision for `cost` units on the rolled state, with `store` as its last property when
   * given; admits into `current` when allowed.
   */
  function evaluate(cost: number, store: string): LimiterDecision;
  function evaluate(cost: number, store?: undefined): RateLimitDecision;
  function evaluate(cost: number, store?: string): RateLimitDecision | LimiterDecision {
    const { start, t } = r;
    const elapsed = t > start ? t - start : 0;
    const used = r.previous * (W - elapsed) + r.current * W;
    const after = used + cost * W;
    if (after <= capacity) {
      r.current += cost;
      const remaining = Math.floor((capacity - after) / W);
      const resetMs = resetAfter();
      return store === undefined
        ? decisionOf(true, limit, remaining, resetMs, 0)
        : limiterDecisionOf(true, limit, remaining, resetMs, 0, store);
    }
    const remaining = used < capacity ? Math.floor((capacity - used) / W) : 0;
    const resetMs = resetAfter();
    const retryAfterMs = firstFit(cost) - t;
    return store === undefined
      ? decisionOf(false, limit, remaining, resetMs, retryAfterMs)
      : limiterDecisionOf(false, limit, remaining, resetMs, retryAfterMs, store);
  }

  /** The first whole ms at which `cost` units fit (the estimate only falls as time passes). */
  function firstFit(cost: number): number {
    const { start, current, previous } = r;
    const room = limit - current - cost;
    if (room >= 0 && previous > 0) {
      const k = Math.floor((room * W) / previous);
      if (k >= 1) return start + W - k;
    }
    const k = current > 0 ? Math.floor(((limit - cost) * W) / current) : W;
    if (k >= 1) return start + W + (k < W ? W - k : 0);
    return start + 2 * W;
  }

  const algorithm: RateLimitAlgorithm = {
    kind: 'sliding-window',
    limit,
    windowMs: W,
    consume(state, nowMs, cost): ConsumeOutcome {
      checkCost('slidingWindow', cost, limit);
      roll(state, nowMs);
      const decision = evaluate(cost);
      if (!decision.allowed) return { decision, state, ttlMs: decision.resetMs > 1 ? decision.resetMs : 1 };
      return { decision, state: [r.start, r.current, r.previous], ttlMs: decision.resetMs };
    },
    peek(state, nowMs, cost) {
      checkCost('slidingWindow', cost, limit);
      roll(state, nowMs);
      return evaluate(cost);
    },
    refund(state, nowMs, units) {
      const cost = refundUnits('slidingWindow', units, limit);
      roll(state, nowMs);
      // Give back from the current window first, then from the previous one; never below zero.
      const fromCurrent = cost < r.current ? cost : r.current;
      r.current -= fromCurrent;
      const rest = cost - fromCurrent;
      r.previous = rest < r.previous ? r.previous - rest : 0;
      const ttlMs = resetAfter();
      if (ttlMs === 0) return { state: undefined, ttlMs: 1 };
      return { state: [r.start, r.current, r.previous], ttlMs };
    },
  };
  // consume() for the memory store: the same decision with `store` built in, no outcome object.
  return withFastConsume(algorithm, (state, nowMs, cost, store, out, inPlace) => {
    checkCost('slidingWindow', cost, limit);
    roll(state, nowMs);
    const decision = evaluate(cost, store);
    out.keep = decision.allowed;
    if (!decision.allowed) {
      out.state = state;
      out.ttlMs = decision.resetMs > 1 ? decision.resetMs : 1;
      return decision;
    }
    if (inPlace && state !== undefined && state.length === 3) {
      (state as number[])[0] = r.start;
      (state as number[])[1] = r.current;
      (state as number[])[2] = r.previous;
      out.state = state;
    } else {
      out.state = [r.start, r.current, r.previous];
    }
    out.ttlMs = decision.resetMs;
    return decision;
  });
}
