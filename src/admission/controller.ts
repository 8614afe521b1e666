import { AsyncResource } from 'node:async_hooks';
import { type Clock, systemClock } from '../core/clock.js';
import { type DeadlineEntry, DeadlineQueue } from '../core/deadline-queue.js';
import { admissionLimitChannel, admissionRejectedChannel } from '../core/diagnostics.js';
import { EventEmitter, type EventSubscriber } from '../core/events.js';
import { offAbort, onAbort } from '../core/shared-abort.js';
import { checkOptions, clockOption, countOption, durationOption, nameOption, show } from '../core/validate.js';
import { registerPolicy } from '../core/registry.js';
import { checkMode } from './mode.js';
import { gradient2, isLimitAlgorithm, type LimitAlgorithm, type LimitEstimator } from './algorithms.js';
import { DEFAULT_PRIORITY_LEVEL, type PriorityLevel, priorityLevel } from './priority.js';
import { Shedding } from './shedding.js';
import type { AdmissionControllerOptions, AdmissionDecisionEvent, AdmissionLimitEvent } from './types.js';
import type { AdmissionMode, AdmissionRejection, AdmissionRejectReason, AdmissionRequest, AdmissionSnapshot, Permit, PermitOutcome } from './types.js';

export type { AdmissionControllerOptions, AdmissionDecisionEvent, AdmissionLimitEvent, LoadSignal } from './types.js';

const keys = ['name', 'limit', 'maxQueue', 'maxWaitMs', 'queueFrom', 'mode', 'loadSignal', 'fairness', 'clock'] as const;

/** Internal: {@link AdmissionController.decideFor}'s answer for a fast admission (no permit). */
export const ADMITTED: unique symbol = Symbol('bulwark.admitted');

/** The outcome of an asynchronous {@link AdmissionController.acquire}. */
export type Admission = Permit | AdmissionRejection;

/** One admitted request. */
class AdmissionPermit implements Permit {
  released = false;
  constructor(
    private readonly owner: AdmissionController,
    readonly startMs: number,
    /** Whether the clock was read at admission: only timed permits measure latency. */
    readonly timed: boolean,
    readonly wouldReject: AdmissionRejectReason | undefined,
    /** Counted against the limit (false for a shadow-mode request that would have been rejected). */
    readonly counted: boolean,
    readonly level: PriorityLevel,
    readonly tenant: string | undefined,
  ) {}

  release(outcome: PermitOutcome): void {
    if (this.released) return;
    this.released = true;
    this.owner.finish(this, outcome);
  }
}

/** A request waiting for a slot: in its class's FIFO and, with `maxWaitMs`, in the deadline queue. */
class Waiter implements DeadlineEntry {
  prev: Waiter | undefined = undefined;
  next: Waiter | undefined = undefined;
  deadline = 0;
  queuePrev: DeadlineEntry | undefined = undefined;
  queueNext: DeadlineEntry | undefined = undefined;
  queued = false;
  scope: AsyncResource | undefined;
  signal: AbortSignal | undefined = undefined;

  constructor(
    private readonly owner: AdmissionController,
    readonly level: PriorityLevel,
    readonly tenant: string | undefined,
    readonly resolve: (admission: Admission) => void,
    readonly reject: (reason: unknown) => void,
  ) {}

  readonly abort = (): void => {
    this.owner.leave(this);
    this.reject(this.signal!.reason);
  };

  expire(): void {
    this.owner.timeOut(this);
  }
}

/**
 * One admission decision for a dependency or a server (DESIGN.md decision 10): a concurrency
 * limit, fixed or found by an algorithm from the latency of released permits; priority shedding
 * (the lowest class goes first, lower classes never take the slots higher classes are about to
 * need); fairness between tenants inside a class; a short priority-ordered queue; shadow mode.
 * Built by {@link admissionController}.
 */
