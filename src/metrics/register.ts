import { subscribe, type TracingChannelSubscribers, unsubscribe } from 'node:diagnostics_channel';
import { Counter, Gauge, Histogram, type Metric, type Registry, type RegistryContentType } from 'prom-client';
import { type CircuitState, channelNames, executeChannel, type ExecuteMessage } from '../core/diagnostics.js';
import { type Disposable, toDisposable } from '../core/events.js';
import { checkOptions, countOption, show } from '../core/validate.js';
import { admissionMetrics, admissionOption, type ObservedAdmission } from './admission.js';
import { labelCap } from './label-cap.js';
import { outcomeOf } from './outcome.js';
import { forgetPolicies } from './retire.js';

/**
 * What the breaker-state gauge reads from a breaker at scrape time: its name and its state. A
 * `CircuitBreakerPolicy` (from `circuitBreaker()`, or `createFetch(...).circuitBreaker(origin)`)
 * has both, and so has an opossum breaker wrapped by `fromOpossum` from `bulwark/opossum`. A
 * state other than `'closed'`, `'open'`, `'half-open'` or `'isolated'` (a wrapped opossum
 * breaker's `'shutdown'`) leaves the gauge at the last state it showed.
 * @example
 * const observed: ObservedBreaker = circuitBreaker({ name: 'payments' });
 */
export interface ObservedBreaker {
  readonly name: string;
  readonly state: CircuitState | (string & {});
}

/**
 * Options of {@link registerMetrics}.
 * @example
 * const options: MetricsOptions = { prefix: 'shop_bulwark_', circuitBreakers: [paymentsBreaker] };
 */
export interface MetricsOptions {
  /**
   * Put in front of every metric name; include the separator (`'shop_'`, not `'shop'`). Letters,
   * digits and underscores, not starting with a digit, or `''`.
   * @default 'bulwark_'
   */
  readonly prefix?: string;
  /**
   * Upper bounds of the execution-duration histogram's buckets, in seconds (Prometheus' base
   * unit), increasing; `+Inf` is added for you.
   * @default [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30]
   */
  readonly durationBuckets?: readonly number[];
  /**
   * Breakers whose `state` the `circuit_state` gauge reads at every scrape (iterated again at
   * each scrape, so a `Set` you add to later is followed). Breakers not listed are shown in the
   * last state seen on the `bulwark:circuit:state` channel, once they have changed state or
   * rejected a call.
   * @default none
   */
  readonly circuitBreakers?: Iterable<ObservedBreaker>;
  /**
   * Admission controllers (or `adaptiveConcurrency` policies) whose limit, permits in flight and
   * queue the `admission_*` gauges read at every scrape (iterated again at each scrape). Without
   * them, the limit gauge follows `bulwark:admission:limit` and in flight and queued stay empty.
   * @default none
   */
  readonly admission?: Iterable<ObservedAdmission>;
  /**
   * Hard cap on the distinct values of each label (`policy`, `check`, `store`, and every other
   * label) over all of this registration's metrics: once a label has held this many values, any
   * new value is recorded as `"_other"`, so the number of series stays bounded however many
   * policies (for example fetch's per-origin breakers) come and go. A whole number from 1 to 10,000.
   * @default 100
   */
  readonly maxLabelValues?: number;
}

/**
 * What {@link registerMetrics} returns: disposing it unsubscribes from every channel and removes
 * its metrics from the registry (it may be disposed more than once).
 * @example
 * using registration = registerMetrics(registry);
 */
export interface MetricsRegistration extends Disposable {
  /** The names of the metrics this registration added to the registry. */
  readonly metricNames: readonly string[];
  /** Unsubscribes and unregisters; later calls do nothing. */
  dispose(): void;
}

const OWNER = 'registerMetrics';
const KEYS = ['prefix', 'durationBuckets', 'circuitBreakers', 'admission', 'maxLabelValues'] as const;

/** The default of {@link MetricsOptions.maxLabelValues}. */
const DEFAULT_MAX_LABEL_VALUES = 100;

/** Histogram buckets for calls to other services: 1 ms to 30 s. */
const DEFAULT_BUCKETS: readonly number[] = Object.freeze([
  0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30,
]);

const STATES: readonly CircuitState[] = ['closed', 'open', 'half-open', 'isolated'];
const HEALTH_STATUSES = ['pass', 'warn', 'fail'] as const;

/** A label value from a channel message: the string itself, or `'unknown'` for anything else. */
function label(value: unknown): string {
  return typeof value === 'string' && value.length > 0 ? value : 'unknown';
}

