import { type Clock, systemClock } from '../core/clock.js';
import type { Context, ExecutionContext } from '../core/context.js';
import { executeChannel, faultInjectedChannel } from '../core/diagnostics.js';
import { EventEmitter, type EventSubscriber } from '../core/events.js';
import { callFunction, type ExecuteOptions, invokeTraced, PolicyBase, type PolicyFunction, rootContext, runSymbol, whileCallerWaits } from '../core/policy.js';
import { sleep } from '../core/sleep.js';
import { checkOptions, clockOption, nameOption, show } from '../core/validate.js';
import { enabledOption, latencyOf, latencyOption, type LatencySource, randomOption, rateOption } from './options.js';

/**
 * Options of {@link faultInjection}. One policy injects latency, an ending (an error or an
 * outcome), or latency then an ending, on one draw per call; for kinds at independent rates,
 * put several policies in a pipeline.
 */
export interface FaultInjectionOptions<R = never> {
  /** Share of the calls (those `when` admits) that get the fault, in (0, 1]. Required; settable later as `policy.rate`. */
  readonly rate: number;
  /** The error an injected call rejects with, or a function making one per injection. No error by default. */
  readonly fault?: Error | (() => Error);
  /** Delay before the call goes on (or ends with the fault or outcome), in ms, or a function giving one per injection. None by default. */
  readonly latencyMs?: LatencySource;
  /**
   * The value an injected call resolves with instead of running the function, or a function
   * making one per injection (a `Response` can be read once: make a new one each time). Not with `fault`.
   */
  readonly outcome?: R | (() => R | PromiseLike<R>);
  /** Whether faults are injected at all; settable at run time as `policy.enabled`. @default true */
  readonly enabled?: boolean;
  /** Only calls for which it returns `true` may get the fault (it must return a boolean). @default every call */
  readonly when?: (context: ExecutionContext) => boolean;
  /** Source of numbers in [0, 1): a call is injected when it draws below `rate` (seed one in tests). @default Math.random */
  readonly random?: () => number;
  /** Name used in events and telemetry. @default 'fault-injection' */
  readonly name?: string;
  /** Time source of the injected latency. @default systemClock */
  readonly clock?: Clock;
}

/** What a call got: `'fault'` and `'outcome'` end it (after `latencyMs`, when > 0); `'latency'` delays it, then it runs. */
export type InjectedKind = 'fault' | 'outcome' | 'latency';

/** Payload of {@link FaultInjectionPolicy.onInjected} and of `bulwark:chaos:injected`. */
export interface FaultInjectedEvent {
  readonly policy: string;
  readonly kind: InjectedKind;
  /** The latency injected before it, in ms (0 for none). */
  readonly latencyMs: number;
}

const owner = 'faultInjection';
const keys = ['rate', 'fault', 'latencyMs', 'outcome', 'enabled', 'when', 'random', 'name', 'clock'] as const;

/**
 * The context a disabled policy hands the function when the caller passed no signal: like a root
 * context without one, nothing can abort it, so a fresh signal per read (never aborted) is as good
 * as one per call, and the call allocates nothing. Never shared: listeners a function leaves on it
 * go with it.
 */
const idleContext: ExecutionContext = Object.freeze({
  attempt: 1,
  get signal(): AbortSignal {
    return new AbortController().signal;
  },
});

/** Injects errors, latency or a chosen outcome into a share of calls. Built by {@link faultInjection}. */
export class FaultInjectionPolicy<R = never> extends PolicyBase<R> {
  readonly kind = 'fault-injection';
  readonly name: string;
  /** Subscribes to injections. */
  readonly onInjected: EventSubscriber<FaultInjectedEvent>;

  private on: boolean;
  private share: number;
  private readonly fault: Error | (() => Error) | undefined;
  private readonly latency: LatencySource | undefined;
  private readonly outcome: R | (() => R | PromiseLike<R>) | undefined;
  private readonly hasOutcome: boolean;
  private readonly when: ((context: ExecutionContext) => boolean) | undefined;
  private readonly random: () => number;
  private readonly clock: Clock;
  private readonly injected = new EventEmitter<FaultInjectedEvent>(() => this.name);

  constructor(options: FaultInjectionOptions<R>) {
    super();
    if (options === undefined) throw new TypeError(`${owner}: options must be an object with "rate" and a fault, got undefined`);
    const o = checkOptions(owner, options, keys);
    this.share = rateOption(owner, o.rate);
    this.on = enabledOption(owner, o.enabled);
    if (o.fault !== undefined && !(o.fault instanceof Error) && typeof o.fault !== 'function') {
      throw new TypeError(`${owner}: option "fault" must be an Error or a function returning one, got ${show(o.fault)}`);
    }
    this.fault = o.fault;
    this.latency = latencyOption(owner, o.latencyMs);
    this.outcome = o.outcome;
    this.hasOutcome = o.outcome !== undefined;
    if (this.fault !== undefined && this.hasOutcome) {
      throw new TypeError(`${owner}: options "fault" and "outcome" both end the call: give one (put two policies in a pipeline for both)`);
    }
    if (this.fault === undefined && !this.hasOutcome && this.latency === undefined) {
      throw new TypeError(`${owner}: give at least one of "fault", "outcome" or "latencyMs": a policy with none injects nothing`);
    }
    if (o.when !== undefined && typeof o.when !== 'function') {
      throw new TypeError(`${owner}: option "when" must be a function (context) => boolean, got ${show(o.when)}`);
    }
    this.when = o.when;
    this.random = randomOption(owner, o.random);
    this.name = nameOption(owner, o.name, 'fault-injection');
    this.clock = clockOption(owner, o.clock, systemClock);
    this.onInjected = this.injected.subscribe;
  }

