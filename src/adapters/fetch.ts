/**
 * bulwark/fetch: an outbound `fetch` with a resilience pipeline — timeouts, retries that honour
 * `Retry-After`, a circuit breaker per origin, hedging, rate limits, failover between endpoints, and
 * (opt-in) propagation of the caller's traffic class and deadline.
 * @packageDocumentation
 */
export { createFetch } from './fetch/create-fetch.js';
export type {
  CreateFetchOptions,
  FetchAdaptiveThrottleOptions,
  FailoverEvent,
  FailoverReason,
  FetchCircuitBreakerOptions,
  FetchFaultInjectionOptions,
  FetchHedgeOptions,
  FetchInit,
  FetchInput,
  FetchPacingOptions,
  FetchPropagateOptions,
  FetchRateLimitOptions,
  FetchRetryOptions,
  ResilientFetch,
  ServerBackoff,
} from './fetch/types.js';
export { HttpStatusError } from './fetch/http-status-error.js';
export { RetryAfterError } from './fetch/retry-after-error.js';
export { DeadlineExceededError } from './fetch/deadline-exceeded-error.js';
export { DEADLINE_HEADER, PRIORITY_HEADER } from '../http/propagation.js';
export { parseRateLimit, parseRetryAfter } from './fetch/retry-after.js';
export type { PacingMessage as FetchPacingMessage } from './fetch/pacing/pacer.js';
