import { AsyncResource } from 'node:async_hooks';
import type { Context } from '../core/context.js';
import { bulkheadRejectedChannel, executeChannel } from '../core/diagnostics.js';
import { BulkheadRejectedError } from '../core/errors.js';
import { offAbort, onAbort as whenAborted } from '../core/shared-abort.js';
import { EventEmitter, type EventSubscriber } from '../core/events.js';
import { callFunction, type ExecuteOptions, invokeTraced, PolicyBase, type PolicyFunction, rootContext, runSymbol, whileCallerWaits } from '../core/policy.js';
import { checkMode } from '../admission/mode.js';
import type { AdmissionMode } from '../admission/types.js';
import { checkOptions, countOption, nameOption } from '../core/validate.js';
import { registerPolicy } from '../core/registry.js';

/** Options of {@link bulkhead}. */
export interface BulkheadOptions {
  /** Calls allowed to run at once. @default 10 */
  readonly maxConcurrent?: number;
  /** Calls allowed to wait for a slot; 0 rejects at once when all slots are busy. @default 0 */
  readonly maxQueue?: number;
  /** Name used in events and telemetry. @default 'bulkhead' */
  readonly name?: string;
  /** `'shadow'` rejects nothing: a call that would have been rejected runs, and is reported with `mode: 'shadow'`. @default 'enforce' */
  readonly mode?: BulkheadMode;
}

/** Enforce rejects; shadow runs every call and reports what it would have rejected. */
export type BulkheadMode = AdmissionMode;

/** Payload of {@link BulkheadPolicy.onRejected} and of `bulwark:bulkhead:rejected`. */
export interface BulkheadRejectedEvent {
  readonly policy: string;
  readonly active: number;
  readonly queued: number;
  /** `'shadow'` when the call ran anyway. */
  readonly mode: BulkheadMode;
}

const keys = ['maxConcurrent', 'maxQueue', 'name', 'mode'] as const;

/** A caller waiting for a slot, in a doubly linked FIFO so an aborted waiter leaves in O(1). */
interface Waiter {
  start(): void;
  prev: Waiter | undefined;
  next: Waiter | undefined;
}

/** Limits concurrent calls, with a bounded queue. Built by {@link bulkhead}. */
export class BulkheadPolicy extends PolicyBase {
  readonly kind = 'bulkhead';
  readonly name: string;
  readonly maxConcurrent: number;
  readonly maxQueue: number;
  /** Subscribes to rejections. */
  readonly onRejected: EventSubscriber<BulkheadRejectedEvent>;

  private running = 0;
  private waiting = 0;
  private shadow: boolean;
  private head: Waiter | undefined = undefined;
  private tail: Waiter | undefined = undefined;
  private readonly rejected = new EventEmitter<BulkheadRejectedEvent>(() => this.name);

  constructor(options?: BulkheadOptions) {
    super();
    const o = checkOptions('bulkhead', options, keys);
    this.maxConcurrent = countOption('bulkhead', 'maxConcurrent', o.maxConcurrent, 10);
    this.maxQueue = countOption('bulkhead', 'maxQueue', o.maxQueue, 0, { min: 0 });
    this.name = nameOption('bulkhead', o.name, 'bulkhead');
    this.shadow = checkMode('bulkhead', 'option "mode"', o.mode) === 'shadow';
    this.onRejected = this.rejected.subscribe;
    registerPolicy(this);
  }

  /** `'enforce'` or `'shadow'`; switchable at run time, slots and queue are kept. */
  get mode(): BulkheadMode {
    return this.shadow ? 'shadow' : 'enforce';
  }

  set mode(mode: BulkheadMode) {
    this.shadow = checkMode('bulkhead', '"mode"', mode, false) === 'shadow';
  }

  /** Calls running now. */
  get active(): number {
    return this.running;
  }

  /** Calls waiting for a slot. */
  get queued(): number {
    return this.waiting;
  }

  // PolicyBase's execute(), copied so that `this[runSymbol]` sees this class alone (see PolicyBase).
  override execute<T>(fn: PolicyFunction<T>, options?: ExecuteOptions): Promise<T> {
    const context = rootContext(fn, options);
    if (context instanceof Promise) return context;
    return whileCallerWaits(context, executeChannel.hasSubscribers ? invokeTraced(this, fn, context) : this[runSymbol](fn, context));
  }