export class AdmissionController {
  readonly kind = 'admission-controller';
  readonly name: string;
  readonly maxQueue: number;
  readonly maxWaitMs: number;
  /** The lowest class that may wait in the queue (0 = sheddable: every class). */
  readonly queueFrom: PriorityLevel;
  /** The algorithm, or undefined for a fixed limit. */
  readonly algorithm: LimitAlgorithm | undefined;
  /** Subscribes to rejections (and in shadow mode, would-be rejections). */
  readonly onDecision: EventSubscriber<AdmissionDecisionEvent>;
  /** Subscribes to changes of the limit. */
  readonly onLimitChange: EventSubscriber<AdmissionLimitEvent>;

  private currentMode: AdmissionMode;
  private currentLimit: number;
  private running = 0;
  private waiting = 0;
  /** See {@link AdmissionController.tick}. */
  private every = 1;
  private countdown = 1;
  private lastNow = -Infinity;
  private readonly estimator: LimitEstimator | undefined;
  private readonly clock: Clock;
  private readonly shedding: Shedding;
  private readonly heads: (Waiter | undefined)[] = [undefined, undefined, undefined, undefined];
  private readonly tails: (Waiter | undefined)[] = [undefined, undefined, undefined, undefined];
  private readonly deadlines: DeadlineQueue | undefined;
  private readonly decided = new EventEmitter<AdmissionDecisionEvent>(() => this.name);
  private readonly limitChanged = new EventEmitter<AdmissionLimitEvent>(() => this.name);

  constructor(options?: AdmissionControllerOptions) {
    const owner = 'admissionController';
    const o = checkOptions(owner, options, keys);
    this.name = nameOption(owner, o.name, 'admission');
    const limit = o.limit ?? gradient2();
    if (typeof limit === 'number') {
      this.currentLimit = countOption(owner, 'limit', limit, 10);
      this.algorithm = undefined;
      this.estimator = undefined;
    } else if (isLimitAlgorithm(limit)) {
      this.algorithm = limit;
      this.estimator = limit.create();
      this.currentLimit = this.estimator.limit;
    } else {
      throw new TypeError(`${owner}: option "limit" must be a whole number or a limit algorithm (gradient2(), vegas(), aimd()), got ${show(limit)}`);
    }
    this.maxQueue = countOption(owner, 'maxQueue', o.maxQueue, 0, { min: 0 });
    this.maxWaitMs = durationOption(owner, 'maxWaitMs', o.maxWaitMs, Infinity, { min: 0, exclusiveMin: true });
    this.queueFrom = o.queueFrom === undefined ? 0 : priorityLevel(owner, 'option "queueFrom"', o.queueFrom);
    this.currentMode = checkMode(owner, 'option "mode"', o.mode);
    const signal = o.loadSignal;
    if (signal !== undefined && (typeof signal !== 'object' || signal === null || typeof signal.check !== 'function')) {
      throw new TypeError(`${owner}: option "loadSignal" must have a check() method (a load shedder), got ${show(signal)}`);
    }
    if (o.fairness !== undefined && typeof o.fairness !== 'boolean') {
      throw new TypeError(`${owner}: option "fairness" must be a boolean, got ${show(o.fairness)}`);
    }
    this.clock = clockOption(owner, o.clock, systemClock);
    this.shedding = new Shedding(signal, o.fairness ?? true);
    this.deadlines = this.maxQueue > 0 && this.maxWaitMs !== Infinity ? new DeadlineQueue(this.clock) : undefined;
    this.onDecision = this.decided.subscribe;
    this.onLimitChange = this.limitChanged.subscribe;
    registerPolicy(this);
  }

  /** `'enforce'` or `'shadow'`; switchable at run time, state is kept. */
  get mode(): AdmissionMode {
    return this.currentMode;
  }

  set mode(mode: AdmissionMode) {
    this.currentMode = checkMode('admissionController', '"mode"', mode, false);
  }

  /** The concurrency limit now. */
  get limit(): number {
    return this.currentLimit;
  }

  /** Permits held and counted against the limit. */
  get inFlight(): number {
    return this.running;
  }

  /** Requests waiting for a slot. */
  get queued(): number {
    return this.waiting;
  }

  /** A read-only view of the state, for metrics, health and the dashboard. */
  snapshot(): AdmissionSnapshot {
    return { name: this.name, mode: this.currentMode, limit: this.currentLimit, inFlight: this.running, queued: this.waiting };
  }

