import type { Context } from '../core/context.js';
import { executeChannel } from '../core/diagnostics.js';
import { ConcurrencyLimitedError, isAbortError, TimeoutError } from '../core/errors.js';
import type { EventSubscriber } from '../core/events.js';
import { callFunction, type ExecuteOptions, invokeTraced, PolicyBase, type PolicyFunction, rootContext, runSymbol, whileCallerWaits } from '../core/policy.js';
import { checkOptions, functionOption, show } from '../core/validate.js';
import { ADMITTED, type Admission, AdmissionController, type AdmissionControllerOptions, type AdmissionDecisionEvent, type AdmissionLimitEvent } from './controller.js';
import { DEFAULT_PRIORITY_LEVEL, parsePriority, type Priority, type PriorityLevel, priorityLevel } from './priority.js';
import { type AdmissionScope, currentAdmissionScope } from './scope.js';
import type { AdmissionMode, AdmissionSnapshot, Permit } from './types.js';

/** Options of {@link adaptiveConcurrency}: an admission controller's, and how to classify a call. */
export interface AdaptiveConcurrencyOptions extends AdmissionControllerOptions {
  /** The call's class, or a function giving it per call. @default the admission scope's priority, else 'degraded' */
  readonly priority?: Priority | (() => Priority);
  /** The call's tenant, for fairness inside its class. @default the admission scope's tenant */
  readonly tenant?: string | (() => string | undefined);
  /** Which errors tell the limit that the dependency is overloaded; others are ignored. @default TimeoutError and aborts */
  readonly isDropped?: (error: unknown) => boolean;
}

const keys = ['name', 'limit', 'maxQueue', 'maxWaitMs', 'queueFrom', 'mode', 'loadSignal', 'fairness', 'clock', 'priority', 'tenant', 'isDropped'] as const;
const controllerKeys = new Set<string>(['name', 'limit', 'maxQueue', 'maxWaitMs', 'queueFrom', 'mode', 'loadSignal', 'fairness', 'clock']);

function timedOutOrAborted(error: unknown): boolean {
  return error instanceof TimeoutError || isAbortError(error);
}

/**
 * Limits the calls in flight to a dependency to what it can take, finding the limit from their
 * latency (Gradient2 by default): an outbound face of the admission controller. A call over the
 * limit, or of a class being shed, rejects at once with `ConcurrencyLimitedError`. Built by
 * {@link adaptiveConcurrency}.
 */
export class AdaptiveConcurrencyPolicy extends PolicyBase {
  readonly kind = 'adaptive-concurrency';
  readonly name: string;
  /** The decision this policy runs on (its limit, queue and shedding). */
  readonly controller: AdmissionController;
  /** Subscribes to rejections (and in shadow mode, would-be rejections). */
  readonly onDecision: EventSubscriber<AdmissionDecisionEvent>;
  /** Subscribes to changes of the limit. */
  readonly onLimitChange: EventSubscriber<AdmissionLimitEvent>;

  private readonly fixedLevel: PriorityLevel | undefined;
  private readonly priorityOf: (() => Priority) | undefined;
  private readonly fixedTenant: string | undefined;
  private readonly tenantOf: (() => string | undefined) | undefined;
  private readonly isDropped: (error: unknown) => boolean;
  /** No class and no tenant option: the closed path applies to calls outside an admission scope. */
  private readonly plain: boolean;

  constructor(options?: AdaptiveConcurrencyOptions) {
    super();
    const owner = 'adaptiveConcurrency';
    const o = checkOptions(owner, options, keys);
    const controllerOptions: Record<string, unknown> = {};
    for (const [key, value] of Object.entries(o)) if (controllerKeys.has(key)) controllerOptions[key] = value;
    controllerOptions.name ??= 'adaptive-concurrency';
    this.controller = new AdmissionController(controllerOptions as AdmissionControllerOptions);
    this.name = this.controller.name;
    if (typeof o.priority === 'function') this.priorityOf = o.priority;
    else if (o.priority !== undefined) this.fixedLevel = priorityLevel(owner, 'option "priority"', o.priority);
    if (typeof o.tenant === 'function') this.tenantOf = o.tenant;
    else if (o.tenant !== undefined) {
      if (typeof o.tenant !== 'string') throw new TypeError(`${owner}: option "tenant" must be a string or a function, got ${show(o.tenant)}`);
      this.fixedTenant = o.tenant;
    }
    this.isDropped = functionOption(owner, 'isDropped', o.isDropped, timedOutOrAborted);
    this.plain = o.priority === undefined && o.tenant === undefined;
    this.onDecision = this.controller.onDecision;
    this.onLimitChange = this.controller.onLimitChange;
  }

  /** `'enforce'` or `'shadow'`; switchable at run time, state is kept. */
  get mode(): AdmissionMode {
    return this.controller.mode;
  }

  set mode(mode: AdmissionMode) {
    this.controller.mode = mode;
  }

  /** The concurrency limit now. */
  get limit(): number {
    return this.controller.limit;
  }

  /** Calls running and counted against the limit. */
  get inFlight(): number {
    return this.controller.inFlight;
  }

  /** A read-only view of the state. */
  snapshot(): AdmissionSnapshot {
    return this.controller.snapshot();
  }

