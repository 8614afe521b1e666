/**
 * bulwark/fetch: an outbound `fetch` with a resilience pipeline — timeouts, retries that honour
 * `Retry-After`, a circuit breaker per origin, hedging, rate limits and failover between endpoints.
 * @packageDocumentation
 */
export {
  createFetch,
  type CreateFetchOptions,
  type FailoverEvent,
  type FailoverReason,
  type FetchCircuitBreakerOptions,
  type FetchHedgeOptions,
  type FetchInit,
  type FetchInput,
  type FetchRateLimitOptions,
  type FetchRetryOptions,
  type ResilientFetch,
  type ServerBackoff,
} from './fetch/create-fetch.js';
export { HttpStatusError } from './fetch/http-status-error.js';
export { RetryAfterError } from './fetch/retry-after-error.js';
export { parseRateLimit, parseRetryAfter } from './fetch/retry-after.js';