  /**
   * Decides at once, never queueing: a permit (release it exactly once) or a rejection.
   * @example
   * const p = controller.tryAcquire({ priority: 0 });
   * if ('reason' in p) return reply503(p.retryAfterMs);
   */
  tryAcquire(request?: AdmissionRequest): Admission {
    return this.decide(request, false, undefined) as Admission;
  }

  /**
   * Decides on arrival; when only a free slot is missing and the queue has room, waits for one
   * (highest class first, at most `maxWaitMs`). A waiter whose signal aborts leaves at once and
   * the promise rejects with the signal's reason.
   * @example
   * const p = await controller.acquire({ priority: 3, tenant: 'acme' }, req.signal);
   */
  acquire(request?: AdmissionRequest, signal?: AbortSignal): Admission | Promise<Admission> {
    return this.decide(request, true, signal);
  }

  private decide(request: AdmissionRequest | undefined, mayQueue: boolean, signal: AbortSignal | undefined): Admission | Promise<Admission> {
    if (request === undefined) return this.decideFor(DEFAULT_PRIORITY_LEVEL, undefined, mayQueue, signal) as Admission | Promise<Admission>;
    const { level, tenant } = readRequest(request);
    return this.decideFor(level, tenant, mayQueue, signal) as Admission | Promise<Admission>;
  }

  /**
   * Internal: the decision for a checked request (the policy calls it without a request object).
   * With `fast`, an untimed admission of a request without a tenant makes no permit: it answers
   * {@link ADMITTED}, and the caller ends it with {@link AdmissionController.exit} (the
   * `adaptiveConcurrency` hot path allocates nothing per call that way).
   */
  decideFor(
    level: PriorityLevel,
    tenant: string | undefined,
    mayQueue: boolean,
    signal: AbortSignal | undefined,
    fast = false,
  ): Admission | Promise<Admission> | typeof ADMITTED {
    const now = this.tick();
    const limit = this.currentLimit;
    const s = this.shedding;
    s.arrive(now, level);
    let reason: AdmissionRejectReason | undefined = s.judge(level, tenant, this.running, limit);
    if (reason === undefined && this.running >= limit && this.full(level, limit)) {
      if (mayQueue && level >= this.queueFrom && (this.waiting < this.maxQueue || this.evictBelow(level))) {
        // Shadow mode never makes a request wait: one that would have queued runs at once.
        if (this.currentMode === 'shadow') return this.admit(now, undefined, true, level, tenant);
        return this.enqueue(level, tenant, signal);
      }
      reason = 'limit';
      // A refusal holds lower classes back from now on: worth an exact time (not the hot path).
      s.refused(level, now === now ? now : this.clock.now());
    }
    if (reason === undefined) {
      if (fast && now !== now && tenant === undefined) {
        this.running++;
        this.shedding.hold(level, undefined);
        return ADMITTED;
      }
      return this.admit(now, undefined, true, level, tenant);
    }
    this.report(reason, level);
    if (this.currentMode === 'shadow') return this.admit(now, reason, false, level, tenant);
    return { reason, retryAfterMs: s.retryAfterMs(reason) };
  }

  /**
   * Internal: the closed path of `adaptiveConcurrency`. Admits a request of `level` without a
   * tenant when this arrival is not one the clock times, a slot is free and no shedding applies
   * (see {@link Shedding.admitCalm}), making exactly the changes {@link decideFor} would make for it,
   * and answers true; the caller ends it with {@link AdmissionController.exit}. Otherwise it
   * changes nothing and answers false: the caller then asks {@link decideFor}.
   */
  admitUntimed(level: PriorityLevel): boolean {
    const running = this.running;
    const limit = this.currentLimit;
    if (this.countdown <= 1 || running >= limit || !this.shedding.admitCalm(level, running, limit)) return false;
    this.countdown--;
    this.running = running + 1;
    return true;
  }

