export type { AlgorithmState, CalendarAlgorithm, ConsumeOutcome, RateLimitAlgorithm } from './algorithm.js';
export * from './algorithms/index.js';
export { MAX_KEY_LENGTH } from './keys.js';
export { memoryStore, MemoryStore, type MemoryStoreOptions } from './memory-store.js';
export * from './quota/index.js';
export { rateLimit, RateLimitPolicy, type Decider, type RateLimitPolicyOptions } from './rate-limit-policy.js';
export {
  rateLimiter,
  RateLimiter,
  type ConsumeOptions,
  type RateLimitDecisionMessage,
  type RateLimiterOptions,
} from './rate-limiter.js';
export type { LimiterDecision, RateLimitStore, StoreErrorMode } from './store.js';
