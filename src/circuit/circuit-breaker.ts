import { reportCallbackError } from '../core/callback-error.js';
import { type Clock, systemClock } from '../core/clock.js';
import type { Context } from '../core/context.js';
import { circuitRejectedChannel, type CircuitRejectedMessage, type CircuitState, circuitStateChannel, executeChannel } from '../core/diagnostics.js';
import { checkMode } from '../admission/mode.js';
import type { AdmissionMode } from '../admission/types.js';
import { BrokenCircuitError, IsolatedCircuitError } from '../core/errors.js';
import { type Disposable, EventEmitter, type EventSubscriber, toDisposable } from '../core/events.js';
import { registerPolicy } from '../core/registry.js';
import { callFunction, type ExecuteOptions, invokeTraced, PolicyBase, type PolicyFunction, rootContext, runSymbol, whileCallerWaits } from '../core/policy.js';
import { checkOptions, clockOption, countOption, durationOption, functionOption, nameOption, show } from '../core/validate.js';
import { checkSnapshot, defaultHandle, openScheduleOption, optionKeys, strategyOption } from './options.js';
import { type FailureTracker, fleetRuleOf } from './strategies.js';
import { type FleetState, isBreakerStore, memoryBreakerStore, type SharedBreaker } from './store.js';
import type { CircuitBreakerOptions, CircuitBreakerSnapshot, StateChangeEvent, StateChangeReason } from './types.js';

export { defaultHandle } from './options.js';
export type { CircuitBreakerOptions, CircuitBreakerSnapshot, CircuitState, StateChangeEvent, StateChangeReason } from './types.js';

const CLOSED = 0;
const OPEN = 1;
const HALF_OPEN = 2;
const ISOLATED = 3;
type Phase = typeof CLOSED | typeof OPEN | typeof HALF_OPEN | typeof ISOLATED;
const stateNames: readonly CircuitState[] = ['closed', 'open', 'half-open', 'isolated'];

/**
 * A circuit breaker: stops calling a failing dependency for a while, then lets probes test it.
 * Built by {@link circuitBreaker}.
 */
export class CircuitBreakerPolicy extends PolicyBase {
  readonly kind = 'circuit-breaker';
  readonly name: string;

  /** Subscribes to state changes. */
  readonly onStateChange: EventSubscriber<StateChangeEvent>;

  private phase: Phase = CLOSED;
  private readonly tracker: FailureTracker;
  private readonly timed: boolean;
  /** A call lasting at least this long counts as slow, in ms (Infinity: slowness not judged). */
  readonly slowCallMs: number;
  private readonly clock: Clock;
  private readonly handle: (error: unknown) => boolean;
  private readonly handleResult: ((value: unknown) => boolean) | undefined;
  /**
   * What the untimed closed path runs on a value and on an error: chosen once, so it costs nothing
   * without `handleResult` or a shared store.
   */
  private readonly closedValue: (value: unknown) => void;
  private readonly closedFailure: (error: unknown) => void;
  /** The breaker's handle on a shared store; undefined with the memory store (the default). */
  private readonly shared: SharedBreaker | undefined;
  /** The fleet's open period last applied (see `applyFleet`). */
  private fleetEpoch = -1;
  /** The generation in which the fleet said its probe slots were all taken. */
  private fleetFull = -1;
  private readonly openDelay: (opens: number, previous: number) => number;
  /** The longest open period: `halfOpenAfterMs`, or its backoff's `maxMs`. */
  private readonly maxOpenMs: number;
  private readonly halfOpenMaxCalls: number;
  private readonly probeTimeoutMs: number;
  private readonly stateChanged = new EventEmitter<StateChangeEvent>(() => this.name);

  /** Consecutive opens without a close. */
  private opens = 0;
  /** The previous open period handed to a backoff: its `initialMs` again after every close. */
  private readonly firstOpenDelay: number;
  private lastOpenDelay: number;
  private openUntil = 0;
  /** Bumped on every transition, so late results of an earlier state are ignored. */
  private generation = 0;
  private probesStarted = 0;
  private probesInFlight = 0;
  private probesSucceeded = 0;
  private probeDeadline = 0;
  private isolations = 0;
  /** Mode 'shadow': calls the breaker would reject run, unrecorded. */
  private shadow: boolean;

