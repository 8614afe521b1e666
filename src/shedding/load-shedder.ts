import { monitorEventLoopDelay, performance, type EventLoopUtilization, type IntervalHistogram } from 'node:perf_hooks';
import { getHeapStatistics } from 'node:v8';
import { checkMode } from '../admission/mode.js';
import type { AdmissionMode } from '../admission/types.js';
import { type SheddingRejectedMessage, sheddingRejectedChannel } from '../core/diagnostics.js';
import { type Disposable, disposeSymbol } from '../core/events.js';
import { registerPolicy } from '../core/registry.js';
import { checkOptions, countOption, durationOption, functionOption, numberOption, ratioOption, show } from '../core/validate.js';

/**
 * Why a load shedder reports pressure.
 * @example
 * const reason: ShedReason | null = shedder.check();
 */
export type ShedReason = 'eventLoopDelay' | 'eventLoopUtilization' | 'heapUsed' | 'rss';

/**
 * What a shedder is over, when it is: the measure, its value at the last sample, and the limit it passed.
 * @example
 * const p = shedder.pressure; if (p) console.log(`${p.reason}: ${p.value} > ${p.threshold}`);
 */
export interface LoadPressure {
  readonly reason: ShedReason;
  readonly value: number;
  readonly threshold: number;
}

/**
 * One reading of the process's load. The built-in sampler fills in only what the shedder's
 * thresholds need; an injected sampler may leave out what it does not measure.
 * @example
 * loadShedder({ maxEventLoopDelayMs: 100, sampler: (): LoadSample => ({ eventLoopDelayMs: readFromElsewhere() }) });
 */
export interface LoadSample {
  /** Mean event-loop delay over the last interval, in ms (beyond the monitor's own resolution). */
  readonly eventLoopDelayMs?: number;
  /** Share of the last interval the event loop was busy, 0 to 1. */
  readonly eventLoopUtilization?: number;
  /** V8 heap in use, in bytes. */
  readonly heapUsedBytes?: number;
  /** V8 heap size limit, in bytes (for `maxHeapUsedRatio`). */
  readonly heapLimitBytes?: number;
  /** Resident set size, in bytes. */
  readonly rssBytes?: number;
}

/**
 * Options of {@link loadShedder}. With no `max…` threshold the shedder uses the measured
 * recommendation: `maxEventLoopDelayMs: 30` over `sustainedSamples: 2` (benchmarks/RESULTS.md,
 * "Shedding thresholds").
 * @example
 * const options: LoadShedderOptions = { maxEventLoopDelayMs: 30, sustainedSamples: 2, maxHeapUsedRatio: 0.9, retryAfterSeconds: 5 };
 */
export interface LoadShedderOptions {
  /** Shed while the mean event-loop delay over the last interval exceeds this, in ms. @default 30 when no other `max…` is given */
  readonly maxEventLoopDelayMs?: number;
  /**
   * Shed while event-loop utilization over the last interval exceeds this ratio (0, 1]. Counts
   * time the process was runnable but not running as busy: on shared or CPU-limited cores it reads
   * near 1 for a server that keeps up, so prefer `maxEventLoopDelayMs` (or add `sustainedSamples`).
   */
  readonly maxEventLoopUtilization?: number;
  /** Shed while the V8 heap in use exceeds this many bytes. */
  readonly maxHeapUsedBytes?: number;
  /** Shed while the V8 heap in use exceeds this share (0, 1] of the heap size limit. */
  readonly maxHeapUsedRatio?: number;
  /** Shed while the resident set size exceeds this many bytes. */
  readonly maxRssBytes?: number;
  /** How often the process is sampled, in ms (10 or more). @default 1000 */
  readonly sampleIntervalMs?: number;
  /**
   * Shed only once this many samples in a row are over a threshold (and stop at the first one
   * that is not). `1` sheds from the first slow interval on: then one busy second (the app's own
   * start-up work, a major GC) turns a whole interval of traffic away. `2` or more asks for
   * sustained pressure, at the price of reacting `sampleIntervalMs` later per extra sample.
   * @default 1 (2 when no `max…` threshold is given)
   */
  readonly sustainedSamples?: number;
  /** `Retry-After` sent with a 503, in whole seconds. @default 10 */
  readonly retryAfterSeconds?: number;
  /** Replaces the built-in measurements (for tests, or other signals); called once per interval. */
  readonly sampler?: () => LoadSample;
  /**
   * `'shadow'` turns nothing away: the adapters let every request go on (with the `Retry-After`
   * a 503 would have carried) and publish what they would have shed with `mode: 'shadow'`.
   * Settable at run time through {@link LoadShedder.mode}. @default 'enforce'
   */
  readonly mode?: AdmissionMode;
}

