import diagnosticsChannel from 'node:diagnostics_channel';
import {
  type Attributes,
  context,
  type Span,
  SpanKind,
  SpanStatusCode,
  trace,
  type Tracer,
} from '@opentelemetry/api';
import {
  channelNames,
  currentExecuteScope,
  executeChannel,
  type ExecuteMessage,
  type ExecuteScope,
  currentSendScope,
  type SendScope,
  setExecuteScope,
  setSendScope,
} from '../core/diagnostics.js';
import type { Settings } from './config.js';
import { attributeNames as A, eventNames as E } from './names.js';
import { sendScope } from './resend.js';

/**
 * The class of an error, for `error.type`: its `name` when it says more than `Error` (bulwark's
 * errors, `AbortError`), else its constructor's name. Never the message. `_OTHER` (the semantic
 * conventions' fallback) for a thrown value that is not an object.
 */
export function errorType(error: unknown): string {
  if ((typeof error !== 'object' && typeof error !== 'function') || error === null) return '_OTHER';
  try {
    const name = (error as { name?: unknown }).name;
    if (typeof name === 'string' && name !== '' && name !== 'Error') return name;
    const ctor = (error as { constructor?: unknown }).constructor;
    const ctorName = typeof ctor === 'function' ? ctor.name : undefined;
    if (typeof ctorName === 'string' && ctorName !== '' && ctorName !== 'Object') return ctorName;
    return typeof name === 'string' && name !== '' ? name : '_OTHER';
  } catch {
    // A getter that throws on a hostile object: still a failure worth recording.
    return '_OTHER';
  }
}

/** The error's message, if it has a string one (only read when messages are opted in). */
function messageOf(error: unknown): string | undefined {
  if (typeof error === 'string') return error;
  try {
    const message = (error as { message?: unknown } | null | undefined)?.message;
    return typeof message === 'string' ? message : undefined;
  } catch {
    return undefined;
  }
}

type Message = Record<string, unknown>;

/** The span attributes of a fetch pacing event, and the message field each is read from. */
const pacingFields = [
  [A.policyName, 'policy'],
  [A.pacingDecision, 'decision'],
  [A.pacingWaitMs, 'waitMs'],
  [A.pacingRate, 'ratePerSec'],
  [A.pacingShared, 'shared'],
] as const;

/** The `error` sub-channel of the `bulwark:execute` tracing channel (`tracing:bulwark:execute:error`). */
const executeErrorChannel = executeChannel.error.name as string;

/** Copies a primitive attribute value; anything else (a missing field, an object) is left out. */
function put(attributes: Attributes, key: string, value: unknown): void {
  if (typeof value === 'string' || typeof value === 'boolean' || (typeof value === 'number' && !Number.isNaN(value))) {
    attributes[key] = value;
  }
}

/** The span name of a policy execution: low cardinality, from the policy's kind and `name` option. */
export function spanName(message: ExecuteMessage): string {
  return message.policy === message.kind ? `bulwark ${message.kind}` : `bulwark ${message.kind} ${message.policy}`;
}

/** The span a channel message belongs to: the active one, when it records. */
function recordingSpan(): Span | undefined {
  const span = trace.getActiveSpan();
  return span !== undefined && span.isRecording() ? span : undefined;
}

/**
 * The subscriptions of one enabled instrumentation: channel handlers that turn messages into span
 * events, and the execute scope that wraps policy executions in spans. Subscribes in `start()`,
 * unsubscribes everything in `stop()`.
 */
export class Recorder {
  /** Set by the instrumentation; read per span, so a new tracer provider applies at once. */
  tracer: Tracer;
  private readonly settings: Settings;
  private readonly subscriptions: [name: string, handler: (message: unknown) => void][] = [];
  private readonly executeListener = (): void => {};
  private scopeInstalled = false;
  private previousScope: ExecuteScope | undefined = undefined;
  private previousSendScope: SendScope | undefined = undefined;

  constructor(tracer: Tracer, settings: Settings) {
    this.tracer = tracer;
    this.settings = settings;
  }

