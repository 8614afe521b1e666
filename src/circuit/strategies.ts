import { TimeBuckets } from '../core/time-buckets.js';
import { checkOptions, countOption, durationOption, ratioOption, show } from '../core/validate.js';
import type { FleetRule } from './store.js';

/**
 * Counts outcomes for one breaker and says when it should open. Made fresh for each breaker by
 * {@link BreakerStrategy.create}, so one strategy object can configure many breakers.
 */
export interface FailureTracker {
  /**
   * Records one outcome. `durationMs` is the call's duration when the strategy is `timed`, else NaN;
   * `now` is the clock's time when timed, else 0. Returns true when the breaker should open.
   */
  record(failed: boolean, durationMs: number, now: number): boolean;
  /** Forgets every outcome (on close). */
  reset(): void;
}

/**
 * When a circuit breaker opens: {@link consecutive}, {@link countWindow} or {@link timeWindow}.
 * @example
 * circuitBreaker({ breaker: countWindow({ size: 50, failureRateThreshold: 0.5 }) });
 */
export interface BreakerStrategy {
  readonly kind: 'consecutive' | 'count-window' | 'time-window';
  /** Whether outcomes need timing (slow-call detection or time buckets). */
  readonly timed: boolean;
  /**
   * A call lasting at least this long, in ms, counts as slow; set when the strategy judges slow
   * calls. The breaker also judges half-open probes by it: a slow probe opens the breaker again,
   * even if it succeeded. Leave it out (or `Infinity`) when slowness does not matter.
   */
  readonly slowCallMs?: number;
  create(): FailureTracker;
}

/** bulwark's own strategies, whose trackers never throw (internal, not exported by the package). */
const ownStrategies = new WeakSet<BreakerStrategy>();

/** The fleet rule of each of bulwark's own strategies, for shared breaker stores. */
const rules = new WeakMap<BreakerStrategy, FleetRule>();

/** Marks one of bulwark's own strategies, with the rule a shared store aggregates it by. */
function own(strategy: BreakerStrategy, rule: FleetRule): BreakerStrategy {
  ownStrategies.add(strategy);
  rules.set(strategy, rule);
  return strategy;
}

/** The rule a shared store aggregates `strategy` by; undefined for a custom strategy. */
export function fleetRuleOf(strategy: BreakerStrategy): FleetRule | undefined {
  return rules.get(strategy);
}

/**
 * Opens after `threshold` handled failures in a row; any success resets the count.
 * @example
 * circuitBreaker({ breaker: consecutive(5) });
 */
export function consecutive(threshold: number): BreakerStrategy {
  if (threshold === undefined) throw new TypeError('consecutive: option "threshold" must be a number, got undefined');
  const n = countOption('consecutive', 'threshold', threshold, 5);
  return own({
    kind: 'consecutive',
    timed: false,
    create() {
      let failures = 0;
      return {
        record(failed) {
          if (!failed) {
            failures = 0;
            return false;
          }
          return ++failures >= n;
        },
        reset() {
          failures = 0;
        },
      };
    },
  }, { kind: 'consecutive', threshold: n });
}

/** Options shared by the windowed strategies. */
interface RateOptions {
  /** Open when at least this share of calls in the window failed, in (0, 1]. @default 0.5 */
  readonly failureRateThreshold?: number;
  /** Calls the window must hold before any rate is judged. @default 20 (count window: min(20, size)) */
  readonly minimumCalls?: number;
  /** A call that takes at least this long counts as slow (success or failure). Off by default. */
  readonly slowCallMs?: number;
  /** Open when at least this share of calls in the window was slow, in (0, 1]. @default 1 */
  readonly slowCallRateThreshold?: number;
}

/** Options of {@link countWindow}. */
export interface CountWindowOptions extends RateOptions {
  /** How many of the most recent calls the window holds. @default 100 */
  readonly size?: number;
}

/** Options of {@link timeWindow}. */
export interface TimeWindowOptions extends RateOptions {
  /** How far back the window reaches, in ms (kept as 10 buckets). @default 10000 */
  readonly windowMs?: number;
}

interface Rates {
  failureRate: number;
  minimumCalls: number;
  slowCallMs: number;
  slowRate: number;
}

function rates(owner: string, o: RateOptions, maxMinimum: number): Rates {
  const minimumCalls = countOption(owner, 'minimumCalls', o.minimumCalls, Math.min(20, maxMinimum));
  if (minimumCalls > maxMinimum) {
    throw new RangeError(
      `${owner}: option "minimumCalls" must not exceed "size" (${maxMinimum}), or the breaker could never open, got ${show(minimumCalls)}`,
    );
  }
  if (o.slowCallMs === undefined && o.slowCallRateThreshold !== undefined) {
    throw new TypeError(
      `${owner}: option "slowCallRateThreshold" needs "slowCallMs" to be set, got ${show(o.slowCallRateThreshold)} without it`,
    );
  }
  return {
    failureRate: ratioOption(owner, 'failureRateThreshold', o.failureRateThreshold, 0.5),
    minimumCalls,
    slowCallMs: o.slowCallMs === undefined ? Infinity : durationOption(owner, 'slowCallMs', o.slowCallMs, 0, { min: 0, exclusiveMin: true }),
    slowRate: ratioOption(owner, 'slowCallRateThreshold', o.slowCallRateThreshold, 1),
  };
}

