/**
 * bulwark/opossum: an opossum `CircuitBreaker` you already run, used as a bulwark policy, so it
 * composes with bulwark's retry, timeout, pipeline and fetch, and its events reach bulwark's
 * telemetry (`bulwark/otel`, `bulwark/prometheus`) through the diagnostics channels.
 *
 * opossum itself is never imported here: you build the breaker and pass it in.
 * @packageDocumentation
 */
import { AbortableContext, type Context, type ExecutionContext, RootContext } from '../core/context.js';
import {
  bulkheadRejectedChannel,
  circuitRejectedChannel,
  circuitStateChannel,
  fallbackChannel,
  timeoutChannel,
} from '../core/diagnostics.js';
import { BrokenCircuitError, BulkheadRejectedError, TimeoutError, withCause } from '../core/errors.js';
import { EventEmitter, type EventSubscriber } from '../core/events.js';
import { callFunction, PolicyBase, type PolicyFunction, runSymbol } from '../core/policy.js';
import { checkOptions, nameOption, show } from '../core/validate.js';

/**
 * The action to build a breaker with, for {@link fromOpossum}: it runs the function it is fired
 * with, passing the context that follows it. An opossum breaker wraps one action fixed at
 * construction; with this one, each `execute(fn)` runs its own `fn` through the same breaker.
 * Fired directly (`breaker.fire(fn)`), `fn` gets a fresh context.
 * @example
 * import CircuitBreaker from 'opossum';
 * const breaker = new CircuitBreaker(opossumAction, { timeout: 3_000, name: 'payments' });
 * const payments = fromOpossum(breaker);
 */
export function opossumAction<T>(fn: PolicyFunction<T>, context?: ExecutionContext): Promise<T> {
  if (typeof fn !== 'function') {
    return Promise.reject(new TypeError(`opossumAction: the breaker must be fired with a function, got ${show(fn)}`));
  }
  return callFunction(fn, context ?? new RootContext(undefined));
}

/**
 * What {@link fromOpossum} needs to see of an opossum `CircuitBreaker` (opossum 8 or later);
 * anything else it reads is checked when you wrap the breaker. Loose on purpose, so a breaker
 * typed by any of opossum's type definitions fits.
 */
export interface OpossumCircuitBreaker {
  fire(...args: never[]): PromiseLike<unknown>;
  on(event: string, listener: (...args: unknown[]) => void): unknown;
  shutdown(): void;
}

/** Options of {@link fromOpossum}. */
export interface FromOpossumOptions {
  /**
   * Name used in events and telemetry. @default the breaker's own `name` option if you gave it
   * one, else `'opossum'`
   */
  readonly name?: string;
}

/** The state of a wrapped breaker, in bulwark's words. */
export type OpossumCircuitState = 'closed' | 'open' | 'half-open' | 'shutdown';

/**
 * Why a wrapped breaker changed state. opossum does not say, so it is told from what happened
 * just before: a failed call (`'failures'`, or `'probe-failed'` when half-open), a failed
 * `healthCheck`, the reset timer (`'half-open-due'`), a successful probe, or, with none of
 * those, a call to `breaker.open()` or `breaker.close()` (`'manual'`).
 */
export type OpossumStateChangeReason =
  | 'failures'
  | 'probe-failed'
  | 'health-check-failed'
  | 'half-open-due'
  | 'probes-succeeded'
  | 'manual';

/** Payload of {@link OpossumPolicy.onStateChange} and of `bulwark:circuit:state`. */
export interface OpossumStateChangeEvent {
  readonly policy: string;
  readonly from: Exclude<OpossumCircuitState, 'shutdown'>;
  readonly to: Exclude<OpossumCircuitState, 'shutdown'>;
  readonly reason: OpossumStateChangeReason;
}

/** Payload of {@link OpossumPolicy.onRejected} and of `bulwark:circuit:rejected`. */
export interface OpossumRejectedEvent {
  readonly policy: string;
  readonly state: 'open' | 'half-open';
}

/** Payload of {@link OpossumPolicy.onTimeout} and of `bulwark:timeout:expired`. */
export interface OpossumTimeoutEvent {
  readonly policy: string;
  /** opossum's `timeout` option. */
  readonly timeoutMs: number;
}

