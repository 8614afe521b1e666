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
  type ReserveOptions,
} from './rate-limiter.js';
export {
  compoundLimit,
  CompoundLimit,
  type CompoundConsumeOptions,
  type CompoundDecision,
  type CompoundDecisionMessage,
  type CompoundLimitOptions,
  type CompoundPart,
} from './compound.js';
export { DEFAULT_LEASE_MS, Reservation, type SettleMessage, type ReservationStatus, type SettleStatus, type StoreLease, type StoreReservation } from './reservation.js';
export type { LimiterDecision, RateLimitStore, StoreErrorMode } from './store.js';
