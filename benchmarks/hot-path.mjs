// Hot-path benchmark: the per-call cost of each policy around an async function that resolves at
// once, against the same work done by cockatiel and opossum, in one process and one run; and the
// cost of bulwark/opossum and bulwark/bottleneck over the engine they wrap; and the cost of a call
// refused at once (open breaker, full bulkhead, rate limit), from rejections.mjs.
//
//   npm run bench                      (builds, then runs this file)
//   node --expose-gc --max-semi-space-size=64 benchmarks/hot-path.mjs [--rounds 15] [--quick] [--json]
//        [--filter 'text|other text']  (only the scenarios whose name contains one of them, and the baseline)
//
// --quick: 5 rounds unless --rounds is given (a smoke run, as `npm run bench -- --quick` makes).
// Issue 15 §3: shadow mode ≤ 1.05× enforce on the admitted path (shadow.mjs's rows).
// Targets (issue 14): the closed breaker's overhead ≤ 0.25× cockatiel's,
// pipeline(retry, breaker, timeout) ≤ 6× `await fn()`, a hedge whose first attempt succeeds
// before its delay ≤ 100 ns over `await fn()`, 16 concurrent calls through a one-slot bulkhead
// (15 queue) no slower than cockatiel's, and a rejected call (open breaker, full
// bulkhead) ≤ 0.5× cockatiel's; printed as "Target: ... met / NOT met"
// lines and, last, as the `bench-targets:` line that benchmarks/run.mjs reads.
//
// Method: for every scenario, each round times a batch of sequential `await scenario()` calls
// sized to take about 200 ms, rounds interleaved across scenarios so machine noise hits all of
// them alike; the figure is the median over rounds. No collection is forced between timed
// batches: a forced full GC before each short batch made the next batch up to 2× slower for
// allocation-heavy code, which is an artefact, not steady state. Bytes/op is the heap growth
// over 20,000 calls after a forced GC, with the young generation large enough that no
// collection runs (median of 5 tries). Bottleneck's local store waits a 0 ms timer at each step,
// so a job takes milliseconds: its two scenarios are measured the same way but last, among
// themselves, after the opossum breakers are shut down (see below); they stop warming up after
// 2 s (the others finish their 50,000 calls well before) and measure bytes over 200 calls (any
// scenario over 100 µs a call).
import { createRequire } from 'node:module';
import { parseArgs } from 'node:util';
import os from 'node:os';
import { printTargets } from './support.mjs';
import {
  adaptiveConcurrency,
  bulkhead,
  circuitBreaker,
  consecutive,
  exponential,
  faultInjection,
  hedge,
  pipeline,
  retry,
  timeout,
} from '../dist/index.js';
import { fromOpossum, opossumAction } from '../dist/opossum.js';
import { fromBottleneck } from '../dist/bottleneck.js';
import { rejectionScenarios } from './rejections.mjs';
import { shadowScenarios } from './shadow.mjs';

const require = createRequire(import.meta.url);
const cockatiel = require('cockatiel');
const CircuitBreaker = require('opossum');
const Bottleneck = require('bottleneck');

const { values: args } = parseArgs({
  options: {
    rounds: { type: 'string' },
    quick: { type: 'boolean', default: false },
    json: { type: 'boolean', default: false },
    filter: { type: 'string' },
  },
});
const ROUNDS = Number(args.rounds ?? (args.quick ? '5' : '15'));
if (!Number.isInteger(ROUNDS) || ROUNDS < 1) {
  console.error(`--rounds must be a whole number of at least 1, got ${args.rounds}`);
  process.exit(1);
}

if (typeof globalThis.gc !== 'function') {
  console.error('Run with --expose-gc (npm run bench does).');
  process.exit(1);
}

async function work() {
  return 1;
}

// Equivalent configurations: breaker opens after 5 consecutive failures, half-opens after 10 s;
// retry makes 3 attempts in all with exponential backoff; timeout 10 s, aggressive.
const bBreaker = circuitBreaker({ breaker: consecutive(5), halfOpenAfterMs: 10_000 });
const bRetry = retry({ maxAttempts: 3, backoff: exponential({ initialMs: 100, maxMs: 10_000 }) });
const bTimeout = timeout(10_000);
// A hedge whose delay never passes: the first attempt succeeds at once, so no hedge starts.
const bHedge = hedge({ delayMs: 10_000 });
const bPipeline = pipeline(
  retry({ maxAttempts: 3, backoff: exponential({ initialMs: 100, maxMs: 10_000 }) }),
  circuitBreaker({ breaker: consecutive(5), halfOpenAfterMs: 10_000 }),
  timeout(10_000),
);

