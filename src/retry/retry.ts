import { type Backoff, exponential, isBackoff, nextDelay } from '../backoff/backoff.js';
import { type Clock, systemClock } from '../core/clock.js';
import { AttemptContext, type Context } from '../core/context.js';
import { executeChannel, retryAttemptChannel, retryGiveUpChannel } from '../core/diagnostics.js';
import { isAbortError, isBulwarkError } from '../core/errors.js';
import { EventEmitter, type EventSubscriber } from '../core/events.js';
import { callFunction, type ExecuteOptions, invokeTraced, PolicyBase, type PolicyFunction, rootContext, runSymbol, whileCallerWaits } from '../core/policy.js';
import { sleep } from '../core/sleep.js';
import { registerPolicy } from '../core/registry.js';
import {
  checkOptions,
  clockOption,
  countOption,
  durationOption,
  functionOption,
  nameOption,
  show,
} from '../core/validate.js';
import { RetryBudget } from './budget.js';

/** Options of {@link retry}. */
export interface RetryOptions {
  /** Attempts in all, the first included (1 = never retry). @default 3 */
  readonly maxAttempts?: number;
  /** Delay before each retry. @default exponential() — 100 ms doubling to 30 s, full jitter */
  readonly backoff?: Backoff;
  /** Which errors are worth retrying. @default {@link defaultRetryHandle} */
  readonly handle?: (error: unknown) => boolean;
  /**
   * Which returned values are worth retrying (an HTTP 503 `Response`, `{ ok: false }`), as Polly's
   * `ShouldHandle` does for results: such a value is retried like an error, and when retrying
   * stops (attempts, budget) the call resolves with the last value. One that throws rejects the
   * call with what it threw. @default no value is retried
   */
  readonly handleResult?: (value: unknown) => boolean;
  /**
   * Cap on every delay, in ms, including one asked for by an error's `retryAfterMs`
   * (rate-limit errors, HTTP 429/503 `Retry-After`). @default 30000
   */
  readonly maxDelayMs?: number;
  /** A retry budget, possibly shared with other retry policies. No budget by default. */
  readonly budget?: RetryBudget;
  /** Name used in events and telemetry. @default 'retry' */
  readonly name?: string;
  /** Time source. @default systemClock */
  readonly clock?: Clock;
}

/** Payload of {@link RetryPolicy.onRetry} and of `bulwark:retry:attempt`. */
export interface RetryEvent {
  readonly policy: string;
  /** The attempt that just failed (1 = the first call). */
  readonly attempt: number;
  /** How long the policy waits before the next attempt. */
  readonly delayMs: number;
  /** What the attempt failed with; `undefined` when it returned a value that `handleResult` retries. */
  readonly error: unknown;
  /** The value `handleResult` retries, when the attempt returned one. */
  readonly result?: unknown;
}

/** Why a retry policy stopped retrying. */
export type GiveUpReason = 'attempts' | 'unhandled' | 'budget' | 'aborted';

/** Payload of {@link RetryPolicy.onGiveUp} and of `bulwark:retry:give-up`. */
export interface GiveUpEvent {
  readonly policy: string;
  /** Attempts made. */
  readonly attempts: number;
  readonly reason: GiveUpReason;
  /** The last error, which is what the call rejects with; `undefined` when it resolves with `result`. */
  readonly error: unknown;
  /** The last value, retried by `handleResult`, which the call resolves with. */
  readonly result?: unknown;
}

const keys = ['maxAttempts', 'backoff', 'handle', 'handleResult', 'maxDelayMs', 'budget', 'name', 'clock'] as const;

/**
 * Retries every error except: a cancellation (`AbortError`), an open or isolated circuit
 * (retrying it cannot help before it half-opens), and an exceeded quota.
 */
export function defaultRetryHandle(error: unknown): boolean {
  if (isAbortError(error)) return false;
  return !(
    isBulwarkError(error, 'ERR_BULWARK_BROKEN_CIRCUIT') ||
    isBulwarkError(error, 'ERR_BULWARK_ISOLATED_CIRCUIT') ||
    isBulwarkError(error, 'ERR_BULWARK_QUOTA_EXCEEDED')
  );
}

