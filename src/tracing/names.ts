/**
 * Attribute names that `bulwark/otel` sets on spans and span events, in one place. They follow
 * OpenTelemetry's naming rules: namespaced under `bulwark.`, lower snake_case segments, and the
 * semantic-convention name where one exists (`error.type`, `exception.message`). None carries a
 * rate-limit key, a header, a body or an error message, except `exception.message`, which is only
 * set with `recordErrorMessages: true`.
 * @example
 * const retries = spans.flatMap((s) => s.events).filter((e) => e.name === eventNames.retryScheduled);
 * const delays = retries.map((e) => e.attributes?.[attributeNames.retryDelayMs]);
 */
export const attributeNames = {
  /**
   * The policy kind: `retry`, `circuit-breaker`, `timeout`, `bulkhead`, `fallback`, `hedge`,
   * `rate-limit`, `pipeline`, `fault-injection`, `adaptive-throttle`, `opossum`, `bottleneck`.
   */
  policyKind: 'bulwark.policy.kind',
  /** The policy's `name` option (its kind by default). */
  policyName: 'bulwark.policy.name',
  /**
   * On the events of breakers, rate limiters, quotas and load shedders: `enforce`, or `shadow`
   * for a policy in shadow mode, whose rejection or denial only would have happened (the call ran).
   */
  mode: 'bulwark.mode',
  /** Semantic convention: the class of the error (`TimeoutError`, `TypeError`), never its message. */
  errorType: 'error.type',
  /**
   * Semantic convention: on the HTTP client span of a request `bulwark/fetch` sends again, the
   * ordinal of the resend (1 for the first). Set through `resendCountAttributes`.
   */
  httpRequestResendCount: 'http.request.resend_count',
  /** Semantic convention: the error's message. Only with `recordErrorMessages: true`. */
  exceptionMessage: 'exception.message',
  /** The attempt that failed (1 = the first call); on give-up, the attempts made. */
  retryAttempt: 'bulwark.retry.attempt',
  /** How long the retry waits before the next attempt, in ms. */
  retryDelayMs: 'bulwark.retry.delay_ms',
  /** Why a retry stopped: `attempts`, `unhandled`, `budget` or `aborted`. */
  retryGiveUpReason: 'bulwark.retry.give_up_reason',
  /** A breaker's state: the new one on a change, the current one on a rejection. */
  circuitState: 'bulwark.circuit.state',
  /** The state a breaker left. */
  circuitPreviousState: 'bulwark.circuit.previous_state',
  /** Why a breaker changed state: `failures`, `half-open-due`, `probe-failed`, ... */
  circuitReason: 'bulwark.circuit.reason',
  /** `rate-limiter` or `quota`. */
  rateLimitKind: 'bulwark.rate_limit.kind',
  /** Whether the request was admitted. */
  rateLimitAllowed: 'bulwark.rate_limit.allowed',
  /** Units per period. */
  rateLimitLimit: 'bulwark.rate_limit.limit',
  /** Units left after this decision. */
  rateLimitRemaining: 'bulwark.rate_limit.remaining',
  /** Until the allowance is whole again (or the quota period ends), in ms. */
  rateLimitResetMs: 'bulwark.rate_limit.reset_ms',
  /** How long a denied caller should wait, in ms (0 when allowed). */
  rateLimitRetryAfterMs: 'bulwark.rate_limit.retry_after_ms',
  /** Who decided: the store's name (`memory`, `redis`), or for a failed Redis store `local`, `fail-open`, `fail-closed`, `deny-cache`. */
  rateLimitStore: 'bulwark.rate_limit.store',
  /** The timeout that expired, in ms. */
  timeoutLimitMs: 'bulwark.timeout.limit_ms',
  /** Calls running in the bulkhead when it rejected. */
  bulkheadActive: 'bulwark.bulkhead.active',
  /** Calls waiting in the bulkhead when it rejected. */
  bulkheadQueued: 'bulwark.bulkhead.queued',
  /** The attempt being started: 2 for the first hedge. */
  hedgeAttempt: 'bulwark.hedge.attempt',
  /** `delay` (the previous attempt was slow) or `failure` (it failed). */
  hedgeTrigger: 'bulwark.hedge.trigger',
  /** Origin of the endpoint the fetch call was on (as configured in `endpoints`). */
  fetchFromOrigin: 'bulwark.fetch.from_origin',
  /** Origin of the endpoint the attempt goes to. */
  fetchToOrigin: 'bulwark.fetch.to_origin',
  /** `circuit-open`, `failure`, `hedge` or `server-backoff`. */
  fetchFailoverReason: 'bulwark.fetch.failover_reason',
  /** What a load shedder measured: `eventLoopDelay`, `eventLoopUtilization`, `heapUsed`, ... */
  sheddingReason: 'bulwark.shedding.reason',
  /** The measured value. */
  sheddingValue: 'bulwark.shedding.value',
  /** The threshold it passed. */
  sheddingThreshold: 'bulwark.shedding.threshold',
  /** What was injected: `fault`, `outcome`, `latency` (a policy); `status`, `abort`, `latency` (inbound). */
  faultKind: 'bulwark.fault.kind',
  /** The latency injected before it, in ms (0 for none). */
  faultLatencyMs: 'bulwark.fault.latency_ms',
  /** Why an admission controller turned the request away: `limit`, `priority`, `fairness`, `queueTimeout`, `load`, `deadline`. */
  admissionReason: 'bulwark.admission.reason',
  /** `enforce`, or `shadow` when the request was admitted anyway. */
  admissionMode: 'bulwark.admission.mode',
  /** The request's class: `critical`, `degraded`, `best-effort` or `sheddable`. */
  admissionPriority: 'bulwark.admission.priority',
  /** The concurrency limit at the decision. */
  admissionLimit: 'bulwark.admission.limit',
  /** Permits in flight at the decision. */
  admissionInFlight: 'bulwark.admission.in_flight',
  /** The rejection probability an adaptive throttle's call drew against, in [0, 1). */
  throttleProbability: 'bulwark.throttle.probability',
  /** Requests the adaptive throttle counted in its window before the call. */
  throttleRequests: 'bulwark.throttle.requests',
  /** Requests the upstream accepted in the adaptive throttle's window. */
  throttleAccepts: 'bulwark.throttle.accepts',
  /** A fetch pacing decision: `waited`, `rejected` or `learned`. */
  pacingDecision: 'bulwark.pacing.decision',
  /** Ms queued (waited), until a slot (rejected), or the block asked for (learned). */
  pacingWaitMs: 'bulwark.pacing.wait_ms',
  /** The rate paced at, per second (0: not paced). */
  pacingRate: 'bulwark.pacing.rate',
  /** Whether Redis shared the decision. */
  pacingShared: 'bulwark.pacing.shared',

  /** How a reservation ended: `settled`, `cancelled` or `expired`. */
  settleStatus: 'bulwark.settle.status',
  /** The units a reservation reserved. */
  settleEstimate: 'bulwark.settle.estimate',
  /** The units it was settled at (0 for a cancel). */
  settleActual: 'bulwark.settle.actual',
  /** Whether a compound limit admitted (every limit charged) or not (none charged). */
  compoundAllowed: 'bulwark.compound.allowed',
  /** The name of the limit that denied a compound decision. */
  compoundDeniedBy: 'bulwark.compound.denied_by',
} as const;

