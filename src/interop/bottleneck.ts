/**
 * bulwark/bottleneck: a Bottleneck limiter you already run, used as a bulwark policy, so it
 * composes with bulwark's retry, timeout, pipeline and fetch, and the jobs it drops reach
 * bulwark's telemetry (`bulwark/otel`, `bulwark/prometheus`) through the diagnostics channels.
 *
 * bottleneck itself is never imported here: you build the limiter and pass it in.
 * @packageDocumentation
 */
import { AsyncResource } from 'node:async_hooks';
import type { Context } from '../core/context.js';
import { bulkheadRejectedChannel } from '../core/diagnostics.js';
import { BulkheadRejectedError, withCause } from '../core/errors.js';
import { EventEmitter, type EventSubscriber } from '../core/events.js';
import { callFunction, PolicyBase, type PolicyFunction, runSymbol } from '../core/policy.js';
import { offAbort, onAbort } from '../core/shared-abort.js';
import { checkOptions, countOption, nameOption, show } from '../core/validate.js';

/**
 * What {@link fromBottleneck} needs to see of a `Bottleneck` limiter (bottleneck 2); loose on
 * purpose, so the limiter fits as bottleneck's own type definitions describe it.
 */
export interface BottleneckLimiter {
  schedule(...args: never[]): PromiseLike<unknown>;
  on(event: string, listener: (...args: never[]) => void): unknown;
  counts(): { readonly RECEIVED: number; readonly QUEUED: number; readonly RUNNING: number; readonly EXECUTING: number };
}

/** Options of {@link fromBottleneck}. */
export interface FromBottleneckOptions {
  /** Bottleneck job priority for every call, 0 (first) to 9 (last). @default bottleneck's, 5 */
  readonly priority?: number;
  /** Bottleneck job weight: how much of `maxConcurrent` and of the reservoir a call takes. @default bottleneck's, 1 */
  readonly weight?: number;
  /** Name used in events and telemetry. @default the limiter's `id` option if you gave it one, else `'bottleneck'` */
  readonly name?: string;
}

/** Payload of {@link BottleneckPolicy.onRejected} and of `bulwark:bulkhead:rejected`. */
export interface BottleneckRejectedEvent {
  readonly policy: string;
  /** Jobs running in the limiter when the job was dropped (bottleneck's RUNNING and EXECUTING). */
  readonly active: number;
  /** Jobs waiting in the limiter when the job was dropped (bottleneck's RECEIVED and QUEUED). */
  readonly queued: number;
  /** Always `'enforce'`: a wrapped limiter has no shadow mode (the field is the bulkhead channel's). */
  readonly mode: 'enforce';
}

type Counts = ReturnType<BottleneckLimiter['counts']>;

/** The parts of bottleneck's limiter this file uses; checked by {@link fromBottleneck}. */
interface Engine {
  schedule(options: JobOptions, task: (call: LimitedCall) => Promise<unknown>, call: LimitedCall): PromiseLike<unknown>;
  schedule(task: (call: LimitedCall) => Promise<unknown>, call: LimitedCall): PromiseLike<unknown>;
  on(event: 'dropped', listener: (info: { readonly args?: unknown }) => void): unknown;
  counts(): Counts;
  readonly id?: unknown;
}

interface JobOptions {
  readonly priority?: number;
  readonly weight?: number;
}

/** The task every wrapped job runs: bottleneck calls it with the call when the job's turn comes. */
function runJob(call: LimitedCall): Promise<unknown> {
  return call.run();
}

const skipped: Promise<unknown> = Promise.resolve(undefined);

/** One call through the limiter: the job's argument, and the caller's side of it. */
class LimitedCall {
  readonly policy: BottleneckPolicy;
  private readonly fn: PolicyFunction<unknown>;
  private readonly context: Context;
  private readonly signal: AbortSignal | undefined;
  private readonly resolve: (value: unknown) => void;
  private readonly reject: (error: unknown) => void;
  private started = false;
  private settled = false;
  /** Set when bottleneck drops the job: the limiter's counts right after. */
  private drop: { readonly active: number; readonly queued: number } | undefined = undefined;
  /**
   * The caller's async context. Bottleneck starts a waiting job from whichever job freed its
   * slot, so without it the function would run with that other caller's AsyncLocalStorage stores
   * (and trace span). Every job waits at least one of bottleneck's timer turns, so every call
   * captures it.
   */
  private readonly scope = new AsyncResource('bulwark.bottleneck');

