import { circuitBreaker, CircuitBreakerPolicy } from '../../circuit/circuit-breaker.js';
import { systemClock } from '../../core/clock.js';
import { fetchFailoverChannel, fetchOriginEvictedChannel, type FetchOriginEvictedMessage, fetchPacingChannel } from '../../core/diagnostics.js';
import { type Disposable, EventEmitter, type EventSubscriber, toDisposable } from '../../core/events.js';
import { PipelinePolicy } from '../../core/pipeline.js';
import type { Policy } from '../../core/policy.js';
import {
  checkOptions,
  clockOption,
  countOption,
  durationOption,
  enumOption,
  functionOption,
  nameOption,
  show,
} from '../../core/validate.js';
import { hedge, type HedgePolicy } from '../../hedge/hedge.js';
import type { Decider } from '../../ratelimit/rate-limit-policy.js';
import { retry, type RetryEvent, type RetryPolicy } from '../../retry/retry.js';
import { adaptiveThrottle, type AdaptiveThrottlePolicy } from '../../throttle/adaptive-throttle.js';
import { timeout } from '../../timeout/timeout.js';
import { type Endpoint, parseEndpoints } from './endpoints.js';
import { HttpStatusError } from './http-status-error.js';
import { RetryAfterError } from './retry-after-error.js';
import { neverSent, type RequestTraits } from './request-rules.js';
import type {
  CreateFetchOptions,
  FailoverEvent,
  FetchHedgeOptions,
  FetchInit,
  FetchInput,
  ResilientFetch,
  ServerBackoff,
} from './types.js';
import { Call, type Settings, type Target } from './call.js';
import { breakerHandle, discard, retryHandle, throttleAccepts } from './outcomes.js';
import { watchNetworkErrors } from './network-origin.js';
import { pausedUntil, propagateOption } from './propagate.js';
import { faultsOption } from './fault-injection.js';
import { Pacer } from './pacing/pacer.js';
import { RedisPaceStore } from './pacing/redis.js';

const keys = [
  'endpoints',
  'attemptTimeoutMs',
  'timeoutMs',
  'retry',
  'retryOn',
  'circuitBreaker',
  'maxOrigins',
  'serverBackoff',
  'failoverKeyedRequests',
  'adaptiveThrottle',
  'hedge',
  'rateLimit',
  'pacing',
  'propagate',
  'faultInjection',
  'fetch',
  'name',
  'clock',
] as const;
const retryKeys = ['maxAttempts', 'backoff', 'maxDelayMs', 'budget'] as const;
const breakerKeys = ['breaker', 'halfOpenAfterMs', 'halfOpenMaxCalls', 'probeTimeoutMs'] as const;
const hedgeKeys = ['delayMs', 'maxHedges'] as const;
const throttleKeys = ['k', 'windowMs', 'maxRejectionProbability', 'minRequests', 'mode'] as const;
const rateLimitKeys = ['limiter', 'key', 'cost'] as const;
const pacingKeys = ['maxWaitMs', 'key', 'store', 'prefix', 'timeoutMs'] as const;
const owner = 'createFetch';

/** Statuses retried by default: timeouts, rate limits and the server errors a retry can cure. */
const defaultRetryOn: readonly number[] = [408, 429, 500, 502, 503, 504];

/** Internal: the state one `createFetch` keeps (settings, per-origin targets, policies); `Call` runs each call against it. */
export class ResilientFetcher {
  readonly settings: Settings;
  readonly endpoints: readonly Endpoint[];
  readonly endpointTargets: readonly Target[];
  readonly failedOver = new EventEmitter<FailoverEvent>('fetch');
  private readonly origins = new Map<string, Target>();
  /** The most recently used origin's target: the last in `origins`, so a call to it again moves nothing. */
  private newest: Target | undefined;
  private readonly maxOrigins: number;
  private readonly makeBreaker: ((origin: string) => CircuitBreakerPolicy) | undefined;
  private readonly makeThrottle: ((origin: string) => AdaptiveThrottlePolicy) | undefined;
  private readonly retrying: PipelinePolicy | undefined;
  private readonly hedged: PipelinePolicy | undefined;
  private readonly resending: PipelinePolicy | undefined;
  private readonly single: PipelinePolicy | undefined;
  readonly retryPolicies: readonly RetryPolicy[];

