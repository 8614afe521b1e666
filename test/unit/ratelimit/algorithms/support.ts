// Helpers shared by the rate-limit algorithm tests (not a test file itself).
import { expect } from 'vitest';
import type { RateLimitDecision } from '../../../../src/core/errors.js';
import type { AlgorithmState, RateLimitAlgorithm } from '../../../../src/ratelimit/algorithm.js';

/**
 * A small seeded generator (xorshift32): the same seed always gives the same sequence, so a
 * failing randomized run can be replayed. Returns floats in [0, 1).
 */
export function seededRandom(seed: number): () => number {
  let x = seed | 0 || 0x9e3779b9;
  return () => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return (x >>> 0) / 2 ** 32;
  };
}

/** A whole number from `min` to `max` inclusive, drawn from `random`. */
export function between(random: () => number, min: number, max: number): number {
  return min + Math.floor(random() * (max - min + 1));
}

/**
 * Drives one key through an algorithm the way a store would: keeps the state and its expiry, and
 * drops the state once its ttl has passed (as the memory store and Redis do).
 */
export class Key {
  state: AlgorithmState | undefined;
  expiresAt = -Infinity;

  constructor(readonly algorithm: RateLimitAlgorithm) {}

  private live(now: number): AlgorithmState | undefined {
    if (this.state !== undefined && this.expiresAt <= now) this.state = undefined;
    return this.state;
  }

  consume(now: number, cost = 1): RateLimitDecision {
    const outcome = this.algorithm.consume(this.live(now), now, cost);
    this.state = outcome.state;
    this.expiresAt = now + outcome.ttlMs;
    return outcome.decision;
  }

  peek(now: number, cost = 1): RateLimitDecision {
    return this.algorithm.peek(this.live(now), now, cost);
  }

  refund(now: number, cost = 1): void {
    const outcome = this.algorithm.refund(this.live(now), now, cost);
    this.state = outcome.state;
    this.expiresAt = now + outcome.ttlMs;
  }

  /** Consumes `count` times `cost` at `now` and returns how many were allowed. */
  burst(now: number, count: number, cost = 1): number {
    let allowed = 0;
    for (let i = 0; i < count; i++) if (this.consume(now, cost).allowed) allowed++;
    return allowed;
  }
}

/** Asserts that a decision's numbers are whole, non-negative and consistent with each other. */
export function expectSane(d: RateLimitDecision): void {
  for (const [name, value] of [
    ['remaining', d.remaining],
    ['resetMs', d.resetMs],
    ['retryAfterMs', d.retryAfterMs],
  ] as const) {
    if (!Number.isInteger(value) || value < 0) {
      expect.fail(`${name} must be a whole number ≥ 0, got ${value} in ${JSON.stringify(d)}`);
    }
  }
  if (d.remaining > d.limit) expect.fail(`remaining above limit in ${JSON.stringify(d)}`);
  if (d.allowed ? d.retryAfterMs !== 0 : d.retryAfterMs < 1) {
    expect.fail(`retryAfterMs must be 0 exactly when allowed, got ${JSON.stringify(d)}`);
  }
  if (d.retryAfterMs > d.resetMs) expect.fail(`retryAfterMs beyond resetMs in ${JSON.stringify(d)}`);
}