  constructor(options?: CircuitBreakerOptions) {
    super();
    const o = checkOptions('circuitBreaker', options, optionKeys);
    const { strategy, tracker, timed, slowCallMs } = strategyOption(o.breaker, (err) => reportCallbackError(this.name, 'breaker', err));
    this.tracker = tracker;
    this.timed = timed;
    this.slowCallMs = slowCallMs;
    const schedule = openScheduleOption(o.halfOpenAfterMs, (err) => reportCallbackError(this.name, 'halfOpenAfterMs', err));
    this.openDelay = schedule.openDelay;
    this.firstOpenDelay = schedule.firstOpenDelay;
    this.maxOpenMs = schedule.maxOpenMs;
    this.lastOpenDelay = this.firstOpenDelay;
    this.halfOpenMaxCalls = countOption('circuitBreaker', 'halfOpenMaxCalls', o.halfOpenMaxCalls, 1, { max: 1_000_000 });
    this.probeTimeoutMs = durationOption('circuitBreaker', 'probeTimeoutMs', o.probeTimeoutMs, 30_000, {
      min: 0,
      exclusiveMin: true,
    });
    this.handle = functionOption('circuitBreaker', 'handle', o.handle, defaultHandle);
    this.handleResult =
      o.handleResult === undefined ? undefined : functionOption('circuitBreaker', 'handleResult', o.handleResult, defaultHandle);
    this.name = nameOption('circuitBreaker', o.name, 'circuit-breaker');
    this.shadow = checkMode('circuitBreaker', 'option "mode"', o.mode) === 'shadow';
    this.clock = clockOption('circuitBreaker', o.clock, systemClock);
    this.onStateChange = this.stateChanged.subscribe;
    if (o.initialState !== undefined) this.restore(o.initialState);
    const store = o.store === undefined ? memoryBreakerStore() : o.store;
    if (!isBreakerStore(store)) {
      throw new TypeError(`circuitBreaker: option "store" must be a breaker store such as memoryBreakerStore(), got ${show(store)}`);
    }
    this.shared = store.connect({
      name: this.name,
      halfOpenMaxCalls: this.halfOpenMaxCalls,
      probeTimeoutMs: this.probeTimeoutMs,
      maxOpenMs: this.maxOpenMs,
      rule: fleetRuleOf(strategy),
      clock: this.clock,
      openDelay: (opens) => this.openDelay(opens, this.lastOpenDelay),
      apply: (fleet) => this.applyFleet(fleet),
    });
    if (this.shared === undefined) {
      this.closedValue = this.handleResult === undefined ? this.closedSuccess : this.closedResult;
      this.closedFailure = this.localFailure;
    } else {
      this.closedValue = this.sharedValue;
      this.closedFailure = this.sharedFailure;
    }
    registerPolicy(this);
  }

  /** The current state; an open breaker whose period has ended reads as half-open. */
  get state(): CircuitState {
    if (this.phase === OPEN || this.phase === HALF_OPEN) this.refresh(this.clock.now());
    return stateNames[this.phase]!;
  }

  /**
   * `'enforce'` or `'shadow'` (see the `mode` option); assigning switches at once and keeps the
   * state, the strategy's counts and the open period. Anything else throws a TypeError.
   */
  get mode(): AdmissionMode {
    return this.shadow ? 'shadow' : 'enforce';
  }

  set mode(value: AdmissionMode) {
    this.shadow = checkMode('circuitBreaker', '"mode"', value, false) === 'shadow';
  }

  /**
   * Holds the breaker open by hand: every call rejects with `IsolatedCircuitError` until every
   * returned disposable is disposed, after which it starts closed and fresh.
   */
  isolate(): Disposable {
    this.isolations++;
    if (this.phase !== ISOLATED) this.transition(ISOLATED, 'isolated');
    return toDisposable(() => {
      if (--this.isolations === 0) {
        this.tracker.reset();
        this.opens = 0;
        this.lastOpenDelay = this.firstOpenDelay;
        this.transition(CLOSED, 'released');
      }
    });
  }

  /** The state as plain data, for `initialState`. */
  toJSON(): CircuitBreakerSnapshot {
    const state = this.state;
    const now = this.clock.now();
    if (state === 'open' || state === 'isolated') {
      const remaining = state === 'open' ? this.openUntil - now : this.openDelay(Math.max(1, this.opens), this.lastOpenDelay);
      return { state, openRemainingMs: Math.max(0, remaining), opens: this.opens, savedAt: Date.now() };
    }
    return { state, openRemainingMs: 0, opens: this.opens, savedAt: Date.now() };
  }

