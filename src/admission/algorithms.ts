import { checkOptions, countOption, durationOption, numberOption, ratioOption, show } from '../core/validate.js';

/**
 * What one window of finished permits says about the dependency: the input of every adaptive
 * limit. Built by the controller's estimator from released permits (no timer: a window closes on
 * the first release after `windowMs` that brings it to `minSamples`).
 */
export interface LimitWindow {
  /** How long the window lasted, in ms. */
  readonly durationMs: number;
  /** Permits released in the window with outcome `success` or `dropped`. */
  readonly samples: number;
  /** Their mean latency, in ms. */
  readonly avgRttMs: number;
  /** The most permits in flight at any release in the window. */
  readonly maxInFlight: number;
  /** Permits released as `dropped` (timeouts, 503s: the dependency is overloaded). */
  readonly dropped: number;
}

/**
 * One controller's limit: fed every finished permit, it answers the current limit. Made fresh for
 * each controller by {@link LimitAlgorithm.create}.
 */
export interface LimitEstimator {
  /** The limit now: a whole number from the algorithm's `minLimit` to its `maxLimit`. */
  readonly limit: number;
  /**
   * Records one finished permit: the clock's time, its latency, the permits in flight when it
   * finished (itself included) and whether it was dropped. `nowMs` and `rttMs` are NaN for a
   * permit that was not timed (at high rates the controller times one in several): it counts for
   * throughput, in flight and drops only. Returns true when the limit changed.
   */
  sample(nowMs: number, rttMs: number, inFlight: number, dropped: boolean): boolean;
}

/**
 * How an admission controller finds its concurrency limit: {@link gradient2} (the default),
 * {@link vegas} or {@link aimd}. A strategy object: one can configure many controllers.
 * @example
 * admissionController({ limit: vegas({ maxLimit: 200 }) });
 */
export interface LimitAlgorithm {
  readonly kind: 'gradient2' | 'vegas' | 'aimd';
  /** Bounds and start of the limit. */
  readonly minLimit: number;
  readonly maxLimit: number;
  readonly initialLimit: number;
  create(): LimitEstimator;
}

/** Options every adaptive algorithm takes. */
export interface LimitOptions {
  /** The limit never goes below this. @default 1 */
  readonly minLimit?: number;
  /** The limit never goes above this. @default 1000 */
  readonly maxLimit?: number;
  /** The limit before any sample; slow start doubles it while nothing is congested. @default 20 */
  readonly initialLimit?: number;
  /** Shortest window over which samples are aggregated before the limit moves, in ms. @default 250 */
  readonly windowMs?: number;
  /** Fewest timed samples a window needs before the limit moves. @default 10 */
  readonly minSamples?: number;
}

/** Options of {@link gradient2}. */
export interface Gradient2Options extends LimitOptions {
  /** Latency up to this multiple of the baseline counts as no queueing. @default 1.07 */
  readonly rttTolerance?: number;
  /** Share of each proposed change applied per window, in (0, 1]. @default 0.2 */
  readonly smoothing?: number;
  /** Windows over which the latency baseline follows a rise (it follows a fall at once). @default 40 */
  readonly baselineWindows?: number;
}

/** Options of {@link vegas}. */
export interface VegasOptions extends LimitOptions {
  /** Grow while fewer than this many requests (× log10 of the limit) queue at the dependency. @default 3 */
  readonly alpha?: number;
  /** Shrink when more than this many requests (× log10 of the limit) queue. @default 6 */
  readonly beta?: number;
  /** Windows over which the latency baseline follows a rise (it follows a fall at once). @default 40 */
  readonly baselineWindows?: number;
}

/** Options of {@link aimd}. */
export interface AimdOptions extends LimitOptions {
  /** The limit is multiplied by this on a window with a dropped permit, in (0, 1). @default 0.9 */
  readonly backoffRatio?: number;
  /** A permit slower than this counts as dropped, in ms. @default no bound */
  readonly dropAboveMs?: number;
}

interface Bounds {
  readonly minLimit: number;
  readonly maxLimit: number;
  readonly initialLimit: number;
  readonly windowMs: number;
  readonly minSamples: number;
}

const boundKeys = ['minLimit', 'maxLimit', 'initialLimit', 'windowMs', 'minSamples'] as const;

