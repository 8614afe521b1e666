// The public types of `bulwark/fetch`: what `createFetch` takes and what it returns. The fetch
// itself is in create-fetch.ts.
import type { Backoff } from '../../backoff/backoff.js';
import type { CircuitBreakerPolicy } from '../../circuit/circuit-breaker.js';
import type { BreakerStrategy } from '../../circuit/strategies.js';
import type { FaultInjectionPolicy } from '../../chaos/fault-injection.js';
import type { LatencySource } from '../../chaos/options.js';
import type { Clock } from '../../core/clock.js';
import type { ExecutionContext } from '../../core/context.js';
import type { EventSubscriber } from '../../core/events.js';
import type { Decider } from '../../ratelimit/rate-limit-policy.js';
import type { RedisClientLike } from '../../ratelimit/redis/types.js';
import type { AdaptiveThrottlePolicy } from '../../throttle/adaptive-throttle.js';
import type { RetryBudget } from '../../retry/budget.js';
import type { RetryEvent } from '../../retry/retry.js';

/**
 * What `fetch` takes as its first argument: a URL string, a `URL` or a `Request`.
 * @example
 * const input: FetchInput = new URL('http://127.0.0.1:8080/health');
 */
export type FetchInput = Parameters<typeof globalThis.fetch>[0];
/**
 * What `fetch` takes as its second argument (`RequestInit`, or undefined).
 * @example
 * const init: FetchInit = { method: 'PUT', body: '{}', headers: { 'content-type': 'application/json' } };
 */
export type FetchInit = Parameters<typeof globalThis.fetch>[1];

/**
 * Retry settings of {@link createFetch}: those of `retry()` that make sense per request.
 * @example
 * createFetch({ retry: { maxAttempts: 4, backoff: exponential({ initialMs: 50 }), maxDelayMs: 5_000, budget: retryBudget() } });
 */
export interface FetchRetryOptions {
  /** Attempts in all, the first included. @default 3 */
  readonly maxAttempts?: number;
  /** Delay before each retry. @default exponential() — 100 ms doubling to 30 s, full jitter */
  readonly backoff?: Backoff;
  /**
   * Cap on every backoff delay, in ms. A response asking for a longer pause (`Retry-After`) is not
   * retried early: the call rejects with {@link RetryAfterError}. @default 30000
   */
  readonly maxDelayMs?: number;
  /** A retry budget, possibly shared with other clients of the same dependency. No budget by default. */
  readonly budget?: RetryBudget;
}

/**
 * Circuit-breaker settings of {@link createFetch}, applied to each origin's own breaker.
 * @example
 * createFetch({ circuitBreaker: { breaker: consecutive(3), halfOpenAfterMs: 5_000 } });
 */
export interface FetchCircuitBreakerOptions {
  /** When to open. @default consecutive(5) */
  readonly breaker?: BreakerStrategy;
  /** How long an origin is left alone before a probe, in ms, or a backoff. @default 10000 */
  readonly halfOpenAfterMs?: number | Backoff;
  /** Probes admitted while half-open. @default 1 */
  readonly halfOpenMaxCalls?: number;
  /** A probe unsettled after this long counts as a failure, in ms. @default 30000 */
  readonly probeTimeoutMs?: number;
}

/**
 * Adaptive-throttle settings of {@link createFetch}, applied to each origin's own throttle (see
 * `adaptiveThrottle`): an origin that refuses calls (429, 5xx, network errors, attempt timeouts)
 * gets about `k` times what it accepts, and the rest of the attempts fail at once with a
 * `ThrottledError` instead of going out.
 * @example
 * createFetch({ adaptiveThrottle: { k: 2, windowMs: 60_000 } });
 */
export interface FetchAdaptiveThrottleOptions {
  /** Attempts sent per attempt accepted before local rejections start; at least 1. @default 2 */
  readonly k?: number;
  /** The window attempts and accepts are counted over, in ms. @default 60000 */
  readonly windowMs?: number;
  /** The highest probability of a local rejection, in (0, 1). @default 0.9 */
  readonly maxRejectionProbability?: number;
  /** Below this many attempts in the window nothing is rejected. @default 100 */
  readonly minRequests?: number;
  /** `'shadow'` rejects nothing and reports what it would have rejected. @default 'enforce' */
  readonly mode?: 'enforce' | 'shadow';
}