/** The delay an error asks for (`retryAfterMs`), if it names a valid one. */
function hintedDelay(error: unknown): number | undefined {
  if (typeof error !== 'object' || error === null) return undefined;
  const ms = (error as { retryAfterMs?: unknown }).retryAfterMs;
  return typeof ms === 'number' && ms >= 0 && ms !== Infinity ? ms : undefined;
}

/** Retries failed calls with a backoff. Built by {@link retry}. */
export class RetryPolicy extends PolicyBase {
  readonly kind = 'retry';
  readonly name: string;
  readonly maxAttempts: number;
  readonly maxDelayMs: number;
  /** Subscribes to retries: called before each wait. */
  readonly onRetry: EventSubscriber<RetryEvent>;
  /** Subscribes to the end of retrying on a failed call. */
  readonly onGiveUp: EventSubscriber<GiveUpEvent>;

  private readonly backoff: Backoff;
  private readonly handle: (error: unknown) => boolean;
  private readonly handleResult: ((value: unknown) => boolean) | undefined;
  /** The retry budget this policy draws on, if any (see the `budget` option). */
  readonly budget: RetryBudget | undefined;
  private readonly clock: Clock;
  private readonly retried = new EventEmitter<RetryEvent>(() => this.name);
  private readonly gaveUp = new EventEmitter<GiveUpEvent>(() => this.name);

  constructor(options?: RetryOptions) {
    super();
    const o = checkOptions('retry', options, keys);
    this.maxAttempts = countOption('retry', 'maxAttempts', o.maxAttempts, 3, { max: 1_000 });
    const backoff = o.backoff === undefined ? exponential() : o.backoff;
    if (!isBackoff(backoff)) {
      throw new TypeError(`retry: option "backoff" must be a backoff such as exponential() or constant(ms), got ${show(backoff)}`);
    }
    this.backoff = backoff;
    this.maxDelayMs = durationOption('retry', 'maxDelayMs', o.maxDelayMs, Math.max(30_000, backoff.initialMs));
    if (this.maxDelayMs < backoff.initialMs) {
      throw new RangeError(
        `retry: option "maxDelayMs" (${show(this.maxDelayMs)}) must not be below the backoff's initial delay (${show(backoff.initialMs)})`,
      );
    }
    this.handle = functionOption('retry', 'handle', o.handle, defaultRetryHandle);
    this.handleResult = o.handleResult === undefined ? undefined : functionOption('retry', 'handleResult', o.handleResult, defaultRetryHandle);
    if (o.budget !== undefined && !(o.budget instanceof RetryBudget)) {
      throw new TypeError(`retry: option "budget" must come from retryBudget(), got ${show(o.budget)}`);
    }
    this.budget = o.budget;
    this.name = nameOption('retry', o.name, 'retry');
    this.clock = clockOption('retry', o.clock, systemClock);
    this.onRetry = this.retried.subscribe;
    this.onGiveUp = this.gaveUp.subscribe;
    registerPolicy(this);
  }

  // PolicyBase's execute(), copied so that `this[runSymbol]` sees this class alone (see PolicyBase).
  override execute<T>(fn: PolicyFunction<T>, options?: ExecuteOptions): Promise<T> {
    const context = rootContext(fn, options);
    if (context instanceof Promise) return context;
    return whileCallerWaits(context, executeChannel.hasSubscribers ? invokeTraced(this, fn, context) : this[runSymbol](fn, context));
  }

  [runSymbol]<T>(fn: PolicyFunction<T>, context: Context): Promise<T> {
    this.budget?.recordCall();
    const p = callFunction(fn, context.attempt === 1 ? context : new AttemptContext(context, 1));
    // With one attempt there is nothing to retry; skip the catch unless someone hears the give-up.
    if (this.maxAttempts === 1 && !this.gaveUp.active && !retryGiveUpChannel.hasSubscribers) return p;
    // Without handleResult a value is never looked at: no extra handler, as before.
    // A bound method, not an arrow function: V8 enters each new closure through a lazy compile
    // stub on its first call (~50 instructions, issue 14 §3); a bound function does not.
    if (this.handleResult === undefined) return p.catch(this.firstFailed.bind(this, fn, context) as (error: unknown) => Promise<T>);
    return p.then(
      (value) => (this.handleResult!(value) ? this.retryAfter(value, true, fn, context) : value),
      (error: unknown) => this.retryAfter(error, false, fn, context),
    );
  }

