import { type Context, type ExecutionContext, RootContext } from './context.js';
import { currentExecuteScope, executeChannel, type ExecuteMessage } from './diagnostics.js';
import { offAbort, onAbort } from './shared-abort.js';
import { show } from './validate.js';

/** The function a policy runs: it receives the context and returns a value or a promise. */
export type PolicyFunction<T> = (context: ExecutionContext) => T | PromiseLike<T>;

/** Per-call options of {@link Policy.execute}. */
export interface ExecuteOptions {
  /** Cancels the call: aborts the context's signal, sleeps and queue waits. */
  readonly signal?: AbortSignal;
}

/**
 * The one interface every policy implements. `R` is what the policy may return instead of the
 * function's own result (a fallback's value); `never` for every other policy.
 * @example
 * const result = await policy.execute(({ signal }) => fetch(url, { signal }));
 */
export interface Policy<R = never> {
  /** Runs `fn` under this policy. */
  execute<T>(fn: PolicyFunction<T>, options?: ExecuteOptions): Promise<T | R>;
  /** The policy's `name` option (used by telemetry); defaults to its kind. */
  readonly name: string;
}

/**
 * Type-only key (nothing exists at run time) under which bulwark's policies declare their `R`.
 * Pipeline types read `R` from here: inferring it from the generic `execute` gives `unknown`.
 */
export declare const resultType: unique symbol;

/**
 * What a policy may return besides the function's own result: its declared `R`; `never` for a
 * foreign policy that provably adds nothing; `unknown` when that cannot be told.
 */
export type ExtraResult<Q> = Q extends { readonly [resultType]: infer R }
  ? R
  : Q extends Policy<never>
    ? never
    : unknown;

/** Key of the internal entry point that pipelines use to pass the context through. */
export const runSymbol = Symbol('bulwark.run');

/** A policy that can take a context from an enclosing policy. */
export interface ContextualPolicy<R = never> extends Policy<R> {
  readonly kind: string;
  [runSymbol]<T>(fn: PolicyFunction<T>, context: Context): Promise<T | R>;
}

/**
 * Calls `fn` and always returns a native promise: sync results are wrapped, sync throws become
 * rejections, foreign thenables are adopted.
 */
export function callFunction<T>(fn: PolicyFunction<T>, context: ExecutionContext): Promise<T> {
  try {
    const result = fn(context);
    return result instanceof Promise ? (result as Promise<T>) : Promise.resolve(result);
  } catch (err) {
    return Promise.reject(err);
  }
}

/** Runs a policy's internal entry, inside the `bulwark:execute` tracing channel when traced. */
export function invoke<T, R>(policy: ContextualPolicy<R>, fn: PolicyFunction<T>, context: Context): Promise<T | R> {
  // Any of the five sub-channels counts: a subscriber may listen to `error` alone.
  if (!executeChannel.hasSubscribers) return policy[runSymbol](fn, context);
  return invokeTraced(policy, fn, context);
}

/** Runs a policy's internal entry inside the `bulwark:execute` tracing channel. */
export function invokeTraced<T, R>(policy: ContextualPolicy<R>, fn: PolicyFunction<T>, context: Context): Promise<T | R> {
  const message: ExecuteMessage = { kind: policy.kind, policy: policy.name };
  const scope = currentExecuteScope();
  if (scope === undefined) return executeChannel.tracePromise(() => policy[runSymbol](fn, context), message);
  return executeChannel.tracePromise(() => scope(message, () => policy[runSymbol](fn, context)), message);
}

/** Validates `execute()`'s arguments and builds the root context, or returns the rejection. */
export function rootContext(fn: unknown, options: ExecuteOptions | undefined): RootContext | Promise<never> {
  if (typeof fn !== 'function') {
    return Promise.reject(new TypeError(`execute: fn must be a function, got ${show(fn)}`));
  }
  if (options === undefined) return new RootContext(undefined);
  if (typeof options !== 'object' || options === null || Array.isArray(options)) {
    return Promise.reject(new TypeError(`execute: options must be an object, got ${show(options)}`));
  }
  for (const key in options) {
    if (key !== 'signal') {
      return Promise.reject(new TypeError(`execute: unknown option "${key}" (known options: signal)`));
    }
  }
  const signal = options.signal;
  if (signal === undefined) return new RootContext(undefined);
  if (!(signal instanceof AbortSignal)) {
    return Promise.reject(new TypeError(`execute: option "signal" must be an AbortSignal, got ${show(signal)}`));
  }
  if (signal.aborted) return Promise.reject(signal.reason);
  return new RootContext(signal);
}

/**
 * The end of every `execute()`: the call's result, bounded by the caller's signal when there is one.
 */
export function whileCallerWaits<T>(context: RootContext, result: Promise<T>): Promise<T> {
  const signal = context.abortable();
  return signal === undefined ? result : untilAborted<T>(result, signal);
}

/**
 * Shared base of bulwark's policies: `execute()` validates its arguments, builds the root context
 * and enters the policy's internal `[runSymbol]`.
 *
 * The policies on the hot path (breaker, retry, timeout, bulkhead, fallback, hedge, pipeline)
 * override `execute` with the same three statements. A method shared by every class sees them
 * all at `this[runSymbol]`: once a process has used five policy classes that load is megamorphic,
 * and a megamorphic load keyed by a symbol is V8's generic lookup, ~0.2k instructions and ~10 ns
 * a call (issue 14 §3). A copy per class sees one class, so the call is direct and inlined.
 */
export abstract class PolicyBase<R = never> implements ContextualPolicy<R> {
  abstract readonly kind: string;
  abstract readonly name: string;
  /** Type-level only, never assigned: see {@link ExtraResult}. */
  declare readonly [resultType]: R;

  execute<T>(fn: PolicyFunction<T>, options?: ExecuteOptions): Promise<T | R> {
    const context = rootContext(fn, options);
    if (context instanceof Promise) return context;
    return whileCallerWaits(context, invoke<T, R>(this, fn, context));
  }

  abstract [runSymbol]<T>(fn: PolicyFunction<T>, context: Context): Promise<T | R>;
}

/**
 * Settles like `work`, or rejects with `signal.reason` as soon as the caller's signal aborts —
 * even if the function ignores its signal. The work itself goes on and its outcome is still
 * observed (never an unhandled rejection); the handler is removed when either settles. All calls
 * on one signal share a single listener on it (see `onAbort`), added only when the caller passed
 * a signal.
 */
export function untilAborted<T>(work: Promise<T>, signal: AbortSignal): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const aborted = (): void => reject(signal.reason);
    onAbort(signal, aborted);
    work.then(
      (value) => {
        offAbort(signal, aborted);
        resolve(value);
      },
      (error: unknown) => {
        offAbort(signal, aborted);
        reject(error);
      },
    );
  });
}

/** True for objects that implement `execute`. */
export function isPolicy(value: unknown): value is Policy<unknown> {
  return typeof value === 'object' && value !== null && typeof (value as Policy).execute === 'function';
}