  // PolicyBase's execute(), copied so that `this[runSymbol]` sees this class alone (see PolicyBase).
  override execute<T>(fn: PolicyFunction<T>, options?: ExecuteOptions): Promise<T> {
    const context = rootContext(fn, options);
    if (context instanceof Promise) return context;
    return whileCallerWaits(context, executeChannel.hasSubscribers ? invokeTraced(this, fn, context) : this[runSymbol](fn, context));
  }

  [runSymbol]<T>(fn: PolicyFunction<T>, context: Context): Promise<T> {
    // The closed path, kept small so that it inlines: no class or tenant option and no admission
    // scope (the default class, no tenant), a slot free, nothing being shed, the clock not read.
    if (this.plain && currentAdmissionScope() === undefined && this.controller.admitUntimed(DEFAULT_PRIORITY_LEVEL)) {
      const p = callFunction(fn, context);
      p.then(this.succeededDefault, this.failedDefault);
      return p;
    }
    return this.decide(fn, context);
  }

  private decide<T>(fn: PolicyFunction<T>, context: Context): Promise<T> {
    let level: PriorityLevel;
    let tenant: string | undefined;
    try {
      const scope = this.fixedLevel === undefined || this.fixedTenant === undefined ? currentAdmissionScope() : undefined;
      level = this.level(scope);
      tenant = this.tenant(scope);
    } catch (err) {
      return Promise.reject(err);
    }
    const c = this.controller;
    if (tenant === undefined && c.admitUntimed(level)) {
      // As above, for a class or tenant given by an option or the scope.
      const p = callFunction(fn, context);
      p.then(this.succeeded[level], this.failed[level]);
      return p;
    }
    const admission = c.decideFor(level, tenant, c.maxQueue > 0, context.abortable(), true);
    if (admission === ADMITTED) {
      // The hot path: no permit, and handlers made once per class.
      const p = callFunction(fn, context);
      p.then(this.succeeded[level], this.failed[level]);
      return p;
    }
    if (admission instanceof Promise) return admission.then((a) => this.run(a, fn, context));
    return this.run(admission, fn, context);
  }

  private readonly succeeded = ([0, 1, 2, 3] as const).map((level) => () => this.controller.exit(level, 'success'));
  private readonly failed = ([0, 1, 2, 3] as const).map((level) => (error: unknown) => this.controller.exit(level, this.dropped(error) ? 'dropped' : 'ignore'));
  private readonly succeededDefault = this.succeeded[DEFAULT_PRIORITY_LEVEL]!;
  private readonly failedDefault = this.failed[DEFAULT_PRIORITY_LEVEL]!;

  private level(scope: AdmissionScope | undefined): PriorityLevel {
    if (this.fixedLevel !== undefined) return this.fixedLevel;
    const value = this.priorityOf === undefined ? scope?.priority : this.priorityOf();
    if (value === undefined) return DEFAULT_PRIORITY_LEVEL;
    const level = parsePriority(value);
    if (level === undefined) {
      // A bad value from the scope or the callback fails this call, never the process.
      throw new TypeError(`adaptiveConcurrency: a priority must be one of 'critical', 'degraded', 'best-effort', 'sheddable' or a level 0–3, got ${show(value)}`);
    }
    return level;
  }

  private tenant(scope: AdmissionScope | undefined): string | undefined {
    if (this.fixedTenant !== undefined) return this.fixedTenant;
    const value = this.tenantOf === undefined ? scope?.tenant : this.tenantOf();
    if (value !== undefined && typeof value !== 'string') throw new TypeError(`adaptiveConcurrency: a tenant must be a string, got ${show(value)}`);
    return value;
  }

  private run<T>(admission: Admission, fn: PolicyFunction<T>, context: Context): Promise<T> {
    if ('reason' in admission) {
      const c = this.controller;
      return Promise.reject(new ConcurrencyLimitedError(admission.reason, c.limit, c.inFlight, admission.retryAfterMs));
    }
    const permit: Permit = admission;
    const p = callFunction(fn, context);
    p.then(
      () => permit.release('success'),
      (error: unknown) => permit.release(this.dropped(error) ? 'dropped' : 'ignore'),
    );
    return p;
  }

  private dropped(error: unknown): boolean {
    try {
      return this.isDropped(error) === true;
    } catch {
      // A predicate that throws cannot judge: the outcome tells the limit nothing.
      return false;
    }
  }
}

/**
 * Builds an adaptive concurrency limit for a dependency: at most `limit` calls in flight, the
 * limit found from their latency (`gradient2()` by default; `vegas()`, `aimd()` or a fixed
 * number). Calls over it, or of a class being shed under overload, reject at once with
 * `ConcurrencyLimitedError`; a short queue (`maxQueue`, `maxWaitMs`) is optional. Timeouts and
 * aborts count as drops; other errors are ignored by the limit.
 * @example
 * const db = adaptiveConcurrency({ name: 'db', limit: gradient2({ maxLimit: 100 }) });
 * const rows = await pipeline(retry(), db, timeout(500)).execute(({ signal }) => query(sql, { signal }));
 */
export function adaptiveConcurrency(options?: AdaptiveConcurrencyOptions): AdaptiveConcurrencyPolicy {
  return new AdaptiveConcurrencyPolicy(options);
}
