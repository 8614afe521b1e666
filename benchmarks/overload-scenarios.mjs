// The scenarios of benchmarks/overload.mjs and how each is judged: pure functions over the records
// of a run (no process, no clock), so test/service/overload.test.ts can check the judging itself
// on made-up records as well as run the harness.
//
// A run's records (from the harness's load generator): `arrival` (ms from the start of the load,
// when the request was due), `cls` (1 critical, 0 sheddable, 255 none), `status` (0 = timed out
// or failed), `latency` (ms from when it was due), `ends` (each segment's end, ms); `limit` the
// admission limit sampled every 100 ms as [ms from the start, limit, in flight].

/** Which scenarios each mode runs. */
export const RUN_SCENARIOS = Object.freeze({
  full: ['step', 'halve', 'slow', 'priority', 'none', 'bulkhead'],
  quick: ['step', 'priority', 'none'],
});

const seconds = (mode, quick, full) => (mode === 'quick' ? quick : full);

/** Each scenario's schedule: its admission stage, segments ({ seconds, rate, criticalShare? }) and backend changes. */
export const schedules = {
  unloaded: (mode, c) => ({
    title: 'unloaded (0.5 C, no admission control)',
    stage: 'none',
    analysis: 'unloaded',
    segments: [{ seconds: seconds(mode, 8, 30), rate: 0.5 * c }],
  }),
  step: (mode, c) => stepSchedule('adaptive', 'step 0.5 C → 3 C → 0.5 C, adaptive limit', seconds(mode, 8, 120), seconds(mode, 12, 30), seconds(mode, 10, 20), c),
  none: (mode, c) => stepSchedule('none', 'the same step without admission control', seconds(mode, 3, 10), seconds(mode, 10, 30), seconds(mode, 0, 10), c),
  bulkhead: (mode, c) => stepSchedule('bulkhead', 'the same step behind a bulkhead sized by hand to W', seconds(mode, 3, 10), seconds(mode, 10, 30), seconds(mode, 0, 10), c),
  halve: (mode, c, workers) => ({
    title: `capacity halves (${workers} → ${Math.max(1, Math.floor(workers / 2))} workers) at 1.5 C, adaptive limit`,
    stage: 'adaptive',
    analysis: 'halve',
    segments: [
      { seconds: 20, rate: 1.5 * c },
      { seconds: 30, rate: 1.5 * c },
    ],
    changes: [{ atSeconds: 20, set: { workers: Math.max(1, Math.floor(workers / 2)) } }],
  }),
  slow: (mode, c) => ({
    title: 'service time × 5 for 120 s at 0.5 C (2.5× the slowed capacity), adaptive limit',
    stage: 'adaptive',
    analysis: 'slow',
    segments: [
      { seconds: 20, rate: 0.5 * c },
      { seconds: 120, rate: 0.5 * c },
    ],
    changes: [{ atSeconds: 20, set: { serviceScale: 5 } }],
  }),
  priority: (mode, c) => ({
    title: "30 % critical / 70 % sheddable: 0.5 C warm-up, 0.8 C, then 3 C, adaptive limit; critical may wait 50 ms (queueFrom 'critical')",
    stage: 'adaptive',
    // The configuration docs/admission.md recommends with priorities: the top class rides out a
    // burst of its own in a short queue, the rest are decided on arrival. `--adaptive` overrides
    // it (`--adaptive '{"controller":{}}'` runs bulwark's defaults, no queue).
    adaptive: { controller: { maxQueue: 32, maxWaitMs: 50, queueFrom: 'critical' } },
    analysis: 'priority',
    segments: [
      { seconds: seconds(mode, 4, 10), rate: 0.5 * c, criticalShare: 0.3 },
      { seconds: seconds(mode, 6, 30), rate: 0.8 * c, criticalShare: 0.3 },
      { seconds: seconds(mode, 12, 30), rate: 3 * c, criticalShare: 0.3 },
    ],
  }),
};

function stepSchedule(stage, title, pre, step, post, c) {
  const segments = [
    { seconds: pre, rate: 0.5 * c },
    { seconds: step, rate: 3 * c },
  ];
  if (post > 0) segments.push({ seconds: post, rate: 0.5 * c });
  return { title, stage, analysis: 'step', segments };
}

