// Instructions per rejected call, counted by callgrind: the noise-free companion to the rejection
// rows of hot-path.mjs (the scenarios of rejections.mjs: open breaker, full bulkhead, rate limit,
// bulwark against cockatiel and opossum). Each scenario runs alone in a node process under
// `valgrind --tool=callgrind --separate-threads=yes`: it makes --warmup calls, callgrind's counters
// are zeroed, it makes --calls more, and the counters are dumped. The figure is the main thread's
// instructions ÷ calls, microtasks and Node's bookkeeping of rejected promises included; V8's
// helper threads (GC, concurrent compiling) are left out. The warm-up and the counted calls run in
// the same loop function: with a loop of their own, the counted one was optimized inside the
// counted window, which added about 2.1k instructions per call (at --calls 20000) to every row
// until issue 15 §1's closed-path work (figures in RESULTS.md before it include that). A call through a closed breaker (bulwark,
// cockatiel) and `await fn()` are counted too, to check that the closed path has not moved, and a
// hedged call whose first attempt succeeds before the delay (issue 14 §3).
//
//   npm run build && node benchmarks/rejection-instructions.mjs [--filter REGEX] [--calls 20000] [--warmup 50000] [--keep DIR] [--mixed]
//
// --mixed: before its own warm-up, each child first runs every bulwark scenario in turns (10
// rounds of 1,000 calls each), so that the code policies share (execute(), callFunction(), the
// pipeline's dispatch) has seen them all, as it has in hot-path.mjs and in a service that uses
// several policies: a figure counted alone can miss what a polymorphic call site costs.
//
// --keep DIR saves each scenario's main-thread dump and V8's map of its compiled code, for
// benchmarks/callgrind-jit.mjs (`--requests` there is --calls here). Needs valgrind. The "layers:"
// scenarios (issue 14 §3) count retry, breaker and timeout alone and as layers of pipelines; the
// "16 concurrent" ones count a batch of 16 calls into a one-slot bulkhead (15 queue), per batch.
// The "shadow:" ones (benchmarks/shadow.mjs) count each policy admitting in enforce and in shadow
// mode, the noise-free check of issue 15 §3's ≤ 1.05×: `--filter '^shadow' --single-threaded`.
// --single-threaded: node runs with --single-threaded --max-semi-space-size=64, so compiling and
// GC happen on the main thread and are counted every time, rather than landing in the counted
// window at random (the rate-limit rows read 4.7k and 17.0k in two runs without it).
import { spawn, execFileSync } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { adaptiveConcurrency, bulkhead, circuitBreaker, consecutive, exponential, hedge, pipeline, retry, timeout } from '../dist/index.js';
import { rejectionScenarios } from './rejections.mjs';
import { shadowScenarios } from './shadow.mjs';
import { callgrindNode, requireCounts } from './support.mjs';

const { values: args } = parseArgs({
  options: {
    filter: { type: 'string' },
    calls: { type: 'string', default: '20000' },
    warmup: { type: 'string', default: '50000' },
    keep: { type: 'string' },
    child: { type: 'string' },
    mixed: { type: 'boolean', default: false },
    'single-threaded': { type: 'boolean', default: false },
  },
});
requireCounts(args, ['calls', 'warmup']);
const CALLS = Number(args.calls);
const WARMUP = Number(args.warmup);

/**
 * Issue 15 §1: the closed path of the adaptive limit against the bulkhead's (one call at a time,
 * a slot always free), as in hot-path.mjs, counted rather than timed.
 */
function admissionScenarios(work) {
  const pool = bulkhead({ maxConcurrent: 1_000 });
  const adaptive = adaptiveConcurrency();
  return [
    ['admission closed path: bulkhead', () => pool.execute(work)],
    ['admission closed path: adaptiveConcurrency', () => adaptive.execute(work)],
  ];
}

/**
 * Calls through a closed breaker, bulwark's and cockatiel's as configured in hot-path.mjs, with
 * rejectionScenarios()'s: a check, in instructions, that the closed path has not moved.
 */
