import type { Context } from '../core/context.js';
import { executeChannel, fallbackChannel } from '../core/diagnostics.js';
import { isAbortError } from '../core/errors.js';
import { EventEmitter, type EventSubscriber } from '../core/events.js';
import { callFunction, type ExecuteOptions, invokeTraced, PolicyBase, type PolicyFunction, rootContext, runSymbol, whileCallerWaits } from '../core/policy.js';
import { checkOptions, functionOption, nameOption } from '../core/validate.js';

/** Options of {@link fallback}. */
export interface FallbackOptions {
  /** Which errors the fallback replaces; others pass through. @default every error except an `AbortError` */
  readonly handle?: (error: unknown) => boolean;
  /** Name used in events and telemetry. @default 'fallback' */
  readonly name?: string;
}

/** Payload of {@link FallbackPolicy.onFallback} and of `bulwark:fallback:used`. */
export interface FallbackEvent {
  readonly policy: string;
  readonly error: unknown;
}

/** A fallback value, or a function of the error that produces one. */
export type FallbackSource<R> = R | ((error: unknown) => R | PromiseLike<R>);

const keys = ['handle', 'name'] as const;

function notAbort(error: unknown): boolean {
  return !isAbortError(error);
}

/** Replaces handled errors with a value. Built by {@link fallback}. */
export class FallbackPolicy<R> extends PolicyBase<R> {
  readonly kind = 'fallback';
  readonly name: string;
  /** Subscribes to each use of the fallback. */
  readonly onFallback: EventSubscriber<FallbackEvent>;

  private readonly source: FallbackSource<R>;
  private readonly handle: (error: unknown) => boolean;
  private readonly used = new EventEmitter<FallbackEvent>(() => this.name);

  constructor(source: FallbackSource<R>, options?: FallbackOptions) {
    super();
    const o = checkOptions('fallback', options, keys);
    this.source = source;
    this.handle = functionOption('fallback', 'handle', o.handle, notAbort);
    this.name = nameOption('fallback', o.name, 'fallback');
    this.onFallback = this.used.subscribe;
  }

  // PolicyBase's execute(), copied so that `this[runSymbol]` sees this class alone (see PolicyBase).
  override execute<T>(fn: PolicyFunction<T>, options?: ExecuteOptions): Promise<T | R> {
    const context = rootContext(fn, options);
    if (context instanceof Promise) return context;
    return whileCallerWaits(context, executeChannel.hasSubscribers ? invokeTraced(this, fn, context) : this[runSymbol](fn, context));
  }

  [runSymbol]<T>(fn: PolicyFunction<T>, context: Context): Promise<T | R> {
    // A bound method rather than an arrow function: see retry's first attempt (issue 14 §3).
    return callFunction(fn, context).catch(this.replace.bind(this, context) as (error: unknown) => R | PromiseLike<R>);
  }

  private replace(context: Context, error: unknown): R | PromiseLike<R> {
    // A caller who cancelled wants the cancellation, not a substitute value, whatever it is named.
    if (context.abortable()?.aborted || !this.handle(error)) throw error;
    if (this.used.active || fallbackChannel.hasSubscribers) {
      const event: FallbackEvent = { policy: this.name, error };
      this.used.emit(event);
      if (fallbackChannel.hasSubscribers) fallbackChannel.publish(event);
    }
    const source = this.source;
    return typeof source === 'function' ? (source as (error: unknown) => R | PromiseLike<R>)(error) : source;
  }
}

/**
 * Builds a fallback: when the call fails with a handled error, resolve with `value` instead, or
 * with what `value(error)` returns when it is a function (to fall back to a function value itself,
 * wrap it: `() => fn`). In a pipeline, put it first so it sees every other policy's errors.
 * @example
 * const safe = pipeline(fallback(() => cachedPrices()), circuitBreaker(), timeout(1_000));
 * const prices = await safe.execute(() => fetchPrices());
 */
export function fallback<R>(value: FallbackSource<R>, options?: FallbackOptions): FallbackPolicy<R> {
  return new FallbackPolicy(value, options);
}
