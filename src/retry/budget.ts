import { type Clock, systemClock } from '../core/clock.js';
import { TimeBuckets } from '../core/time-buckets.js';
import { checkOptions, clockOption, durationOption, numberOption, ratioOption } from '../core/validate.js';

/** Options of {@link retryBudget}. */
export interface RetryBudgetOptions {
  /** Retries allowed as a share of calls in the window, in (0, 1]. @default 0.2 */
  readonly ratio?: number;
  /** Retries always allowed per second, however few calls there were. @default 10 */
  readonly minRetriesPerSecond?: number;
  /** How far back calls and retries are counted, in ms (kept as 10 buckets). @default 10000 */
  readonly windowMs?: number;
  /** Time source. @default systemClock */
  readonly clock?: Clock;
}

const keys = ['ratio', 'minRetriesPerSecond', 'windowMs', 'clock'] as const;
const BUCKETS = 10;
// Counters of the window.
const CALLS = 0;
const RETRIES = 1;

/**
 * A budget of retries shared by any number of retry policies: over the last `windowMs`, retries
 * may not exceed `ratio` × calls plus `minRetriesPerSecond` × window seconds. When a dependency
 * fails hard, this caps the extra load retries add to `ratio` instead of `maxAttempts` × — the
 * retry budgets of Finagle and Envoy. Built by {@link retryBudget}.
 */
export class RetryBudget {
  readonly ratio: number;
  readonly minRetriesPerSecond: number;
  readonly windowMs: number;
  private readonly clock: Clock;
  private readonly window: TimeBuckets;

  constructor(options?: RetryBudgetOptions) {
    const o = checkOptions('retryBudget', options, keys);
    this.ratio = ratioOption('retryBudget', 'ratio', o.ratio, 0.2);
    this.minRetriesPerSecond = numberOption('retryBudget', 'minRetriesPerSecond', o.minRetriesPerSecond, 10, { min: 0 });
    this.windowMs = durationOption('retryBudget', 'windowMs', o.windowMs, 10_000, { min: BUCKETS });
    this.clock = clockOption('retryBudget', o.clock, systemClock);
    this.window = new TimeBuckets(this.windowMs, 2, BUCKETS);
  }

  /** Counts a first attempt (retry policies call this once per execution). */
  recordCall(): void {
    this.window.add(this.window.slotAt(this.clock.now()), CALLS);
  }

  /** Takes one retry from the budget; false when it is spent. */
  tryRetry(): boolean {
    const slot = this.window.slotAt(this.clock.now());
    if (this.window.totals[RETRIES]! + 1 > this.allowance()) return false;
    this.window.add(slot, RETRIES);
    return true;
  }

  /** Retries still available in the current window. */
  get available(): number {
    this.window.slotAt(this.clock.now());
    return Math.max(0, Math.floor(this.allowance() - this.window.totals[RETRIES]!));
  }

  private allowance(): number {
    return this.ratio * this.window.totals[CALLS]! + (this.minRetriesPerSecond * this.windowMs) / 1000;
  }
}

/**
 * Creates a retry budget to share between retry policies.
 * @example
 * const budget = retryBudget({ ratio: 0.1, minRetriesPerSecond: 5 });
 * const users = retry({ maxAttempts: 3, budget });
 * const orders = retry({ maxAttempts: 3, budget });
 */
export function retryBudget(options?: RetryBudgetOptions): RetryBudget {
  return new RetryBudget(options);
}