const keys = [
  'maxEventLoopDelayMs',
  'maxEventLoopUtilization',
  'maxHeapUsedBytes',
  'maxHeapUsedRatio',
  'maxRssBytes',
  'sampleIntervalMs',
  'sustainedSamples',
  'retryAfterSeconds',
  'sampler',
  'mode',
] as const;

/** The delay threshold a shedder with no `max…` option uses, in ms, and over how many samples. */
const RECOMMENDED_DELAY_MS = 30;
const RECOMMENDED_SAMPLES = 2;

/** Resolution of the event-loop delay monitor, in ms. */
const RESOLUTION_MS = 10;

/** Samples the delay histogram holds before it is cleared (about 3 hours at one per 10 ms). */
const MAX_DELAY_SAMPLES = 1_000_000;

/**
 * Watches the process's load and tells adapters when to turn requests away (503). One unref'd
 * timer per shedder samples every `sampleIntervalMs`; a request only reads the last result, so
 * `check()` costs a property read. Built by {@link loadShedder}.
 * @example
 * using shedder = loadShedder({ maxEventLoopDelayMs: 30, sustainedSamples: 2 });
 * if (shedder.check() !== null) console.log('overloaded');
 */
export class LoadShedder implements Disposable {
  readonly kind = 'load-shedder';
  /** How the shedder is listed by `inspect()`. */
  readonly name = 'load-shedder';
  /** `Retry-After` for a rejection, as the header value. */
  readonly retryAfter: string;
  /** How often the process is sampled, in ms. */
  readonly sampleIntervalMs: number;
  /** Samples in a row over a threshold before shedding starts. */
  readonly sustainedSamples: number;
  private readonly maxDelay: number | undefined;
  private readonly maxUtilization: number | undefined;
  private readonly maxHeapBytes: number | undefined;
  private readonly maxHeapRatio: number | undefined;
  private readonly maxRss: number | undefined;
  private readonly sampler: () => LoadSample;
  private histogram: IntervalHistogram | undefined;
  private elu: EventLoopUtilization | undefined;
  private delayCount = 0;
  private delaySum = 0;
  private timer: NodeJS.Timeout | undefined;
  private current: LoadPressure | null = null;
  private lastSample: LoadSample | undefined;
  /** Samples in a row that were over a threshold. */
  private overCount = 0;
  /** Whether the built-in sampler has taken its first (baseline-only) reading. */
  private warmedUp = false;
  private disposed = false;
  private currentMode: AdmissionMode;

  constructor(options?: LoadShedderOptions) {
    const owner = 'loadShedder';
    const o = checkOptions(owner, options, keys);
    this.maxDelay = o.maxEventLoopDelayMs === undefined ? undefined : durationOption(owner, 'maxEventLoopDelayMs', o.maxEventLoopDelayMs, 0, { min: 0, exclusiveMin: true });
    this.maxUtilization = o.maxEventLoopUtilization === undefined ? undefined : ratioOption(owner, 'maxEventLoopUtilization', o.maxEventLoopUtilization, 1);
    this.maxHeapBytes = o.maxHeapUsedBytes === undefined ? undefined : numberOption(owner, 'maxHeapUsedBytes', o.maxHeapUsedBytes, 0, { min: 0, exclusiveMin: true });
    this.maxHeapRatio = o.maxHeapUsedRatio === undefined ? undefined : ratioOption(owner, 'maxHeapUsedRatio', o.maxHeapUsedRatio, 1);
    this.maxRss = o.maxRssBytes === undefined ? undefined : numberOption(owner, 'maxRssBytes', o.maxRssBytes, 0, { min: 0, exclusiveMin: true });
    // No threshold given: the one measured to shed nothing of a healthy server's traffic, busy
    // start and busy neighbours included, and most of an overloaded one's (RESULTS.md).
    const recommended =
      this.maxDelay === undefined &&
      this.maxUtilization === undefined &&
      this.maxHeapBytes === undefined &&
      this.maxHeapRatio === undefined &&
      this.maxRss === undefined;
    if (recommended) this.maxDelay = RECOMMENDED_DELAY_MS;
    this.sampleIntervalMs = durationOption(owner, 'sampleIntervalMs', o.sampleIntervalMs, 1_000, { min: 10 });
    this.sustainedSamples = countOption(owner, 'sustainedSamples', o.sustainedSamples, recommended ? RECOMMENDED_SAMPLES : 1, { min: 1, max: 1_000 });
    this.retryAfter = String(countOption(owner, 'retryAfterSeconds', o.retryAfterSeconds, 10, { min: 0, max: 2_147_483_647 }));
    if (o.sampler !== undefined && typeof o.sampler !== 'function') {
      throw new TypeError(`${owner}: option "sampler" must be a function returning a sample, got ${show(o.sampler)}`);
    }
    this.sampler = functionOption<() => LoadSample>(owner, 'sampler', o.sampler, this.measure);
    this.currentMode = checkMode(owner, 'option "mode"', o.mode);
    if (o.sampler === undefined) {
      if (this.maxDelay !== undefined) {
        this.histogram = monitorEventLoopDelay({ resolution: RESOLUTION_MS });
        this.histogram.enable();
      }
      if (this.maxUtilization !== undefined) this.elu = performance.eventLoopUtilization();
    }
    this.timer = setTimeout(this.tick, this.sampleIntervalMs);
    this.timer.unref();
    registerPolicy(this);
  }