// --- figures ------------------------------------------------------------------------------------

/** The p-th percentile (0–100) of `values` by nearest rank, or NaN when empty. */
export function percentile(values, p) {
  if (values.length === 0) return Number.NaN;
  const sorted = Float64Array.from(values).sort();
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))];
}

export function median(values) {
  return percentile(values, 50);
}

/** Indices of the requests due in [fromMs, toMs) that `keep(i)` accepts. */
export function requestsIn(run, fromMs, toMs, keep = () => true) {
  const out = [];
  const { arrival } = run;
  for (let i = 0; i < arrival.length; i++) if (arrival[i] >= fromMs && arrival[i] < toMs && keep(i)) out.push(i);
  return out;
}

/** Limit values sampled in [fromMs, toMs). */
export function limitsIn(limit, fromMs, toMs) {
  return limit.filter(([t]) => t >= fromMs && t < toMs).map(([, l]) => l);
}

/**
 * Seconds after `fromMs` until the limit settled: the earliest sample time from which every later
 * sample (up to the end) stays within ±`band` (a share, at least ±`minSlots`) of the median of the
 * last `finalMs`. `undefined` when there are no samples.
 */
export function settleSeconds(limit, fromMs, endMs, { band = 0.2, minSlots = 2, finalMs = 10_000 } = {}) {
  const after = limit.filter(([t]) => t >= fromMs && t < endMs);
  if (after.length === 0) return { seconds: undefined, final: undefined };
  const final = median(limitsIn(after, endMs - finalMs, endMs));
  const width = Math.max(band * final, minSlots);
  let settledAt = fromMs;
  for (const [t, l] of after) if (Math.abs(l - final) > width) settledAt = t + 100;
  return { seconds: (settledAt - fromMs) / 1000, final };
}

/** Seconds after `fromMs` until the first sample at or above `level` (0 when already there), or undefined when none. */
export function secondsUntilAtLeast(limit, fromMs, level) {
  for (const [t, l] of limit) if (t >= fromMs && l >= level) return Math.max(0, (t - fromMs) / 1000);
  return undefined;
}

/**
 * Creep of the limit during a long slowdown: the limit where it settled (median of `settleFromMs`
 * to `settleToMs`) and the highest median of each later `windowMs` window, up to `endMs`.
 */
export function creep(limit, settleFromMs, settleToMs, endMs, windowMs = 5_000) {
  const settled = median(limitsIn(limit, settleFromMs, settleToMs));
  let highest = Number.NaN;
  for (let from = settleToMs; from + windowMs <= endMs; from += windowMs) {
    const m = median(limitsIn(limit, from, from + windowMs));
    if (Number.isFinite(m) && !(m <= highest)) highest = m;
  }
  return { settled, highest, ratio: highest / settled };
}

/**
 * Share of `binMs` intervals (by due time, in [fromMs, toMs), only those with requests) in which no
 * critical request was rejected (503) while a sheddable one was admitted (200).
 */
export function cleanIntervalShare(run, fromMs, toMs, binMs = 100) {
  const bins = Math.ceil((toMs - fromMs) / binMs);
  const criticalRejected = new Uint8Array(bins);
  const sheddableAdmitted = new Uint8Array(bins);
  const used = new Uint8Array(bins);
  for (const i of requestsIn(run, fromMs, toMs)) {
    const b = Math.floor((run.arrival[i] - fromMs) / binMs);
    used[b] = 1;
    if (run.cls[i] === 1 && run.status[i] === 503) criticalRejected[b] = 1;
    if (run.cls[i] === 0 && run.status[i] === 200) sheddableAdmitted[b] = 1;
  }
  let total = 0;
  let clean = 0;
  for (let b = 0; b < bins; b++) {
    if (!used[b]) continue;
    total++;
    if (!(criticalRejected[b] && sheddableAdmitted[b])) clean++;
  }
  return { share: total === 0 ? Number.NaN : clean / total, intervals: total, dirty: total - clean };
}

