import type { AlgorithmState, RateLimitAlgorithm } from '../../../src/ratelimit/algorithm.js';

/**
 * A deliberately simple fixed-window counter for store and limiter tests, independent of the
 * real algorithms: state [windowStart, used].
 */
export function countingAlgorithm(limit: number, windowMs: number): RateLimitAlgorithm {
  const used = (state: AlgorithmState | undefined, now: number): number =>
    state !== undefined && state[0] === Math.floor(now / windowMs) * windowMs ? state[1]! : 0;
  const decide = (state: AlgorithmState | undefined, now: number, cost: number) => {
    const start = Math.floor(now / windowMs) * windowMs;
    const u = used(state, now);
    const allowed = u + cost <= limit;
    const after = allowed ? u + cost : u;
    return {
      decision: {
        allowed,
        limit,
        remaining: limit - after,
        resetMs: start + windowMs - now,
        retryAfterMs: allowed ? 0 : start + windowMs - now,
      },
      state: allowed ? ([start, after] as const) : state,
      ttlMs: start + windowMs - now,
    };
  };
  return {
    kind: 'fixed-window',
    limit,
    windowMs,
    consume: decide,
    peek: (state, now, cost) => decide(state, now, cost).decision,
    refund: (state, now, cost) => {
      const start = Math.floor(now / windowMs) * windowMs;
      return { state: [start, Math.max(0, used(state, now) - cost)], ttlMs: start + windowMs - now };
    },
  };
}