async function scenarioList() {
  const cockatiel = createRequire(import.meta.url)('cockatiel');
  const bBreaker = circuitBreaker({ breaker: consecutive(5), halfOpenAfterMs: 10_000 });
  const cBreaker = cockatiel.circuitBreaker(cockatiel.handleAll, { halfOpenAfter: 10_000, breaker: new cockatiel.ConsecutiveBreaker(5) });
  const bHedge = hedge({ delayMs: 10_000 });
  const work = async () => 1;
  const { scenarios, close } = await rejectionScenarios();
  // Issue 15 §3: each policy admitting in enforce and in shadow mode (shadow.mjs).
  const shadow = await shadowScenarios();
  return {
    scenarios: [
      ['baseline: await fn()', work],
      ['closed breaker: call, bulwark', () => bBreaker.execute(work)],
      ['closed breaker: call, cockatiel', () => cBreaker.execute(work)],
      // Issue 14 §3: a hedge whose first attempt succeeds before its delay (no hedge starts).
      ['hedge, no hedge fires: call, bulwark', () => bHedge.execute(work)],
      ...layerScenarios(work),
      ...scenarios,
      ...shadow.scenarios,
      ...admissionScenarios(work),
    ],
    close,
  };
}

/**
 * Issue 14 §3: bulwark's retry, breaker and timeout (configured as in hot-path.mjs) alone, as the
 * one layer of a pipeline, in 2-layer pipelines and all three: what a layer costs in a pipeline.
 */
function layerScenarios(work) {
  const r = () => retry({ maxAttempts: 3, backoff: exponential({ initialMs: 100, maxMs: 10_000 }) });
  const b = () => circuitBreaker({ breaker: consecutive(5), halfOpenAfterMs: 10_000 });
  const t = () => timeout(10_000);
  const list = [
    ['layers: retry', r()],
    ['layers: timeout', t()],
    ['layers: pipeline(breaker)', pipeline(b())],
    ['layers: pipeline(retry)', pipeline(r())],
    ['layers: pipeline(timeout)', pipeline(t())],
    ['layers: pipeline(retry, breaker)', pipeline(r(), b())],
    ['layers: pipeline(breaker, timeout)', pipeline(b(), t())],
    ['layers: pipeline(retry, timeout)', pipeline(r(), t())],
    ['layers: pipeline(retry, breaker, timeout)', pipeline(r(), b(), t())],
  ];
  const calls = list.map(([name, policy]) => [name, () => policy.execute(work)]);
  // 16 calls at once into a one-slot bulkhead (15 queue), as in hot-path.mjs; counted per batch.
  const bQueued = bulkhead({ maxConcurrent: 1, maxQueue: 16 });
  const cQueued = createRequire(import.meta.url)('cockatiel').bulkhead(1, 16);
  const batch = (call) => Promise.all(Array.from({ length: 16 }, call));
  return [
    ...calls,
    ['baseline: 16 at once, await fn() each', () => batch(work)],
    ['queued bulkhead 16 at once: batch, bulwark', () => batch(() => bQueued.execute(work))],
    ['queued bulkhead 16 at once: batch, cockatiel', () => batch(() => cQueued.execute(work))],
  ];
}

if (args.child !== undefined) {
  // Under callgrind: warm up, wait to be zeroed, make the counted calls, wait to be dumped.
  const { scenarios, close } = await scenarioList();
  const fn = scenarios.find(([name]) => name === args.child)?.[1];
  if (fn === undefined) throw new Error(`no scenario named ${JSON.stringify(args.child)}`);
  const next = () => new Promise((resolve) => process.once('message', resolve));
  if (args.mixed) {
    // As in hot-path.mjs and in a service that uses several policies: every bulwark scenario
    // runs first, in turns, so that code the policies share sees them all.
    const ours = scenarios.filter(([name]) => !/cockatiel|opossum|^baseline/.test(name)).map(([, call]) => call);
    for (let round = 0; round < 10; round++) {
      for (const call of ours) for (let i = 0; i < 1_000; i++) await call().catch(() => {});
    }
  }
  // One loop for the warm-up and the counted calls: the code that runs in the counted window is
  // the code the warm-up optimized (a loop of its own would be compiled inside the window).
  const calls = async (n) => {
    for (let i = 0; i < n; i++) await fn();
  };
  await calls(WARMUP);
  process.send('warm');
  await next();
  await calls(CALLS);
  process.send('done');
  await next();
  close();
  process.exit(0);
}

