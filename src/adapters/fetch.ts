/**
 * bulwark/fetch: an outbound `fetch` with a resilience pipeline — timeouts, retries that honour
 * `Retry-After`, a circuit breaker per origin, hedging, rate limits and failover between endpoints.
 * @packageDocumentation
 */
export { createFetch } from './fetch/create-fetch.js';
export type {
  CreateFetchOptions,
  FailoverEvent,
  FailoverReason,
  FetchCircuitBreakerOptions,
  FetchFaultInjectionOptions,
  FetchHedgeOptions,
  FetchInit,
  FetchInput,
  FetchRateLimitOptions,
  FetchRetryOptions,
  ResilientFetch,
  ServerBackoff,
} from './fetch/types.js';
export { HttpStatusError } from './fetch/http-status-error.js';
export { RetryAfterError } from './fetch/retry-after-error.js';
export { parseRateLimit, parseRetryAfter } from './fetch/retry-after.js';