function bounds(owner: string, o: LimitOptions): Bounds {
  const minLimit = countOption(owner, 'minLimit', o.minLimit, 1);
  const maxLimit = countOption(owner, 'maxLimit', o.maxLimit, Math.max(1000, minLimit));
  if (maxLimit < minLimit) {
    throw new RangeError(`${owner}: option "maxLimit" must be at least minLimit (${minLimit}), got ${show(maxLimit)}`);
  }
  const initialLimit = countOption(owner, 'initialLimit', o.initialLimit, Math.min(maxLimit, Math.max(minLimit, 20)));
  if (initialLimit < minLimit || initialLimit > maxLimit) {
    throw new RangeError(`${owner}: option "initialLimit" must be between minLimit (${minLimit}) and maxLimit (${maxLimit}), got ${show(initialLimit)}`);
  }
  return {
    minLimit,
    maxLimit,
    initialLimit,
    windowMs: durationOption(owner, 'windowMs', o.windowMs, 250, { min: 0, exclusiveMin: true }),
    minSamples: countOption(owner, 'minSamples', o.minSamples, 10),
  };
}

/**
 * How a window may move the latency baseline: `'follow'` as usual; `'hold'` not upwards, the
 * rise being the queue our own limit builds; `'reset'` to the window's latency, the dependency
 * having changed (the throughput knee was relearnt).
 */
type BaselineMove = 'follow' | 'hold' | 'reset';

/**
 * A latency baseline: follows a fall at once (half-way per window) and a rise only slowly, so a
 * queue building up reads as a gradient rather than as the new normal. No probe window: the
 * baseline is never measured by pinning concurrency low (Envoy's minRTT windows).
 */
class Baseline {
  value = NaN;
  constructor(private readonly riseWindows: number) {}

  /** See {@link BaselineMove}. */
  update(rttMs: number, move: BaselineMove): number {
    if (Number.isNaN(this.value) || move === 'reset') this.value = rttMs;
    else if (rttMs < this.value) this.value += (rttMs - this.value) * 0.5;
    else if (move === 'follow') this.value += (rttMs - this.value) / this.riseWindows;
    return this.value;
  }
}

/** A window whose mean latency is above the baseline by more than this factor shows a queue. */
const QUEUE_RTT = 1.05;
/** Throughput must rise by at least this share (beyond a window's noise) for a limit to keep a rise. */
const GAIN_MIN = 0.05;
/** Throughput must rise by this share of a limit's relative rise for the limit to keep it. */
const GAIN_SHARE = 0.25;
/** The limit may run this far ahead of the last limit that raised throughput. */
const KNEE_HEADROOM = 1.1;
/** Throughput within this share of the knee's counts as the same. */
const KNEE_HOLD = 0.97;
/** Throughput below this share of the knee's, for `RELEARN_WINDOWS` windows in a row, relearns the knee. */
const RELEARN_SHARE = 0.7;
const RELEARN_WINDOWS = 8;
/**
 * The knee is judged on throughput over at least this long on the clock, not per window: a 250 ms
 * window holds a handful of completions of a slow dependency, and its noise alone would pass for
 * a gain now and then, each one letting the limit creep 10 % (failsafe-go #127).
 */
const KNEE_EPOCH_MS = 2_000;
/** A window whose mean in-flight is at most this share of the limit did not use the limit. */
const UNUSED_SHARE = 0.75;

/**
 * The part every algorithm shares: windows, slow start, app-limited windows, the throughput knee
 * and the bounds. A subclass proposes the next limit from a window; this class decides what to
 * keep of it.
 *
 * Pitfalls handled here, each pinned by a test in test/unit/admission/algorithms.test.ts:
 * - light load (at most half the limit in flight, nothing dropped) neither lowers nor raises the
 *   limit, and no window raises it past twice what was in flight;
 * - slow start doubles the limit per window until the first sign of congestion;
 * - baseline drift (failsafe-go #127): while latency shows a queue (5 % over the baseline), a
 *   limit may rise past the last limit that raised throughput ("the knee") by 10 % at most,
 *   unless throughput rises with it, judged over 2 s of the clock rather than per window. While
 *   a slow dependency holds throughput down, the limit cannot creep up however the latency
 *   baseline drifts; and while throughput holds at the knee's the baseline does not rise (the
 *   latency is our own queue). When throughput stays below 70 % of the knee's for 8 windows, the
 *   knee and the baseline are relearnt;
 * - recovery after an overload: while throughput is below 70 % of the knee's (or in slow start),
 *   a window without congestion that did not use its limit (mean in-flight at most 75 % of it)
 *   doubles the limit, up to the highest limit such a window ever ran with, past the rule of
 *   twice what was in flight and even when app-limited: the limit the light load had is back
 *   within a window or two of the load falling. A slower dependency keeps its limit in use, so
 *   this does not apply to it; nor to priority shedding, which holds throughput at the knee.
 */