// Issue 14 §3: each policy as a pipeline's one layer and in 2-layer pipelines, against it alone.
const bRetryOpts = { maxAttempts: 3, backoff: exponential({ initialMs: 100, maxMs: 10_000 }) };
const bBreakerOpts = { breaker: consecutive(5), halfOpenAfterMs: 10_000 };
const bLayers = [
  ['bulwark pipeline(breaker)', pipeline(circuitBreaker(bBreakerOpts))],
  ['bulwark pipeline(retry)', pipeline(retry(bRetryOpts))],
  ['bulwark pipeline(timeout)', pipeline(timeout(10_000))],
  ['bulwark pipeline(retry, breaker)', pipeline(retry(bRetryOpts), circuitBreaker(bBreakerOpts))],
  ['bulwark pipeline(breaker, timeout)', pipeline(circuitBreaker(bBreakerOpts), timeout(10_000))],
  ['bulwark pipeline(retry, timeout)', pipeline(retry(bRetryOpts), timeout(10_000))],
].map(([name, policy]) => [name, () => policy.execute(work)]);

// Issue 14 §3: queued bulkhead calls. Each op starts 16 calls at once into a bulkhead of one slot
// with room for all of them to wait, so 15 of the 16 queue, and awaits them all; the baseline row
// does the same with bare calls. Times are per batch of 16.
const CONCURRENT = 16;
const bQueued = bulkhead({ maxConcurrent: 1, maxQueue: CONCURRENT });
const cQueued = cockatiel.bulkhead(1, CONCURRENT);
const batch = (call) => {
  const calls = new Array(CONCURRENT);
  for (let i = 0; i < CONCURRENT; i++) calls[i] = call();
  return Promise.all(calls);
};
const queuedScenarios = [
  ['16 concurrent: bare await fn() ×16', () => batch(work)],
  ['16 concurrent: bulwark bulkhead(1 slot), 15 queue', () => batch(() => bQueued.execute(work))],
  ['16 concurrent: cockatiel bulkhead(1 slot), 15 queue', () => batch(() => cQueued.execute(work))],
];

const { handleAll, ConsecutiveBreaker, ExponentialBackoff, TimeoutStrategy, wrap } = cockatiel;
const cBreaker = cockatiel.circuitBreaker(handleAll, { halfOpenAfter: 10_000, breaker: new ConsecutiveBreaker(5) });
const cRetry = cockatiel.retry(handleAll, { maxAttempts: 2, backoff: new ExponentialBackoff() });
const cTimeout = cockatiel.timeout(10_000, TimeoutStrategy.Aggressive);
const cWrap = wrap(
  cockatiel.retry(handleAll, { maxAttempts: 2, backoff: new ExponentialBackoff() }),
  cockatiel.circuitBreaker(handleAll, { halfOpenAfter: 10_000, breaker: new ConsecutiveBreaker(5) }),
  cockatiel.timeout(10_000, TimeoutStrategy.Aggressive),
);

const oDefault = new CircuitBreaker(work);
const oNoTimeout = new CircuitBreaker(work, { timeout: false });

// The wrappers against the engine they wrap, each pair on equally configured instances: opossum
// with its defaults (10 s timeout) and without a timeout; bottleneck with maxConcurrent 10.
const oAction = new CircuitBreaker(opossumAction);
const oWrapped = fromOpossum(new CircuitBreaker(opossumAction));
const oActionNoTimeout = new CircuitBreaker(opossumAction, { timeout: false });
const oWrappedNoTimeout = fromOpossum(new CircuitBreaker(opossumAction, { timeout: false }));
const bnRaw = new Bottleneck({ maxConcurrent: 10 });
const bnLimiter = new Bottleneck({ maxConcurrent: 10 });
const bnWrapped = fromBottleneck(bnLimiter);

// Issue 15 §4: a fault-injection policy switched off (its usual state in production) costs ≤ 5 ns
// a call over `await fn()`; and inside a pipeline, over the same pipeline without it.
const chaosOff = faultInjection({ rate: 0.05, fault: () => new Error('injected'), enabled: false });
const chaosPipelineOff = pipeline(circuitBreaker(bBreakerOpts), faultInjection({ rate: 0.05, fault: () => new Error('injected'), enabled: false }));
const chaosScenarios = [
  ['bulwark faultInjection, disabled', () => chaosOff.execute(work)],
  ['bulwark pipeline(breaker, faultInjection disabled)', () => chaosPipelineOff.execute(work)],
];

