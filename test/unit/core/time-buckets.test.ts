import { describe, expect, it } from 'vitest';
import { TimeBuckets } from '../../../src/core/time-buckets.js';

describe('TimeBuckets', () => {
  it('sums counters over the window and drops buckets as they leave it', () => {
    const w = new TimeBuckets(1_000, 2); // 10 buckets of 100 ms
    w.add(w.slotAt(0), 0, 3);
    w.add(w.slotAt(450), 1);
    expect([...w.totals]).toEqual([3, 1]);
    w.slotAt(999);
    expect([...w.totals]).toEqual([3, 1]);
    w.slotAt(1_000); // the bucket of t = 0 leaves
    expect([...w.totals]).toEqual([0, 1]);
    w.slotAt(1_450); // and the one of t = 450
    expect([...w.totals]).toEqual([0, 0]);
  });

  it('clears every stale bucket after a long gap', () => {
    const w = new TimeBuckets(1_000, 1);
    for (let t = 0; t < 1_000; t += 100) w.add(w.slotAt(t), 0);
    expect(w.totals[0]).toBe(10);
    w.slotAt(60_000);
    expect(w.totals[0]).toBe(0);
  });

  it('works for times below zero and within one window of zero', () => {
    const w = new TimeBuckets(1_000, 1);
    w.add(w.slotAt(-250), 0);
    w.add(w.slotAt(50), 0);
    expect(w.totals[0]).toBe(2);
    w.slotAt(800);
    expect(w.totals[0]).toBe(1);
  });

  it('counts a late time into its own bucket while it is in the window, and drops it after', () => {
    const w = new TimeBuckets(1_000, 1);
    w.slotAt(5_000);
    w.add(w.slotAt(4_500), 0);
    expect(w.totals[0]).toBe(1);
    expect(w.slotAt(3_000)).toBe(-1);
    w.add(-1, 0);
    expect(w.totals[0]).toBe(1);
  });

  it('reset forgets everything', () => {
    const w = new TimeBuckets(1_000, 1);
    w.add(w.slotAt(10), 0, 5);
    w.reset();
    expect(w.totals[0]).toBe(0);
    w.add(w.slotAt(20), 0);
    expect(w.totals[0]).toBe(1);
  });
});