  constructor(options: CreateFetchOptions | undefined) {
    const o = checkOptions(owner, options, keys);
    const name = nameOption(owner, o.name, 'fetch');
    // Records where undici's requests fail: a failure after a redirect counts for the origin where
    // it happened (network-origin.ts).
    watchNetworkErrors();
    const clock = clockOption(owner, o.clock, systemClock);
    const fetchImpl =
      o.fetch === undefined ? undefined : functionOption<typeof globalThis.fetch>(owner, 'fetch', o.fetch, globalThis.fetch);

    const retryOn = o.retryOn === undefined ? defaultRetryOn : o.retryOn;
    if (!Array.isArray(retryOn)) {
      throw new TypeError(`${owner}: option "retryOn" must be an array of HTTP statuses, got ${show(retryOn)}`);
    }
    retryOn.forEach((status: unknown, i) => countOption(owner, `retryOn[${i}]`, status, 0, { min: 100, max: 599 }));

    const positive = { exclusiveMin: true };
    const attemptMs =
      o.attemptTimeoutMs === false ? undefined : durationOption(owner, 'attemptTimeoutMs', o.attemptTimeoutMs, 10_000, positive);
    const totalMs =
      o.timeoutMs === false || o.timeoutMs === undefined ? undefined : durationOption(owner, 'timeoutMs', o.timeoutMs, 0, positive);

    // Breakers: validated now by building one, so a bad option throws here and not at the first request.
    if (o.circuitBreaker !== false) {
      const b = checkOptions(`${owner}: option "circuitBreaker"`, o.circuitBreaker, breakerKeys);
      this.makeBreaker = (origin) => circuitBreaker({ ...b, handle: breakerHandle, name: `${name} ${origin}`, clock });
      this.makeBreaker('validation');
    } else {
      this.makeBreaker = undefined;
    }
    // Throttles likewise, one per origin; none unless asked for.
    if (o.adaptiveThrottle !== undefined && o.adaptiveThrottle !== false) {
      const t = o.adaptiveThrottle === true ? {} : checkOptions(`${owner}: option "adaptiveThrottle"`, o.adaptiveThrottle, throttleKeys);
      this.makeThrottle = (origin) => adaptiveThrottle({ ...t, isAccepted: throttleAccepts, name: `${name} ${origin}`, clock });
      this.makeThrottle('validation');
    } else {
      this.makeThrottle = undefined;
    }

    this.endpoints = o.endpoints === undefined ? [] : parseEndpoints(owner, o.endpoints);
    if (o.endpoints !== undefined && o.maxOrigins !== undefined) {
      throw new TypeError(
        `${owner}: option "maxOrigins" applies only without "endpoints" (each endpoint has one breaker), got ${show(o.maxOrigins)}`,
      );
    }
    this.maxOrigins = countOption(owner, 'maxOrigins', o.maxOrigins, 100, { max: 100_000 });
    this.endpointTargets = this.endpoints.map((e) => ({
      origin: e.origin,
      breaker: this.makeBreaker?.(e.origin),
      throttle: this.makeThrottle?.(e.origin),
      pausedUntil: -Infinity,
      active: 0,
      whenIdle: undefined,
    }));
    const serverBackoff = enumOption<ServerBackoff>(owner, 'serverBackoff', o.serverBackoff, ['fail-fast', 'wait'], 'fail-fast');
    const failoverKeyed = o.failoverKeyedRequests ?? false;
    if (typeof failoverKeyed !== 'boolean') {
      throw new TypeError(`${owner}: option "failoverKeyedRequests" must be a boolean, got ${show(failoverKeyed)}`);
    }
    if (o.endpoints === undefined && o.failoverKeyedRequests !== undefined) {
      throw new TypeError(`${owner}: option "failoverKeyedRequests" applies only with "endpoints", got ${show(o.failoverKeyedRequests)}`);
    }

    let rateLimit: Settings['rateLimit'];
    if (o.rateLimit !== undefined) {
      const r = checkOptions(`${owner}: option "rateLimit"`, o.rateLimit, rateLimitKeys);
      const limiter = r.limiter as Decider | undefined;
      if (typeof limiter !== 'object' || limiter === null || typeof limiter.consume !== 'function') {
        throw new TypeError(`${owner}: option "rateLimit.limiter" must be a rate limiter or a quota, got ${show(limiter)}`);
      }
      const key = r.key === undefined ? undefined : functionOption<(url: URL) => string>(owner, 'rateLimit.key', r.key, String);
      const cost = countOption(owner, 'rateLimit.cost', r.cost, 1, { max: Number.MAX_SAFE_INTEGER });
      rateLimit = { limiter, key, cost };
    }

    let pacing: Settings['pacing'];
    if (o.pacing !== undefined) {
      const p = checkOptions(`${owner}: option "pacing"`, o.pacing, pacingKeys);
      const maxWaitMs = durationOption(owner, 'pacing.maxWaitMs', p.maxWaitMs, 5_000);
      const key = p.key === undefined ? undefined : functionOption<(url: URL, headers: Headers) => string>(owner, 'pacing.key', p.key, () => '');
      let store: RedisPaceStore | undefined;
      if (p.store !== undefined) {
        const client = p.store as { defineCommand?: unknown } | null;
        if (typeof client !== 'object' || client === null || typeof client.defineCommand !== 'function') {
          throw new TypeError(`${owner}: option "pacing.store" must be an ioredis Redis or Cluster client, got ${show(p.store)}`);
        }
        const prefix = p.prefix ?? 'bulwark:pacing:';
        if (typeof prefix !== 'string' || /[{}]/.test(prefix) || prefix.length > 128) {
          throw new TypeError(`${owner}: option "pacing.prefix" must be at most 128 characters without "{" or "}", got ${show(p.prefix)}`);
        }
        const timeoutMs = durationOption(owner, 'pacing.timeoutMs', p.timeoutMs, 100, { min: 1 });
        store = new RedisPaceStore(p.store as never, prefix, timeoutMs);
      }
      const publish = (m: unknown): void => {
        if (fetchPacingChannel.hasSubscribers) fetchPacingChannel.publish(m);
      };
      pacing = { pacer: new Pacer({ name, maxWaitMs, clock, store, maxKeys: 10_000, publish }), key };
    }

    let hedgePolicy: HedgePolicy | undefined;
    if (o.hedge !== undefined) {
      if (typeof o.hedge !== 'object' || o.hedge === null) {
        throw new TypeError(`${owner}: option "hedge" must be an object with "delayMs", got ${show(o.hedge)}`);
      }
      const h = checkOptions(`${owner}: option "hedge"`, o.hedge, hedgeKeys);
      hedgePolicy = hedge({ ...(h as FetchHedgeOptions), name, clock });
    }

    const total: Policy<never>[] = totalMs === undefined ? [] : [timeout(totalMs, { name: `${name} total`, clock })];
    // Named after the fetch, so the `bulwark:execute` span around a whole call says which client it is.
    const pipeline = (...policies: Policy<never>[]): PipelinePolicy => new PipelinePolicy(policies, name);
    const policies: RetryPolicy[] = [];
    if (o.retry !== false) {
      const r = checkOptions(`${owner}: option "retry"`, o.retry, retryKeys);
      const all = retry({ ...r, handle: retryHandle, name, clock });
      // A request that may not be repeated is still sent again when the first try provably never
      // left: the connection was refused (then a standby can take it).
      const unsent = retry({ ...r, handle: neverSent, name, clock });
      policies.push(all, unsent);
      // A response given up for a retry is not read: free its connection before the wait.
      const release = ({ error }: RetryEvent): void => {
        if (error instanceof HttpStatusError) discard(error.response);
      };
      all.onRetry(release);
      this.retrying = pipeline(...total, all);
      this.hedged = hedgePolicy === undefined ? undefined : pipeline(...total, all, hedgePolicy);
      this.resending = pipeline(...total, unsent);
    } else {
      this.retrying = this.resending = undefined;
      this.hedged = hedgePolicy === undefined ? undefined : pipeline(...total, hedgePolicy);
    }
    this.retryPolicies = policies;
    this.single = total.length === 0 ? undefined : pipeline(...total);

    this.settings = {
      name,
      fetch: fetchImpl,
      faults: o.faultInjection === undefined ? undefined : faultsOption(owner, o.faultInjection, clock),
      retryOn: new Set(retryOn as number[]),
      attemptTimeout: attemptMs === undefined ? undefined : timeout(attemptMs, { name: `${name} attempt`, clock }),
      totalMs,
      clock,
      maxDelayMs: policies[0]?.maxDelayMs ?? 0,
      serverBackoff,
      failoverKeyed,
      rateLimit,
      pacing,
      propagate: propagateOption(owner, o.propagate),
    };
  }

