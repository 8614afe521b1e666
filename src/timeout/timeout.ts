import { AsyncResource } from 'node:async_hooks';
import { type Clock, systemClock } from '../core/clock.js';
import { AbortableContext, type Context } from '../core/context.js';
import { DeadlineQueue, type DeadlineEntry } from '../core/deadline-queue.js';
import { executeChannel, timeoutChannel } from '../core/diagnostics.js';
import { TimeoutError, withCause } from '../core/errors.js';
import { EventEmitter, type EventSubscriber } from '../core/events.js';
import { callFunction, type ExecuteOptions, invokeTraced, PolicyBase, type PolicyFunction, rootContext, runSymbol, whileCallerWaits } from '../core/policy.js';
import { handoff, pendingPromise } from '../core/resolver-handoff.js';
import { checkOptions, clockOption, durationOption, enumOption, nameOption } from '../core/validate.js';

/**
 * `'aggressive'`: at the deadline the call rejects with `TimeoutError` at once and the signal
 * aborts; whatever the function does later is ignored. `'cooperative'`: at the deadline the signal
 * aborts and the call settles when the function does — with its value if it still succeeds, with
 * `TimeoutError` (the function's own error as `cause`) if it fails.
 */
export type TimeoutStrategy = 'aggressive' | 'cooperative';

/** Options of {@link timeout}. */
export interface TimeoutOptions {
  /** @default 'aggressive' */
  readonly strategy?: TimeoutStrategy;
  /** Name used in events and telemetry. @default 'timeout' */
  readonly name?: string;
  /** Time source. @default systemClock */
  readonly clock?: Clock;
}

/** Payload of {@link TimeoutPolicy.onTimeout} and of `bulwark:timeout:expired`. */
export interface TimeoutEvent {
  readonly policy: string;
  readonly timeoutMs: number;
}

const keys = ['strategy', 'name', 'clock'] as const;

/**
 * One timed call: the context handed to the function and the deadline queue entry at once, so a
 * call costs one object and no timer. Fields are assigned in the constructor (not declared with
 * initialisers) to keep construction cheap on the hot path.
 */
class TimedCall<T> extends AbortableContext implements DeadlineEntry {
  deadline: number;
  queuePrev: DeadlineEntry | undefined;
  queueNext: DeadlineEntry | undefined;
  queued: boolean;
  scope: AsyncResource | undefined;
  expired: TimeoutError | undefined;
  resolve: (value: T) => void;
  reject: (error: unknown) => void;
  readonly fulfilled: (value: T) => void;
  readonly rejected: (error: unknown) => void;
  private readonly policy: TimeoutPolicy;

  constructor(parent: Context, policy: TimeoutPolicy, now: number) {
    super(parent);
    this.policy = policy;
    this.deadline = now + policy.timeoutMs;
    this.queuePrev = undefined;
    this.queueNext = undefined;
    this.queued = false;
    this.scope = undefined;
    this.expired = undefined;
    this.resolve = handoff.resolve as (value: T) => void;
    this.reject = handoff.reject;
    // Bound methods, not arrow functions: V8 enters each new closure through a lazy compile stub
    // on its first call (~50 instructions per call, issue 14 §3); a bound function does not.
    this.fulfilled = this.onFulfilled.bind(this);
    this.rejected = this.onRejected.bind(this);
  }

  private onFulfilled(value: T): void {
    this.settle();
    this.resolve(value);
  }

  private onRejected(error: unknown): void {
    this.settle();
    const expired = this.expired;
    // An aggressive call already rejected with `expired`: leave that error as the caller got it.
    if (expired !== undefined && error !== expired && !this.policy.aggressive) {
      withCause(expired, error);
    }
    this.reject(expired ?? error);
  }

  /**
   * Its signal was made, or a context inside follows it. Whoever listens may run code at the
   * abort, which the expiry runs from the shared timer, in the context of whichever call armed
   * it: keep this caller's context for the expiry from then on (see `scope`). A call nobody
   * listens to pays nothing.
   */
  protected override watched(): void {
    this.scope ??= new AsyncResource('bulwark.timeout');
  }

