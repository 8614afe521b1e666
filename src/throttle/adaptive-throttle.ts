import { checkMode } from '../admission/mode.js';
import type { AdmissionMode } from '../admission/types.js';
import { reportCallbackError } from '../core/callback-error.js';
import { type Clock, systemClock } from '../core/clock.js';
import type { Context } from '../core/context.js';
import { executeChannel, throttleRejectedChannel } from '../core/diagnostics.js';
import { isAbortError } from '../core/errors.js';
import { EventEmitter, type EventSubscriber } from '../core/events.js';
import { callFunction, type ExecuteOptions, invokeTraced, PolicyBase, type PolicyFunction, rootContext, runSymbol, whileCallerWaits } from '../core/policy.js';
import { TimeBuckets } from '../core/time-buckets.js';
import { checkOptions, clockOption, countOption, durationOption, functionOption, nameOption, numberOption, show } from '../core/validate.js';
import { ThrottledError } from './throttled-error.js';

/**
 * Options of {@link adaptiveThrottle}: Google SRE's client-side throttling ("Handling Overload",
 * _Site Reliability Engineering_, ch. 21).
 */
export interface AdaptiveThrottleOptions {
  /**
   * How many requests per accepted one the throttle lets through before it starts rejecting
   * locally: the upstream is sent up to about `k` × what it accepts. Lower is more aggressive
   * (1 sends about what it accepts; below 1 would reject even a healthy upstream's calls). At least 1.
   * @default 2
   */
  readonly k?: number;
  /**
   * The window over which requests and accepts are counted, in ms (ten buckets, no timer). Longer
   * is steadier; shorter forgets an overload (and recovers from it) sooner.
   * @default 60_000
   */
  readonly windowMs?: number;
  /**
   * The highest probability of a local rejection, in (0, 1): some calls always go through, so
   * the throttle sees the upstream heal.
   * @default 0.9
   */
  readonly maxRejectionProbability?: number;
  /**
   * Below this many settled requests in the window (answered, or rejected locally) nothing is
   * rejected: a few hundred outcomes are needed to tell an upstream failing 40 % of calls from
   * one refusing more than half of them. 0 applies the formula from the first outcome.
   * @default 200
   */
  readonly minRequests?: number;
  /**
   * Whether a failed call still counts as accepted by the upstream (it took the request, and
   * answered with an error of the caller's making: a 404, a validation error). Called with every
   * error except a cancellation by the caller (an `AbortError`), which counts neither way.
   * @default every error counts as not accepted
   */
  readonly isAccepted?: (error: unknown) => boolean;
  /** `'shadow'` rejects nothing: a call that would have been rejected runs, and is reported with `mode: 'shadow'`. @default 'enforce' */
  readonly mode?: AdmissionMode;
  /** Source of numbers in [0, 1): a call is rejected when it draws below the rejection probability (seed one in tests). @default Math.random */
  readonly random?: () => number;
  /** Name used in events and telemetry. @default 'adaptive-throttle' */
  readonly name?: string;
  /** Time source of the window. @default systemClock */
  readonly clock?: Clock;
}

/** Payload of {@link AdaptiveThrottlePolicy.onRejected} and of `bulwark:throttle:rejected`. */
export interface ThrottleRejectedEvent {
  readonly policy: string;
  /** `'shadow'` when the call ran anyway. */
  readonly mode: AdmissionMode;
  /** The rejection probability the call drew against. */
  readonly probability: number;
  /** Requests counted in the window before this call (local rejections included). */
  readonly requests: number;
  /** Requests the upstream accepted in the window. */
  readonly accepts: number;
}

const owner = 'adaptiveThrottle';
const keys = ['k', 'windowMs', 'maxRejectionProbability', 'minRequests', 'isAccepted', 'mode', 'random', 'name', 'clock'] as const;
const REQUESTS = 0;
const ACCEPTS = 1;