/** Payload of {@link OpossumPolicy.onFallback} and of `bulwark:fallback:used`. */
export interface OpossumFallbackEvent {
  readonly policy: string;
  /** The error the breaker's fallback replaced (opossum's own when the circuit was open). */
  readonly error: unknown;
}

/** The parts of opossum's breaker this file reads; checked by {@link fromOpossum}. */
interface Engine {
  fire(fn: PolicyFunction<unknown>, context: Context): PromiseLike<unknown>;
  on(event: string, listener: (...args: never[]) => void): unknown;
  readonly action: unknown;
  readonly options: {
    readonly timeout?: unknown;
    readonly resetTimeout?: unknown;
    readonly capacity?: unknown;
    readonly name?: unknown;
    readonly cache?: unknown;
    readonly coalesce?: unknown;
  };
  readonly opened: boolean;
  readonly halfOpen: boolean;
  readonly isShutdown: boolean;
}

/** A finite, non-negative number from opossum's options, else `fallback`. */
function msOf(value: unknown, fallback: number): number {
  return typeof value === 'number' && Number.isFinite(value) && value >= 0 ? value : fallback;
}

/**
 * One call made while opossum's own timeout is on: the context the function gets, so that
 * opossum's timeout can abort its signal with a `TimeoutError`, as bulwark's timeout does. Its
 * AbortController is only made if the function reads `signal` or the timeout fires.
 */
class OpossumCall extends AbortableContext {
  /** The error opossum rejects this call with on its timeout, once that has fired. */
  engineTimeout: unknown;
  /** What this call rejects with instead of `engineTimeout`. */
  expired: TimeoutError | undefined;
  /** opossum's error when it refused this call (circuit open) or its semaphore was full. */
  refused: unknown;
  locked: unknown;
  readonly policy: OpossumPolicy<unknown>;
  readonly fulfilled: (value: unknown) => unknown;
  readonly rejected: (error: unknown) => never;

  constructor(parent: Context, policy: OpossumPolicy<unknown>) {
    super(parent);
    this.policy = policy;
    this.engineTimeout = undefined;
    this.expired = undefined;
    this.refused = undefined;
    this.locked = undefined;
    this.fulfilled = (value) => {
      this.release();
      return value;
    };
    this.rejected = (error) => {
      this.release();
      if (this.expired !== undefined && error === this.engineTimeout) throw this.expired;
      throw this.policy.translate(error, this.refused, this.locked);
    };
  }

  expire(engineError: unknown, timeoutMs: number): void {
    this.engineTimeout = engineError;
    this.expired = new TimeoutError(timeoutMs, { cause: engineError });
    this.abort(this.expired);
  }
}

/**
 * An opossum breaker as a bulwark policy. Built by {@link fromOpossum}; its events are the
 * breaker's own, so calls fired on the breaker directly show in them too. `R` is the type of
 * what a fallback set with `breaker.fallback(...)` resolves with (`never` without one).
 */
export class OpossumPolicy<R = never> extends PolicyBase<R> {
  readonly kind = 'opossum';
  readonly name: string;
  /** The wrapped breaker. */
  readonly breaker: OpossumCircuitBreaker;
  /** Subscribes to the breaker's state changes. */
  readonly onStateChange: EventSubscriber<OpossumStateChangeEvent>;
  /** Subscribes to calls the breaker refused because its circuit was open or half-open. */
  readonly onRejected: EventSubscriber<OpossumRejectedEvent>;
  /** Subscribes to opossum's own timeouts. */
  readonly onTimeout: EventSubscriber<OpossumTimeoutEvent>;
  /** Subscribes to each use of a fallback set with `breaker.fallback(...)`. */
  readonly onFallback: EventSubscriber<OpossumFallbackEvent>;