  /** Whether a request's failed statuses are retried (so a pause it is asked for matters). */
  retriesStatuses(traits: RequestTraits): boolean {
    return traits.retryable && this.retrying !== undefined;
  }

  /** The pipeline a request runs under, from what may safely be repeated. */
  pipelineFor(traits: RequestTraits): PipelinePolicy | undefined {
    if (traits.hedgeable && this.hedged !== undefined) return this.hedged;
    if (traits.retryable && this.retrying !== undefined) return this.retrying;
    if (traits.resendable && this.resending !== undefined) return this.resending;
    return this.single;
  }

  /** The target of an origin, made on first use; the least recently used idle one goes when full. */
  originTarget(origin: string): Target {
    const found = this.origins.get(origin);
    if (found !== undefined) {
      // Map order is the recency order: move it to the back (it is there already when newest).
      if (found !== this.newest) {
        this.origins.delete(origin);
        this.origins.set(origin, found);
        this.newest = found;
      }
      return found;
    }
    if (this.origins.size >= this.maxOrigins) this.evictOne();
    const target: Target = {
      origin,
      breaker: this.makeBreaker?.(origin),
      throttle: this.makeThrottle?.(origin),
      pausedUntil: -Infinity,
      active: 0,
      whenIdle: undefined,
    };
    this.origins.set(origin, target);
    this.newest = target;
    return target;
  }