  /**
   * Null while the process is within every threshold, else the reason it is not (as of the last
   * sample).
   */
  check(): ShedReason | null {
    const p = this.current;
    return p === null ? null : p.reason;
  }

  /**
   * `'enforce'` or `'shadow'` (see the `mode` option); assigning switches at once, keeping the
   * samples and the count of samples in a row over a threshold. Anything else throws a TypeError.
   */
  get mode(): AdmissionMode {
    return this.currentMode;
  }

  set mode(value: AdmissionMode) {
    this.currentMode = checkMode('loadShedder', '"mode"', value, false);
  }

  /** The measure over its threshold at the last sample, with both values, or null. */
  get pressure(): LoadPressure | null {
    return this.current;
  }

  /**
   * The last sample's measures, each with its threshold (undefined: not watched), as plain data
   * (what `inspect()` shows).
   * @example
   * const { eventLoopDelayMs } = shedder.signals();
   */
  signals(): Record<'eventLoopDelayMs' | 'eventLoopUtilization' | 'heapUsedBytes' | 'heapUsedRatio' | 'rssBytes', { value?: number; threshold?: number }> {
    const s = this.lastSample ?? {};
    const heapRatio = typeof s.heapUsedBytes === 'number' && typeof s.heapLimitBytes === 'number' && s.heapLimitBytes > 0 ? s.heapUsedBytes / s.heapLimitBytes : undefined;
    const num = (v: unknown): number | undefined => (typeof v === 'number' && Number.isFinite(v) ? v : undefined);
    return {
      eventLoopDelayMs: { value: num(s.eventLoopDelayMs), threshold: this.maxDelay },
      eventLoopUtilization: { value: num(s.eventLoopUtilization), threshold: this.maxUtilization },
      heapUsedBytes: { value: num(s.heapUsedBytes), threshold: this.maxHeapBytes },
      heapUsedRatio: { value: heapRatio, threshold: this.maxHeapRatio },
      rssBytes: { value: num(s.rssBytes), threshold: this.maxRss },
    };
  }

  /**
   * Samples now, rather than waiting for the timer (the sample counts towards `sustainedSamples`
   * like a timed one); returns what {@link LoadShedder.check} will answer.
   */
  update(): ShedReason | null {
    if (this.disposed) return null;
    const sample = this.sampler();
    const pressure = this.evaluate(sample);
    this.lastSample = sample;
    this.overCount = pressure === null ? 0 : Math.min(this.overCount + 1, this.sustainedSamples);
    this.current = this.overCount >= this.sustainedSamples ? pressure : null;
    return this.check();
  }

  /**
   * Publishes a rejection on `bulwark:shedding:rejected` (when someone listens), with this
   * shedder's mode; adapters call it when they turn a request away, or in shadow mode would have.
   * Returns true when the request is to be turned away: false in shadow mode.
   */
  reject(): boolean {
    const p = this.current;
    const mode = this.currentMode;
    if (p !== null && sheddingRejectedChannel.hasSubscribers) {
      const message: SheddingRejectedMessage = { reason: p.reason, value: p.value, threshold: p.threshold, mode };
      sheddingRejectedChannel.publish(message);
    }
    return mode === 'enforce';
  }