abstract class WindowedEstimator implements LimitEstimator {
  limit: number;
  protected estimate: number;
  private slowStart = true;
  private windowStart = NaN;
  private count = 0;
  private timed = 0;
  private rttSum = 0;
  private maxInFlight = 0;
  private drops = 0;
  private throughput = NaN;
  private kneeLimit = 0;
  private kneeThroughput = 0;
  /** Whether the last epoch's throughput held at the knee's (the baseline then does not rise). */
  private atKnee = false;
  private lowWindows = 0;
  private inFlightSum = 0;
  private epochStart = NaN;
  private epochSamples = 0;
  private epochLimit = 0;
  /** The highest limit a window ran with that was neither congested nor used: see `close`. */
  private recoverTo = 0;

  private readonly baseline: Baseline;

  constructor(
    protected readonly b: Bounds,
    riseWindows: number,
  ) {
    this.baseline = new Baseline(riseWindows);
    this.estimate = b.initialLimit;
    this.limit = b.initialLimit;
  }

  sample(nowMs: number, rttMs: number, inFlight: number, dropped: boolean): boolean {
    this.count++;
    this.inFlightSum += inFlight;
    if (inFlight > this.maxInFlight) this.maxInFlight = inFlight;
    if (dropped) this.drops++;
    if (rttMs !== rttMs) return false; // untimed: counted only
    if (Number.isNaN(this.windowStart)) this.windowStart = nowMs - rttMs;
    this.timed++;
    this.rttSum += rttMs;
    const durationMs = nowMs - this.windowStart;
    if (durationMs < this.b.windowMs || this.timed < this.b.minSamples) return false;
    const window: LimitWindow = {
      durationMs,
      samples: this.count,
      avgRttMs: this.rttSum / this.timed,
      maxInFlight: this.maxInFlight,
      dropped: this.drops,
    };
    const unused = this.inFlightSum <= this.count * UNUSED_SHARE * this.limit;
    this.windowStart = nowMs;
    this.count = this.timed = this.rttSum = this.maxInFlight = this.drops = this.inFlightSum = 0;
    return this.close(window, nowMs, unused);
  }

  /**
   * The algorithm's proposal for the next estimate; called for every window. The baseline holds
   * when the window had the knee's throughput: latency above the baseline is then the queue this
   * limit builds (a slower dependency would have lowered the throughput), so it must not raise
   * the baseline.
   */
  protected abstract propose(window: LimitWindow, estimate: number, baselineMs: number): number;

  private close(w: LimitWindow, nowMs: number, unused: boolean): boolean {
    const current = this.estimate;
    const x = w.samples / w.durationMs;
    const appLimited = w.dropped === 0 && w.maxInFlight * 2 <= current;
    if (!appLimited) this.throughput = Number.isNaN(this.throughput) ? x : this.throughput + (x - this.throughput) * 0.5;
    let move: BaselineMove = 'follow';
    if (!this.slowStart && !appLimited) {
      this.epoch(nowMs, w);
      if (this.relearn()) move = 'reset';
      else if (this.atKnee || this.throughput >= this.kneeThroughput * KNEE_HOLD) move = 'hold';
    }
    const base = this.baseline.update(w.avgRttMs, move);
    let next = this.propose(w, current, base);
    const congested = w.dropped > 0 || next < current;
    // Throughput far below the knee's and a limit this window did not use (the load fell, not
    // the dependency: a slower one keeps its limit in use), without congestion: back at once
    // towards the highest limit such a window ran with.
    const fell = this.slowStart || this.throughput < this.kneeThroughput * RELEARN_SHARE;
    const recover = fell && !congested && unused ? Math.min(this.recoverTo, current * 2) : 0;
    if (!congested && unused && this.limit > this.recoverTo) this.recoverTo = this.limit;
    if (appLimited) return recover > current && this.set(recover);
    if (this.slowStart) {
      if (congested) {
        this.slowStart = false;
        this.kneeLimit = this.limit;
        this.kneeThroughput = this.throughput;
        this.atKnee = true;
        this.epochStart = NaN;
      } else {
        next = Math.max(next, current * 2);
      }
    } else if (w.avgRttMs > base * QUEUE_RTT) {
      next = this.gate(current, next);
    }
    if (next > current) next = Math.min(next, Math.max(current, w.maxInFlight * 2));
    return this.set(Math.max(next, recover));
  }