/**
 * Hedging settings of {@link createFetch}; only GET, HEAD and OPTIONS requests are hedged.
 * @example
 * createFetch({ hedge: { delayMs: 100, maxHedges: 1 } });
 */
export interface FetchHedgeOptions {
  /** How long an attempt may run before another starts beside it, in ms. */
  readonly delayMs: number;
  /** Extra attempts at most. @default 1 */
  readonly maxHedges?: number;
}

/**
 * Rate-limit settings of {@link createFetch}: every attempt takes units from `limiter` first.
 * @example
 * createFetch({ rateLimit: { limiter: rateLimiter({ algorithm: gcra({ limit: 10, periodMs: 1_000 }) }), key: (url) => url.host } });
 */
export interface FetchRateLimitOptions {
  /** A `rateLimiter()` or a `quota()`. */
  readonly limiter: Decider;
  /** The key to limit by, from the attempt's URL. @default the URL's origin */
  readonly key?: (url: URL) => string;
  /** Units each attempt takes. @default 1 */
  readonly cost?: number;
}

/**
 * Server-advised pacing in {@link createFetch}: per origin (and `key`), the rate the server
 * advertises in `RateLimit-Policy`/`RateLimit` (draft-11) or `X-RateLimit-*`, the pauses it asks
 * for (`Retry-After`, `r=0`), and without either an AIMD rate found from its 429s. Each attempt
 * waits for its slot up to `maxWaitMs`, else fails fast with `RateLimitedError` (not retried).
 * With `store` (an ioredis client), slots and pauses are shared by every process using it.
 * @example
 * createFetch({ pacing: { maxWaitMs: 2_000, key: (url, headers) => headers.get('x-api-key') ?? '', store: redis } });
 */
export interface FetchPacingOptions {
  /** Longest an attempt queues for its slot, in ms; beyond it, `RateLimitedError` at once. @default 5000 */
  readonly maxWaitMs?: number;
  /** A partition within the origin (an API key, a tenant), from the URL and the request's headers. @default none: per origin */
  readonly key?: (url: URL, headers: Headers) => string;
  /** An ioredis `Redis` or `Cluster` client: pace the whole fleet together. @default none: this process alone */
  readonly store?: RedisClientLike;
  /** Put before every Redis key; without `{` or `}`. @default 'bulwark:pacing:' */
  readonly prefix?: string;
  /** Longest a slot waits for Redis before this process decides alone, in ms. @default 100 */
  readonly timeoutMs?: number;
}

/**
 * Fault injection on every attempt of {@link createFetch} (after Polly's Simmy): a share `rate` of
 * the attempts get `latencyMs` of delay, then a `Response` with `status` or a network error
 * instead of the real request (or, with latency alone, the real request late). The fetch's
 * retries, breakers and failover see them as they would a failing server.
 * @example
 * createFetch({ faultInjection: { rate: 0.3, status: 503, enabled: process.env.CHAOS === '1' } });
 */
export interface FetchFaultInjectionOptions {
  /** Share of attempts injected, in (0, 1]. */
  readonly rate: number;
  /** Answer the attempt with a `Response` of this status (400–599) and a problem+json body, as if the server had. */
  readonly status?: number;
  /** Fail the attempt as a connection reset would (a `TypeError('fetch failed')` whose cause has `code: 'ECONNRESET'`). */
  readonly networkError?: boolean;
  /** Delay before the attempt goes on (or gets its status or error), in ms, or a function giving one. */
  readonly latencyMs?: LatencySource;
  /** Whether faults are injected at all. @default true */
  readonly enabled?: boolean;
  /** Only attempts for which it returns `true` may get a fault (`attempt` says which one it is). */
  readonly when?: (context: ExecutionContext) => boolean;
  /** Source of numbers in [0, 1). @default Math.random */
  readonly random?: () => number;
  /** Name used in events. @default 'fetch fault-injection' */
  readonly name?: string;
}

