// Issue 15 §5: the proof under overload, shortened. Runs `node benchmarks/overload.mjs --quick`
// on the built package (as `npm test` does after building): a modelled backend of fixed capacity,
// a service behind bulwark's adaptive limit, open-loop load stepped from 0.5 C to 3 C, and the
// 30 % critical / 70 % sheddable mix; asserts the bounds on what it measured, and that the
// same step without admission control really was an overload (so the bounds are not met by a
// harness that failed to load the service). The judging functions are checked first, on made-up
// records, so a wrong figure cannot pass for a good one.
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { analyse, cleanIntervalShare, creep, percentile, secondsUntilAtLeast, settleSeconds } from '../../benchmarks/overload-scenarios.mjs';
import { runNode } from '../support/run-node.js';

const root = resolve(import.meta.dirname, '../..');

/** Limit samples every 100 ms from `fromMs`, one value per sample. */
function samples(fromMs: number, values: number[]): [number, number, number][] {
  return values.map((l, i) => [fromMs + 100 * i, l, 0]);
}

describe('judging the overload runs', () => {
  it('percentile is the nearest rank: p99 of 1..100 is 99, of one value that value', () => {
    expect(percentile(Array.from({ length: 100 }, (_, i) => i + 1), 99)).toBe(99);
    expect(percentile([7], 99)).toBe(7);
    expect(percentile([], 99)).toBeNaN();
  });

  it('settleSeconds finds the last excursion outside the band around the final median', () => {
    // 3 s of 30, 2 s of 20, then 15 s at 8 (band ±2): settled 5 s after the change.
    const limit = samples(0, [...Array(30).fill(30), ...Array(20).fill(20), ...Array(150).fill(8)]);
    expect(settleSeconds(limit, 0, 20_000)).toEqual({ seconds: 5, final: 8 });
    // One spike to 12 at 12 s counts: settled only after it.
    limit[120] = [12_000, 12, 0];
    expect(settleSeconds(limit, 0, 20_000).seconds).toBeCloseTo(12.1, 5);
  });

  it('creep compares every later 5 s median with the settled one', () => {
    const limit = samples(0, [...Array(100).fill(10), ...Array(50).fill(11), ...Array(50).fill(13)]);
    const c = creep(limit, 0, 10_000, 20_000);
    expect(c.settled).toBe(10);
    expect(c.highest).toBe(13);
    expect(c.ratio).toBeCloseTo(1.3, 10);
  });

  it('secondsUntilAtLeast is 0 when already there and undefined when never', () => {
    const limit = samples(10_000, [5, 6, 9, 10]);
    expect(secondsUntilAtLeast(limit, 10_000, 9)).toBeCloseTo(0.2, 10);
    expect(secondsUntilAtLeast(limit, 10_000, 5)).toBe(0);
    expect(secondsUntilAtLeast(limit, 10_000, 11)).toBeUndefined();
  });

  it('cleanIntervalShare counts an interval dirty only when a critical request is rejected while a sheddable one is admitted', () => {
    const run = {
      arrival: Float64Array.from([10, 20, 110, 120, 210, 220]),
      cls: Uint8Array.from([1, 0, 1, 0, 1, 1]),
      status: Uint16Array.from([503, 200, 503, 503, 200, 503]),
    };
    expect(cleanIntervalShare(run, 0, 300)).toEqual({ share: 2 / 3, intervals: 3, dirty: 1 });
  });

  it('the step is judged from 5 s after it: p99 ratio, goodput of C, the pre-step limit and the recovery', () => {
    // 1 s at 0.5 C before the step is too short for the window: use 10 s before, 10 s of step, 5 s after.
    const arrival: number[] = [];
    const status: number[] = [];
    const latency: number[] = [];
    for (let t = 0; t < 25_000; t += 10) {
      arrival.push(t);
      const inJudged = t >= 15_000 && t < 20_000;
      status.push(t >= 10_000 && t < 20_000 && t % 20 === 0 ? 503 : 200);
      latency.push(inJudged ? 60 : 40);
    }
    const load = { arrival, cls: new Uint8Array(arrival.length).fill(255), status, latency, lag: new Float64Array(arrival.length), ends: [10_000, 20_000, 25_000] };
    const limit = [...samples(5_000, Array(50).fill(20)), ...samples(10_000, Array(100).fill(10)), ...samples(20_000, [10, 12, 15, 18, 19, 20])];
    const f = analyse.step({ load, limit, serviceStats: { rejectionMs: [0.1, 0.2, 3] } }, {}, { capacity: 100, baseline: { p99: 50 } });
    expect(f.p99Ratio).toBeCloseTo(1.2, 10);
    expect(f.goodputRatio).toBeCloseTo(0.5, 10); // 50 admitted per second against C = 100
    expect(f.preRejectionShare).toBe(0);
    expect(f.preStepLimit).toBe(20);
    expect(f.recoverySeconds).toBeCloseTo(0.3, 10); // 18 ≥ 0.9 × 20 at 20.3 s
    expect(f.serverRejectionP99Ms).toBe(3);
  });
});