const count = (run, ids, code) => ids.reduce((n, i) => n + (run.status[i] === code ? 1 : 0), 0);
const latencies = (run, ids) => ids.map((i) => run.latency[i]);
const pct = (x) => (Number.isFinite(x) ? `${(100 * x).toFixed(2)} %` : 'n/a');
const ms = (x) => (Number.isFinite(x) ? `${x.toFixed(1)} ms` : 'n/a');
const num = (x, digits = 1) => (Number.isFinite(x) ? x.toFixed(digits) : 'n/a');

/** How each scenario's run is judged: `(run, schedule, context) => figures` with printable `lines`. */
export const analyse = {
  unloaded(run) {
    const ok = requestsIn(run.load, 1_000, Infinity, (i) => run.load.status[i] === 200);
    const values = latencies(run.load, ok);
    return { p50: median(values), p99: percentile(values, 99), count: ok.length, failed: run.load.count - ok.length - requestsIn(run.load, 0, 1_000).length };
  },

  step(run, schedule, { capacity, baseline }) {
    const load = run.load;
    const [preEnd, stepEnd] = load.ends;
    const pre = requestsIn(load, 0, preEnd);
    const judged = requestsIn(load, preEnd + 5_000, stepEnd);
    const admitted = judged.filter((i) => load.status[i] === 200);
    const step = requestsIn(load, preEnd, stepEnd);
    const rejected = step.filter((i) => load.status[i] === 503);
    const judgedSeconds = (stepEnd - preEnd - 5_000) / 1000;
    const f = {
      preRejectionShare: count(load, pre, 503) / pre.length,
      preRequests: pre.length,
      admittedP99Ms: percentile(latencies(load, admitted), 99),
      // The same service's p99 at 0.5 C just before the step: a second yardstick, measured minutes
      // after the run's unloaded p99, so a burst of other work on the machine shows as the two differ.
      preStepP99Ms: percentile(latencies(load, requestsIn(load, 1_000, preEnd, (i) => load.status[i] === 200)), 99),
      p99Ratio: percentile(latencies(load, admitted), 99) / baseline.p99,
      goodputRatio: admitted.length / judgedSeconds / capacity,
      stepRejectionShare: rejected.length / step.length,
      stepFailed: count(load, step, 0) + count(load, step, 502),
      rejectionP99Ms: percentile(latencies(load, rejected), 99),
      rejectionFromSendP99Ms: percentile(rejected.map((i) => load.latency[i] - load.lag[i]), 99),
      serverRejectionP99Ms: percentile(run.serviceStats.rejectionMs, 99),
      preStepLimit: median(limitsIn(run.limit, preEnd - 5_000, preEnd)),
      stepLimit: median(limitsIn(run.limit, preEnd + 5_000, stepEnd)),
      recoverySeconds: undefined,
      hasRecovery: load.ends.length > 2,
    };
    if (load.ends.length > 2 && Number.isFinite(f.preStepLimit)) f.recoverySeconds = secondsUntilAtLeast(run.limit, stepEnd, 0.9 * f.preStepLimit);
    f.lines = [
      `- before the step (0.5 C, ${(preEnd / 1000).toFixed(0)} s): ${f.preRequests} requests, ${pct(f.preRejectionShare)} rejected, p99 ${ms(f.preStepP99Ms)}; limit ${num(f.preStepLimit)} (median of the last 5 s)`,
      `- from 5 s after the step to its end (3 C, ${judgedSeconds.toFixed(0)} s): admitted p99 ${ms(f.admittedP99Ms)} = ${num(f.p99Ratio, 2)}× unloaded (${num(f.admittedP99Ms / f.preStepP99Ms, 2)}× the p99 before the step); goodput ${admitted.length} = ${pct(f.goodputRatio)} of C; limit ${num(f.stepLimit)} (median)`,
      `- the whole step: ${pct(f.stepRejectionShare)} rejected, rejections answered p99 ${ms(f.serverRejectionP99Ms)} in the service (request event to answer), ${ms(f.rejectionFromSendP99Ms)} at the client from sending, ${ms(f.rejectionP99Ms)} from when due; ${f.stepFailed} timed out or failed`,
    ];
    if (load.ends.length > 2) f.lines.push(`- after the step (0.5 C): limit back to ≥ 90 % of the pre-step limit after ${f.recoverySeconds === undefined ? 'never' : `${f.recoverySeconds.toFixed(1)} s`}`);
    return f;
  },

  halve(run, schedule, { capacity }) {
    const load = run.load;
    const [changeAt, end] = load.ends;
    const { seconds: settle, final } = settleSeconds(run.limit, changeAt, end);
    const before = median(limitsIn(run.limit, changeAt - 5_000, changeAt));
    const late = requestsIn(load, changeAt + 10_000, end, (i) => load.status[i] === 200);
    const f = {
      limitBefore: before,
      limitAfter: final,
      settleSeconds: settle,
      admittedP99MsAfter: percentile(latencies(load, late), 99),
      goodputRatioAfter: late.length / ((end - changeAt - 10_000) / 1000) / (capacity / 2),
    };
    f.lines = [
      `- limit ${num(before)} before (median of 5 s), ${num(final)} after (median of the last 10 s); settled within ±20 % (±2 at least) ${settle === undefined ? 'never' : `${settle.toFixed(1)} s`} after the change`,
      `- from 10 s after the change: admitted p99 ${ms(f.admittedP99MsAfter)}, goodput ${pct(f.goodputRatioAfter)} of C/2`,
    ];
    return f;
  },

  slow(run, schedule, { capacity }) {
    const load = run.load;
    const [changeAt, end] = load.ends;
    const c = creep(run.limit, changeAt + 10_000, changeAt + 20_000, end);
    const late = requestsIn(load, changeAt + 10_000, end, (i) => load.status[i] === 200);
    const f = {
      limitBefore: median(limitsIn(run.limit, changeAt - 5_000, changeAt)),
      settled: c.settled,
      highest: c.highest,
      creepRatio: c.ratio,
      admittedP99MsAfter: percentile(latencies(load, late), 99),
      goodputRatioAfter: late.length / ((end - changeAt - 10_000) / 1000) / (capacity / 5),
    };
    f.lines = [
      `- limit ${num(f.limitBefore)} before; settled at ${num(c.settled)} (median of seconds 10–20 of the slowdown); highest later 5 s median ${num(c.highest)} = ${num(c.ratio, 2)}× settled`,
      `- from 10 s into the slowdown: admitted p99 ${ms(f.admittedP99MsAfter)}, goodput ${pct(f.goodputRatioAfter)} of C/5`,
    ];
    return f;
  },

  priority(run, _schedule, ctx) {
    const load = run.load;
    const [, moderateEnd, end] = load.ends;
    const moderate = requestsIn(load, load.ends[0], moderateEnd);
    const overload = requestsIn(load, moderateEnd, end);
    const critical = overload.filter((i) => load.cls[i] === 1);
    const rejected = overload.filter((i) => load.status[i] === 503);
    const intervals = cleanIntervalShare(load, moderateEnd, end);
    const f = {
      moderateRejections: { critical: moderate.filter((i) => load.cls[i] === 1 && load.status[i] === 503).length, sheddable: moderate.filter((i) => load.cls[i] === 0 && load.status[i] === 503).length },
      moderateRequests: moderate.length,
      criticalSuccess: count(load, critical, 200) / critical.length,
      criticalRequests: critical.length,
      rejections: rejected.length,
      sheddableShareOfRejections: rejected.length === 0 ? Number.NaN : rejected.filter((i) => load.cls[i] === 0).length / rejected.length,
      sheddableSuccess: count(load, overload.filter((i) => load.cls[i] === 0), 200) / overload.filter((i) => load.cls[i] === 0).length,
      cleanIntervalShare: intervals.share,
      dirtyIntervals: intervals.dirty,
      intervals: intervals.intervals,
      criticalAdmittedP99Ms: percentile(latencies(load, critical.filter((i) => load.status[i] === 200)), 99),
      rejectionFromSendP99Ms: percentile(rejected.map((i) => load.latency[i] - load.lag[i]), 99),
    };
    f.lines = [
      `- at 0.8 C: ${f.moderateRequests} requests, rejected: ${f.moderateRejections.critical} critical, ${f.moderateRejections.sheddable} sheddable`,
      `- at 3 C: critical success ${pct(f.criticalSuccess)} of ${f.criticalRequests}; sheddable success ${pct(f.sheddableSuccess)}; ${f.rejections} rejections, ${pct(f.sheddableShareOfRejections)} of them sheddable`,
      `- at 3 C: admitted critical p99 ${ms(f.criticalAdmittedP99Ms)} (unloaded p99 ${ms(ctx.baseline.p99)}); rejections answered p99 ${ms(f.rejectionFromSendP99Ms)} at the client from sending`,
      `- 100 ms intervals without a critical rejection while a sheddable request was admitted: ${pct(f.cleanIntervalShare)} (${f.dirtyIntervals} of ${f.intervals} not)`,
    ];
    return f;
  },

  /** The issue's targets, from whichever scenarios ran: `{ name, met, value, target }`. */
  targets(results) {
    const s = results.scenarios;
    const out = [];
    const add = (name, value, target, met, shown = value) => out.push({ name, met: Number.isFinite(value) ? met : null, value: shown, target });
    if (s.step) {
      const f = s.step.figures;
      add('step: rejections at 0.5 C', f.preRejectionShare, '< 0.1 %', f.preRejectionShare < 0.001, pct(f.preRejectionShare));
      add('step: admitted p99 ÷ unloaded p99', f.p99Ratio, '≤ 1.3', f.p99Ratio <= 1.3, num(f.p99Ratio, 2));
      add('step: goodput ÷ C', f.goodputRatio, '≥ 90 %', f.goodputRatio >= 0.9, pct(f.goodputRatio));
      add('step: rejection answered p99 (in the service)', f.serverRejectionP99Ms, '≤ 2 ms', f.serverRejectionP99Ms <= 2, ms(f.serverRejectionP99Ms));
      if (f.hasRecovery) {
        const r = f.recoverySeconds ?? Number.POSITIVE_INFINITY;
        add('step: limit back to 90 % of pre-step', f.preStepLimit, '≤ 10 s', r <= 10, Number.isFinite(r) ? `${r.toFixed(1)} s` : 'never');
      }
    }
    if (s.halve) {
      const f = s.halve.figures;
      const v = f.settleSeconds ?? Number.NaN;
      add('halve: limit settles', v, '≤ 10 s', v <= 10, `${num(v)} s`);
      // Not a bound of the issue: a guard, so that a limit that settles by collapsing does not pass.
      add('halve: goodput ÷ C/2 from 10 s after (guard)', f.goodputRatioAfter, '≥ 90 %', f.goodputRatioAfter >= 0.9, pct(f.goodputRatioAfter));
    }
    if (s.slow) {
      const f = s.slow.figures;
      add('slow ×5: highest 5 s median ÷ settled limit', f.creepRatio, '≤ 1.2', f.creepRatio <= 1.2, num(f.creepRatio, 2));
      // The same guard: a limit collapsed to 1 never creeps, and serves almost nothing.
      add('slow ×5: goodput ÷ C/5 from 10 s in (guard)', f.goodputRatioAfter, '≥ 90 %', f.goodputRatioAfter >= 0.9, pct(f.goodputRatioAfter));
    }
    if (s.priority) {
      const f = s.priority.figures;
      const moderate = f.moderateRejections.critical + f.moderateRejections.sheddable;
      add('priority: rejections at 0.8 C', moderate, '0', moderate === 0, String(moderate));
      add('priority: critical success at 3 C', f.criticalSuccess, '≥ 99.5 %', f.criticalSuccess >= 0.995, pct(f.criticalSuccess));
      add('priority: sheddable share of rejections', f.sheddableShareOfRejections, '≥ 98 %', f.sheddableShareOfRejections >= 0.98, pct(f.sheddableShareOfRejections));
      add('priority: clean 100 ms intervals', f.cleanIntervalShare, '≥ 99.9 %', f.cleanIntervalShare >= 0.999, pct(f.cleanIntervalShare));
    }
    return out;
  },

  /** The last line's object: the four headline figures (null when their scenario did not run). */
  summary(results) {
    const step = results.scenarios.step?.figures;
    const priority = results.scenarios.priority?.figures;
    const round = (x) => (x === undefined || !Number.isFinite(x) ? null : Math.round(x * 10_000) / 10_000);
    return {
      p99Ratio: round(step?.p99Ratio),
      goodputRatio: round(step?.goodputRatio),
      criticalSuccess: round(priority?.criticalSuccess),
      sheddableShareOfRejections: round(priority?.sheddableShareOfRejections),
    };
  },
};