function isRegistry(value: unknown): value is Registry<RegistryContentType> {
  if (typeof value !== 'object' || value === null) return false;
  const r = value as Record<string, unknown>;
  return (
    typeof r.registerMetric === 'function' &&
    typeof r.getSingleMetric === 'function' &&
    typeof r.removeSingleMetric === 'function' &&
    typeof r.metrics === 'function'
  );
}

function prefixOption(value: unknown): string {
  if (value === undefined) return 'bulwark_';
  if (typeof value !== 'string') {
    throw new TypeError(`${OWNER}: option "prefix" must be a string, got ${show(value)}`);
  }
  // Colons are left to recording rules, as Prometheus' naming guide asks of exporters.
  if (value !== '' && !/^[A-Za-z_][A-Za-z0-9_]*$/.test(value)) {
    throw new RangeError(
      `${OWNER}: option "prefix" must hold only letters, digits and underscores and not start with a digit, got ${show(value)}`,
    );
  }
  return value;
}

function bucketsOption(value: unknown): number[] {
  if (value === undefined) return [...DEFAULT_BUCKETS];
  if (!Array.isArray(value)) {
    throw new TypeError(`${OWNER}: option "durationBuckets" must be an array of seconds, got ${show(value)}`);
  }
  if (value.length === 0) {
    throw new RangeError(`${OWNER}: option "durationBuckets" must hold at least one bucket, got []`);
  }
  let previous = 0;
  for (let i = 0; i < value.length; i++) {
    const b: unknown = value[i];
    if (typeof b !== 'number') {
      throw new TypeError(`${OWNER}: option "durationBuckets[${i}]" must be a number of seconds, got ${show(b)}`);
    }
    if (!Number.isFinite(b) || b <= 0) {
      throw new RangeError(`${OWNER}: option "durationBuckets[${i}]" must be a finite number of seconds above 0, got ${show(b)}`);
    }
    if (b <= previous) {
      throw new RangeError(
        `${OWNER}: option "durationBuckets" must be strictly increasing, got ${show(b)} after ${show(previous)} at index ${i}`,
      );
    }
    previous = b;
  }
  return [...(value as number[])];
}

function breakersOption(value: unknown): Iterable<ObservedBreaker> | undefined {
  if (value === undefined) return undefined;
  if (
    typeof value !== 'object' ||
    value === null ||
    typeof (value as { [Symbol.iterator]?: unknown })[Symbol.iterator] !== 'function'
  ) {
    throw new TypeError(`${OWNER}: option "circuitBreakers" must be an iterable of circuit breakers, got ${show(value)}`);
  }
  const iterable = value as Iterable<unknown>;
  // A one-shot iterator (a generator, `map.values()`) would be empty at the second scrape: keep
  // what it yields now. A collection (array, Set) is kept as given and read again at each scrape.
  const oneShot = (iterable as { [Symbol.iterator](): unknown })[Symbol.iterator]() === iterable;
  const items = [...iterable];
  const names = new Set<string>();
  items.forEach((item, i) => {
    const b = item as Partial<ObservedBreaker> | null;
    if (typeof b !== 'object' || b === null || typeof b.name !== 'string' || !('state' in b)) {
      throw new TypeError(
        `${OWNER}: option "circuitBreakers" must hold circuit breakers (objects with "name" and "state"), got ${show(item)} at index ${i}`,
      );
    }
    if (names.has(b.name)) {
      throw new TypeError(
        `${OWNER}: option "circuitBreakers" holds two breakers named ${show(b.name)}: give each breaker its own "name"`,
      );
    }
    names.add(b.name);
  });
  return oneShot ? (items as ObservedBreaker[]) : (iterable as Iterable<ObservedBreaker>);
}

/**
 * Starts recording bulwark's diagnostics channels as Prometheus metrics in `registry` (yours:
 * never prom-client's global one unless you pass it). Labels are bounded: policy, check and store
 * names as you configured them, kinds, outcomes and reasons; never a rate-limit key, a URL path
 * or anything a client sends. Until this is called nothing subscribes, so the policies' hot path
 * pays nothing for telemetry. Throws if `registry` already holds metrics of the same names (a
 * second registration with the same prefix).
 * @example
 * import { Registry } from 'prom-client';
 * const registry = new Registry();
 * const registration = registerMetrics(registry, { circuitBreakers: [paymentsBreaker] });
 * // ... later, on shutdown or in a test:
 * registration.dispose();
 */