  start(): void {
    // Cheap (a context value on resent requests only), and read only by a client span's hook.
    this.previousSendScope = setSendScope(sendScope);
    if (this.settings.events) {
      this.on(channelNames.retryAttempt, this.retryScheduled);
      this.on(channelNames.retryGiveUp, this.retryGaveUp);
      this.on(channelNames.circuitState, this.circuitStateChanged);
      this.on(channelNames.circuitRejected, this.circuitRejected);
      this.on(channelNames.rateLimitDecision, this.rateLimitDecided);
      this.on(channelNames.timeout, this.timeoutExpired);
      this.on(channelNames.bulkheadRejected, this.bulkheadRejected);
      this.on(channelNames.hedge, this.hedgeStarted);
      this.on(channelNames.fallback, this.fallbackUsed);
      this.on(channelNames.fetchFailover, this.fetchFailedOver);
      this.on(channelNames.sheddingRejected, this.sheddingRejected);
      this.on(channelNames.faultInjected, this.faultInjected);
      this.on(channelNames.admissionRejected, this.admissionRejected);
      this.on(channelNames.throttleRejected, this.throttleRejected);
      this.on(channelNames.fetchPacing, this.fetchPaced);

      this.on(channelNames.reservationSettle, this.reservationSettled);
      this.on(channelNames.rateLimitCompound, this.compoundDecided);
    }
    if (this.settings.spanKinds === 'all' || this.settings.spanKinds.size > 0) {
      // The scope is only consulted while `bulwark:execute` has subscribers: one no-op subscriber
      // (on `error`, the rarest of its events) turns it on.
      this.previousScope = setExecuteScope(this.scope);
      this.scopeInstalled = true;
      this.on(executeErrorChannel, this.executeListener);
    }
  }

  stop(): void {
    for (const [name, handler] of this.subscriptions) diagnosticsChannel.unsubscribe(name, handler);
    this.subscriptions.length = 0;
    if (currentSendScope() === sendScope) setSendScope(this.previousSendScope);
    this.previousSendScope = undefined;
    if (this.scopeInstalled) {
      // Put back whatever was there before, unless someone has replaced ours since.
      if (currentExecuteScope() === this.scope) setExecuteScope(this.previousScope);
      this.previousScope = undefined;
      this.scopeInstalled = false;
    }
  }

  private on(name: string, handler: (message: unknown) => void): void {
    diagnosticsChannel.subscribe(name, handler);
    this.subscriptions.push([name, handler]);
  }

  /** `error.type`, and the message when opted in. */
  private errorAttributes(attributes: Attributes, error: unknown): Attributes {
    attributes[A.errorType] = errorType(error);
    if (this.settings.recordErrorMessages) put(attributes, A.exceptionMessage, messageOf(error));
    return attributes;
  }

  // Channel handlers: arrow functions, so the same function can be unsubscribed. Each looks for a
  // recording span first and builds nothing when there is none.

  private readonly retryScheduled = (m: unknown): void => {
    const span = recordingSpan();
    if (span === undefined) return;
    const { policy, attempt, delayMs, error } = m as Message;
    const attributes: Attributes = {};
    put(attributes, A.policyName, policy);
    put(attributes, A.retryAttempt, attempt);
    put(attributes, A.retryDelayMs, delayMs);
    span.addEvent(E.retryScheduled, this.errorAttributes(attributes, error));
  };

  private readonly retryGaveUp = (m: unknown): void => {
    const span = recordingSpan();
    if (span === undefined) return;
    const { policy, attempts, reason, error } = m as Message;
    const attributes: Attributes = {};
    put(attributes, A.policyName, policy);
    put(attributes, A.retryAttempt, attempts);
    put(attributes, A.retryGiveUpReason, reason);
    span.addEvent(E.retryGaveUp, this.errorAttributes(attributes, error));
  };

  private readonly circuitStateChanged = (m: unknown): void => {
    const span = recordingSpan();
    if (span === undefined) return;
    const { policy, from, to, reason, mode } = m as Message;
    const attributes: Attributes = {};
    put(attributes, A.policyName, policy);
    put(attributes, A.circuitPreviousState, from);
    put(attributes, A.circuitState, to);
    put(attributes, A.circuitReason, reason);
    put(attributes, A.mode, mode);
    span.addEvent(E.circuitStateChanged, attributes);
  };