  private readonly engine: Engine;
  private readonly stateChanged = new EventEmitter<OpossumStateChangeEvent>(() => this.name);
  private readonly refusedEvents = new EventEmitter<OpossumRejectedEvent>(() => this.name);
  private readonly timedOut = new EventEmitter<OpossumTimeoutEvent>(() => this.name);
  private readonly fellBack = new EventEmitter<OpossumFallbackEvent>(() => this.name);
  /** The state as last reported, to give each change its `from`. */
  private current: Exclude<OpossumCircuitState, 'shutdown'>;
  /** When the breaker last opened; undefined if it opened before it was wrapped. */
  private openedAt: number | undefined = undefined;
  /**
   * opossum announces a refusal (`reject`) and a full semaphore (`semaphoreLocked`) with events
   * emitted inside `fire()`, before it returns; each call reads these right after firing, so it
   * can tell opossum's rejection from its own function's at no cost on the common path.
   */
  private refusal: unknown = undefined;
  private lockout: unknown = undefined;
  /** A call failed / a health check failed in this microtask: what an `open` that follows means. */
  private failing = false;
  private healthFailing = false;
  private clearScheduled = false;

  /** Use {@link fromOpossum}, which checks the breaker and gives one policy per breaker. */
  constructor(breaker: OpossumCircuitBreaker, name: string) {
    super();
    this.breaker = breaker;
    this.engine = breaker as unknown as Engine;
    this.name = name;
    this.current = this.engine.opened ? 'open' : this.engine.halfOpen ? 'half-open' : 'closed';
    this.onStateChange = this.stateChanged.subscribe;
    this.onRejected = this.refusedEvents.subscribe;
    this.onTimeout = this.timedOut.subscribe;
    this.onFallback = this.fellBack.subscribe;
    // One listener per event, added once per breaker (fromOpossum reuses the policy). Each costs a
    // function call when opossum emits and builds nothing unless someone listens.
    const on = (event: string, listener: (...args: never[]) => void): void => {
      this.engine.on(event, listener);
    };
    on('open', () => this.moved('open'));
    on('halfOpen', () => this.moved('half-open'));
    on('close', () => this.moved('closed'));
    on('failure', () => this.flag('failure'));
    on('healthCheckFailed', () => this.flag('health'));
    on('reject', (error: unknown) => this.refused(error));
    on('semaphoreLocked', (error: unknown) => this.locked(error));
    on('timeout', (error: unknown, _latency: unknown, args: unknown) => this.expired(error, args));
    on('fallback', (_result: unknown, error: unknown) => this.fellBackOn(error));
  }

  /** The breaker's state now. */
  get state(): OpossumCircuitState {
    const engine = this.engine;
    if (engine.isShutdown) return 'shutdown';
    return engine.opened ? 'open' : engine.halfOpen ? 'half-open' : 'closed';
  }

  [runSymbol]<T>(fn: PolicyFunction<T>, context: Context): Promise<T | R> {
    const engine = this.engine;
    // Read per call, as opossum does: its options object can be changed after construction.
    const call = engine.options.timeout ? new OpossumCall(context, this as OpossumPolicy<unknown>) : undefined;
    this.refusal = this.lockout = undefined;
    let p: Promise<unknown>;
    try {
      p = Promise.resolve(engine.fire(fn, call ?? context));
    } catch (error) {
      p = Promise.reject(error);
    }
    const refused = this.refusal;
    const locked = this.lockout;
    this.refusal = this.lockout = undefined;
    if (call !== undefined) {
      call.refused = refused;
      call.locked = locked;
      return p.then(call.fulfilled, call.rejected) as Promise<T | R>;
    }
    if (refused === undefined && locked === undefined) return p as Promise<T | R>;
    return p.then(undefined, (error: unknown) => {
      throw this.translate(error, refused, locked);
    }) as Promise<T | R>;
  }

  /**
   * opossum's refusal becomes `BrokenCircuitError`, its full semaphore `BulkheadRejectedError`,
   * each with opossum's error as `cause`; anything else passes through. @internal
   */
  translate(error: unknown, refused: unknown, locked: unknown): unknown {
    if (refused !== undefined && error === refused) {
      const halfOpen = this.engine.halfOpen;
      const message = `Circuit breaker "${this.name}" is ${halfOpen ? 'half-open' : 'open'}`;
      return withCause(new BrokenCircuitError(halfOpen ? 0 : this.openRemainingMs(), message), error);
    }
    if (locked !== undefined && error === locked) {
      return withCause(new BulkheadRejectedError(this.capacity(), 0), error);
    }
    return error;
  }

