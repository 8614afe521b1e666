/**
 * Counters over a sliding time window, kept as a ring of buckets: the breaker's time window and
 * the retry budget both count this way. Totals are kept up to date as buckets leave the window,
 * so reading them is free. Constant memory, no timer: the window moves when it is asked about.
 */
export class TimeBuckets {
  /** Per counter, the sum over the buckets still in the window. */
  readonly totals: Float64Array;
  private readonly counts: Float64Array;
  private readonly epochs: Float64Array;
  private readonly bucketMs: number;
  private latest = -Infinity;

  constructor(
    windowMs: number,
    private readonly counters: number,
    private readonly buckets = 10,
  ) {
    this.bucketMs = windowMs / buckets;
    this.totals = new Float64Array(counters);
    this.counts = new Float64Array(buckets * counters);
    this.epochs = new Float64Array(buckets).fill(-Infinity);
  }

  /**
   * Moves the window up to `now` and returns the bucket that holds `now`, or -1 when `now` lies
   * before the window (a time read long before it was recorded).
   */
  slotAt(now: number): number {
    const epoch = Math.floor(now / this.bucketMs);
    if (epoch > this.latest) {
      // Buckets between the last one used and this one have left the window.
      for (let e = Math.max(this.latest + 1, epoch - this.buckets + 1); e <= epoch; e++) this.clear(e);
      this.latest = epoch;
    }
    const slot = this.slot(epoch);
    return this.epochs[slot] === epoch ? slot : -1;
  }

  /** Adds `amount` to a counter in the bucket from {@link TimeBuckets.slotAt} (none for -1). */
  add(slot: number, counter: number, amount = 1): void {
    if (slot < 0) return;
    this.counts[slot * this.counters + counter]! += amount;
    this.totals[counter]! += amount;
  }

  /** Forgets everything. */
  reset(): void {
    this.totals.fill(0);
    this.counts.fill(0);
    this.epochs.fill(-Infinity);
    this.latest = -Infinity;
  }

  private clear(epoch: number): void {
    const slot = this.slot(epoch);
    const base = slot * this.counters;
    for (let c = 0; c < this.counters; c++) {
      this.totals[c]! -= this.counts[base + c]!;
      this.counts[base + c] = 0;
    }
    this.epochs[slot] = epoch;
  }

  /** Ring index of an epoch; never negative, since epochs are below 0 near clock 0. */
  private slot(epoch: number): number {
    return ((epoch % this.buckets) + this.buckets) % this.buckets;
  }
}