/**
 * What a call does while its origin is inside a pause the server asked for (`Retry-After` on a
 * failed status): `'fail-fast'` rejects at once with {@link RetryAfterError}; `'wait'` waits
 * until the pause ends (bounded by `timeoutMs` and the caller's signal), even beyond `maxDelayMs`.
 * @example
 * createFetch({ serverBackoff: 'wait', timeoutMs: 30_000 });
 */
export type ServerBackoff = 'fail-fast' | 'wait';

/**
 * What {@link createFetch} sends on from the caller's admission scope (`withAdmissionScope`, or
 * what an inbound adapter read from a trusted peer): `priority` as `bulwark-priority`, `deadline`
 * as `bulwark-deadline` (the ms left). A field left out is not sent.
 * @example
 * createFetch({ propagate: { priority: true } }); // the class only, no deadline
 */
export interface FetchPropagateOptions {
  /**
   * Send the scope's traffic class (a call without one is sent as none, which servers read as
   * `degraded`). A pause a server asks for (`Retry-After`) in answer to a call then holds for calls
   * of its class and below only, so a server shedding `sheddable` calls does not hold back
   * `critical` ones. @default false
   */
  readonly priority?: boolean;
  /**
   * Send the scope's remaining deadline, and hold the call to it: a call whose deadline has passed
   * rejects with `DeadlineExceededError` before sending; one still running when it passes is
   * aborted with it (retries and waits included). @default false
   */
  readonly deadline?: boolean;
}

/**
 * Options of {@link createFetch}; every one is optional.
 * @example
 * const options: CreateFetchOptions = { endpoints: ['http://a:8080', 'http://b:8080'], attemptTimeoutMs: 2_000 };
 */
export interface CreateFetchOptions {
  /**
   * Base URLs of one logical service, primary first. Requests then take a path (`f('/users')`)
   * and go to the first endpoint whose breaker admits them; without it, requests take absolute
   * URLs and each origin gets its own breaker. @default none
   */
  readonly endpoints?: readonly (string | URL)[];
  /** Limit on each attempt, until the response headers arrive, in ms; `false` for none. @default 10000 */
  readonly attemptTimeoutMs?: number | false;
  /** Limit on the whole call — attempts and waits — in ms; `false` for none. @default false */
  readonly timeoutMs?: number | false;
  /** Retries of failed attempts; `false` never retries. @default { maxAttempts: 3 } */
  readonly retry?: FetchRetryOptions | false;
  /** Statuses that count as a failed attempt (retried; 5xx also counted by the breaker). @default [408, 429, 500, 502, 503, 504] */
  readonly retryOn?: readonly number[];
  /** One breaker per origin (per endpoint); `false` for none. @default { breaker: consecutive(5), halfOpenAfterMs: 10000 } */
  readonly circuitBreaker?: FetchCircuitBreakerOptions | false;
  /**
   * When an origin answers a failed status with `Retry-After` (or `RateLimit`), every call to it
   * through this fetch honours the pause: `'fail-fast'` rejects with {@link RetryAfterError}
   * until it ends, `'wait'` waits it out (also a pause longer than `retry.maxDelayMs`).
   * @default 'fail-fast'
   */
  readonly serverBackoff?: ServerBackoff;
  /** Most origins that keep state (a breaker, a pause), without `endpoints`; the least recently used idle one goes first. @default 100 */
  readonly maxOrigins?: number;
  /**
   * Let a request that is repeatable only through its `Idempotency-Key` (a POST or PATCH) be
   * retried on another endpoint after it may have reached one — only when every endpoint shares
   * one idempotency store. Otherwise it moves only when it provably never left (connection
   * refused, DNS failure). @default false
   */
  readonly failoverKeyedRequests?: boolean;
  /**
   * One adaptive throttle per origin (per endpoint), inside its breaker: attempts to an origin
   * that has lately refused most of them fail locally with `ThrottledError` (`true`: the
   * defaults). Counted as refused: 429 and 5xx among `retryOn`, network errors, attempt timeouts.
   * None by default.
   */
  readonly adaptiveThrottle?: FetchAdaptiveThrottleOptions | boolean;
  /** Hedge slow GET, HEAD and OPTIONS requests. No hedging by default. */
  readonly hedge?: FetchHedgeOptions;
  /** Take units from a rate limiter or quota before each attempt. None by default. */
  readonly rateLimit?: FetchRateLimitOptions;
  /** Pace attempts to the rate each origin advertises (or AIMD on its 429s). Off by default. */
  readonly pacing?: FetchPacingOptions;
  /**
   * Propagate the caller's traffic class and remaining deadline from its admission scope as
   * `bulwark-priority` and `bulwark-deadline` headers (`true`: both), and hold each call to that
   * deadline. Off by default: only send them to services that trust this one. @default false
   */
  readonly propagate?: boolean | FetchPropagateOptions;
  /**
   * Inject faults into each attempt, before the real request: a `faultInjection()` policy (to
   * switch it at run time with `policy.enabled`), or options of one. None by default.
   */
  readonly faultInjection?: FaultInjectionPolicy<Response> | FetchFaultInjectionOptions;
  /** The `fetch` to call. @default globalThis.fetch, read at each call */
  readonly fetch?: typeof globalThis.fetch;
  /** Name in events and telemetry; breakers are named `<name> <origin>`. @default 'fetch' */
  readonly name?: string;
  /** Time source of the policies (inject a ManualClock in tests). @default systemClock */
  readonly clock?: Clock;
}