  private readonly circuitRejected = (m: unknown): void => {
    const span = recordingSpan();
    if (span === undefined) return;
    const { policy, state, mode } = m as Message;
    const attributes: Attributes = {};
    put(attributes, A.policyName, policy);
    put(attributes, A.circuitState, state);
    put(attributes, A.mode, mode);
    span.addEvent(E.circuitRejected, attributes);
  };

  private readonly rateLimitDecided = (m: unknown): void => {
    const span = recordingSpan();
    if (span === undefined) return;
    // Never the key: the channel does not carry it, and nothing here would copy it if it did.
    const { kind, policy, decision, mode } = m as Message;
    const d = (typeof decision === 'object' && decision !== null ? decision : {}) as Message;
    const attributes: Attributes = {};
    put(attributes, A.policyName, policy);
    put(attributes, A.rateLimitKind, kind);
    put(attributes, A.rateLimitAllowed, d.allowed);
    put(attributes, A.rateLimitLimit, d.limit);
    put(attributes, A.rateLimitRemaining, d.remaining);
    put(attributes, A.rateLimitResetMs, d.resetMs);
    put(attributes, A.rateLimitRetryAfterMs, d.retryAfterMs);
    put(attributes, A.rateLimitStore, d.store);
    put(attributes, A.mode, mode);
    span.addEvent(E.rateLimitDecided, attributes);
  };

  private readonly timeoutExpired = (m: unknown): void => {
    const span = recordingSpan();
    if (span === undefined) return;
    const { policy, timeoutMs } = m as Message;
    const attributes: Attributes = {};
    put(attributes, A.policyName, policy);
    put(attributes, A.timeoutLimitMs, timeoutMs);
    span.addEvent(E.timeoutExpired, attributes);
  };

  private readonly bulkheadRejected = (m: unknown): void => {
    const span = recordingSpan();
    if (span === undefined) return;
    const { policy, active, queued } = m as Message;
    const attributes: Attributes = {};
    put(attributes, A.policyName, policy);
    put(attributes, A.bulkheadActive, active);
    put(attributes, A.bulkheadQueued, queued);
    span.addEvent(E.bulkheadRejected, attributes);
  };

  private readonly faultInjected = (m: unknown): void => {
    const span = recordingSpan();
    if (span === undefined) return;
    const { policy, kind, latencyMs } = m as Message;
    const attributes: Attributes = {};
    put(attributes, A.policyName, policy);
    put(attributes, A.faultKind, kind);
    put(attributes, A.faultLatencyMs, latencyMs);
    span.addEvent(E.faultInjected, attributes);
  };

  private readonly throttleRejected = (m: unknown): void => {
    const span = recordingSpan();
    if (span === undefined) return;
    const { policy, mode, probability, requests, accepts } = m as Message;
    const attributes: Attributes = {};
    put(attributes, A.policyName, policy);
    put(attributes, A.mode, mode);
    put(attributes, A.throttleProbability, probability);
    put(attributes, A.throttleRequests, requests);
    put(attributes, A.throttleAccepts, accepts);
    span.addEvent(E.throttleRejected, attributes);
  };

  private readonly fetchPaced = (m: unknown): void => {
    const span = recordingSpan();
    if (span === undefined) return;
    const message = m as Message;
    const attributes: Attributes = {};
    for (const [attribute, field] of pacingFields) put(attributes, attribute, message[field]);
    span.addEvent(E.fetchPaced, attributes);
  };

  private readonly reservationSettled = (m: unknown): void => {
    const span = recordingSpan();
    if (span === undefined) return;
    const { policy, status, estimate, actual } = m as Message;
    const attributes: Attributes = {};
    put(attributes, A.policyName, policy);
    put(attributes, A.settleStatus, status);
    put(attributes, A.settleEstimate, estimate);
    put(attributes, A.settleActual, actual);
    span.addEvent(E.reservationSettled, attributes);
  };

  private readonly compoundDecided = (m: unknown): void => {
    const span = recordingSpan();
    if (span === undefined) return;
    const { policy, allowed, deniedBy } = m as Message;
    const attributes: Attributes = {};
    put(attributes, A.policyName, policy);
    put(attributes, A.compoundAllowed, allowed);
    put(attributes, A.compoundDeniedBy, deniedBy);
    span.addEvent(E.compoundDecided, attributes);
  };

  /** Admission classes by level (the channel carries the level, 0 = sheddable … 3 = critical). */
  private static readonly classes = ['sheddable', 'best-effort', 'degraded', 'critical'];