// Issue 15: the closed path of the adaptive concurrency limit against the bulkhead's (a slot is
// always free: calls run one at a time). The default algorithm samples each release; the fixed
// limit is the admission decision alone.
const bBulkhead = bulkhead({ maxConcurrent: 1_000 });
const bAdaptive = adaptiveConcurrency();
const bAdaptiveFixed = adaptiveConcurrency({ limit: 1_000 });
const admissionScenarios = [
  ['bulwark bulkhead', () => bBulkhead.execute(work)],
  ['bulwark adaptiveConcurrency', () => bAdaptive.execute(work)],
  ['bulwark adaptiveConcurrency, fixed limit', () => bAdaptiveFixed.execute(work)],
];

// Calls refused at once (open breaker, full bulkhead, rate limit): see rejections.mjs.
const rejections = await rejectionScenarios();
// Each policy in enforce and in shadow mode (issue 15 §3): see shadow.mjs.
const shadow = await shadowScenarios();

const scenarios = [
  ['baseline: await fn()', () => work()],
  ['bulwark circuitBreaker', () => bBreaker.execute(work)],
  ['bulwark retry', () => bRetry.execute(work)],
  ['bulwark timeout', () => bTimeout.execute(work)],
  ['bulwark pipeline(retry, breaker, timeout)', () => bPipeline.execute(work)],
  ['bulwark hedge, no hedge fires', () => bHedge.execute(work)],
  ...admissionScenarios,
  ...bLayers,
  ...chaosScenarios,
  ...queuedScenarios,
  ['cockatiel circuitBreaker', () => cBreaker.execute(work)],
  ['cockatiel retry', () => cRetry.execute(work)],
  ['cockatiel timeout', () => cTimeout.execute(work)],
  ['cockatiel wrap(retry, breaker, timeout)', () => cWrap.execute(work)],
  ['opossum fire() defaults', () => oDefault.fire()],
  ['opossum fire() timeout: false', () => oNoTimeout.fire()],
  ['opossum fire(fn) opossumAction', () => oAction.fire(work)],
  ['bulwark/opossum fromOpossum().execute', () => oWrapped.execute(work)],
  ['opossum fire(fn) opossumAction, timeout: false', () => oActionNoTimeout.fire(work)],
  ['bulwark/opossum fromOpossum().execute, timeout: false', () => oWrappedNoTimeout.execute(work)],
  ['bottleneck schedule()', () => bnRaw.schedule(work)],
  ['bulwark/bottleneck fromBottleneck().execute', () => bnWrapped.execute(work)],
  ...rejections.scenarios,
  ...shadow.scenarios,
].filter(
  ([name]) =>
    !args.filter || name === 'baseline: await fn()' || args.filter.split('|').some((part) => name.includes(part)),
);

async function timeBatch(fn, n) {
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < n; i++) await fn();
  return Number(process.hrtime.bigint() - t0) / n;
}

async function calibrate(fn) {
  let n = 16;
  for (;;) {
    const t0 = process.hrtime.bigint();
    for (let i = 0; i < n; i++) await fn();
    const ms = Number(process.hrtime.bigint() - t0) / 1e6;
    // Calls in about 200 ms: well over 1,000 for every scenario but bottleneck's (about 40).
    if (ms >= 20) return Math.max(1, Math.round((n * 200) / ms));
    n *= 4;
  }
}

async function bytesPerOp(fn, n = 20_000) {
  const tries = [];
  for (let t = 0; t < 5; t++) {
    globalThis.gc();
    const before = process.memoryUsage().heapUsed;
    for (let i = 0; i < n; i++) await fn();
    const after = process.memoryUsage().heapUsed;
    tries.push((after - before) / n);
  }
  return median(tries);
}

