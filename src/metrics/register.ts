import { subscribe, type TracingChannelSubscribers, unsubscribe } from 'node:diagnostics_channel';
import { Counter, Gauge, Histogram, type Metric, type Registry, type RegistryContentType } from 'prom-client';
import { type CircuitState, channelNames, executeChannel, type ExecuteMessage } from '../core/diagnostics.js';
import { type Disposable, toDisposable } from '../core/events.js';
import { checkOptions, countOption, show } from '../core/validate.js';
import { admissionMetrics, admissionOption, type ObservedAdmission } from './admission.js';
import { labelCap } from './label-cap.js';
import { outcomeOf } from './outcome.js';
import { bucketsOption, breakersOption, isRegistry, label, modeLabel, type ObservedBreaker, prefixOption } from './options.js';
import { forgetPolicies } from './retire.js';

export type { ObservedBreaker } from './options.js';

const OWNER = 'registerMetrics';
const KEYS = ['prefix', 'durationBuckets', 'circuitBreakers', 'admission', 'maxLabelValues'] as const;

/** The default of {@link MetricsOptions.maxLabelValues}. */
const DEFAULT_MAX_LABEL_VALUES = 100;

const STATES: readonly CircuitState[] = ['closed', 'open', 'half-open', 'isolated'];
const HEALTH_STATUSES = ['pass', 'warn', 'fail'] as const;

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
  const bound = <L extends Record<string, string | undefined>>(labels: L): L => {
    const out: Record<string, string> = {};
    for (const key in labels) out[key] = cap(key, labels[key]!);
    return out as L;
  };
  const name = (suffix: string): string => `${prefix}${suffix}`;

  // The last state each breaker was seen in on the channels, for breakers not given to read.
  const lastSeen = new Map<string, CircuitState>();
  // The breakers last seen in shadow mode (on the channels, or read at a scrape).
  const shadowBreakers = new Set<string>();
  const noteMode = (policy: string, mode: unknown): void => {
    if (mode === 'shadow') shadowBreakers.add(policy);
    else shadowBreakers.delete(policy);
  };
  const healthCritical = new Map<string, string>();

  // Created with `registers: []`: prom-client would otherwise add them to its global registry.
  // The state gauge comes first, so that a breaker moving to half-open because the scrape read
  // its state is counted in the transitions of the same scrape.
  const circuitState: Gauge<'policy' | 'state'> = new Gauge({
    name: name('circuit_state'),
    help: 'Circuit breaker state: 1 for the state each breaker is in, 0 for the others (read at scrape time); mode="shadow" on breakers in shadow mode.',
    labelNames: ['policy', 'state', 'mode'],
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
            const mode = b.mode;
            const policy = typeof name === 'string' ? cap('policy', label(name)) : undefined;
            if (policy !== undefined && (STATES as readonly string[]).includes(state) && !read.has(policy)) {
              read.add(policy);
              states.set(policy, state as CircuitState);
              noteMode(policy, mode);
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
        const mode = modeLabel(shadowBreakers.has(policy) ? 'shadow' : undefined);
        for (const state of STATES) circuitState.set({ policy, state, ...mode }, state === current ? 1 : 0);
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
    help: 'Circuit breaker state changes, by breaker, previous state, new state and reason; mode="shadow" for breakers in shadow mode.',
    labelNames: ['policy', 'from', 'to', 'reason', 'mode'],
    registers: [],
  });
  const circuitRejections = new Counter({
    name: name('circuit_rejections_total'),
    help: 'Calls a circuit breaker rejected without running them, by breaker and the state it was in; mode="shadow": would have rejected, and ran them.',
    labelNames: ['policy', 'state', 'mode'],
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
    help: 'Rate-limit and quota decisions, by kind, limiter, decision (allowed or denied) and the store that decided; mode="shadow": denials let through.',
    labelNames: ['kind', 'policy', 'decision', 'store', 'mode'],
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
    help: 'Requests turned away by load shedding, by the measure over its threshold; mode="shadow": would have been, and went on.',
    labelNames: ['reason', 'mode'],
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

  const faultsInjected = new Counter({
    name: name('fault_injections_total'),
    help: 'Faults a fault-injection policy or the inbound fault injection injected, by policy and kind.',
    labelNames: ['policy', 'kind'],
    registers: [],
  });

  const throttleRejections = new Counter({
    name: name('throttle_rejections_total'),
    help: 'Calls an adaptive throttle rejected locally, by policy; mode="shadow": would have been, and ran.',
    labelNames: ['policy', 'mode'],
    registers: [],
  });

  const pacing = new Counter({
    name: name('fetch_pacing_total'),
    help: 'Pacing decisions of bulwark/fetch, by policy, decision (waited, rejected, learned) and whether Redis shared them.',
    labelNames: ['policy', 'decision', 'shared'],
    registers: [],
  });

  const settles = new Counter({
    name: name('rate_limit_settles_total'),
    help: 'Reservations settled or cancelled, by policy and status (settled, cancelled, expired: the lease had run out first).',
    labelNames: ['policy', 'status'],
    registers: [],
  });

  const compoundDecisions = new Counter({
    name: name('rate_limit_compound_decisions_total'),
    help: 'Compound-limit decisions, by policy, outcome and the limit that denied ("" when admitted).',
    labelNames: ['policy', 'outcome', 'denied_by'],
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
    faultsInjected,
    throttleRejections,
    pacing,

    settles,
    compoundDecisions,
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
        const labels = bound({ policy: label(m.policy), from: label(m.from), to: label(m.to), reason: label(m.reason), ...modeLabel(m.mode) });
        if (STATES.includes(m.to as CircuitState)) lastSeen.set(labels.policy, m.to as CircuitState);
        noteMode(labels.policy, m.mode);
        transitions.inc(labels);
      },
    ],
    [
      channelNames.circuitRejected,
      (m) => {
        const labels = bound({ policy: label(m.policy), state: label(m.state), ...modeLabel(m.mode) });
        if (STATES.includes(m.state as CircuitState)) lastSeen.set(labels.policy, m.state as CircuitState);
        noteMode(labels.policy, m.mode);
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
        // Only these fields are read: the message has no key, and nothing else is copied.
        const decision = (m.decision ?? {}) as { allowed?: unknown; store?: unknown };
        decisions.inc(
          bound({
            kind: label(m.kind),
            policy: label(m.policy),
            decision: decision.allowed === true ? 'allowed' : 'denied',
            store: label(decision.store),
            ...modeLabel(m.mode),
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
    [channelNames.sheddingRejected, (m) => shed.inc(bound({ reason: label(m.reason), ...modeLabel(m.mode) }))],
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
    [channelNames.faultInjected, (m) => faultsInjected.inc(bound({ policy: label(m.policy), kind: label(m.kind) }))],
    [channelNames.throttleRejected, (m) => throttleRejections.inc(bound({ policy: label(m.policy), mode: m.mode === 'shadow' ? 'shadow' : 'enforce' }))],
    [channelNames.fetchPacing, (m) => pacing.inc(bound({ policy: label(m.policy), decision: label(m.decision), shared: m.shared === true ? 'true' : 'false' }))],

    [channelNames.reservationSettle, (m) => settles.inc(bound({ policy: label(m.policy), status: label(m.status) }))],
    [
      channelNames.rateLimitCompound,
      (m) =>
        compoundDecisions.inc(
          bound({ policy: label(m.policy), outcome: m.allowed === true ? 'allowed' : 'denied', denied_by: m.deniedBy === undefined ? '' : label(m.deniedBy) }),
        ),
    ],
    [channelNames.callbackError, (m) => callbackErrors.inc(bound({ policy: label(m.policy), callback: label(m.callback) }))],
    // The origin's policies are gone: so go their series (not metrics[0]'s: the state gauge is rebuilt at each scrape).
    [
      channelNames.fetchOriginEvicted,
      (m) => {
        forgetPolicies(m.policies, cap, lastSeen, metrics.slice(1));
        if (Array.isArray(m.policies)) for (const policy of m.policies) shadowBreakers.delete(policy as string);
      },
    ],
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