  // PolicyBase's execute(), copied so that `this[runSymbol]` sees this class alone (see PolicyBase).
  override execute<T>(fn: PolicyFunction<T>, options?: ExecuteOptions): Promise<T> {
    const context = rootContext(fn, options);
    if (context instanceof Promise) return context;
    return whileCallerWaits(context, executeChannel.hasSubscribers ? invokeTraced(this, fn, context) : this[runSymbol](fn, context));
  }

  [runSymbol]<T>(fn: PolicyFunction<T>, context: Context): Promise<T> {
    if (this.phase === CLOSED) {
      if (!this.timed) return this.runClosed(fn, context);
      return this.runTimed(fn, context);
    }
    return this.runNotClosed(fn, context);
  }

  // The untimed closed path is the hottest in the library, so its handlers are bound once, not
  // made per call: a result counts if the breaker is closed when it settles. A call that spans a
  // whole open → half-open → closed cycle therefore counts in the new closed period (resilience4j
  // records late results into the current state too); telling it apart would cost a closure per
  // call (~10 ns, a third of the budget). The timed path has a closure anyway and checks the
  // generation exactly.
  private runClosed<T>(fn: PolicyFunction<T>, context: Context): Promise<T> {
    const p = callFunction(fn, context);
    p.then(this.closedValue, this.closedFailure);
    return p;
  }

  private readonly closedSuccess = (): void => {
    if (this.phase === CLOSED && this.tracker.record(false, NaN, 0)) this.open('failures');
  };

  private readonly closedResult = (value: unknown): void => {
    if (this.phase === CLOSED && this.tracker.record(this.resultFails(value), NaN, 0)) this.open('failures');
  };

  private readonly localFailure = (error: unknown): void => {
    if (this.phase === CLOSED && this.counts(error) && this.tracker.record(true, NaN, 0)) this.open('failures');
  };

  private readonly sharedValue = (value: unknown): void => {
    if (this.phase === CLOSED) this.recordShared(this.resultFails(value), NaN, 0);
  };

  private readonly sharedFailure = (error: unknown): void => {
    if (this.phase === CLOSED && this.counts(error)) this.recordShared(true, NaN, 0);
  };

  /** A closed outcome with a shared store: the fleet decides while its view is fresh, else this breaker. */
  private recordShared(failed: boolean, durationMs: number, now: number): void {
    const judged = this.tracker.record(failed, durationMs, now);
    const shared = this.shared!;
    shared.record(failed, durationMs >= this.slowCallMs, judged);
    if (judged && !shared.active) this.open('failures');
  }

  private recordTimed(failed: boolean, durationMs: number, now: number): void {
    if (this.shared !== undefined) this.recordShared(failed, durationMs, now);
    else if (this.tracker.record(failed, durationMs, now)) this.open('failures');
  }

  private runTimed<T>(fn: PolicyFunction<T>, context: Context): Promise<T> {
    const generation = this.generation;
    const start = this.clock.now();
    const p = callFunction(fn, context);
    p.then(
      (value) => {
        if (generation !== this.generation) return;
        const now = this.clock.now();
        this.recordTimed(this.resultFails(value), now - start, now);
      },
      (error: unknown) => {
        if (generation !== this.generation || !this.counts(error)) return;
        const now = this.clock.now();
        this.recordTimed(true, now - start, now);
      },
    );
    return p;
  }

  private runNotClosed<T>(fn: PolicyFunction<T>, context: Context): Promise<T> {
    if (this.phase === ISOLATED) return this.shadow ? this.passShadow(fn, context) : this.reject(new IsolatedCircuitError());
    const now = this.clock.now();
    this.refresh(now); // only ever moves to open or half-open
    if (this.phase === OPEN || this.probesStarted >= this.halfOpenMaxCalls) {
      if (this.shadow) return this.passShadow(fn, context);
      return this.reject(new BrokenCircuitError(this.phase === OPEN ? Math.max(0, this.openUntil - now) : 0));
    }
    if (this.shared !== undefined && this.shared.active) {
      if (this.fleetFull !== this.generation) return this.claimThenProbe(fn, context);
      return this.shadow ? this.passShadow(fn, context) : this.reject(new BrokenCircuitError(0));
    }
    return this.probe(fn, context, now, false);
  }

