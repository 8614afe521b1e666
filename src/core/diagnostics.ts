import diagnosticsChannel from 'node:diagnostics_channel';

/**
 * Every diagnostics channel bulwark publishes on, named in one place. Telemetry (`bulwark/otel`,
 * `bulwark/prometheus`) subscribes to these; nothing is built or published while a channel has
 * no subscribers. Each line below names the message's fields (checked against what the policies
 * publish by test/adapters/metrics/channels.test.ts); their types are exported beside each
 * publisher (`StateChangeEvent`, `RetryEvent`, ...) and, for messages that have no event of
 * their own, here (`CircuitRejectedMessage`, `SheddingRejectedMessage`, `HealthCheckMessage`,
 * `ShutdownPhaseMessage`, `FetchOriginEvictedMessage`).
 * @example
 * import { subscribe } from 'node:diagnostics_channel';
 * subscribe(channelNames.circuitState, (msg) => console.log(msg));
 */
export const channelNames = {
  /** Tracing channel (start/end/asyncStart/asyncEnd/error) around each policy execution: `{ kind, policy }`. */
  execute: 'bulwark:execute',
  /**
   * A circuit breaker changed state: `{ policy, from, to, reason, mode }` (`mode`: `'enforce'` or
   * `'shadow'`; a wrapped opossum breaker always enforces).
   */
  circuitState: 'bulwark:circuit:state',
  /**
   * A circuit breaker rejected a call: `{ policy, state, mode }`; with `mode: 'shadow'` it would
   * have, and ran the call (see `CircuitRejectedMessage`).
   */
  circuitRejected: 'bulwark:circuit:rejected',
  /** A retry policy is about to wait and try again: `{ policy, attempt, delayMs, error, result? }` (`result`: a value `handleResult` retried). */
  retryAttempt: 'bulwark:retry:attempt',
  /** A retry policy gave up: `{ policy, attempts, reason, error, result? }`. */
  retryGiveUp: 'bulwark:retry:give-up',
  /** A timeout expired: `{ policy, timeoutMs }`. */
  timeout: 'bulwark:timeout:expired',
  /** A bulkhead rejected a call, or in shadow mode would have: `{ policy, active, queued, mode }`. */
  bulkheadRejected: 'bulwark:bulkhead:rejected',
  /** A fallback replaced an error: `{ policy, error }`. */
  fallback: 'bulwark:fallback:used',
  /** A hedge started another attempt: `{ policy, attempt, trigger }` (`trigger`: `'delay' | 'failure'`). */
  hedge: 'bulwark:hedge:attempt',
  /**
   * A rate limiter or quota decided: `{ kind, policy, decision, mode }` (`kind`: `'rate-limiter' | 'quota'`;
   * never the key; `decision.store` says who decided; a denial with `mode: 'shadow'` is one the
   * policy and adapters let through).
   */
  rateLimitDecision: 'bulwark:ratelimit:decision',
  /**
   * A remote store failed and decisions fell back: `{ store, kind, error, fallback, operations, reason? }`
   * (`kind`: `'operations'`, or `'reconnect'` / `'state-lost'` for a forced reconnect or a server
   * that lost its data; `fallback` is the store's `onStoreError`, `'none'` for refunds and resets,
   * which reject, or the kind for the two events; `reason`, on `'state-lost'` only:
   * `'server-changed'` for a new run_id, `'keys-lost'` for a marker key that vanished).
   */
  storeError: 'bulwark:ratelimit:store-error',
  /**
   * A load shedder rejected a request: `{ reason, value, threshold, mode }` (reason:
   * `'eventLoopDelay' | 'eventLoopUtilization' | 'heapUsed' | ...`; with `mode: 'shadow'` the
   * request went on).
   */
  sheddingRejected: 'bulwark:shedding:rejected',
  /** A health check finished: `{ check, status, critical, durationMs, cached }` (never the error's internals). */
  healthCheck: 'bulwark:health:check',
  /** Graceful shutdown moved to a phase: `{ phase, signal }` (`'draining' | 'closing' | 'hooks' | 'exiting'`). */
  shutdownPhase: 'bulwark:health:shutdown',
  /**
   * A user's function threw where no call could reject with it (an event listener, a breaker's
   * `handle`): `{ policy, callback, error }`. With no subscriber, one process warning per policy
   * and callback is emitted instead.
   */
  callbackError: 'bulwark:callback:error',
  /** The fetch adapter moved a request to another endpoint: `{ policy, from, to, reason }` (endpoint origins as configured). */
  fetchFailover: 'bulwark:fetch:failover',
  /**
   * The fetch adapter dropped an origin's state to stay within `maxOrigins`: `{ policy, origin, policies }`
   * (`policies`: the names of the policies that went with it, its breaker's; metrics remove their series).
   */
  fetchOriginEvicted: 'bulwark:fetch:origin-evicted',
  /**
   * The fetch adapter's `pacing` decided: `{ policy, key, decision, waitMs, ratePerSec, shared }`
   * (`decision`: `'waited'` for a slot, `'rejected'` beyond `maxWaitMs`, `'learned'` a rate or block from a response).
   */
  fetchPacing: 'bulwark:fetch:pacing',
  /**
   * An admission controller turned a request away, or in shadow mode would have:
   * `{ policy, mode, reason, priority, limit, inFlight, queued }` (`reason`: `'limit' | 'priority' |
   * 'fairness' | 'queueTimeout' | 'load' | 'deadline'`; `priority`: the class as a level 0–3).
   */
  admissionRejected: 'bulwark:admission:rejected',
  /** An admission controller's concurrency limit changed: `{ policy, from, to }`. */
  admissionLimit: 'bulwark:admission:limit',
  /**
   * A fault-injection policy, or the inbound fault injection, injected a fault: `{ policy, kind, latencyMs }`
   * (`kind`: `'fault'`, `'outcome'` or `'latency'` from the policy; `'status'`, `'abort'` or `'latency'` inbound).
   */
  faultInjected: 'bulwark:chaos:injected',
  /**
   * An adaptive throttle rejected a call locally, or in shadow mode would have:
   * `{ policy, mode, probability, requests, accepts }` (`probability`: the rejection probability
   * drawn against; `requests`, `accepts`: the window's counts before this call).
   */
  throttleRejected: 'bulwark:throttle:rejected',
  /**
   * A compound limit decided: `{ policy, allowed, deniedBy, store }` (`deniedBy`: the name of the
   * limit that denied, undefined when admitted; each limit's own decision is also published on
   * `bulwark:ratelimit:decision`; never the key or tag).
   */
  rateLimitCompound: 'bulwark:ratelimit:compound',
  /**
   * A reservation was settled or cancelled: `{ kind, policy, status, estimate, actual }` (`kind`:
   * `'rate-limiter' | 'quota'`; `status`: `'settled'`, `'cancelled'`, or `'expired'` when its lease
   * had run out first; `actual`: 0 for a cancel). Not published when the store could not take it.
   */
  reservationSettle: 'bulwark:ratelimit:settle',
} as const;