  constructor(
    policy: BottleneckPolicy,
    fn: PolicyFunction<unknown>,
    context: Context,
    signal: AbortSignal | undefined,
    resolve: (value: unknown) => void,
    reject: (error: unknown) => void,
  ) {
    this.policy = policy;
    this.fn = fn;
    this.context = context;
    this.signal = signal;
    this.resolve = resolve;
    this.reject = reject;
    // Through the shared listener, as bulwark's own bulkhead: queued jobs add none each.
    if (signal !== undefined && !signal.aborted) onAbort(signal, this.aborted);
  }

  /** The job's turn has come. A caller who has gone (aborted) is not run: the slot is freed at once. */
  run(): Promise<unknown> {
    if (this.settled) return skipped;
    if (!this.started) {
      this.started = true;
      // Once running, the function has the signal; as in bulwark's bulkhead, an abort no longer
      // takes the call out of the queue, and the layers above settle the caller.
      if (this.signal !== undefined) offAbort(this.signal, this.aborted);
    }
    return this.scope.runInAsyncScope(callFunction, undefined, this.fn, this.context) as Promise<unknown>;
  }

  readonly fulfilled = (value: unknown): void => {
    if (this.finish()) this.resolve(value);
  };

  readonly rejected = (error: unknown): void => {
    if (!this.finish()) return;
    const drop = this.drop;
    this.reject(drop === undefined ? error : withCause(new BulkheadRejectedError(drop.active, drop.queued), error));
  };

  private readonly aborted = (): void => {
    if (this.started || !this.finish()) return;
    this.reject(this.signal!.reason);
  };

  /**
   * Bottleneck dropped the job. With `rejectOnDrop` (its default) the job's promise has already
   * rejected, and that rejection, handled first, becomes the cause; without it nothing else
   * will ever settle the call, so a microtask does.
   */
  dropped(active: number, queued: number): void {
    if (this.settled) return;
    this.drop = { active, queued };
    queueMicrotask(() => {
      if (this.finish()) this.reject(new BulkheadRejectedError(active, queued));
    });
  }

  /** Marks the call settled; false if it already was. */
  private finish(): boolean {
    if (this.settled) return false;
    this.settled = true;
    if (!this.started && this.signal !== undefined) offAbort(this.signal, this.aborted);
    return true;
  }
}

/**
 * A Bottleneck limiter as a bulwark policy: each `execute(fn)` is one job. Built by
 * {@link fromBottleneck}.
 */
export class BottleneckPolicy extends PolicyBase {
  readonly kind = 'bottleneck';
  readonly name: string;
  /** The wrapped limiter. */
  readonly limiter: BottleneckLimiter;
  /** The job priority given to every call, if set. */
  readonly priority: number | undefined;
  /** The job weight given to every call, if set. */
  readonly weight: number | undefined;
  /** Subscribes to this policy's calls that the limiter dropped. */
  readonly onRejected: EventSubscriber<BottleneckRejectedEvent>;

  private readonly engine: Engine;
  private readonly jobOptions: JobOptions | undefined;
  private readonly rejected = new EventEmitter<BottleneckRejectedEvent>(() => this.name);

  /** Use {@link fromBottleneck}, which checks its arguments. */
  constructor(limiter: BottleneckLimiter, name: string, priority: number | undefined, weight: number | undefined) {
    super();
    this.limiter = limiter;
    this.engine = limiter as unknown as Engine;
    this.name = name;
    this.priority = priority;
    this.weight = weight;
    this.jobOptions =
      priority === undefined && weight === undefined
        ? undefined
        : { ...(priority === undefined ? {} : { priority }), ...(weight === undefined ? {} : { weight }) };
    this.onRejected = this.rejected.subscribe;
    watch(this.engine);
  }

  /** Jobs running in the limiter now (all of its jobs, not only this policy's). */
  get active(): number {
    const counts = this.engine.counts();
    return counts.RUNNING + counts.EXECUTING;
  }

  /** Jobs waiting in the limiter now (all of its jobs, not only this policy's). */
  get queued(): number {
    const counts = this.engine.counts();
    return counts.RECEIVED + counts.QUEUED;
  }

  [runSymbol]<T>(fn: PolicyFunction<T>, context: Context): Promise<T> {
    const signal = context.abortable();
    if (signal?.aborted) return Promise.reject(signal.reason);
    return new Promise<T>((resolve, reject) => {
      const call = new LimitedCall(this, fn, context, signal, resolve as (value: unknown) => void, reject);
      let job: PromiseLike<unknown>;
      try {
        const options = this.jobOptions;
        job = options === undefined ? this.engine.schedule(runJob, call) : this.engine.schedule(options, runJob, call);
      } catch (error) {
        call.rejected(error);
        return;
      }
      job.then(call.fulfilled, call.rejected);
    });
  }