/** Every error counts as not accepted (a cancellation never reaches it). */
function neverAccepted(): boolean {
  return false;
}

/**
 * Rejects calls locally, with a probability that grows as the upstream accepts fewer of them.
 * Built by {@link adaptiveThrottle}.
 */
export class AdaptiveThrottlePolicy extends PolicyBase {
  readonly kind = 'adaptive-throttle';
  readonly name: string;
  readonly k: number;
  readonly windowMs: number;
  readonly maxRejectionProbability: number;
  readonly minRequests: number;
  /** Subscribes to local rejections (and, in shadow mode, would-be rejections). */
  readonly onRejected: EventSubscriber<ThrottleRejectedEvent>;

  private shadow: boolean;
  /** Calls made and not yet settled. */
  private inFlight = 0;
  private readonly counts: TimeBuckets;
  private readonly isAccepted: (error: unknown) => boolean;
  private readonly random: () => number;
  private readonly clock: Clock;
  private readonly rejected = new EventEmitter<ThrottleRejectedEvent>(() => this.name);

  constructor(options?: AdaptiveThrottleOptions) {
    super();
    const o = checkOptions(owner, options, keys);
    this.k = numberOption(owner, 'k', o.k, 2, { min: 1 });
    this.windowMs = durationOption(owner, 'windowMs', o.windowMs, 60_000, { min: 0, exclusiveMin: true });
    const max = o.maxRejectionProbability === undefined ? 0.9 : o.maxRejectionProbability;
    if (typeof max !== 'number' || !(max > 0 && max < 1)) {
      throw new RangeError(`${owner}: option "maxRejectionProbability" must be a number greater than 0 and less than 1, got ${show(max)}`);
    }
    this.maxRejectionProbability = max;
    this.minRequests = countOption(owner, 'minRequests', o.minRequests, 200, { min: 0 });
    this.isAccepted = functionOption(owner, 'isAccepted', o.isAccepted, neverAccepted);
    this.shadow = checkMode(owner, 'option "mode"', o.mode) === 'shadow';
    this.random = functionOption(owner, 'random', o.random, Math.random);
    this.name = nameOption(owner, o.name, 'adaptive-throttle');
    this.clock = clockOption(owner, o.clock, systemClock);
    this.counts = new TimeBuckets(this.windowMs, 2);
    this.onRejected = this.rejected.subscribe;
  }

  /** `'enforce'` or `'shadow'`; switchable at run time, the counts are kept. */
  get mode(): AdmissionMode {
    return this.shadow ? 'shadow' : 'enforce';
  }

  set mode(mode: AdmissionMode) {
    this.shadow = checkMode(owner, '"mode"', mode, false) === 'shadow';
  }

  /** The probability that a call made now is rejected locally (0 below `minRequests` settled requests). */
  get rejectionProbability(): number {
    this.counts.slotAt(this.clock.now());
    return this.probability(this.counts.totals[REQUESTS]!, this.counts.totals[ACCEPTS]!);
  }

  /** Requests and accepts counted in the window now. */
  get window(): { readonly requests: number; readonly accepts: number } {
    this.counts.slotAt(this.clock.now());
    return { requests: this.counts.totals[REQUESTS]!, accepts: this.counts.totals[ACCEPTS]! };
  }

  // PolicyBase's execute(), copied so that `this[runSymbol]` sees this class alone (see PolicyBase).
  override execute<T>(fn: PolicyFunction<T>, options?: ExecuteOptions): Promise<T> {
    const context = rootContext(fn, options);
    if (context instanceof Promise) return context;
    return whileCallerWaits(context, executeChannel.hasSubscribers ? invokeTraced(this, fn, context) : this[runSymbol](fn, context));
  }