  private admit(now: number, wouldReject: AdmissionRejectReason | undefined, counted: boolean, level: PriorityLevel, tenant: string | undefined): Permit {
    if (counted) {
      this.running++;
      this.shedding.hold(level, tenant);
    }
    return now === now
      ? new AdmissionPermit(this, now, true, wouldReject, counted, level, tenant)
      : new AdmissionPermit(this, Math.max(0, this.lastNow), false, wouldReject, counted, level, tenant);
  }

  /** Internal: a permit was released. */
  finish(permit: AdmissionPermit, outcome: PermitOutcome): void {
    if (!permit.counted) return;
    const now = permit.timed ? this.clock.now() : NaN;
    this.end(permit.level, permit.tenant, now, now - permit.startMs, outcome);
  }

  /** Internal: ends an admission answered {@link ADMITTED} (untimed, no tenant). */
  exit(level: PriorityLevel, outcome: PermitOutcome): void {
    // end() for an untimed permit without a tenant: no latency to learn from.
    this.shedding.freeUntimed(level);
    const inFlight = this.running--;
    if (outcome !== 'ignore') {
      const e = this.estimator;
      if (e !== undefined && e.sample(NaN, NaN, inFlight, outcome === 'dropped')) this.setLimit(e.limit);
    }
    if (this.waiting > 0) this.drain(NaN);
  }

  private end(level: PriorityLevel, tenant: string | undefined, now: number, rtt: number, outcome: PermitOutcome): void {
    this.shedding.free(level, tenant, outcome === 'ignore' ? NaN : rtt);
    const inFlight = this.running--;
    const e = this.estimator;
    if (e !== undefined && outcome !== 'ignore' && e.sample(now, rtt, inFlight, outcome === 'dropped')) this.setLimit(e.limit);
    if (this.waiting > 0) this.drain(now);
  }

  /**
   * The clock's time for an admission that is timed, else NaN. Reading the clock costs more than
   * the rest of a decision (50–130 ns on common VMs), so at high rates only one admission in
   * `every` (up to 64) is timed: `every` doubles while timed admissions come less than 1 ms apart
   * and halves when they come more than 10 ms apart, so at low rates every permit is timed and
   * the clock is read at most a few thousand times a second. Untimed permits still count for
   * throughput, in flight and drops.
   */
  private tick(): number {
    if (--this.countdown > 0) return NaN;
    const now = this.clock.now();
    const gap = now - this.lastNow;
    if (gap < 1) {
      if (this.every < 64) this.every *= 2;
    } else if (gap > 10 && this.every > 1) {
      this.every /= 2;
    }
    this.countdown = this.every;
    this.lastNow = now;
    return now;
  }

  /**
   * Whether a request of `level` finds no slot: the permits of lower classes are lent to higher
   * ones (a higher class is never turned away while a lower one holds a slot it could take), so a
   * class counts only its own permits and those of the classes above it. In flight may then pass
   * the limit by what lower classes hold, for at most one latency: a lower class is admitted only
   * below the limit, less the higher classes' reserve.
   */
  private full(level: PriorityLevel, limit: number): boolean {
    return this.running - (level === 0 ? 0 : this.shedding.heldBelow(level)) >= limit;
  }

  private setLimit(to: number): void {
    const from = this.currentLimit;
    this.currentLimit = to;
    if (this.limitChanged.active || admissionLimitChannel.hasSubscribers) {
      const event: AdmissionLimitEvent = { policy: this.name, from, to };
      this.limitChanged.emit(event);
      if (admissionLimitChannel.hasSubscribers) admissionLimitChannel.publish(event);
    }
  }

  private report(reason: AdmissionRejectReason, priority: PriorityLevel): void {
    if (!this.decided.active && !admissionRejectedChannel.hasSubscribers) return;
    const event: AdmissionDecisionEvent = {
      policy: this.name,
      mode: this.currentMode,
      reason,
      priority,
      limit: this.currentLimit,
      inFlight: this.running,
      queued: this.waiting,
    };
    this.decided.emit(event);
    if (admissionRejectedChannel.hasSubscribers) admissionRejectedChannel.publish(event);
  }