  /** The limiter dropped one of this policy's jobs. @internal */
  dropped(call: { dropped(active: number, queued: number): void }): void {
    const { active, queued } = load(this.engine);
    call.dropped(active, queued);
    if (this.rejected.active || bulkheadRejectedChannel.hasSubscribers) {
      const event: BottleneckRejectedEvent = { policy: this.name, active, queued, mode: 'enforce' };
      this.rejected.emit(event);
      if (bulkheadRejectedChannel.hasSubscribers) bulkheadRejectedChannel.publish(event);
    }
  }
}

/** Limiters already watched for dropped jobs, and the name their own (unwrapped) jobs go by. */
const watched = new WeakMap<object, string>();

function defaultName(engine: Engine): string {
  const id = engine.id;
  return typeof id === 'string' && id !== '' && id !== '<no-id>' ? id : 'bottleneck';
}

/** The limiter's running and waiting jobs. */
function load(engine: Engine): { active: number; queued: number } {
  const counts = engine.counts();
  return { active: counts.RUNNING + counts.EXECUTING, queued: counts.RECEIVED + counts.QUEUED };
}

/**
 * Listens once per limiter for dropped jobs, whichever policy (or none: a job scheduled on the
 * limiter directly) scheduled them, so each drop is published once.
 */
function watch(engine: Engine): void {
  if (watched.has(engine)) return;
  watched.set(engine, defaultName(engine));
  engine.on('dropped', (info) => {
    const args = info?.args;
    const call = Array.isArray(args) ? (args[0] as unknown) : undefined;
    if (call instanceof LimitedCall) {
      call.policy.dropped(call);
    } else if (bulkheadRejectedChannel.hasSubscribers) {
      bulkheadRejectedChannel.publish({ policy: watched.get(engine)!, ...load(engine), mode: 'enforce' });
    }
  });
}

const known = ['priority', 'weight', 'name'] as const;

/** Checks that `limiter` is a Bottleneck limiter, or throws naming it. */
function checkLimiter(limiter: unknown): void {
  const l = limiter as Partial<Record<'schedule' | 'on' | 'counts' | 'stop', unknown>> | null;
  if (
    typeof limiter !== 'object' ||
    l === null ||
    typeof l.schedule !== 'function' ||
    typeof l.on !== 'function' ||
    typeof l.counts !== 'function' ||
    typeof l.stop !== 'function'
  ) {
    throw new TypeError(`fromBottleneck: option "limiter" must be a Bottleneck limiter, got ${show(limiter)}`);
  }
}

/**
 * Wraps a Bottleneck limiter (bottleneck 2) as a bulwark policy: each `execute(fn)` is a job
 * scheduled on the limiter, so its `maxConcurrent`, `minTime`, reservoir and queue apply, shared
 * with every other job on it. Wrap it several times for different priorities or weights.
 *
 * - A job the limiter drops (its `highWater` queue overflowed, a `BLOCK` strategy, `stop()` with
 *   `dropWaitingJobs`, or the datastore refused it) rejects with `BulkheadRejectedError` (what the
 *   limiter held at that moment; bottleneck's error as `cause`) and is published on
 *   `bulwark:bulkhead:rejected` and `onRejected`. It rejects even with `rejectOnDrop: false`,
 *   where bottleneck itself would leave it hanging. Other errors pass through unchanged.
 * - A caller whose signal aborts while the job waits is rejected at once with the signal's
 *   reason. Bottleneck cannot take a job out of its queue, so the job keeps its place and, when
 *   its turn comes, ends at once without running the function: it frees its slot immediately,
 *   but still counts against `minTime` and the reservoir.
 * - Not forwarded: bottleneck's own retries (a `failed` listener that returns a delay),
 *   `depleted` and `error`; listen on the limiter for those, or use bulwark's retry around it.
 * @example
 * import Bottleneck from 'bottleneck';
 * const limiter = new Bottleneck({ maxConcurrent: 4, minTime: 50, highWater: 100 });
 * const api = pipeline(retry({ maxAttempts: 3 }), fromBottleneck(limiter), timeout(5_000));
 * const page = await api.execute(({ signal }) => fetch(url, { signal }).then((r) => r.text()));
 * await limiter.stop();
 */
export function fromBottleneck(limiter: BottleneckLimiter, options?: FromBottleneckOptions): BottleneckPolicy {
  checkLimiter(limiter);
  const o = checkOptions('fromBottleneck', options, known);
  const priority = o.priority === undefined ? undefined : countOption('fromBottleneck', 'priority', o.priority, 0, { min: 0, max: 9 });
  const weight = o.weight === undefined ? undefined : countOption('fromBottleneck', 'weight', o.weight, 0, { min: 0 });
  const name = nameOption('fromBottleneck', o.name, defaultName(limiter as unknown as Engine));
  return new BottleneckPolicy(limiter, name, priority, weight);
}
