// Issue 16 §2's figures for adaptiveThrottle, shortened, on a modelled upstream and a clock the
// model moves (deterministic: seeded draws). The full-length runs on real time are
// benchmarks/adaptive-throttle.mjs, recorded in benchmarks/RESULTS.md.
import { describe, expect, it } from 'vitest';
import { adaptiveThrottle } from '../../../src/index.js';
import { capacity, drive, mean, seeded, SteppedClock } from './model.js';

const WINDOW_MS = 60_000; // the default, written out: the figures are stated in windows

describe('adaptiveThrottle: issue 16 §2 figures (modelled upstream, stepped clock)', () => {
  it('500 offered to an upstream accepting 100/s: it receives ≤ 230/s and accepts ≥ 95/s, after the first window', async () => {
    const clock = new SteppedClock();
    const throttle = adaptiveThrottle({ random: seeded(1), clock });
    const seconds = await drive(throttle, clock, 500, 3 * WINDOW_MS / 1000, capacity(100));
    const steady = seconds.slice(WINDOW_MS / 1000);
    expect(mean(steady, 'sent')).toBeLessThanOrEqual(230);
    expect(mean(steady, 'accepted')).toBeGreaterThanOrEqual(95);
    // Every second, not only on average: the upstream is never starved.
    expect(Math.min(...steady.map((s) => s.accepted))).toBeGreaterThanOrEqual(95);
    // And without the throttle it would have received all 500.
    expect(mean(steady, 'offered')).toBe(500);
  });

  it('an upstream failing 40 % of calls: 0 local rejections (warm: it starts failing; cold: from the first call)', async () => {
    for (const start of ['warm', 'cold'] as const) {
      const clock = new SteppedClock();
      const throttle = adaptiveThrottle({ random: seeded(2), clock });
      const fails = seeded(3);
      if (start === 'warm') await drive(throttle, clock, 100, WINDOW_MS / 1000, () => true);
      const seconds = await drive(throttle, clock, 100, 3 * WINDOW_MS / 1000, () => fails() >= 0.4);
      expect(seconds.reduce((n, s) => n + s.rejected, 0), start).toBe(0);
      expect(mean(seconds, 'accepted'), start).toBeGreaterThan(55);
    }
  });

  it('after the upstream heals, the rejection probability is < 1 % within two windows', async () => {
    const clock = new SteppedClock();
    const throttle = adaptiveThrottle({ random: seeded(4), clock });
    await drive(throttle, clock, 500, 2 * WINDOW_MS / 1000, capacity(100));
    expect(throttle.rejectionProbability).toBeGreaterThan(0.5);
    const healed = clock.ms;
    // Healed: every call accepted. Sample the probability each second.
    const probabilities: number[] = [];
    for (let s = 0; s < 2 * WINDOW_MS / 1000; s++) {
      await drive(throttle, clock, 500, 1, () => true);
      probabilities.push(throttle.rejectionProbability);
    }
    expect(clock.ms - healed).toBe(2 * WINDOW_MS);
    expect(probabilities.at(-1)).toBeLessThan(0.01);
    const firstBelow = probabilities.findIndex((p) => p < 0.01) + 1;
    expect(firstBelow).toBeGreaterThan(0);
    expect(firstBelow * 1000).toBeLessThanOrEqual(2 * WINDOW_MS);
    // Once below, it stays below.
    expect(probabilities.slice(firstBelow).every((p) => p < 0.01)).toBe(true);
  });
});