callgrindNode(tmpdir(), false); // exits at once when valgrind is missing

async function measure(name, index) {
  const dir = mkdtempSync(join(tmpdir(), 'bulwark-callgrind-'));
  const { valgrind, control, args: command } = callgrindNode(dir, args.keep !== undefined);
  const child = spawn(
    valgrind,
    [
      ...command,
      ...(args['single-threaded'] ? ['--single-threaded', '--max-semi-space-size=64'] : []),
      fileURLToPath(import.meta.url),
      '--child',
      name,
      '--calls',
      String(CALLS),
      '--warmup',
      String(WARMUP),
      ...(args.mixed ? ['--mixed'] : []),
    ],
    { stdio: ['ignore', 'ignore', 'inherit', 'ipc'] },
  );
  const exited = new Promise((resolve) => child.once('exit', resolve));
  const message = (want) =>
    new Promise((resolve, reject) => {
      child.once('message', (m) => (m === want ? resolve() : reject(new Error(`${name}: ${JSON.stringify(m)}`))));
      exited.then((code) => reject(new Error(`${name}: the child exited (${code})`)));
    });
  try {
    await message('warm');
    execFileSync(control, ['-z', String(child.pid)], { stdio: 'ignore' });
    child.send('go');
    await message('done');
    execFileSync(control, ['-d', String(child.pid)], { stdio: 'ignore' });
    const dumps = readdirSync(dir)
      .filter((f) => /^cg\.out\.1-\d+$/.test(f))
      .sort();
    if (dumps.length === 0) throw new Error(`${name}: callgrind wrote no dump`);
    const main = Number(/^summary: (\d+)$/m.exec(readFileSync(join(dir, dumps[0]), 'utf8'))?.[1] ?? NaN);
    if (args.keep) {
      mkdirSync(args.keep, { recursive: true });
      copyFileSync(join(dir, dumps[0]), join(args.keep, `${index}.callgrind`));
      copyFileSync(`/tmp/perf-${child.pid}.map`, join(args.keep, `${index}.perf-map`));
    }
    return main / CALLS;
  } finally {
    child.kill('SIGKILL');
    await exited;
    if (args.keep) rmSync(`/tmp/perf-${child.pid}.map`, { force: true });
    rmSync(dir, { recursive: true, force: true });
  }
}

const { scenarios, close } = await scenarioList();
close();
const chosen = scenarios.map(([name]) => name).filter((name) => args.filter === undefined || new RegExp(args.filter).test(name));
const rows = [];
for (const [i, name] of chosen.entries()) {
  const perCall = await measure(name, i);
  rows.push({ name, perCall });
  console.error(`${name}: ${(perCall / 1000).toFixed(2)}k main-thread instructions per call${args.keep ? ` (kept as ${i})` : ''}`);
}
console.log(`\nNode ${process.version}; callgrind; ${WARMUP} warm-up calls, then ${CALLS} counted.\n`);
console.log(`Command: \`node benchmarks/rejection-instructions.mjs${process.argv.length > 2 ? ' ' + process.argv.slice(2).join(' ') : ''}\`\n`);
console.log('| scenario | main thread, instructions/call | bulwark ÷ this | over its baseline, bulwark ÷ this |');
console.log('|---|---:|---:|---:|');
const perCall = (name) => rows.find((r) => r.name === name)?.perCall;
for (const r of rows) {
  const ours = perCall(`${r.name.split(', ')[0]}, bulwark`);
  // A call that goes through against `await fn()`; a refused one against a rejected await.
  let base = perCall(!r.name.includes('rejected') ? 'baseline: await fn()' : 'baseline: rejected await (error made once)');
  if (r.name.includes('16 at once')) base = perCall('baseline: 16 at once, await fn() each');
  const mine = ours !== undefined && ours !== r.perCall;
  const ratio = mine ? `${(ours / r.perCall).toFixed(2)}×` : '—';
  let over = mine && base !== undefined ? `${((ours - base) / (r.perCall - base)).toFixed(2)}×` : '—';
  if (mine && base !== undefined && ours <= base) over = 'bulwark at its baseline';
  console.log(`| ${r.name} | ${(r.perCall / 1000).toFixed(1)}k | ${ratio} | ${over} |`);
}