  /**
   * Accumulates the windows of an epoch of at least `KNEE_EPOCH_MS` and, when one ends, judges
   * the knee on its throughput (see {@link gate}): whether it rose enough to move the knee up,
   * held at a lower limit (the knee is there), or fell (the knee's throughput follows it down).
   */
  private epoch(nowMs: number, w: LimitWindow): void {
    if (Number.isNaN(this.epochStart)) {
      this.epochStart = nowMs - w.durationMs;
      this.epochSamples = 0;
      this.epochLimit = Infinity;
    }
    this.epochSamples += w.samples;
    if (this.limit < this.epochLimit) this.epochLimit = this.limit;
    const durationMs = nowMs - this.epochStart;
    if (durationMs < KNEE_EPOCH_MS) return;
    this.epochStart = NaN;
    const x = this.epochSamples / durationMs;
    const used = this.epochLimit;
    const rise = Math.max(0, used / this.kneeLimit - 1);
    this.atKnee = x >= this.kneeThroughput * KNEE_HOLD;
    if (x >= this.kneeThroughput * (1 + GAIN_MIN + GAIN_SHARE * rise)) {
      this.kneeThroughput = x;
      if (used > this.kneeLimit) this.kneeLimit = used;
    } else if (used < this.kneeLimit && this.atKnee) {
      // As much throughput from a lower limit: the knee is there.
      this.kneeLimit = used;
    } else if (!this.atKnee) {
      // Clearly less throughput than the knee's: follow it down (it may have been measured high,
      // while the limit was falling). It stays above what is measured, and a rise needs a gain
      // beyond an epoch's noise on top, so this does not let the limit creep.
      this.kneeThroughput += (x - this.kneeThroughput) * 0.3;
    }
  }

  /** Relearns the knee after throughput has stayed far below it: the dependency changed. */
  private relearn(): boolean {
    if (this.throughput >= this.kneeThroughput * RELEARN_SHARE) {
      this.lowWindows = 0;
      return false;
    }
    if (++this.lowWindows < RELEARN_WINDOWS) return false;
    // Find the new knee as at the start: slow start, from the baseline of now.
    this.slowStart = true;
    this.lowWindows = 0;
    this.epochStart = NaN;
    return true;
  }

  /**
   * The throughput knee: a rise beyond it must be paid for by throughput (judged per epoch, see
   * {@link epoch}). Kept in whole limits, the limits the epoch actually ran with.
   */
  private gate(current: number, next: number): number {
    const cap = Math.max(Math.floor(this.kneeLimit * KNEE_HEADROOM), this.kneeLimit + 1) + 0.999;
    return next > cap && next > current ? Math.max(cap, current) : next;
  }

  private set(next: number): boolean {
    const clamped = Math.min(this.b.maxLimit, Math.max(this.b.minLimit, next));
    this.estimate = clamped;
    const limit = Math.max(this.b.minLimit, Math.floor(clamped));
    if (limit === this.limit) return false;
    this.limit = limit;
    return true;
  }
}

const gradientKeys = [...boundKeys, 'rttTolerance', 'smoothing', 'baselineWindows'] as const;

/**
 * Gradient2 (after Netflix's Gradient2Limit): compares each window's mean latency with a slowly
 * rising baseline. Within `rttTolerance` of it, the limit grows by about 5 % a window; beyond, it
 * shrinks by the ratio (at most by half per window, smoothed). The default algorithm.
 * @example
 * admissionController({ limit: gradient2({ minLimit: 4, maxLimit: 200 }) });
 */
export function gradient2(options?: Gradient2Options): LimitAlgorithm {
  const owner = 'gradient2';
  const o = checkOptions(owner, options, gradientKeys);
  const b = bounds(owner, o);
  const tolerance = numberOption(owner, 'rttTolerance', o.rttTolerance, 1.07, { min: 1 });
  const smoothing = ratioOption(owner, 'smoothing', o.smoothing, 0.2);
  const riseWindows = countOption(owner, 'baselineWindows', o.baselineWindows, 40);
  return latencyAlgorithm('gradient2', b, riseWindows, (w, estimate, base) => {
    const gradient = Math.max(0.5, Math.min(1, (tolerance * base) / w.avgRttMs));
    if (gradient < 1) return estimate + (estimate * gradient - estimate) * smoothing;
    return estimate + 1 + estimate * 0.05;
  });
}