  /**
   * Stops sampling and releases the timer and monitors; `check()` answers null from then on.
   * Idempotent.
   * @example
   * server.on('close', () => shedder.dispose());
   */
  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    this.current = null;
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
    this.histogram?.disable();
    this.histogram = undefined;
  }

  /** Same as {@link LoadShedder.dispose}, for `using`. */
  [disposeSymbol](): void {
    this.dispose();
  }

  /** @deprecated use {@link LoadShedder.dispose} (the one verb of every bulwark handle that stops something). */
  close(): void {
    this.dispose();
  }

  private readonly tick = (): void => {
    if (this.disposed) return;
    try {
      this.update();
    } catch {
      // A sampler that throws must not take the process down from a timer; the last result stands.
    }
    this.timer?.refresh();
  };

  private readonly measure = (): LoadSample => {
    let eventLoopDelayMs: number | undefined;
    let eventLoopUtilization: number | undefined;
    let heapUsedBytes: number | undefined;
    let heapLimitBytes: number | undefined;
    let rssBytes: number | undefined;
    const delay = this.readDelayMs();
    const now = this.elu === undefined ? undefined : performance.eventLoopUtilization();
    if (this.warmedUp) {
      eventLoopDelayMs = delay;
      if (now !== undefined) eventLoopUtilization = performance.eventLoopUtilization(now, this.elu).utilization;
    } else {
      // The first reading covers the time since construction, which is usually the app's own
      // start-up (module loading, building routes: a second of synchronous work reads as an
      // event loop 100 % busy) rather than load. It only sets the baselines; judging it shed a
      // whole interval of healthy traffic right after each start in benchmarks/shedding-thresholds.mjs.
      this.warmedUp = true;
    }
    this.elu = now;
    if (this.maxHeapBytes !== undefined || this.maxHeapRatio !== undefined) {
      const heap = getHeapStatistics();
      heapUsedBytes = heap.used_heap_size;
      heapLimitBytes = heap.heap_size_limit;
    }
    if (this.maxRss !== undefined) rssBytes = process.memoryUsage.rss();
    return { eventLoopDelayMs, eventLoopUtilization, heapUsedBytes, heapLimitBytes, rssBytes };
  };

  /** The mean event-loop delay since the last reading, beyond the monitor's resolution, in ms. */
  private readDelayMs(): number | undefined {
    const h = this.histogram;
    if (h === undefined) return undefined;
    // The mean over this interval from the running totals. Resetting the histogram each time
    // would also forget when its last tick was, and so miss a block that starts right after.
    const count = h.count;
    const sum = count > 0 && Number.isFinite(h.mean) ? h.mean * count : 0;
    const n = count - this.delayCount;
    const mean = n > 0 ? (sum - this.delaySum) / n / 1e6 : 0;
    if (count > MAX_DELAY_SAMPLES) {
      h.reset();
      this.delayCount = 0;
      this.delaySum = 0;
    } else {
      this.delayCount = count;
      this.delaySum = sum;
    }
    return mean > RESOLUTION_MS ? mean - RESOLUTION_MS : 0;
  }

  private evaluate(sample: LoadSample): LoadPressure | null {
    if (typeof sample !== 'object' || sample === null) {
      throw new TypeError(`loadShedder: option "sampler" must return an object, got ${show(sample)}`);
    }
    const over = (reason: ShedReason, value: number | undefined, threshold: number | undefined): LoadPressure | null =>
      threshold !== undefined && typeof value === 'number' && value > threshold ? { reason, value, threshold } : null;
    const heapRatio =
      typeof sample.heapUsedBytes === 'number' && typeof sample.heapLimitBytes === 'number' && sample.heapLimitBytes > 0
        ? sample.heapUsedBytes / sample.heapLimitBytes
        : undefined;
    return (
      over('eventLoopDelay', sample.eventLoopDelayMs, this.maxDelay) ??
      over('eventLoopUtilization', sample.eventLoopUtilization, this.maxUtilization) ??
      over('heapUsed', sample.heapUsedBytes, this.maxHeapBytes) ??
      over('heapUsed', heapRatio, this.maxHeapRatio) ??
      over('rss', sample.rssBytes, this.maxRss)
    );
  }
}

/**
 * Creates a load shedder: adapters answer 503 with `Retry-After` while the event loop is slow or
 * busy, or memory is high. Dispose of it when the server stops (its timer never holds the process open).
 * @example
 * const shedder = loadShedder({ maxEventLoopDelayMs: 30, sustainedSamples: 2 });
 * if (shedder.check() !== null) console.log('overloaded');
 * shedder.dispose();
 */
export function loadShedder(options?: LoadShedderOptions): LoadShedder {
  return new LoadShedder(options);
}