  private enqueue(level: PriorityLevel, tenant: string | undefined, signal: AbortSignal | undefined): Promise<Admission> {
    if (signal?.aborted) return Promise.reject(signal.reason);
    return new Promise<Admission>((resolve, reject) => {
      const waiter = new Waiter(this, level, tenant, resolve, reject);
      const tail = this.tails[level];
      waiter.prev = tail;
      if (tail === undefined) this.heads[level] = waiter;
      else tail.next = waiter;
      this.tails[level] = waiter;
      this.waiting++;
      if (this.deadlines !== undefined) {
        // Expiry resolves the caller's promise; its continuation runs in the caller's context anyway.
        waiter.deadline = this.clock.now() + this.maxWaitMs;
        this.deadlines.push(waiter);
      }
      if (signal !== undefined) {
        waiter.signal = signal;
        onAbort(signal, waiter.abort);
      }
    });
  }

  /** Makes room for a request of `level` by turning away the newest waiter of a lower class. */
  private evictBelow(level: PriorityLevel): boolean {
    for (let l = 0; l < level; l++) {
      const victim = this.tails[l];
      if (victim === undefined) continue;
      this.leave(victim);
      this.report('priority', victim.level);
      victim.resolve({ reason: 'priority', retryAfterMs: this.shedding.retryAfterMs('priority') });
      return true;
    }
    return false;
  }

  /** Internal: removes a waiter (aborted, expired, evicted or started). */
  leave(waiter: Waiter): void {
    const level = waiter.level;
    if (waiter.prev === undefined) this.heads[level] = waiter.next;
    else waiter.prev.next = waiter.next;
    if (waiter.next === undefined) this.tails[level] = waiter.prev;
    else waiter.next.prev = waiter.prev;
    waiter.prev = waiter.next = undefined;
    this.waiting--;
    this.deadlines?.remove(waiter);
    if (waiter.signal !== undefined) offAbort(waiter.signal, waiter.abort);
  }

  /** Internal: a waiter's `maxWaitMs` passed. */
  timeOut(waiter: Waiter): void {
    this.leave(waiter);
    this.shedding.refused(waiter.level, this.clock.now());
    this.report('queueTimeout', waiter.level);
    waiter.resolve({ reason: 'queueTimeout', retryAfterMs: this.shedding.retryAfterMs('queueTimeout') });
  }

  private drain(now: number): void {
    for (let level = 3; level >= 0; level--) {
      let waiter = this.heads[level];
      while (waiter !== undefined && !this.full(waiter.level, this.currentLimit)) {
        const next = waiter.next;
        this.leave(waiter);
        waiter.resolve(this.admit(now, undefined, true, waiter.level, waiter.tenant));
        waiter = next;
      }
    }
  }
}

function readRequest(request: AdmissionRequest): { level: PriorityLevel; tenant: string | undefined } {
  if (typeof request !== 'object' || request === null) {
    throw new TypeError(`admission: request must be an object, got ${show(request)}`);
  }
  const p = request.priority;
  const level = p === undefined ? DEFAULT_PRIORITY_LEVEL : p;
  if (level !== 0 && level !== 1 && level !== 2 && level !== 3) {
    throw new TypeError(`admission: request "priority" must be a level 0–3, got ${show(p)}`);
  }
  const tenant = request.tenant;
  if (tenant !== undefined && typeof tenant !== 'string') {
    throw new TypeError(`admission: request "tenant" must be a string, got ${show(tenant)}`);
  }
  return { level, tenant };
}

/**
 * Builds an admission controller: the decision shared by the adaptive concurrency limit, priority
 * shedding and the inbound middleware. Each permit is released once with its outcome; the limit
 * learns from their latency.
 * @example
 * const admission = admissionController({ limit: gradient2({ maxLimit: 200 }), maxQueue: 20, maxWaitMs: 50 });
 * const p = admission.tryAcquire({ priority: 3 });
 * if ('reason' in p) throw new Error(p.reason);
 * try { await work(); p.release('success'); } catch (e) { p.release('dropped'); throw e; }
 */
export function admissionController(options?: AdmissionControllerOptions): AdmissionController {
  return new AdmissionController(options);
}