describe('the overload proof, shortened (node benchmarks/overload.mjs --quick: bulwark\'s defaults; with priorities, critical may wait 50 ms)', () => {
  // One run of the harness (about 85 s) for every figure below, so a missed figure fails alone.
  let output = '';
  let last: Record<string, number | null> = {};
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  let scenarios: Record<string, { figures: any }> = {};
  beforeAll(async () => {
    expect(existsSync(join(root, 'dist/index.js')), 'dist/ is missing: run `npm run build` first').toBe(true);
    const dir = mkdtempSync(join(tmpdir(), 'bulwark-overload-'));
    try {
      const file = join(dir, 'figures.json');
      const run = await runNode('benchmarks/overload.mjs', ['--quick', '--json', file], { cwd: root, killAfterMs: 160_000 });
      output = run.output;
      expect(run.code, output).toBe(0);
      last = JSON.parse(output.trim().split('\n').at(-1)!);
      scenarios = JSON.parse(readFileSync(file, 'utf8')).scenarios;
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }, 170_000);

  it('prints the four headline figures as its last line', () => {
    expect(Object.keys(last)).toEqual(['p99Ratio', 'goodputRatio', 'criticalSuccess', 'sheddableShareOfRejections']);
  });

  it('the same step without admission control is a real overload (the harness loads the service)', () => {
    const none = scenarios.none!.figures;
    expect(none.goodputRatio, output).toBeLessThan(0.5);
    expect(none.stepFailed, output).toBeGreaterThan(0);
  });

  it('step: no rejections (< 0.1 %) at 0.5 C', () => {
    expect(scenarios.step!.figures.preRejectionShare, output).toBeLessThan(0.001);
  });

  // The shortened run judges fewer requests on a CI machine running other work, so three figures
  // carry a margin here: the issue's own bounds (p99 ≤ 1.3×, critical ≥ 99.5 %, ≥ 99.9 % clean
  // intervals) are judged on the full-length runs recorded in benchmarks/RESULTS.md. The margins
  // still fail a limit that lets a queue build (no admission control: p99 in seconds), priority
  // shedding that does not hold (critical success near 30 % without it), or critical work shed
  // beside sheddable work in more than one interval of the run's 120. The priority scenario lets
  // critical requests wait up to 50 ms for a slot (queueFrom 'critical', docs/admission.md), so a
  // burst of critical work alone beyond the limit waits instead of being refused: quick runs gave
  // 99.82–100.00 % (decided on arrival, 98.56–99.91 %).
  it('step: from 5 s after the step to 3 C, admitted p99 ≤ 1.4× the unloaded p99 (1.3× at full length)', () => {
    expect(last.p99Ratio, output).toBeLessThanOrEqual(1.4);
  });

  it('step: goodput ≥ 90 % of C', () => {
    expect(last.goodputRatio, output).toBeGreaterThanOrEqual(0.9);
  });

  it('step: rejections answered with p99 ≤ 2 ms (in the service)', () => {
    expect(scenarios.step!.figures.serverRejectionP99Ms, output).toBeLessThanOrEqual(2);
  });

  it('step: after the overload, the limit is back to ≥ 90 % of the pre-step limit within 10 s', () => {
    expect(scenarios.step!.figures.recoverySeconds, output).toBeLessThanOrEqual(10);
  });

  it('priority: no rejection in either class at 0.8 C', () => {
    expect(scenarios.priority!.figures.moderateRejections, output).toEqual({ critical: 0, sheddable: 0 });
  });

  it('priority: at 3 C, critical success ≥ 99 % (99.5 % at full length) and ≥ 98 % of rejections on sheddable', () => {
    expect(last.criticalSuccess, output).toBeGreaterThanOrEqual(0.99);
    expect(last.sheddableShareOfRejections, output).toBeGreaterThanOrEqual(0.98);
  });

  it('priority: in all but one of the 100 ms intervals (99.9 % at full length) no critical request is rejected while a sheddable one is admitted', () => {
    const { intervals, dirtyIntervals } = scenarios.priority!.figures;
    expect(intervals, output).toBeGreaterThanOrEqual(100);
    expect(dirtyIntervals, output).toBeLessThanOrEqual(1);
  });
});