  /**
   * Drops the least recently used idle origin (no attempt running, breaker closed or none, no
   * pause running), or the least recently used one if none is idle. Bounded by `maxOrigins`.
   */
  private evictOne(): void {
    let victim: Target | undefined;
    const now = this.settings.clock.now();
    for (const target of this.origins.values()) {
      victim ??= target;
      if (target.active === 0 && (target.breaker === undefined || target.breaker.state === 'closed') && pausedUntil(target, undefined) <= now) {
        victim = target;
        break;
      }
    }
    if (victim === undefined) return;
    this.origins.delete(victim.origin);
    if (victim === this.newest) this.newest = undefined;
    const dropped = victim;
    // An attempt still running would record its breaker's series again as it settles: tell
    // telemetry once the last one has.
    if (dropped.active === 0) this.retire(dropped);
    else dropped.whenIdle = () => this.retire(dropped);
  }

  /**
   * Announces that a dropped origin's policies are gone, so metrics remove their series; not if
   * the origin has come back meanwhile (its breaker's name is then a live one again).
   */
  private retire(target: Target): void {
    const policies = [target.breaker?.name, target.throttle?.name].filter((n) => n !== undefined);
    if (policies.length === 0 || this.origins.has(target.origin) || !fetchOriginEvictedChannel.hasSubscribers) return;
    const message: FetchOriginEvictedMessage = { policy: this.settings.name, origin: target.origin, policies };
    fetchOriginEvictedChannel.publish(message);
  }