  /** Whether faults are injected; set it to switch injection on or off at run time (no state is lost). */
  get enabled(): boolean {
    return this.on;
  }

  set enabled(value: boolean) {
    this.on = enabledOption(owner, value);
  }

  /** Share of calls injected, in (0, 1]; settable at run time. */
  get rate(): number {
    return this.share;
  }

  set rate(value: number) {
    this.share = rateOption(owner, value);
  }

  // PolicyBase's execute(), copied so that `this[runSymbol]` sees this class alone (see PolicyBase),
  // with one more statement first: a disabled policy (its usual state in production) runs the
  // function at once, with no context of its own, when the caller passed no signal. It is then
  // out of the way altogether: not traced either (a `bulwark:execute` span for a policy that did
  // nothing is noise, and the check would be most of what a disabled call costs).
  override execute<T>(fn: PolicyFunction<T>, options?: ExecuteOptions): Promise<T | R> {
    if (!this.on && options === undefined && typeof fn === 'function') return callFunction(fn, idleContext);
    const context = rootContext(fn, options);
    if (context instanceof Promise) return context;
    return whileCallerWaits(context, executeChannel.hasSubscribers ? invokeTraced(this, fn, context) : this[runSymbol](fn, context));
  }

  [runSymbol]<T>(fn: PolicyFunction<T>, context: Context): Promise<T | R> {
    if (!this.on) return callFunction(fn, context);
    let latencyMs: number;
    try {
      if (!this.picks(context)) return callFunction(fn, context);
      latencyMs = this.latency === undefined ? 0 : latencyOf(owner, this.latency);
    } catch (error) {
      // A `when`, `random` or `latencyMs` function that throws (or answers wrongly) fails this call only.
      return Promise.reject(error);
    }
    const kind: InjectedKind = this.fault !== undefined ? 'fault' : this.hasOutcome ? 'outcome' : 'latency';
    if (this.injected.active || faultInjectedChannel.hasSubscribers) {
      const event: FaultInjectedEvent = { policy: this.name, kind, latencyMs };
      this.injected.emit(event);
      if (faultInjectedChannel.hasSubscribers) faultInjectedChannel.publish(event);
    }
    if (latencyMs === 0) return this.end(fn, context);
    // Aborts at once, with the signal's reason, when the caller (or an enclosing timeout) gives
    // up; the timer and the listener go with it.
    return sleep(this.clock, latencyMs, context.abortable()).then(() => this.end(fn, context));
  }

  /** Whether this call gets the fault: `when` admits it, then it draws below the rate. */
  private picks(context: Context): boolean {
    const when = this.when;
    if (when !== undefined) {
      const eligible: unknown = when(context);
      if (typeof eligible !== 'boolean') throw new TypeError(`${owner}: option "when" must return a boolean, got ${show(eligible)}`);
      if (!eligible) return false;
    }
    return this.random() < this.share;
  }

  /** After the injected latency: the fault, the outcome, or (latency alone) the call itself. */
  private end<T>(fn: PolicyFunction<T>, context: Context): Promise<T | R> {
    const fault = this.fault;
    if (fault !== undefined) {
      if (fault instanceof Error) return Promise.reject(fault);
      let error: unknown;
      try {
        error = fault();
      } catch (thrown) {
        error = thrown;
      }
      if (!(error instanceof Error)) error = new TypeError(`${owner}: option "fault" must return an Error, got ${show(error)}`);
      return Promise.reject(error);
    }
    if (this.hasOutcome) {
      const outcome = this.outcome;
      return typeof outcome === 'function' ? callFunction(outcome as () => R | PromiseLike<R>, context) : Promise.resolve(outcome as R);
    }
    return callFunction(fn, context);
  }
}

/**
 * Builds a chaos policy (after Polly's Simmy): a share `rate` of the calls it runs — only those
 * `when` admits, and only while `enabled` — get `latencyMs` of delay, then reject with `fault` or
 * resolve with `outcome` instead of running (or, with latency alone, run late). Put it innermost
 * in a pipeline, so the retries, breaker and timeouts around it meet the faults it makes.
 * Injected latency ends at once when the call's signal aborts. Disabled, it costs a few ns a call.
 * @example
 * const chaos = faultInjection({ rate: 0.05, fault: () => new Error('injected'), enabled: process.env.CHAOS === '1' });
 * const policy = pipeline(retry({ maxAttempts: 3 }), circuitBreaker(), timeout(1_000), chaos);
 */
export function faultInjection<R = never>(options: FaultInjectionOptions<R>): FaultInjectionPolicy<R> {
  return new FaultInjectionPolicy<R>(options);
}