  /** The first attempt failed (without `handleResult`): what {@link retryAfter} makes of its error. */
  private firstFailed<T>(fn: PolicyFunction<T>, context: Context, error: unknown): Promise<T> {
    return this.retryAfter(error, false, fn, context);
  }

  /**
   * Retries after a failed first attempt: `outcome` is its error, or (`isResult`) a value that
   * `handleResult` retries. A `handleResult` that throws rejects the call with what it threw.
   */
  private async retryAfter<T>(firstOutcome: unknown, firstIsResult: boolean, fn: PolicyFunction<T>, context: Context): Promise<T> {
    let outcome = firstOutcome;
    let isResult = firstIsResult;
    let previousDelay = this.backoff.initialMs;
    for (let attempt = 1; ; attempt++) {
      const reason = this.giveUpReason(outcome, isResult, attempt, context);
      if (reason !== undefined) {
        this.giveUp(attempt, reason, outcome, isResult);
        if (isResult) return outcome as T;
        throw outcome;
      }
      let delay = nextDelay(this.backoff, attempt, previousDelay, this.maxDelayMs);
      previousDelay = delay;
      delay = Math.min(hintedDelay(outcome) ?? delay, this.maxDelayMs);
      if (this.retried.active || retryAttemptChannel.hasSubscribers) {
        const event: RetryEvent = isResult
          ? { policy: this.name, attempt, delayMs: delay, error: undefined, result: outcome }
          : { policy: this.name, attempt, delayMs: delay, error: outcome };
        this.retried.emit(event);
        if (retryAttemptChannel.hasSubscribers) retryAttemptChannel.publish(event);
      }
      try {
        await sleep(this.clock, delay, context.abortable());
      } catch (abortReason) {
        // The caller gave up during the wait: the call rejects with the signal's reason.
        this.giveUp(attempt, 'aborted', abortReason, false);
        throw abortReason;
      }
      try {
        outcome = await callFunction(fn, new AttemptContext(context, attempt + 1));
      } catch (next) {
        outcome = next;
        isResult = false;
        continue;
      }
      if (this.handleResult === undefined || !this.handleResult(outcome)) return outcome as T;
      isResult = true;
    }
  }

  private giveUp(attempts: number, reason: GiveUpReason, outcome: unknown, isResult: boolean): void {
    if (!this.gaveUp.active && !retryGiveUpChannel.hasSubscribers) return;
    const event: GiveUpEvent = isResult
      ? { policy: this.name, attempts, reason, error: undefined, result: outcome }
      : { policy: this.name, attempts, reason, error: outcome };
    this.gaveUp.emit(event);
    if (retryGiveUpChannel.hasSubscribers) retryGiveUpChannel.publish(event);
  }

  private giveUpReason(outcome: unknown, isResult: boolean, attempt: number, context: Context): GiveUpReason | undefined {
    if (context.abortable()?.aborted) return 'aborted';
    if (!isResult && !this.handle(outcome)) return 'unhandled';
    if (attempt >= this.maxAttempts) return 'attempts';
    if (this.budget !== undefined && !this.budget.tryRetry()) return 'budget';
    return undefined;
  }
}

/**
 * Builds a retry policy. Failed calls are tried again after a backoff delay until they succeed,
 * `maxAttempts` is reached, the error is not retryable, or the retry budget is spent; then the
 * last error is rethrown (or, for a value `handleResult` retries, the call resolves with the last
 * value). A wait aborts at once with the caller's `signal.reason`.
 * @example
 * const policy = retry({ maxAttempts: 4, backoff: exponential({ initialMs: 50, maxMs: 2_000 }) });
 * policy.onRetry(({ attempt, delayMs }) => console.log(`attempt ${attempt} failed, waiting ${delayMs} ms`));
 * const data = await policy.execute(({ attempt }) => loadData(attempt));
 */
export function retry(options?: RetryOptions): RetryPolicy {
  return new RetryPolicy(options);
}
