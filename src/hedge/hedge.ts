import { AsyncResource } from 'node:async_hooks';
import { type Clock, systemClock } from '../core/clock.js';
import { AbortableContext, Context } from '../core/context.js';
import { DeadlineQueue, type DeadlineEntry } from '../core/deadline-queue.js';
import { executeChannel, hedgeChannel } from '../core/diagnostics.js';
import { EventEmitter, type EventSubscriber } from '../core/events.js';
import { callFunction, type ExecuteOptions, invokeTraced, PolicyBase, type PolicyFunction, rootContext, runSymbol, whileCallerWaits } from '../core/policy.js';
import { handoff, pendingPromise } from '../core/resolver-handoff.js';
import { checkOptions, clockOption, countOption, durationOption, nameOption } from '../core/validate.js';

/** Options of {@link hedge}. */
export interface HedgeOptions {
  /** How long an attempt may run before another is started beside it, in ms. */
  readonly delayMs: number;
  /** Extra attempts at most, besides the first. @default 1 */
  readonly maxHedges?: number;
  /** Name used in events and telemetry. @default 'hedge' */
  readonly name?: string;
  /** Time source. @default systemClock */
  readonly clock?: Clock;
}

/** Payload of {@link HedgePolicy.onHedge} and of `bulwark:hedge:attempt`. */
export interface HedgeEvent {
  readonly policy: string;
  /** The attempt being started: 2 for the first hedge. */
  readonly attempt: number;
  /** Why: the previous attempt was too slow, or it failed. */
  readonly trigger: 'delay' | 'failure';
}

const keys = ['delayMs', 'maxHedges', 'name', 'clock'] as const;

/** Reason given to the signals of attempts that lost the race. */
function lostReason(): DOMException {
  return new DOMException('Another hedged attempt succeeded first', 'AbortError');
}

/**
 * One hedged call, which is also the context of its first attempt and its place in the policy's
 * delay queue: most calls settle before the delay, so a call that never hedges makes one object
 * (besides its promises), and what only a hedge needs (the list of attempts, their contexts) is
 * made when one starts. Every attempt follows the caller's signal itself; those follows share one
 * listener on it (see `onAbort`), so many attempts set off no MaxListeners warning. Fields are
 * assigned in the constructor (not declared with initialisers) to keep it cheap.
 */
class HedgedCall<T> extends AbortableContext implements DeadlineEntry {
  deadline: number;
  queuePrev: DeadlineEntry | undefined;
  queueNext: DeadlineEntry | undefined;
  queued: boolean;
  scope: AsyncResource | undefined;

  /** Every attempt, this first one included: made when the second starts. */
  private attempts: AbortableContext[] | undefined;
  private running: number;
  private hedgesLeft: number;
  private settled: boolean;
  private lastError: unknown;
  private readonly policy: HedgePolicy;
  private readonly fn: PolicyFunction<T>;
  private readonly resolve: (value: T) => void;
  private readonly reject: (error: unknown) => void;
  /** Shared by every attempt: a failure names no attempt. */
  private readonly failedHandler: (error: unknown) => void;

  constructor(policy: HedgePolicy, fn: PolicyFunction<T>, parent: Context) {
    super(parent);
    this.deadline = 0;
    this.queuePrev = undefined;
    this.queueNext = undefined;
    this.queued = false;
    this.scope = undefined;
    this.attempts = undefined;
    this.running = 0;
    this.hedgesLeft = policy.maxHedges;
    this.settled = false;
    this.lastError = undefined;
    this.policy = policy;
    this.fn = fn;
    this.resolve = handoff.resolve as (value: T) => void;
    this.reject = handoff.reject;
    // Bound methods, not arrow functions: V8 enters each new closure through a lazy compile stub
    // on its first call (issue 14 §3); a bound function calls the method's compiled code.
    this.failedHandler = this.failed.bind(this);
  }

  /** Starts the first attempt, in this context. */
  start(): void {
    this.run(this, this.firstWon.bind(this));
  }

  /** The first attempt succeeded (the common case): {@link won} with no closure per call. */
  private firstWon(value: T): void {
    this.won(this, value);
  }

  private launch(): void {
    const attempt = new AbortableContext(this.parent);
    (this.attempts ??= [this]).push(attempt);
    this.run(attempt, (value) => this.won(attempt, value));
  }

  private run(attempt: AbortableContext, won: (value: T) => void): void {
    this.running++;
    callFunction(this.fn, attempt).then(won, this.failedHandler);
    if (this.hedgesLeft > 0 && !this.settled) {
      // A delayed hedge starts from the policy's shared timer, in the context of whichever call
      // armed it: keep this caller's, so the hedged attempt runs in it (its AsyncLocalStorage
      // stores, its trace span). Captured once per call, on the first launch.
      this.scope ??= new AsyncResource('bulwark.hedge');
      this.policy.schedule(this);
    }
  }