  /** How long until opossum's reset timer half-opens the breaker (its full `resetTimeout` if unknown). */
  private openRemainingMs(): number {
    const resetMs = msOf(this.engine.options.resetTimeout, 0);
    if (this.openedAt === undefined) return resetMs;
    return Math.max(0, this.openedAt + resetMs - Date.now());
  }

  private capacity(): number {
    return msOf(this.engine.options.capacity, 0);
  }

  private moved(to: Exclude<OpossumCircuitState, 'shutdown'>): void {
    const from = this.current;
    this.current = to;
    if (to === 'open') this.openedAt = Date.now();
    if (from === to || !(this.stateChanged.active || circuitStateChannel.hasSubscribers)) return;
    const event: OpossumStateChangeEvent = { policy: this.name, from, to, reason: this.reasonFor(from, to) };
    this.stateChanged.emit(event);
    if (circuitStateChannel.hasSubscribers) circuitStateChannel.publish(event);
  }

  private reasonFor(from: OpossumStateChangeEvent['from'], to: OpossumStateChangeEvent['to']): OpossumStateChangeReason {
    if (to === 'half-open') return 'half-open-due';
    if (to === 'closed') return from === 'half-open' ? 'probes-succeeded' : 'manual';
    if (this.healthFailing) return 'health-check-failed';
    if (from === 'half-open') return this.failing ? 'probe-failed' : 'manual';
    return this.failing ? 'failures' : 'manual';
  }

  /**
   * opossum opens synchronously right after the failure (or failed health check) that tipped it,
   * so a flag that lives until the end of the current microtask tells what an `open` means.
   */
  private flag(kind: 'failure' | 'health'): void {
    if (kind === 'failure') this.failing = true;
    else this.healthFailing = true;
    if (!this.clearScheduled) {
      this.clearScheduled = true;
      queueMicrotask(() => {
        this.failing = this.healthFailing = this.clearScheduled = false;
      });
    }
  }

  private refused(error: unknown): void {
    this.refusal = error;
    if (this.refusedEvents.active || circuitRejectedChannel.hasSubscribers) {
      const event: OpossumRejectedEvent = { policy: this.name, state: this.engine.halfOpen ? 'half-open' : 'open' };
      this.refusedEvents.emit(event);
      if (circuitRejectedChannel.hasSubscribers) circuitRejectedChannel.publish(event);
    }
  }

  private locked(error: unknown): void {
    this.lockout = error;
    if (bulkheadRejectedChannel.hasSubscribers) {
      bulkheadRejectedChannel.publish({ policy: this.name, active: this.capacity(), queued: 0, mode: 'enforce' });
    }
  }

  private expired(error: unknown, args: unknown): void {
    const timeoutMs = msOf(this.engine.options.timeout, 0);
    // opossum passes the fired arguments: [fn, context]. Only our own calls have a context to abort.
    const call = Array.isArray(args) ? (args[1] as unknown) : undefined;
    if (call instanceof OpossumCall && call.policy === this) call.expire(error, timeoutMs);
    if (this.timedOut.active || timeoutChannel.hasSubscribers) {
      const event: OpossumTimeoutEvent = { policy: this.name, timeoutMs };
      this.timedOut.emit(event);
      if (timeoutChannel.hasSubscribers) timeoutChannel.publish(event);
    }
  }

  private fellBackOn(error: unknown): void {
    if (this.fellBack.active || fallbackChannel.hasSubscribers) {
      const event: OpossumFallbackEvent = { policy: this.name, error };
      this.fellBack.emit(event);
      if (fallbackChannel.hasSubscribers) fallbackChannel.publish(event);
    }
  }
}

const known = ['name'] as const;

/** One policy per breaker, so each of its events is reported once. */
const policies = new WeakMap<object, OpossumPolicy<unknown>>();

function describeAction(action: unknown): string {
  if (typeof action !== 'function') return show(action);
  return action.name === '' ? 'an anonymous function' : `function ${JSON.stringify(action.name)}`;
}

