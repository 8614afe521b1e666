// Hot-path benchmark: the per-call cost of each policy around an async function that resolves at
// once, against the same work done by cockatiel and opossum, in one process and one run.
//
//   npm run bench                      (builds, then runs this file)
//   node --expose-gc --max-semi-space-size=64 benchmarks/hot-path.mjs [--rounds 15] [--json]
//
// Method: for every scenario, each round times a batch of sequential `await scenario()` calls
// sized to take about 200 ms, rounds interleaved across scenarios so machine noise hits all of
// them alike; the figure is the median over rounds. No collection is forced between timed
// batches: a forced full GC before each short batch made the next batch up to 2× slower for
// allocation-heavy code, which is an artefact, not steady state. Bytes/op is the heap growth
// over 20,000 calls after a forced GC, with the young generation large enough that no
// collection runs (median of 5 tries).
import { createRequire } from 'node:module';
import { parseArgs } from 'node:util';
import os from 'node:os';
import {
  circuitBreaker,
  consecutive,
  exponential,
  pipeline,
  retry,
  timeout,
} from '../dist/index.js';

const require = createRequire(import.meta.url);
const cockatiel = require('cockatiel');
const CircuitBreaker = require('opossum');

const { values: args } = parseArgs({
  options: {
    rounds: { type: 'string', default: '15' },
    json: { type: 'boolean', default: false },
    filter: { type: 'string' },
  },
});
const ROUNDS = Number(args.rounds);

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
const bPipeline = pipeline(
  retry({ maxAttempts: 3, backoff: exponential({ initialMs: 100, maxMs: 10_000 }) }),
  circuitBreaker({ breaker: consecutive(5), halfOpenAfterMs: 10_000 }),
  timeout(10_000),
);

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

const scenarios = [
  ['baseline: await fn()', () => work()],
  ['bulwark circuitBreaker', () => bBreaker.execute(work)],
  ['bulwark retry', () => bRetry.execute(work)],
  ['bulwark timeout', () => bTimeout.execute(work)],
  ['bulwark pipeline(retry, breaker, timeout)', () => bPipeline.execute(work)],
  ['cockatiel circuitBreaker', () => cBreaker.execute(work)],
  ['cockatiel retry', () => cRetry.execute(work)],
  ['cockatiel timeout', () => cTimeout.execute(work)],
  ['cockatiel wrap(retry, breaker, timeout)', () => cWrap.execute(work)],
  ['opossum fire() defaults', () => oDefault.fire()],
  ['opossum fire() timeout: false', () => oNoTimeout.fire()],
].filter(([name]) => !args.filter || name === 'baseline: await fn()' || name.includes(args.filter));

async function timeBatch(fn, n) {
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < n; i++) await fn();
  return Number(process.hrtime.bigint() - t0) / n;
}

async function calibrate(fn) {
  let n = 1_000;
  for (;;) {
    const t0 = process.hrtime.bigint();
    for (let i = 0; i < n; i++) await fn();
    const ms = Number(process.hrtime.bigint() - t0) / 1e6;
    if (ms >= 20) return Math.max(1_000, Math.round((n * 200) / ms));
    n *= 4;
  }
}

async function bytesPerOp(fn) {
  const tries = [];
  const n = 20_000;
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

// Warm up every scenario so each is optimised before timing.
const sizes = new Map();
for (const [name, fn] of scenarios) {
  for (let i = 0; i < 50_000; i++) await fn();
  sizes.set(name, await calibrate(fn));
}

const samples = new Map(scenarios.map(([name]) => [name, []]));
for (let r = 0; r < ROUNDS; r++) {
  // Rotate the order each round so no scenario always runs right after another.
  for (let k = 0; k < scenarios.length; k++) {
    const [name, fn] = scenarios[(k + r) % scenarios.length];
    samples.get(name).push(await timeBatch(fn, sizes.get(name)));
  }
}

const rows = [];
for (const [name, fn] of scenarios) {
  rows.push({ name, ns: median(samples.get(name)), bytes: await bytesPerOp(fn) });
}
const base = rows[0];
for (const row of rows) row.overhead = row.ns - base.ns;

const find = (name) => rows.find((r) => r.name === name);
const pairs = [
  ['bulwark circuitBreaker', ['cockatiel circuitBreaker', 'opossum fire() defaults', 'opossum fire() timeout: false']],
  ['bulwark retry', ['cockatiel retry']],
  ['bulwark timeout', ['cockatiel timeout']],
  ['bulwark pipeline(retry, breaker, timeout)', ['cockatiel wrap(retry, breaker, timeout)', 'opossum fire() defaults']],
];

if (args.json) {
  console.log(JSON.stringify({ node: process.version, rows }, null, 2));
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