/**
 * Names of the span events `bulwark/otel` adds to the active span.
 * @example
 * const opened = span.events.some((e) => e.name === eventNames.circuitStateChanged);
 */
export const eventNames = {
  /** A retry policy is about to wait and try again. */
  retryScheduled: 'bulwark.retry.scheduled',
  /** A retry policy gave up; the call fails with the last error. */
  retryGaveUp: 'bulwark.retry.gave_up',
  /** A circuit breaker changed state. */
  circuitStateChanged: 'bulwark.circuit.state_changed',
  /** A circuit breaker turned a call away. */
  circuitRejected: 'bulwark.circuit.rejected',
  /** A rate limiter or quota decided (admitted or denied). */
  rateLimitDecided: 'bulwark.rate_limit.decided',
  /** A timeout expired. */
  timeoutExpired: 'bulwark.timeout.expired',
  /** A bulkhead rejected a call. */
  bulkheadRejected: 'bulwark.bulkhead.rejected',
  /** A hedge started another attempt. */
  hedgeStarted: 'bulwark.hedge.started',
  /** A fallback replaced an error with its value. */
  fallbackUsed: 'bulwark.fallback.used',
  /** The resilient fetch moved a request to another endpoint. */
  fetchFailedOver: 'bulwark.fetch.failed_over',
  /** A load shedder turned a request away. */
  sheddingRejected: 'bulwark.shedding.rejected',
  /** Fault injection injected a fault into the call or request. */
  faultInjected: 'bulwark.fault.injected',
  /** An admission controller turned a request away, or in shadow mode would have. */
  admissionRejected: 'bulwark.admission.rejected',
  /** An adaptive throttle rejected a call locally, or in shadow mode would have. */
  throttleRejected: 'bulwark.throttle.rejected',
  /** The resilient fetch's pacing queued an attempt, refused it, or learned a rate or block from a response. */
  fetchPaced: 'bulwark.fetch.paced',

  /** A reservation was settled or cancelled. */
  reservationSettled: 'bulwark.rate_limit.settled',
  /** A compound limit decided (admitted: every limit charged; denied: none). */
  compoundDecided: 'bulwark.rate_limit.compound_decided',
} as const;