export function registerMetrics(registry: Registry<RegistryContentType>, options?: MetricsOptions): MetricsRegistration {
  if (!isRegistry(registry)) {
    throw new TypeError(`${OWNER}: the first argument must be a prom-client Registry, got ${show(registry)}`);
  }
  const o = checkOptions(OWNER, options, KEYS);
  const prefix = prefixOption(o.prefix);
  const buckets = bucketsOption(o.durationBuckets);
  const breakers = breakersOption(o.circuitBreakers);
  const observedAdmission = admissionOption(OWNER, o.admission);
  const cap = labelCap(countOption(OWNER, 'maxLabelValues', o.maxLabelValues, DEFAULT_MAX_LABEL_VALUES, { max: 10_000 }));
  const bound = <L extends Record<string, string>>(labels: L): L => {
    const out: Record<string, string> = {};
    for (const key in labels) out[key] = cap(key, labels[key]!);
    return out as L;
  };
  const name = (suffix: string): string => `${prefix}${suffix}`;

  // The last state each breaker was seen in on the channels, for breakers not given to read.
  const lastSeen = new Map<string, CircuitState>();
  const healthCritical = new Map<string, string>();

  // Created with `registers: []`: prom-client would otherwise add them to its global registry.
  // The state gauge comes first, so that a breaker moving to half-open because the scrape read
  // its state is counted in the transitions of the same scrape.
  const circuitState: Gauge<'policy' | 'state'> = new Gauge({
    name: name('circuit_state'),
    help: 'Circuit breaker state: 1 for the state each breaker is in, 0 for the others (read at scrape time).',
    labelNames: ['policy', 'state'],
    registers: [],
    collect: () => {
      const states = new Map(lastSeen);
      if (breakers !== undefined) {
        const read = new Set<string>();
        for (const b of breakers) {
          // A breaker that cannot be read must not fail the whole scrape: it keeps its last seen state.
          try {
            const name = b.name;
            const state = b.state;
            const policy = typeof name === 'string' ? cap('policy', label(name)) : undefined;
            if (policy !== undefined && (STATES as readonly string[]).includes(state) && !read.has(policy)) {
              read.add(policy);
              states.set(policy, state as CircuitState);
              // Kept for the scrapes at which the state cannot be shown (a shut-down opossum breaker).
              lastSeen.set(policy, state as CircuitState);
            }
          } catch {
            // skipped, see above
          }
        }
      }
      circuitState.reset();
      for (const [policy, current] of states) {
        for (const state of STATES) circuitState.set({ policy, state }, state === current ? 1 : 0);
      }
    },
  });
  const executions = new Counter({
    name: name('executions_total'),
    help: 'Policy executions that settled, by policy kind, policy name and outcome (each layer of a pipeline counts on its own).',
    labelNames: ['kind', 'policy', 'outcome'],
    registers: [],
  });
  const duration = new Histogram({
    name: name('execution_duration_seconds'),
    help: 'How long policy executions took, from entering the policy to settling, in seconds.',
    labelNames: ['kind', 'policy', 'outcome'],
    buckets,
    registers: [],
  });
  const transitions = new Counter({
    name: name('circuit_transitions_total'),
    help: 'Circuit breaker state changes, by breaker, previous state, new state and reason.',
    labelNames: ['policy', 'from', 'to', 'reason'],
    registers: [],
  });
  const circuitRejections = new Counter({
    name: name('circuit_rejections_total'),
    help: 'Calls a circuit breaker rejected without running them, by breaker and the state it was in.',
    labelNames: ['policy', 'state'],
    registers: [],
  });
  const retries = new Counter({
    name: name('retries_total'),
    help: 'Retries: failed attempts that a retry policy is trying again after a delay.',
    labelNames: ['policy'],
    registers: [],
  });
  const giveUps = new Counter({
    name: name('retry_give_ups_total'),
    help: 'Calls a retry policy stopped retrying and rejected, by reason (attempts, unhandled, budget, aborted).',
    labelNames: ['policy', 'reason'],
    registers: [],
  });
  const timeouts = new Counter({
    name: name('timeouts_total'),
    help: 'Calls cut by a timeout policy.',
    labelNames: ['policy'],
    registers: [],
  });
  const bulkheadRejections = new Counter({
    name: name('bulkhead_rejections_total'),
    help: 'Calls a bulkhead rejected because its slots and queue were full (mode="shadow": would have rejected).',
    labelNames: ['policy', 'mode'],
    registers: [],
  });
  const fallbacks = new Counter({
    name: name('fallbacks_total'),
    help: 'Errors a fallback policy replaced with its fallback value.',
    labelNames: ['policy'],
    registers: [],
  });
  const hedges = new Counter({
    name: name('hedges_total'),
    help: 'Extra attempts a hedging policy started, by trigger (delay or failure).',
    labelNames: ['policy', 'trigger'],
    registers: [],
  });
  const decisions = new Counter({
    name: name('ratelimit_decisions_total'),
    help: 'Rate-limit and quota decisions, by kind, limiter, decision (allowed or denied) and the store that decided.',
    labelNames: ['kind', 'policy', 'decision', 'store'],
    registers: [],
  });
  const storeErrors = new Counter({
    name: name('ratelimit_store_errors_total'),
    help: 'Rate-limit store operations that failed or were not sent because the store was unreachable, by store and what they did instead (fallback).',
    labelNames: ['store', 'fallback'],
    registers: [],
  });
  const shed = new Counter({
    name: name('shedding_rejections_total'),
    help: 'Requests turned away by load shedding, by the measure over its threshold.',
    labelNames: ['reason'],
    registers: [],
  });
  const healthStatus = new Gauge({
    name: name('health_check_status'),
    help: 'Health check status: 1 for the status of its latest result, 0 for the others.',
    labelNames: ['check', 'critical', 'status'],
    registers: [],
  });
  const healthDuration = new Gauge({
    name: name('health_check_duration_seconds'),
    help: 'How long the latest run of each health check took, in seconds.',
    labelNames: ['check'],
    registers: [],
  });
  const failovers = new Counter({
    name: name('fetch_failovers_total'),
    help: 'Requests the fetch adapter moved to another endpoint, by client and reason.',
    labelNames: ['policy', 'reason'],
    registers: [],
  });

  const callbackErrors = new Counter({
    name: name('callback_errors_total'),
    help: "Throws from users' functions that no call could reject with (event listeners, a breaker's handle), by policy and function.",
    labelNames: ['policy', 'callback'],
    registers: [],
  });

  const admission = admissionMetrics(name, bound, label, observedAdmission);

  const metrics = [
    circuitState,
    executions,
    duration,
    transitions,
    circuitRejections,
    retries,
    giveUps,
    timeouts,
    bulkheadRejections,
    fallbacks,
    hedges,
    decisions,
    storeErrors,
    shed,
    healthStatus,
    healthDuration,
    failovers,
    callbackErrors,
    ...admission.metrics,
  ] as const;
  const names = metrics.map((m) => (m as unknown as { name: string }).name);
  const taken = names.filter((n) => registry.getSingleMetric(n) !== undefined);
  if (taken.length > 0) {
    throw new Error(
      `${OWNER}: the registry already has a metric named ${show(taken[0])}${taken.length > 1 ? ` (and ${taken.length - 1} more)` : ''}: ` +
        `was registerMetrics already called on it with prefix ${show(prefix)}? Dispose that registration first, or pass another "prefix".`,
    );
  }

  // Execution timing: start and settle are matched on the message object, which the tracing
  // channel hands to every sub-channel of one execution.
  const started = new WeakMap<object, number>();
  const settle = (message: ExecuteMessage, failed: boolean, error: unknown): void => {
    const start = started.get(message);
    if (start === undefined) return; // started before this registration
    started.delete(message);
    const labels = bound({ kind: label(message.kind), policy: label(message.policy), outcome: failed ? outcomeOf(error) : 'success' });
    try {
      executions.inc(labels);
      duration.observe(labels, (performance.now() - start) / 1000);
    } catch {
      // Never out of a channel subscriber: Node rethrows it as the process's uncaught exception,
      // far from the code that ran. (prom-client throws only on label misuse, which is ours.)
    }
  };
  // Only three of the five sub-channels are needed; Node accepts a partial set (its types do not).
  const executeHandlers = {
    start(message: ExecuteMessage): void {
      started.set(message, performance.now());
    },
    end(message: ExecuteMessage): void {
      // `end` carries an error only when the policy threw synchronously: no async events follow.
      const m = message as ExecuteMessage & { error?: unknown };
      if ('error' in m) settle(message, true, m.error);
    },
    asyncEnd(message: ExecuteMessage): void {
      const m = message as ExecuteMessage & { error?: unknown };
      settle(message, 'error' in m, m.error);
    },
  } as unknown as TracingChannelSubscribers<ExecuteMessage>;

  type Message = Record<string, unknown>;
  const handlers: [string, (message: Message) => void][] = [
    [
      channelNames.circuitState,
      (m) => {
        const labels = bound({ policy: label(m.policy), from: label(m.from), to: label(m.to), reason: label(m.reason) });
        if (STATES.includes(m.to as CircuitState)) lastSeen.set(labels.policy, m.to as CircuitState);
        transitions.inc(labels);
      },
    ],
    [
      channelNames.circuitRejected,
      (m) => {
        const labels = bound({ policy: label(m.policy), state: label(m.state) });
        if (STATES.includes(m.state as CircuitState)) lastSeen.set(labels.policy, m.state as CircuitState);
        circuitRejections.inc(labels);
      },
    ],
    [channelNames.retryAttempt, (m) => retries.inc(bound({ policy: label(m.policy) }))],
    [channelNames.retryGiveUp, (m) => giveUps.inc(bound({ policy: label(m.policy), reason: label(m.reason) }))],
    [channelNames.timeout, (m) => timeouts.inc(bound({ policy: label(m.policy) }))],
    [channelNames.bulkheadRejected, (m) => bulkheadRejections.inc(bound({ policy: label(m.policy), mode: m.mode === 'shadow' ? 'shadow' : 'enforce' }))],
    [channelNames.fallback, (m) => fallbacks.inc(bound({ policy: label(m.policy) }))],
    [channelNames.hedge, (m) => hedges.inc(bound({ policy: label(m.policy), trigger: label(m.trigger) }))],
    [
      channelNames.rateLimitDecision,
      (m) => {
        // Only these four fields are read: the message has no key, and nothing else is copied.
        const decision = (m.decision ?? {}) as { allowed?: unknown; store?: unknown };
        decisions.inc(
          bound({
            kind: label(m.kind),
            policy: label(m.policy),
            decision: decision.allowed === true ? 'allowed' : 'denied',
            store: label(decision.store),
          }),
        );
      },
    ],
    [
      channelNames.storeError,
      (m) => {
        // One message may stand for a whole batch of operations sent in one round trip.
        const operations = typeof m.operations === 'number' && Number.isInteger(m.operations) && m.operations > 0 ? m.operations : 1;
        storeErrors.inc(bound({ store: label(m.store), fallback: label(m.fallback) }), operations);
      },
    ],
    [channelNames.sheddingRejected, (m) => shed.inc(bound({ reason: label(m.reason) }))],
    [
      channelNames.healthCheck,
      (m) => {
        const check = cap('check', label(m.check));
        // A message without `critical` (an older copy of bulwark) is read as critical, the checks' default.
        const critical = m.critical === false ? 'false' : 'true';
        const previous = healthCritical.get(check);
        if (previous !== undefined && previous !== critical) {
          for (const status of HEALTH_STATUSES) healthStatus.remove({ check, critical: previous, status });
        }
        healthCritical.set(check, critical);
        for (const status of HEALTH_STATUSES) healthStatus.set({ check, critical, status }, status === m.status ? 1 : 0);
        if (typeof m.durationMs === 'number' && Number.isFinite(m.durationMs)) {
          healthDuration.set({ check }, m.durationMs / 1000);
        }
      },
    ],
    [channelNames.fetchFailover, (m) => failovers.inc(bound({ policy: label(m.policy), reason: label(m.reason) }))],
    [channelNames.callbackError, (m) => callbackErrors.inc(bound({ policy: label(m.policy), callback: label(m.callback) }))],
    // The origin's policies are gone: so go their series (not metrics[0]'s: the state gauge is rebuilt at each scrape).
    [channelNames.fetchOriginEvicted, (m) => forgetPolicies(m.policies, cap, lastSeen, metrics.slice(1))],
    ...admission.handlers,
  ];

  for (const metric of metrics) registry.registerMetric(metric as Metric);
  executeChannel.subscribe(executeHandlers);
  for (const [channel, handler] of handlers) subscribe(channel, handler as (message: unknown) => void);

  const release = toDisposable(() => {
    executeChannel.unsubscribe(executeHandlers);
    for (const [channel, handler] of handlers) unsubscribe(channel, handler as (message: unknown) => void);
    // Only our own metrics: the names may have been taken over since by someone else's.
    metrics.forEach((metric, i) => {
      if (registry.getSingleMetric(names[i]!) === metric) registry.removeSingleMetric(names[i]!);
    });
  });
  return Object.assign(release, { metricNames: Object.freeze(names) });
}