/** The states of a circuit breaker. */
export type CircuitState = 'closed' | 'open' | 'half-open' | 'isolated';

/**
 * Message published on `bulwark:circuit:rejected` when a breaker (or a wrapped opossum breaker)
 * rejects a call without running it.
 * @example
 * subscribe(channelNames.circuitRejected, (m) => console.log((m as CircuitRejectedMessage).state));
 */
export interface CircuitRejectedMessage {
  /** The breaker's name. */
  readonly policy: string;
  /** The state it rejected in: `'open'`, `'half-open'` or `'isolated'`. */
  readonly state: string;
  /**
   * `'shadow'` when the breaker only would have rejected: the call ran. `'enforce'` when it was
   * rejected (always, from a wrapped opossum breaker).
   */
  readonly mode: 'enforce' | 'shadow';
}

/**
 * Message published on `bulwark:shedding:rejected` when a load shedder turns a request away:
 * the measure over its threshold.
 * @example
 * subscribe(channelNames.sheddingRejected, (m) => console.log((m as SheddingRejectedMessage).reason));
 */
export interface SheddingRejectedMessage {
  /** The measure: `'eventLoopDelay'`, `'eventLoopUtilization'`, `'heapUsed'` or `'rss'`. */
  readonly reason: string;
  /** Its latest value, in the threshold's unit. */
  readonly value: number;
  /** The threshold it is over. */
  readonly threshold: number;
  /** `'shadow'` when the shedder only would have turned the request away (it went on), else `'enforce'`. */
  readonly mode: 'enforce' | 'shadow';
}