  /**
   * Half-open with a shared store: a probe runs only once the fleet granted it one of its
   * `halfOpenMaxCalls` slots (a local slot is held meanwhile, so this process never asks for more
   * than that). The store answers within its timeout; undefined (it cannot tell) probes locally.
   */
  private async claimThenProbe<T>(fn: PolicyFunction<T>, context: Context): Promise<T> {
    const generation = this.generation;
    const shared = this.shared!;
    this.probesStarted++;
    const granted = await shared.claimProbe();
    if (generation !== this.generation) {
      // The state moved on while the fleet was asked (the local slot went with it).
      if (granted === true) shared.probeDone('released');
      return this[runSymbol](fn, context);
    }
    this.probesStarted--;
    if (granted === false) {
      this.fleetFull = generation;
      return this.shadow ? this.passShadow(fn, context) : this.reject(new BrokenCircuitError(0));
    }
    return this.probe(fn, context, this.clock.now(), granted === true);
  }

  /**
   * Applies the fleet's state, as a shared store read it. An isolated breaker ignores it (an
   * operator's override in this process); otherwise the fleet's open period replaces this
   * breaker's, and the fleet's close closes it.
   */
  private applyFleet(fleet: FleetState): void {
    if (this.phase === ISOLATED) return;
    const now = this.clock.now();
    const newPeriod = fleet.epoch !== this.fleetEpoch;
    this.fleetEpoch = fleet.epoch;
    if (fleet.state === 'closed') {
      if (this.phase === CLOSED) return;
      this.tracker.reset();
      this.opens = 0;
      this.lastOpenDelay = this.firstOpenDelay;
      this.transition(CLOSED, 'fleet-closed');
      return;
    }
    this.opens = Math.max(1, fleet.opens);
    const until = fleet.state === 'open' ? now + fleet.openRemainingMs : now;
    if (this.phase === CLOSED || (this.phase === HALF_OPEN && (newPeriod || fleet.state === 'open'))) {
      this.openUntil = until;
      this.transition(OPEN, 'fleet-opened');
    } else if (this.phase === OPEN) {
      this.openUntil = until;
    }
    this.refresh(now);
  }

  /**
   * A call a shadow breaker would have rejected: published as a rejection, then run with its
   * outcome left unrecorded. An enforcing breaker never sees the outcome of a call it rejects;
   * recording it here would close a shadow breaker sooner than an enforcing one, and its
   * would-reject count would no longer predict the rejections of enforcing.
   */
  private passShadow<T>(fn: PolicyFunction<T>, context: Context): Promise<T> {
    this.publishRejected('shadow');
    return callFunction(fn, context);
  }

  /** Runs a probe; `fleet`: the probe holds one of a shared store's slots, and reports to it. */
  private probe<T>(fn: PolicyFunction<T>, context: Context, now: number, fleet: boolean): Promise<T> {
    const generation = this.generation;
    this.probesStarted++;
    this.probesInFlight++;
    this.probeDeadline = Math.max(this.probeDeadline, now + this.probeTimeoutMs);
    const p = callFunction(fn, context);
    p.then(
      (value) => {
        const end = this.clock.now();
        this.refresh(end); // past its deadline, this probe has already been given up
        if (generation !== this.generation) return;
        this.probesInFlight--;
        // As in resilience4j, a dependency that answers but stays slow is not healthy: closing on
        // a slow probe would let `minimumCalls` slow calls through on every cycle.
        const failed = this.resultFails(value) || end - now >= this.slowCallMs;
        if (fleet) this.shared!.probeDone(failed ? 'failed' : 'succeeded');
        if (failed) {
          this.open('probe-failed');
        } else if (++this.probesSucceeded >= this.halfOpenMaxCalls) {
          this.tracker.reset();
          this.opens = 0;
          this.lastOpenDelay = this.firstOpenDelay;
          this.transition(CLOSED, 'probes-succeeded');
        }
      },
      (error: unknown) => {
        this.refresh(this.clock.now());
        if (generation !== this.generation) return;
        this.probesInFlight--;
        if (this.counts(error)) {
          if (fleet) this.shared!.probeDone('failed');
          this.open('probe-failed');
        } else {
          if (fleet) this.shared!.probeDone('released');
          this.probesStarted--; // told us nothing: free the slot for another probe
        }
      },
    );
    return p;
  }