function median(xs) {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

/** Warms up, calibrates and times `list` in interleaved rounds; returns a row per scenario. */
async function measure(list) {
  // Warm up every scenario so each is optimised before timing.
  const sizes = new Map();
  for (const [name, fn] of list) {
    const warmUntil = Date.now() + 2_000;
    for (let i = 0; i < 50_000 && (i % 100 !== 0 || Date.now() < warmUntil); i++) await fn();
    sizes.set(name, await calibrate(fn));
  }

  const samples = new Map(list.map(([name]) => [name, []]));
  for (let r = 0; r < ROUNDS; r++) {
    // Rotate the order each round so no scenario always runs right after another.
    for (let k = 0; k < list.length; k++) {
      const [name, fn] = list[(k + r) % list.length];
      samples.get(name).push(await timeBatch(fn, sizes.get(name)));
    }
  }

  const measured = [];
  for (const [name, fn] of list) {
    const ns = median(samples.get(name));
    measured.push({ name, ns, bytes: await bytesPerOp(fn, ns > 100_000 ? 200 : 20_000) });
  }
  return measured;
}

// Bottleneck's scenarios run last, on their own, once every opossum breaker is shut down: each
// breaker recomputes its rolling statistics (sorting every latency in its window) on a 1 s
// interval, and those stalls land in full in a job that waits on timers for milliseconds.
const isBottleneck = ([name]) => name.includes('bottleneck');
const rows = await measure(scenarios.filter((s) => !isBottleneck(s)));
for (const breaker of [oDefault, oNoTimeout, oAction, oActionNoTimeout, oWrapped.breaker, oWrappedNoTimeout.breaker]) {
  breaker.shutdown();
}
rejections.close();
rows.push(...(await measure(scenarios.filter(isBottleneck))));
await Promise.all([bnRaw.stop(), bnLimiter.stop()]);
const base = rows[0];
for (const row of rows) row.overhead = row.ns - base.ns;

const find = (name) => rows.find((r) => r.name === name);
const pairs = [
  [
    'bulwark circuitBreaker',
    ['cockatiel circuitBreaker', 'opossum fire() defaults', 'opossum fire() timeout: false', 'bulwark/opossum fromOpossum().execute'],
  ],
  ['bulwark retry', ['cockatiel retry']],
  ['bulwark timeout', ['cockatiel timeout']],
  ['bulwark pipeline(retry, breaker, timeout)', ['cockatiel wrap(retry, breaker, timeout)', 'opossum fire() defaults']],
  ['open breaker: rejected call, bulwark', ['open breaker: rejected call, cockatiel', 'open breaker: rejected call, opossum']],
  ['full bulkhead: rejected call, bulwark', ['full bulkhead: rejected call, cockatiel']],
];
// Each wrapper against the engine it wraps: what bulwark adds on top of it.
const wrapped = [
  ['bulwark/opossum fromOpossum().execute', 'opossum fire(fn) opossumAction'],
  ['bulwark/opossum fromOpossum().execute, timeout: false', 'opossum fire(fn) opossumAction, timeout: false'],
  ['bulwark/bottleneck fromBottleneck().execute', 'bottleneck schedule()'],
];

// The issue's targets, from the rows above (not measured when --filter left a row out).
/** A target's verdict; `value` is undefined when a row it needs was filtered out. */
function judge(name, value, limit, unit) {
  const target = unit === '×' ? `≤ ${limit}×` : `≤ ${limit} ${unit}`;
  if (value === undefined) return { name, met: null, value: 'not measured (filtered out)', target };
  return { name, met: value <= limit, value: unit === '×' ? `${value.toFixed(2)}×` : `${value.toFixed(1)} ${unit}`, target };
}
/** `field` of row `a` ÷ the same of row `b`, when both were measured. */
function ratio(a, b, field) {
  const x = find(a);
  const y = find(b);
  return x && y ? x[field] / y[field] : undefined;
}

const targets = [
  judge("closed breaker: bulwark circuitBreaker's overhead ÷ cockatiel's", ratio('bulwark circuitBreaker', 'cockatiel circuitBreaker', 'overhead'), 0.25, '×'),
  // Issue 15 §4: a disabled fault injection adds ≤ 5 ns to a bare call.
  judge('disabled faultInjection: overhead over await fn(), ns/op', find('bulwark faultInjection, disabled')?.overhead, 5, 'ns'),
  judge('bulwark pipeline(retry, breaker, timeout) ÷ await fn(), ns/op', ratio('bulwark pipeline(retry, breaker, timeout)', base.name, 'ns'), 6, '×'),
  // Issue 14 §3: a hedge whose first attempt succeeds before the delay adds ≤ 100 ns to `await fn()`.
  judge('hedge success path (no hedge fires): overhead over await fn(), ns/op', find('bulwark hedge, no hedge fires')?.overhead, 100, 'ns'),
  // Issue 15: the adaptive limit's closed path costs at most twice the bulkhead's overhead.
  judge("adaptiveConcurrency's overhead ÷ bulkhead's, closed path", ratio('bulwark adaptiveConcurrency', 'bulwark bulkhead', 'overhead'), 2, '×'),
  // Issue 14 §3: 16 calls at once through a bulkhead of one slot (15 queue) no slower than cockatiel's.
  judge('16 concurrent calls, 15 queued: bulwark bulkhead ÷ cockatiel bulkhead, ns/batch', ratio('16 concurrent: bulwark bulkhead(1 slot), 15 queue', '16 concurrent: cockatiel bulkhead(1 slot), 15 queue', 'ns'), 1, '×'),
  // Issue 14 §2: a rejected call at request rate costs at most half of cockatiel's.
  ...['open breaker', 'full bulkhead'].map((what) =>
    judge(`${what}: bulwark's rejected call ÷ cockatiel's, ns/op`, ratio(`${what}: rejected call, bulwark`, `${what}: rejected call, cockatiel`, 'ns'), 0.5, '×'),
  ),
  // Issue 15 §3: shadow mode costs at most 5 % over enforce on the admitted path.
  ...shadow.targets.map(([what, ours, theirs]) => judge(`admitted path, ${what}, ns/op`, ratio(ours, theirs, 'ns'), 1.05, '×')),
];

if (args.json) {
  console.log(JSON.stringify({ node: process.version, rows, targets }, null, 2));
  process.exit(0);
}

const fmt = (x) => (Math.abs(x) >= 1000 ? `${(x / 1000).toFixed(2)} µs` : `${x.toFixed(1)} ns`);
console.log(`Node ${process.version}, ${os.cpus()[0]?.model ?? 'cpu'} × ${os.cpus().length}, ${ROUNDS} rounds, medians`);
console.log('');
console.log('| scenario | ns/op | over baseline | bytes/op |');
console.log('|---|---:|---:|---:|');
for (const r of rows) {
  console.log(`| ${r.name} | ${fmt(r.ns)} | ${r === base ? '—' : `+${fmt(r.overhead)}`} | ${Math.max(0, r.bytes).toFixed(0)} |`);
}
console.log('');
console.log('| bulwark | peer | overhead ratio (peer ÷ bulwark) | ns/op ratio |');
console.log('|---|---|---:|---:|');
for (const [ours, peers] of pairs) {
  const a = find(ours);
  if (!a) continue;
  for (const peer of peers) {
    const b = find(peer);
    if (!b) continue;
    const ratio = a.overhead > 0 ? `${(b.overhead / a.overhead).toFixed(1)}×` : 'n/a (bulwark within noise of baseline)';
    console.log(`| ${ours} | ${peer} | ${ratio} | ${(b.ns / a.ns).toFixed(2)}× |`);
  }
}
const refusedRows = pairs.filter(([ours]) => ours.includes('rejected call') && find(ours));
const floor = find('baseline: rejected await (error made once)');
if (refusedRows.length > 0) {
  // Issue 14 §2's target: a rejected call at most half of cockatiel's, timed whole (ns/op), and
  // over a rejected await of an error made once (what the policy and its error add).
  console.log('');
  console.log('| rejected call | peer | bulwark ÷ peer, ns/op | bulwark ÷ peer, over a rejected await |');
  console.log('|---|---|---:|---:|');
  for (const [ours, peers] of refusedRows) {
    const a = find(ours);
    for (const peer of peers) {
      const b = find(peer);
      if (!b) continue;
      const over = floor ? `${((a.ns - floor.ns) / (b.ns - floor.ns)).toFixed(2)}×` : '—';
      console.log(`| ${ours} | ${peer.split(', ').at(-1)} | ${(a.ns / b.ns).toFixed(2)}× | ${over} |`);
    }
  }
}
if (wrapped.some(([w, raw]) => find(w) && find(raw))) {
  console.log('');
  console.log('| wrapper | engine alone | added per call | ns/op ratio (wrapper ÷ engine) |');
  console.log('|---|---|---:|---:|');
  for (const [w, raw] of wrapped) {
    const a = find(w);
    const b = find(raw);
    if (!a || !b) continue;
    const added = a.ns - b.ns;
    console.log(`| ${w} | ${raw} | ${added < 0 ? '−' : '+'}${fmt(Math.abs(added))} | ${(a.ns / b.ns).toFixed(2)}× |`);
  }
}
console.log('');
for (const t of targets) {
  console.log(`Target: ${t.name} ${t.target}: ${t.value}${t.met === null ? '' : ` — ${t.met ? 'met' : 'NOT met'}`}.`);
}
printTargets(targets);