/**
 * Message published on `bulwark:health:check` when a health check finishes (never the error's
 * internals).
 * @example
 * subscribe(channelNames.healthCheck, (m) => console.log((m as HealthCheckMessage).status));
 */
export interface HealthCheckMessage {
  /** The check's name. */
  readonly check: string;
  /** `'pass'`, `'warn'` or `'fail'`. */
  readonly status: string;
  /** Whether the probes it takes part in fail with it. */
  readonly critical: boolean;
  /** How long the run took, in milliseconds. */
  readonly durationMs: number;
  /** Whether the result came from the check's cache rather than a new run. */
  readonly cached: boolean;
}

/**
 * Message published on `bulwark:health:shutdown` when graceful shutdown moves to a phase.
 * @example
 * subscribe(channelNames.shutdownPhase, (m) => console.log((m as ShutdownPhaseMessage).phase));
 */
export interface ShutdownPhaseMessage {
  /** `'draining'`, `'closing'`, `'hooks'` or `'exiting'`. */
  readonly phase: string;
  /** What started the shutdown: the signal's name, or the trigger given to `shutdown()`. */
  readonly signal: string;
}

/**
 * Message published on `bulwark:fetch:origin-evicted` when `bulwark/fetch` drops the state of the
 * least recently used origin to stay within `maxOrigins`. `bulwark/prometheus` removes the series
 * of the policies named, so series per origin stay as bounded as the origins kept.
 * @example
 * subscribe(channelNames.fetchOriginEvicted, (m) => console.log((m as FetchOriginEvictedMessage).origin));
 */
export interface FetchOriginEvictedMessage {
  /** The fetch's name. */
  readonly policy: string;
  /** The origin dropped (`http://a:8080`). */
  readonly origin: string;
  /** The names of the policies that went with it (its circuit breaker's, when it had one). */
  readonly policies: readonly string[];
}

/**
 * Message published on the `execute` tracing channel (`start`, `end`, `asyncStart`, `asyncEnd`,
 * `error`) around each policy execution.
 * @example
 * tracingChannel(channelNames.execute).subscribe({ start: (m) => console.log((m as ExecuteMessage).policy) });
 */
export interface ExecuteMessage {
  /** The policy kind: `circuit-breaker`, `retry`, `timeout`, `bulkhead`, `fallback`, `hedge`, `rate-limit`, `pipeline`, and for wrapped engines `opossum`, `bottleneck`. */
  readonly kind: string;
  /** The policy's `name` option (defaults to its kind). */
  readonly policy: string;
}

/**
 * Gives `channel` a `hasSubscribers` getter when the running Node has none: `TracingChannel`
 * gained it in Node 20.13 and 22.0, and the policies ask it before every traced execution, so on
 * Node 20.0–20.12 tracing and execution metrics would otherwise be off, silently. Where Node has
 * the getter, the channel is returned untouched (the hot path reads Node's own).
 */
export function withHasSubscribers<C extends object>(channel: C): C & { readonly hasSubscribers: boolean } {
  const c = channel as C & { hasSubscribers?: unknown };
  if (typeof c.hasSubscribers !== 'boolean') {
    const parts = ['start', 'end', 'asyncStart', 'asyncEnd', 'error'].map((name) => (channel as Record<string, { hasSubscribers: boolean }>)[name]!);
    Object.defineProperty(channel, 'hasSubscribers', {
      get: () => parts.some((part) => part.hasSubscribers),
      configurable: true,
    });
  }
  return channel as C & { readonly hasSubscribers: boolean };
}