const vegasKeys = [...boundKeys, 'alpha', 'beta', 'baselineWindows'] as const;

/**
 * Vegas (after Netflix's VegasLimit and TCP Vegas): estimates how many requests queue at the
 * dependency, limit × (1 − baseline ÷ latency), grows by log10(limit) + 1 while that is under
 * `alpha`·log10(limit), and shrinks by as much when it is over `beta`·log10(limit).
 * @example
 * admissionController({ limit: vegas({ alpha: 2, beta: 4 }) });
 */
export function vegas(options?: VegasOptions): LimitAlgorithm {
  const owner = 'vegas';
  const o = checkOptions(owner, options, vegasKeys);
  const b = bounds(owner, o);
  const alpha = numberOption(owner, 'alpha', o.alpha, 3, { min: 0, exclusiveMin: true });
  const beta = numberOption(owner, 'beta', o.beta, 6, { min: alpha, exclusiveMin: true });
  const riseWindows = countOption(owner, 'baselineWindows', o.baselineWindows, 40);
  return latencyAlgorithm('vegas', b, riseWindows, (w, estimate, base) => {
    const queue = estimate * Math.max(0, 1 - base / w.avgRttMs);
    const log = Math.max(1, Math.log10(estimate));
    if (w.dropped > 0 || queue > beta * log) return estimate - log - 1;
    if (queue < alpha * log) return estimate + log + 1;
    return estimate;
  });
}

/** An algorithm that proposes from a window and the latency baseline (gradient2, vegas). */
function latencyAlgorithm(
  kind: LimitAlgorithm['kind'],
  b: Bounds,
  riseWindows: number,
  next: (w: LimitWindow, estimate: number, baseline: number) => number,
): LimitAlgorithm {
  return {
    kind,
    ...limits(b),
    create: () =>
      new (class extends WindowedEstimator {
        protected propose(w: LimitWindow, estimate: number, baselineMs: number): number {
          return next(w, estimate, baselineMs);
        }
      })(b, riseWindows),
  };
}

const aimdKeys = [...boundKeys, 'backoffRatio', 'dropAboveMs'] as const;

/**
 * AIMD (after Netflix's AIMDLimit): adds one per window while nothing is dropped, multiplies by
 * `backoffRatio` on a window with a dropped permit (a timeout, a 503, or a permit slower than
 * `dropAboveMs`). Latency alone never lowers it: pair it with a timeout.
 * @example
 * admissionController({ limit: aimd({ backoffRatio: 0.8, dropAboveMs: 500 }) });
 */
export function aimd(options?: AimdOptions): LimitAlgorithm {
  const owner = 'aimd';
  const o = checkOptions(owner, options, aimdKeys);
  const b = bounds(owner, o);
  const ratio = ratioOption(owner, 'backoffRatio', o.backoffRatio, 0.9);
  if (ratio === 1) throw new RangeError(`${owner}: option "backoffRatio" must be less than 1, got 1`);
  const dropAboveMs = durationOption(owner, 'dropAboveMs', o.dropAboveMs, Infinity, { min: 0, exclusiveMin: true });
  return {
    kind: 'aimd',
    ...limits(b),
    create: () =>
      new (class extends WindowedEstimator {
        override sample(nowMs: number, rttMs: number, inFlight: number, dropped: boolean): boolean {
          return super.sample(nowMs, rttMs, inFlight, dropped || rttMs > dropAboveMs);
        }
        protected propose(w: LimitWindow, estimate: number): number {
          return w.dropped > 0 ? estimate * ratio : estimate + 1;
        }
      })(b, 40),
  };
}

function limits(b: Bounds): Pick<LimitAlgorithm, 'minLimit' | 'maxLimit' | 'initialLimit'> {
  return { minLimit: b.minLimit, maxLimit: b.maxLimit, initialLimit: b.initialLimit };
}

/** True for a {@link LimitAlgorithm}-shaped value (an option check, not a brand). */
export function isLimitAlgorithm(value: unknown): value is LimitAlgorithm {
  return typeof value === 'object' && value !== null && typeof (value as LimitAlgorithm).create === 'function';
}