  [runSymbol]<T>(fn: PolicyFunction<T>, context: Context): Promise<T> {
    const counts = this.counts;
    const started = this.clock.now();
    const slot = counts.slotAt(started);
    const requests = counts.totals[REQUESTS]!;
    const accepts = counts.totals[ACCEPTS]!;
    // Counted before the call, whatever comes of it: a local rejection is a request too (that is
    // what keeps the probability from running to 1). A call still in flight weighs once it settles.
    counts.add(slot, REQUESTS);
    const probability = this.probability(requests, accepts);
    if (probability > 0) {
      let draw: number;
      try {
        draw = this.random();
      } catch (error) {
        return Promise.reject(error);
      }
      if (draw < probability) {
        const mode: AdmissionMode = this.shadow ? 'shadow' : 'enforce';
        this.report(mode, probability, requests, accepts);
        if (mode === 'enforce') return Promise.reject(new ThrottledError(probability, requests, accepts));
      }
    }
    this.inFlight++;
    const result = callFunction(fn, context);
    result.then(this.succeeded, (error: unknown) => this.failed(error, started));
    return result;
  }

  /**
   * The formula, capped, over the window's counts before a call, less the calls still in flight;
   * 0 below `minRequests` such requests.
   */
  private probability(requests: number, accepts: number): number {
    // Calls in flight have no outcome yet: counted, they would make a slow upstream look like a
    // refusing one (a 10 s call at 10 req/s: 100 requests before the first accept).
    const settled = Math.max(0, requests - this.inFlight);
    if (settled < this.minRequests) return 0;
    const excess = settled - this.k * accepts;
    if (!(excess > 0)) return 0;
    return Math.min(this.maxRejectionProbability, excess / (settled + 1));
  }

  private readonly succeeded = (): void => {
    this.inFlight--;
    this.accepted();
  };

  private accepted(): void {
    this.counts.add(this.counts.slotAt(this.clock.now()), ACCEPTS);
  }

  private failed(error: unknown, started: number): void {
    this.inFlight--;
    if (isAbortError(error)) {
      // The caller gave up: that says nothing of the upstream. The request is taken back out of
      // the bucket it went into, unless that bucket has left the window already.
      this.counts.slotAt(this.clock.now());
      this.counts.add(this.counts.slotAt(started), REQUESTS, -1);
      return;
    }
    let accepted: boolean;
    try {
      accepted = this.isAccepted(error) === true;
    } catch (err) {
      // The call already rejects with its own error: the throw is reported, the call not accepted.
      reportCallbackError(this.name, 'isAccepted', err);
      accepted = false;
    }
    if (accepted) this.accepted();
  }

  private report(mode: AdmissionMode, probability: number, requests: number, accepts: number): void {
    if (!this.rejected.active && !throttleRejectedChannel.hasSubscribers) return;
    const event: ThrottleRejectedEvent = { policy: this.name, mode, probability, requests, accepts };
    this.rejected.emit(event);
    if (throttleRejectedChannel.hasSubscribers) throttleRejectedChannel.publish(event);
  }
}

/**
 * Builds a client-side adaptive throttle (Google SRE's): it counts the requests it sees and those
 * the upstream accepted over `windowMs`, and rejects a call locally, with a `ThrottledError`, with
 * probability max(0, (requests − k·accepts) / (requests + 1)), at most `maxRejectionProbability`.
 * A healthy upstream is never throttled; one refusing most calls gets about `k` times what it
 * accepts, the rest failing at once, in the caller's process. Put it inside a retry and outside
 * the timeout: every attempt asks it, and a timed-out attempt counts as not accepted.
 * @example
 * const throttle = adaptiveThrottle({ name: 'pricing' });
 * const policy = pipeline(retry({ maxAttempts: 3 }), throttle, timeout(2_000));
 * const price = await policy.execute(({ signal }) => getPrice(sku, { signal }));
 */
export function adaptiveThrottle(options?: AdaptiveThrottleOptions): AdaptiveThrottlePolicy {
  return new AdaptiveThrottlePolicy(options);
}