  /** The state of an origin: an endpoint's, or the per-origin one (made on first use). */
  targetOf(origin: string): Target {
    return this.endpointTargets.find((t) => t.origin === origin) ?? this.originTarget(origin);
  }

  breakerOf(origin: string | URL): CircuitBreakerPolicy | undefined {
    return this.knownTarget(origin)?.breaker;
  }

  throttleOf(origin: string | URL): AdaptiveThrottlePolicy | undefined {
    return this.knownTarget(origin)?.throttle;
  }

  /** The state kept for an origin (an endpoint's, or one seen in a request), without making one. */
  private knownTarget(origin: string | URL): Target | undefined {
    let key: string;
    try {
      key = new URL(origin).origin;
    } catch {
      return undefined;
    }
    return this.endpointTargets.find((t) => t.origin === key) ?? this.origins.get(key);
  }

  announce(event: FailoverEvent): void {
    this.failedOver.emit(event);
    if (fetchFailoverChannel.hasSubscribers) fetchFailoverChannel.publish(event);
  }

  get announcing(): boolean {
    return this.failedOver.active || fetchFailoverChannel.hasSubscribers;
  }

  run(input: FetchInput, init: FetchInit): Promise<Response> {
    let call: Call;
    try {
      call = new Call(this, input, init);
    } catch (error) {
      return Promise.reject(error);
    }
    return call.start();
  }
}

/**
 * Builds a `fetch` that runs every request through a resilience pipeline: an overall timeout,
 * retries with backoff (honouring `Retry-After` and `RateLimit` headers), optional hedging, then
 * per attempt the origin's circuit breaker, an optional rate limit and a per-attempt timeout.
 * With `endpoints`, requests take a path and fail over between the endpoints.
 *
 * Retried: network errors, timeouts and `retryOn` statuses, for GET, HEAD, OPTIONS, PUT and
 * DELETE, or any method with an `Idempotency-Key` header — never a streamed body. A request that
 * may not be repeated is still resent when its connection was refused (it never left). With
 * `endpoints`, a keyed POST or PATCH that may have reached an endpoint is retried there only.
 * When attempts run out on a failed status, the call resolves with the last response (as
 * `fetch` does); network errors, timeouts and open breakers reject, and so does a retried request
 * whose server asks for a pause beyond `retry.maxDelayMs` ({@link RetryAfterError}). Bodies of responses given up
 * are cancelled so their connections are freed.
 * @example
 * const api = createFetch({
 *   endpoints: ['http://primary.internal:8080', 'http://standby.internal:8080'],
 *   attemptTimeoutMs: 2_000,
 *   retry: { maxAttempts: 3 },
 * });
 * const res = await api('/v1/prices?sku=42');
 */
export function createFetch(options?: CreateFetchOptions): ResilientFetch {
  const fetcher = new ResilientFetcher(options);
  const resilient = (input: FetchInput, init?: FetchInit): Promise<Response> => fetcher.run(input, init);
  const onRetry: EventSubscriber<RetryEvent> = (listener) => {
    if (typeof listener !== 'function') throw new TypeError(`listener must be a function, got ${typeof listener}`);
    const subs: Disposable[] = fetcher.retryPolicies.map((p) => p.onRetry(listener));
    return toDisposable(() => subs.forEach((s) => s.dispose()));
  };
  Object.defineProperties(resilient, {
    name: { value: fetcher.settings.name },
    endpoints: { value: Object.freeze(fetcher.endpoints.map((e) => e.base)), enumerable: true },
    circuitBreaker: { value: (origin: string | URL) => fetcher.breakerOf(origin), enumerable: true },
    adaptiveThrottle: { value: (origin: string | URL) => fetcher.throttleOf(origin), enumerable: true },
    onRetry: { value: onRetry, enumerable: true },
    onFailover: { value: fetcher.failedOver.subscribe, enumerable: true },
  });
  return resilient as unknown as ResilientFetch;
}
