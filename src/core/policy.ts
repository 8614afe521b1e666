import { type Context, type ExecutionContext, RootContext } from './context.js';
import { executeChannel, executeStart, type ExecuteMessage } from './diagnostics.js';
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
  if (!executeStart.hasSubscribers) return policy[runSymbol](fn, context);
  const message: ExecuteMessage = { kind: policy.kind, policy: policy.name };
  return executeChannel.tracePromise(() => policy[runSymbol](fn, context), message);
}

/** Validates `execute()`'s arguments and builds the root context, or returns the rejection. */
export function rootContext(fn: unknown, options: ExecuteOptions | undefined): RootContext | Promise<never> {
  if (typeof fn !== 'function') {
    return Promise.reject(new TypeError(`execute: fn must be a function, got ${show(fn)}`));
  }
  if (options === undefined) return new RootContext(undefined);
  if (typeof options !== 'object' || options === null) {
    return Promise.reject(new TypeError(`execute: options must be an object, got ${show(options)}`));
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
 * Shared base of bulwark's policies: `execute()` validates its arguments, builds the root context
 * and enters the policy's internal `[runSymbol]`.
 */
export abstract class PolicyBase<R = never> implements ContextualPolicy<R> {
  abstract readonly kind: string;
  abstract readonly name: string;

  execute<T>(fn: PolicyFunction<T>, options?: ExecuteOptions): Promise<T | R> {
    const context = rootContext(fn, options);
    if (context instanceof Promise) return context;
    return invoke(this, fn, context);
  }

  abstract [runSymbol]<T>(fn: PolicyFunction<T>, context: Context): Promise<T | R>;
}

/** True for objects that implement `execute`. */
export function isPolicy(value: unknown): value is Policy<unknown> {
  return typeof value === 'object' && value !== null && typeof (value as Policy).execute === 'function';
}