/** Checks that `breaker` is an opossum breaker this wrapper can drive, or throws naming it. */
function checkBreaker(breaker: unknown): Engine {
  const b = breaker as Partial<Record<keyof Engine | 'shutdown', unknown>> | null;
  if (
    typeof breaker !== 'object' ||
    b === null ||
    typeof b.fire !== 'function' ||
    typeof b.on !== 'function' ||
    typeof b.shutdown !== 'function' ||
    typeof b.opened !== 'boolean' ||
    typeof b.options !== 'object' ||
    b.options === null
  ) {
    throw new TypeError(`fromOpossum: option "breaker" must be an opossum CircuitBreaker, got ${show(breaker)}`);
  }
  const engine = breaker as Engine;
  if (engine.isShutdown) {
    throw new TypeError('fromOpossum: option "breaker" has been shut down; wrap a breaker that is still in use');
  }
  if (engine.action !== opossumAction) {
    throw new TypeError(
      `fromOpossum: option "breaker" must be built with opossumAction as its action (new CircuitBreaker(opossumAction, options)), got a breaker whose action is ${describeAction(engine.action)}`,
    );
  }
  for (const key of ['cache', 'coalesce'] as const) {
    if (engine.options[key]) {
      throw new TypeError(
        `fromOpossum: option "breaker" has opossum's "${key}" option set to ${show(engine.options[key])}; it keys results on the fired arguments, here a function and its context, so one call could receive another's result. Turn it off`,
      );
    }
  }
  return engine;
}

/**
 * Wraps an opossum `CircuitBreaker` (opossum 8 or later) as a bulwark policy. Build the breaker
 * with {@link opossumAction} as its action; opossum then decides, as it always does, whether
 * each `execute(fn)` runs, and counts the outcome. If the breaker has a fallback
 * (`breaker.fallback(...)`), name the type of its value: `fromOpossum<Cached>(breaker)`.
 *
 * - opossum's refusal while open or half-open (`EOPENBREAKER`) rejects with `BrokenCircuitError`
 *   (`retryAfterMs` until its reset timer; 0 when half-open), so bulwark's retry stops on it as
 *   on its own breaker's. Its timeout (`ETIMEDOUT`) rejects with
 *   `TimeoutError` and aborts the function's `signal` with it; a full semaphore (`ESEMLOCKED`,
 *   the `capacity` option) with `BulkheadRejectedError`. opossum's error is the `cause`. The
 *   function's own errors, and opossum's error after `shutdown()`, pass through unchanged.
 * - Events go to the diagnostics channels (only when someone subscribes): `open`, `halfOpen`,
 *   `close` → `bulwark:circuit:state`; `reject` → `bulwark:circuit:rejected`; `timeout` →
 *   `bulwark:timeout:expired`; `fallback` → `bulwark:fallback:used`; `semaphoreLocked` →
 *   `bulwark:bulkhead:rejected`. Also as `onStateChange`, `onRejected`, `onTimeout`, `onFallback`.
 * - Wrapping the same breaker again returns the same policy. opossum's `cache` and `coalesce`
 *   cannot be used (they would share results between different functions).
 * - opossum hands its `errorFilter` and `breaker.fallback` functions the fired arguments: here
 *   the function and its context (the error comes first to `errorFilter`, last to a fallback).
 * @example
 * import CircuitBreaker from 'opossum';
 * const breaker = new CircuitBreaker(opossumAction, { timeout: 3_000, resetTimeout: 10_000 });
 * const resilient = pipeline(retry({ maxAttempts: 3 }), fromOpossum(breaker), timeout(5_000));
 * const user = await resilient.execute(({ signal }) => fetch(url, { signal }).then((r) => r.json()));
 * breaker.shutdown();
 */
export function fromOpossum<R = never>(breaker: OpossumCircuitBreaker, options?: FromOpossumOptions): OpossumPolicy<R> {
  const engine = checkBreaker(breaker);
  const o = checkOptions('fromOpossum', options, known);
  const name = o.name === undefined ? undefined : nameOption('fromOpossum', o.name, '');
  const existing = policies.get(engine);
  if (existing !== undefined) {
    if (name !== undefined && name !== existing.name) {
      throw new TypeError(
        `fromOpossum: option "name" is ${show(name)}, but this breaker is already wrapped as ${show(existing.name)}; a breaker reports its events under one name`,
      );
    }
    return existing as OpossumPolicy<R>;
  }
  const own = engine.options.name;
  const policy = new OpossumPolicy<R>(breaker, name ?? (typeof own === 'string' && own !== '' ? own : 'opossum'));
  policies.set(engine, policy as OpossumPolicy<unknown>);
  return policy;
}