  expire(): void {
    const error = new TimeoutError(this.policy.timeoutMs);
    this.expired = error;
    this.policy.expired(error);
    this.abort(error);
    if (this.policy.aggressive) {
      this.release();
      this.reject(error);
    }
  }

  private settle(): void {
    this.policy.queue.remove(this);
    this.release();
  }
}

/** Bounds how long a call may take. Built by {@link timeout}. */
export class TimeoutPolicy extends PolicyBase {
  readonly kind = 'timeout';
  readonly name: string;
  readonly timeoutMs: number;
  readonly strategy: TimeoutStrategy;
  /** Subscribes to expiries. */
  readonly onTimeout: EventSubscriber<TimeoutEvent>;
  /** @internal */
  readonly aggressive: boolean;
  /** @internal */
  readonly queue: DeadlineQueue;

  private readonly clock: Clock;
  private readonly timedOut = new EventEmitter<TimeoutEvent>(() => this.name);

  constructor(ms: number, options?: TimeoutOptions) {
    super();
    if (ms === undefined) throw new TypeError('timeout: option "ms" must be a number, got undefined');
    this.timeoutMs = durationOption('timeout', 'ms', ms, 0, { min: 0, exclusiveMin: true });
    const o = checkOptions('timeout', options, keys);
    this.strategy = enumOption('timeout', 'strategy', o.strategy, ['aggressive', 'cooperative'], 'aggressive');
    this.aggressive = this.strategy === 'aggressive';
    this.name = nameOption('timeout', o.name, 'timeout');
    this.clock = clockOption('timeout', o.clock, systemClock);
    this.queue = new DeadlineQueue(this.clock);
    this.onTimeout = this.timedOut.subscribe;
  }

  // PolicyBase's execute(), copied so that `this[runSymbol]` sees this class alone (see PolicyBase).
  override execute<T>(fn: PolicyFunction<T>, options?: ExecuteOptions): Promise<T> {
    const context = rootContext(fn, options);
    if (context instanceof Promise) return context;
    return whileCallerWaits(context, executeChannel.hasSubscribers ? invokeTraced(this, fn, context) : this[runSymbol](fn, context));
  }

  [runSymbol]<T>(fn: PolicyFunction<T>, context: Context): Promise<T> {
    const outer = pendingPromise<T>();
    const call = new TimedCall<T>(context, this, this.clock.now());
    // The expiry runs from the shared timer, in the context of whichever call armed it. When
    // someone hears timeouts, keep this caller's context for it, so the event is seen in the
    // call's own (its trace span, its AsyncLocalStorage stores); the same once the function reads
    // its signal (abort listeners run at expiry); otherwise skip the cost.
    if (this.timedOut.active || timeoutChannel.hasSubscribers) call.scope = new AsyncResource('bulwark.timeout');
    this.queue.push(call);
    callFunction(fn, call).then(call.fulfilled, call.rejected);
    return outer;
  }

  /** @internal */
  expired(_error: TimeoutError): void {
    if (this.timedOut.active || timeoutChannel.hasSubscribers) {
      const event: TimeoutEvent = { policy: this.name, timeoutMs: this.timeoutMs };
      this.timedOut.emit(event);
      if (timeoutChannel.hasSubscribers) timeoutChannel.publish(event);
    }
  }
}

/**
 * Builds a timeout policy. The function receives a `signal` that aborts at the deadline with a
 * `TimeoutError` as its reason. One timer serves all calls of a policy, and a call's
 * AbortController is only made if the function reads `signal` or the deadline passes.
 * @example
 * const policy = timeout(2_000);
 * const res = await policy.execute(({ signal }) => fetch('http://127.0.0.1:8080/slow', { signal }));
 */
export function timeout(ms: number, options?: TimeoutOptions): TimeoutPolicy {
  return new TimeoutPolicy(ms, options);
}