  [runSymbol]<T>(fn: PolicyFunction<T>, context: Context): Promise<T> {
    if (this.running < this.maxConcurrent) return this.start(fn, context);
    if (this.shadow) return this.runShadow(fn, context);
    if (this.waiting >= this.maxQueue) return this.reject();
    return this.enqueue(fn, context);
  }

  /**
   * Shadow mode, all slots taken: a call that would have waited runs at once and holds a slot (a
   * shadow bulkhead never delays a call); one that would have been rejected runs without one, and
   * is reported. So the would-be rejections are those enforce mode would have made.
   */
  private runShadow<T>(fn: PolicyFunction<T>, context: Context): Promise<T> {
    if (this.waiting < this.maxQueue) return this.start(fn, context);
    this.report('shadow');
    return callFunction(fn, context);
  }

  private start<T>(fn: PolicyFunction<T>, context: Context): Promise<T> {
    this.running++;
    const p = callFunction(fn, context);
    p.then(this.release, this.release);
    return p;
  }

  private readonly release = (): void => {
    this.running--;
    const waiter = this.head;
    if (waiter !== undefined) {
      this.unlink(waiter);
      waiter.start();
    }
  };

  private enqueue<T>(fn: PolicyFunction<T>, context: Context): Promise<T> {
    const signal = context.abortable();
    if (signal?.aborted) return Promise.reject(signal.reason);
    // A waiter is started by whichever call frees a slot, from that call's continuation: without
    // the caller's async context captured here, the function would run in the other caller's
    // (its AsyncLocalStorage stores, its active trace span). Only calls that wait pay for this.
    const scope = new AsyncResource('bulwark.bulkhead');
    return new Promise<T>((resolve, reject) => {
      const onAbort = (): void => {
        this.unlink(waiter);
        reject(signal!.reason);
      };
      const run = (): void => {
        this.start(fn, context).then(resolve, reject);
      };
      const waiter: Waiter = {
        prev: this.tail,
        next: undefined,
        start: () => {
          if (signal !== undefined) offAbort(signal, onAbort);
          scope.runInAsyncScope(run);
        },
      };
      if (this.tail === undefined) this.head = waiter;
      else this.tail.next = waiter;
      this.tail = waiter;
      this.waiting++;
      if (signal !== undefined) whenAborted(signal, onAbort);
    });
  }

  private unlink(waiter: Waiter): void {
    if (waiter.prev === undefined) this.head = waiter.next;
    else waiter.prev.next = waiter.next;
    if (waiter.next === undefined) this.tail = waiter.prev;
    else waiter.next.prev = waiter.prev;
    waiter.prev = waiter.next = undefined;
    this.waiting--;
  }

  private reject(): Promise<never> {
    this.report('enforce');
    return Promise.reject(new BulkheadRejectedError(this.running, this.waiting));
  }

  private report(mode: BulkheadMode): void {
    if (this.rejected.active || bulkheadRejectedChannel.hasSubscribers) {
      const event: BulkheadRejectedEvent = { policy: this.name, active: this.running, queued: this.waiting, mode };
      this.rejected.emit(event);
      if (bulkheadRejectedChannel.hasSubscribers) bulkheadRejectedChannel.publish(event);
    }
  }
}

/**
 * Builds a bulkhead: at most `maxConcurrent` calls run at once and at most `maxQueue` wait, in
 * order; the rest reject at once with `BulkheadRejectedError`. A waiter whose signal aborts
 * leaves the queue at once, so it never holds up the others. With `mode: 'shadow'` nothing is
 * rejected or delayed: what would have been rejected is reported with `mode: 'shadow'`.
 * @example
 * const pool = bulkhead({ maxConcurrent: 10, maxQueue: 5 });
 * const report = await pool.execute(({ signal }) => renderReport(id, signal));
 */
export function bulkhead(options?: BulkheadOptions): BulkheadPolicy {
  return new BulkheadPolicy(options);
}
