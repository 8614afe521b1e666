// The calendar algorithm a quota runs, for tests that drive a store or a script with it directly.
import type { RateLimitAlgorithm } from '../../src/ratelimit/algorithm.js';
import { quota } from '../../src/ratelimit/quota/quota.js';

/** The calendar algorithm a quota runs, taken from a quota over a store that records it. */
export function calendarOf(options: Omit<Parameters<typeof quota>[0], 'store'>): RateLimitAlgorithm {
  let algorithm: RateLimitAlgorithm | undefined;
  const spy = {
    name: 'spy',
    consume(_k: string, a: RateLimitAlgorithm) {
      algorithm = a;
      return { allowed: true, limit: 1, remaining: 0, resetMs: 0, retryAfterMs: 0, store: 'spy' };
    },
    peek: () => ({ allowed: true, limit: 1, remaining: 0, resetMs: 0, retryAfterMs: 0, store: 'spy' }),
    refund: () => undefined,
    reset: () => undefined,
  };
  void quota({ ...options, store: spy }).consume('x');
  return algorithm!;
}