export const executeChannel = withHasSubscribers(diagnosticsChannel.tracingChannel<ExecuteMessage>(channelNames.execute));
export const circuitStateChannel = diagnosticsChannel.channel(channelNames.circuitState);
export const circuitRejectedChannel = diagnosticsChannel.channel(channelNames.circuitRejected);
export const retryAttemptChannel = diagnosticsChannel.channel(channelNames.retryAttempt);
export const retryGiveUpChannel = diagnosticsChannel.channel(channelNames.retryGiveUp);
export const timeoutChannel = diagnosticsChannel.channel(channelNames.timeout);
export const bulkheadRejectedChannel = diagnosticsChannel.channel(channelNames.bulkheadRejected);
export const fallbackChannel = diagnosticsChannel.channel(channelNames.fallback);
export const hedgeChannel = diagnosticsChannel.channel(channelNames.hedge);
export const sheddingRejectedChannel = diagnosticsChannel.channel(channelNames.sheddingRejected);
export const healthCheckChannel = diagnosticsChannel.channel(channelNames.healthCheck);
export const shutdownPhaseChannel = diagnosticsChannel.channel(channelNames.shutdownPhase);
export const fetchFailoverChannel = diagnosticsChannel.channel(channelNames.fetchFailover);
export const admissionRejectedChannel = diagnosticsChannel.channel(channelNames.admissionRejected);
export const admissionLimitChannel = diagnosticsChannel.channel(channelNames.admissionLimit);
export const fetchOriginEvictedChannel = diagnosticsChannel.channel(channelNames.fetchOriginEvicted);
export const fetchPacingChannel = diagnosticsChannel.channel(channelNames.fetchPacing);
export const faultInjectedChannel = diagnosticsChannel.channel(channelNames.faultInjected);
export const throttleRejectedChannel = diagnosticsChannel.channel(channelNames.throttleRejected);

/**
 * Runs one traced policy execution inside a scope of the subscriber's choosing: `bulwark/otel`
 * uses it to make the execution's span the active one, so that work inside (retried attempts,
 * hedges, outbound requests) nests under it. At most one is installed; it is only consulted when
 * the `execute` tracing channel has subscribers.
 */
export type ExecuteScope = <T>(message: ExecuteMessage, run: () => Promise<T>) => Promise<T>;

/**
 * Where a scope lives: on `globalThis` under a registered symbol, so that every copy of bulwark
 * in a process (the ESM and CommonJS builds, or one per subpath entry) sees the same one, as they
 * see the same named channels. `get` reads it; `set` installs one (or removes it, given
 * `undefined`) and returns the one it replaced.
 */
function globalSlot<T>(name: string): { get(): T | undefined; set(value: T | undefined): T | undefined } {
  const key = Symbol.for(name);
  const holder = globalThis as unknown as Record<symbol, T | undefined>;
  return {
    get: () => holder[key],
    set: (value) => {
      const previous = holder[key];
      if (value === undefined) delete holder[key];
      else holder[key] = value;
      return previous;
    },
  };
}

const executeScopeSlot = globalSlot<ExecuteScope>('bulwark.executeScope');

/** The installed execute scope, if any. */
export function currentExecuteScope(): ExecuteScope | undefined {
  return executeScopeSlot.get();
}

/**
 * Installs `scope` (or removes it, given `undefined`) and returns the one it replaced. For
 * telemetry integrations; see {@link ExecuteScope}.
 */
export function setExecuteScope(scope: ExecuteScope | undefined): ExecuteScope | undefined {
  return executeScopeSlot.set(scope);
}

/**
 * What `bulwark/fetch` hands the send scope for each request it sends: the fetch's name and the
 * ordinal of the resend (0 for a call's first request, 1 for the first one sent again, ...).
 */
export interface SendMessage {
  /** The fetch's name. */
  readonly policy: string;
  /** How many requests this call sent before this one (retries, hedges and failovers alike). */
  readonly resendCount: number;
}

/**
 * Runs one outbound request of `bulwark/fetch` inside a scope of the subscriber's choosing:
 * `bulwark/otel` puts the resend ordinal in the OpenTelemetry context, where the HTTP client
 * span's instrumentation can read it (`http.request.resend_count`). At most one is installed,
 * on `globalThis` like the execute scope.
 */
export type SendScope = <T>(message: SendMessage, run: () => Promise<T>) => Promise<T>;

const sendScopeSlot = globalSlot<SendScope>('bulwark.sendScope');

/** The installed send scope, if any (read before every request `bulwark/fetch` sends). */
export function currentSendScope(): SendScope | undefined {
  return sendScopeSlot.get();
}

/** Installs `scope` (or removes it, given `undefined`) and returns the one it replaced. */
export function setSendScope(scope: SendScope | undefined): SendScope | undefined {
  return sendScopeSlot.set(scope);
}