/**
 * Why a request went to another endpoint than the one before it.
 * @example
 * f.onFailover(({ reason }) => { if (reason === 'circuit-open') alertOnCall(); });
 */
export type FailoverReason = 'circuit-open' | 'failure' | 'hedge' | 'server-backoff';

/**
 * Payload of {@link ResilientFetch.onFailover} and of `bulwark:fetch:failover`.
 * @example
 * f.onFailover(({ from, to, reason }) => console.log(`${from} -> ${to} (${reason})`));
 */
export interface FailoverEvent {
  /** The fetch's `name`. */
  readonly policy: string;
  /** Origin of the endpoint the call was on (the primary, for a call's first attempt). */
  readonly from: string;
  /** Origin of the endpoint the attempt goes to. */
  readonly to: string;
  /**
   * `'circuit-open'`: `from`'s breaker turned the attempt away; `'failure'`: the call's previous
   * attempt failed on `from`; `'hedge'`: a hedge, while the attempt on `from` still runs;
   * `'server-backoff'`: `from` is inside a pause its server asked for (`Retry-After`).
   */
  readonly reason: FailoverReason;
}

/**
 * A `fetch` with a resilience pipeline, built by {@link createFetch}. Call it as you call `fetch`.
 * @example
 * const f = createFetch({ retry: { maxAttempts: 3 } });
 * const res = await f('http://127.0.0.1:8080/health');
 */
export interface ResilientFetch {
  (input: FetchInput, init?: FetchInit): Promise<Response>;
  /** The `name` option. */
  readonly name: string;
  /** The endpoints' base URLs, primary first (empty without `endpoints`). */
  readonly endpoints: readonly string[];
  /** The breaker of an origin (an endpoint's, or one seen in a request), if it has one. */
  circuitBreaker(origin: string | URL): CircuitBreakerPolicy | undefined;
  /** The adaptive throttle of an origin, with the `adaptiveThrottle` option, once the origin has been used. */
  adaptiveThrottle(origin: string | URL): AdaptiveThrottlePolicy | undefined;
  /** Subscribes to retries (the `error` of a retried status is an {@link HttpStatusError}). */
  readonly onRetry: EventSubscriber<RetryEvent>;
  /** Subscribes to failovers from one endpoint to another. */
  readonly onFailover: EventSubscriber<FailoverEvent>;
}