  expire(): void {
    this.hedgeNow('delay');
  }

  private hedgeNow(trigger: HedgeEvent['trigger']): void {
    if (this.settled || this.hedgesLeft === 0 || this.parent.abortable()?.aborted) return;
    this.hedgesLeft--;
    this.policy.hedged(this.attempts === undefined ? 2 : this.attempts.length + 1, trigger);
    this.launch();
  }

  private won(winner: AbortableContext, value: T): void {
    this.running--;
    if (this.settled) return;
    this.finish();
    const attempts = this.attempts;
    if (attempts !== undefined) for (const attempt of attempts) if (attempt !== winner) attempt.abort(lostReason());
    this.resolve(value);
  }

  private failed(error: unknown): void {
    this.running--;
    if (this.settled) return;
    this.lastError = error;
    if (this.hedgesLeft > 0 && !this.parent.abortable()?.aborted) {
      this.policy.unschedule(this);
      this.hedgeNow('failure');
    } else if (this.running === 0) {
      this.finish();
      this.reject(this.lastError);
    }
  }

  private finish(): void {
    this.settled = true;
    this.policy.unschedule(this);
    const attempts = this.attempts;
    if (attempts === undefined) this.release();
    else for (const attempt of attempts) attempt.release();
  }
}

/** Races extra attempts against slow ones. Built by {@link hedge}. */
export class HedgePolicy extends PolicyBase {
  readonly kind = 'hedge';
  readonly name: string;
  readonly delayMs: number;
  readonly maxHedges: number;
  /** Subscribes to each extra attempt. */
  readonly onHedge: EventSubscriber<HedgeEvent>;

  private readonly clock: Clock;
  private readonly queue: DeadlineQueue;
  private readonly started = new EventEmitter<HedgeEvent>(() => this.name);

  constructor(options: HedgeOptions) {
    super();
    if (options === undefined) throw new TypeError('hedge: options must be an object with "delayMs", got undefined');
    const o = checkOptions('hedge', options, keys);
    if (o.delayMs === undefined) throw new TypeError('hedge: option "delayMs" must be a number, got undefined');
    this.delayMs = durationOption('hedge', 'delayMs', o.delayMs, 0);
    this.maxHedges = countOption('hedge', 'maxHedges', o.maxHedges, 1, { max: 100 });
    this.name = nameOption('hedge', o.name, 'hedge');
    this.clock = clockOption('hedge', o.clock, systemClock);
    this.queue = new DeadlineQueue(this.clock);
    this.onHedge = this.started.subscribe;
  }

  // PolicyBase's execute(), copied so that `this[runSymbol]` sees this class alone (see PolicyBase).
  override execute<T>(fn: PolicyFunction<T>, options?: ExecuteOptions): Promise<T> {
    const context = rootContext(fn, options);
    if (context instanceof Promise) return context;
    return whileCallerWaits(context, executeChannel.hasSubscribers ? invokeTraced(this, fn, context) : this[runSymbol](fn, context));
  }

  [runSymbol]<T>(fn: PolicyFunction<T>, context: Context): Promise<T> {
    const outer = pendingPromise<T>();
    new HedgedCall(this, fn, context).start();
    return outer;
  }

  /** @internal */
  schedule(call: DeadlineEntry): void {
    this.queue.remove(call);
    call.deadline = this.clock.now() + this.delayMs;
    this.queue.push(call);
  }

  /** @internal */
  unschedule(call: DeadlineEntry): void {
    this.queue.remove(call);
  }

  /** @internal */
  hedged(attempt: number, trigger: HedgeEvent['trigger']): void {
    if (this.started.active || hedgeChannel.hasSubscribers) {
      const event: HedgeEvent = { policy: this.name, attempt, trigger };
      this.started.emit(event);
      if (hedgeChannel.hasSubscribers) hedgeChannel.publish(event);
    }
  }
}

/**
 * Builds a hedging policy: when an attempt has not settled after `delayMs`, another starts beside
 * it (up to `maxHedges` extra); a failed attempt is hedged at once. The first success wins and
 * the other attempts are aborted through their signals; if all fail, the last error is thrown.
 * Use it for idempotent reads where tail latency matters.
 * @example
 * const fast = hedge({ delayMs: 50, maxHedges: 2 });
 * const row = await fast.execute(({ signal }) => replicaQuery(sql, { signal }));
 */
export function hedge(options: HedgeOptions): HedgePolicy {
  return new HedgePolicy(options);
}