  private readonly admissionRejected = (m: unknown): void => {
    const span = recordingSpan();
    if (span === undefined) return;
    const { policy, reason, mode, priority, limit, inFlight } = m as Message;
    const attributes: Attributes = {};
    put(attributes, A.policyName, policy);
    put(attributes, A.admissionReason, reason);
    put(attributes, A.admissionMode, mode);
    put(attributes, A.admissionPriority, typeof priority === 'number' ? Recorder.classes[priority] : undefined);
    put(attributes, A.admissionLimit, limit);
    put(attributes, A.admissionInFlight, inFlight);
    span.addEvent(E.admissionRejected, attributes);
  };

  private readonly hedgeStarted = (m: unknown): void => {
    const span = recordingSpan();
    if (span === undefined) return;
    const { policy, attempt, trigger } = m as Message;
    const attributes: Attributes = {};
    put(attributes, A.policyName, policy);
    put(attributes, A.hedgeAttempt, attempt);
    put(attributes, A.hedgeTrigger, trigger);
    span.addEvent(E.hedgeStarted, attributes);
  };

  private readonly fallbackUsed = (m: unknown): void => {
    const span = recordingSpan();
    if (span === undefined) return;
    const { policy, error } = m as Message;
    const attributes: Attributes = {};
    put(attributes, A.policyName, policy);
    span.addEvent(E.fallbackUsed, this.errorAttributes(attributes, error));
  };

  private readonly fetchFailedOver = (m: unknown): void => {
    const span = recordingSpan();
    if (span === undefined) return;
    const { policy, from, to, reason } = m as Message;
    const attributes: Attributes = {};
    put(attributes, A.policyName, policy);
    put(attributes, A.fetchFromOrigin, from);
    put(attributes, A.fetchToOrigin, to);
    put(attributes, A.fetchFailoverReason, reason);
    span.addEvent(E.fetchFailedOver, attributes);
  };

  private readonly sheddingRejected = (m: unknown): void => {
    const span = recordingSpan();
    if (span === undefined) return;
    const { reason, value, threshold, mode } = m as Message;
    const attributes: Attributes = {};
    put(attributes, A.sheddingReason, reason);
    put(attributes, A.sheddingValue, value);
    put(attributes, A.sheddingThreshold, threshold);
    put(attributes, A.mode, mode);
    span.addEvent(E.sheddingRejected, attributes);
  };

  /**
   * Runs one policy execution in a span of its own, made the active span inside it, so that the
   * policies, attempts and outbound requests within nest under it. Ends it exactly once, with
   * status ERROR and `error.type` when the execution rejects.
   */
  private readonly scope: ExecuteScope = <T>(message: ExecuteMessage, run: () => Promise<T>): Promise<T> => {
    const kinds = this.settings.spanKinds;
    if (kinds !== 'all' && !kinds.has(message.kind)) return run();
    const parent = context.active();
    const span = this.tracer.startSpan(
      spanName(message),
      { kind: SpanKind.INTERNAL, attributes: { [A.policyKind]: message.kind, [A.policyName]: message.policy } },
      parent,
    );
    let work: Promise<T>;
    try {
      work = context.with(trace.setSpan(parent, span), run);
    } catch (error) {
      // Policies return rejections rather than throw; a foreign one might not.
      this.fail(span, error);
      return Promise.reject(error);
    }
    return work.then(
      (value) => {
        span.end();
        return value;
      },
      (error: unknown) => {
        this.fail(span, error);
        throw error;
      },
    );
  };

  /**
   * Marks a span failed and ends it, as OpenTelemetry's conventions for recording errors ask
   * (semconv 1.40 on): status ERROR and `error.type`, no `exception` event (span events for
   * errors are deprecated; a stack trace belongs in a log, where the caller catches the error).
   * Every span whose execution failed is marked, since each is an operation that failed; the
   * message becomes the status description only when messages are opted in.
   */
  private fail(span: Span, error: unknown): void {
    span.setAttribute(A.errorType, errorType(error));
    const message = this.settings.recordErrorMessages ? messageOf(error) : undefined;
    span.setStatus(message === undefined ? { code: SpanStatusCode.ERROR } : { code: SpanStatusCode.ERROR, message });
    span.end();
  }
}