  /**
   * Asks `handle` whether an error counts. A `handle` that throws must not leave the breaker in a
   * half-updated state (a probe slot taken forever) nor reach the process as an uncaught
   * exception: the error counts, the call still rejects with it, and the throw is reported on
   * `bulwark:callback:error`, as event listeners' errors are.
   */
  private counts(error: unknown): boolean {
    try {
      return this.handle(error);
    } catch (err) {
      reportCallbackError(this.name, 'handle', err);
      return true;
    }
  }

  /**
   * Asks `handleResult` whether a returned value counts as a failure. The call resolves with the
   * value whatever the answer, so a throw has no call to reject: the value counts (as a throwing
   * `handle` counts the error) and the throw is reported on `bulwark:callback:error`.
   */
  private resultFails(value: unknown): boolean {
    const handleResult = this.handleResult;
    if (handleResult === undefined) return false;
    try {
      return handleResult(value);
    } catch (err) {
      reportCallbackError(this.name, 'handleResult', err);
      return true;
    }
  }

  /**
   * Applies the lazy transitions as if timers had fired on time: abandoned probes (the breaker
   * opens as of the probe deadline), then open → half-open when due.
   */
  private refresh(now: number): void {
    if (this.phase === HALF_OPEN && this.probesInFlight > 0 && now >= this.probeDeadline) {
      this.open('probe-abandoned', this.probeDeadline);
    }
    if (this.phase === OPEN && now >= this.openUntil) this.transition(HALF_OPEN, 'half-open-due');
  }

  /** Opens the breaker; its open period runs from `since` (default now). */
  private open(reason: StateChangeReason, since = this.clock.now()): void {
    this.opens++;
    const delay = this.openDelay(this.opens, this.lastOpenDelay);
    this.lastOpenDelay = delay;
    this.openUntil = since + delay;
    this.transition(OPEN, reason);
  }

  private transition(to: Phase, reason: StateChangeReason): void {
    const from = this.phase;
    this.phase = to;
    this.generation++;
    this.probesStarted = this.probesInFlight = this.probesSucceeded = 0;
    this.probeDeadline = 0;
    if (from !== to && (this.stateChanged.active || circuitStateChannel.hasSubscribers)) {
      const event: StateChangeEvent = { policy: this.name, from: stateNames[from]!, to: stateNames[to]!, reason, mode: this.mode };
      this.stateChanged.emit(event);
      if (circuitStateChannel.hasSubscribers) circuitStateChannel.publish(event);
    }
  }

  private reject(error: BrokenCircuitError | IsolatedCircuitError): Promise<never> {
    this.publishRejected('enforce');
    return Promise.reject(error);
  }

  private publishRejected(mode: AdmissionMode): void {
    if (circuitRejectedChannel.hasSubscribers) {
      const message: CircuitRejectedMessage = { policy: this.name, state: stateNames[this.phase]!, mode };
      circuitRejectedChannel.publish(message);
    }
  }

  private restore(snapshot: CircuitBreakerSnapshot): void {
    const { state, openRemainingMs, opens, savedAt } = checkSnapshot(snapshot, stateNames);
    if (state === 'closed') return;
    this.opens = Math.max(1, opens);
    const elapsed = Math.max(0, Date.now() - savedAt);
    const remaining = Math.min(this.maxOpenMs, Math.max(0, openRemainingMs - elapsed));
    this.openUntil = this.clock.now() + (state === 'half-open' ? 0 : remaining);
    this.phase = OPEN;
  }
}

/**
 * Builds a circuit breaker. Closed: calls pass and outcomes are counted by the `breaker`
 * strategy. Open: calls reject at once with `BrokenCircuitError` for `halfOpenAfterMs`. Then
 * half-open: exactly `halfOpenMaxCalls` probes run, every other caller is rejected at once; all
 * probes succeeding closes it, one failing — or succeeding slowly, when the strategy has
 * `slowCallMs` — opens it again (the slow probe's call still resolves with its value). No timer
 * is used: open → half-open happens on the next call or state read.
 * @example
 * const breaker = circuitBreaker({ breaker: consecutive(5), halfOpenAfterMs: 5_000 });
 * breaker.onStateChange(({ from, to }) => console.log(`breaker ${from} -> ${to}`));
 * const user = await breaker.execute(() => getUser(id));
 */
export function circuitBreaker(options?: CircuitBreakerOptions): CircuitBreakerPolicy {
  return new CircuitBreakerPolicy(options);
}