function shouldOpen(r: Rates, calls: number, failures: number, slow: number): boolean {
  // Compare ratios, not counts against rate * calls: the product can round above a whole count
  // (0.07 * 100 = 7.000000000000001), while a correctly rounded quotient equals the threshold.
  return calls >= r.minimumCalls && (failures / calls >= r.failureRate || slow / calls >= r.slowRate);
}

const countKeys = ['size', 'failureRateThreshold', 'minimumCalls', 'slowCallMs', 'slowCallRateThreshold'] as const;

/**
 * Opens when, over the last `size` calls (and at least `minimumCalls`), the failure rate or the
 * slow-call rate reaches its threshold — resilience4j's count-based sliding window.
 * @example
 * circuitBreaker({ breaker: countWindow({ size: 100, failureRateThreshold: 0.5, slowCallMs: 2_000, slowCallRateThreshold: 0.8 }) });
 */
export function countWindow(options?: CountWindowOptions): BreakerStrategy {
  const o = checkOptions('countWindow', options, countKeys);
  const size = countOption('countWindow', 'size', o.size, 100, { max: 1_000_000 });
  const r = rates('countWindow', o, size);
  return own({
    kind: 'count-window',
    timed: r.slowCallMs !== Infinity,
    slowCallMs: r.slowCallMs,
    create() {
      // Each slot holds bit 0 = failed, bit 1 = slow.
      const ring = new Uint8Array(size);
      let next = 0;
      let calls = 0;
      let failures = 0;
      let slow = 0;
      return {
        record(failed, durationMs) {
          const bits = (failed ? 1 : 0) | (durationMs >= r.slowCallMs ? 2 : 0);
          if (calls === size) {
            const old = ring[next]!;
            failures -= old & 1;
            slow -= old >> 1;
          } else {
            calls++;
          }
          ring[next] = bits;
          failures += bits & 1;
          slow += bits >> 1;
          next = next + 1 === size ? 0 : next + 1;
          return shouldOpen(r, calls, failures, slow);
        },
        reset() {
          ring.fill(0);
          next = calls = failures = slow = 0;
        },
      };
    },
  }, { kind: 'count-window', size, failureRate: r.failureRate, minimumCalls: r.minimumCalls, slowRate: r.slowRate });
}

const timeKeys = ['windowMs', 'failureRateThreshold', 'minimumCalls', 'slowCallMs', 'slowCallRateThreshold'] as const;
const BUCKETS = 10;
// Counters of the time window.
const CALLS = 0;
const FAILURES = 1;
const SLOW = 2;

/**
 * Opens when, over the last `windowMs` (and at least `minimumCalls` calls), the failure rate or
 * the slow-call rate reaches its threshold — resilience4j's time-based sliding window, kept in
 * 10 buckets.
 * @example
 * circuitBreaker({ breaker: timeWindow({ windowMs: 30_000, failureRateThreshold: 0.25, minimumCalls: 50 }) });
 */
export function timeWindow(options?: TimeWindowOptions): BreakerStrategy {
  const o = checkOptions('timeWindow', options, timeKeys);
  const windowMs = durationOption('timeWindow', 'windowMs', o.windowMs, 10_000, { min: BUCKETS });
  const r = rates('timeWindow', o, Number.MAX_SAFE_INTEGER);
  return own({
    kind: 'time-window',
    timed: true,
    slowCallMs: r.slowCallMs,
    create() {
      const window = new TimeBuckets(windowMs, 3, BUCKETS);
      const { totals } = window;
      return {
        record(failed, durationMs, now) {
          const slot = window.slotAt(now);
          window.add(slot, CALLS);
          if (failed) window.add(slot, FAILURES);
          if (durationMs >= r.slowCallMs) window.add(slot, SLOW);
          return shouldOpen(r, totals[CALLS]!, totals[FAILURES]!, totals[SLOW]!);
        },
        reset() {
          window.reset();
        },
      };
    },
  }, { kind: 'time-window', size: windowMs, failureRate: r.failureRate, minimumCalls: r.minimumCalls, slowRate: r.slowRate });
}

/**
 * The tracker a breaker uses: bulwark's own as it is (the hot path pays nothing), a custom one
 * wrapped so that a throw from it is reported, not left to reject a promise nobody holds. A
 * throwing `record` counts as "do not open"; the breaker stays usable.
 */
export function safeTracker(strategy: BreakerStrategy, tracker: FailureTracker, report: (error: unknown) => void): FailureTracker {
  if (ownStrategies.has(strategy)) return tracker;
  return {
    record(failed, durationMs, now) {
      try {
        return !!tracker.record(failed, durationMs, now);
      } catch (err) {
        report(err);
        return false;
      }
    },
    reset() {
      try {
        tracker.reset();
      } catch (err) {
        report(err);
      }
    },
  };
}

/** True for objects shaped like a {@link BreakerStrategy}. */
export function isBreakerStrategy(value: unknown): value is BreakerStrategy {
  return typeof value === 'object' && value !== null && typeof (value as BreakerStrategy).create === 'function';
}
