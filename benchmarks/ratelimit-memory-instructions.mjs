// Instructions per memory decision, counted by callgrind: the noise-free companion to
// ratelimit-memory.mjs --part decisions (issue 14 §5). bulwark fixedWindow over memoryStore() and
// rate-limiter-flexible's RateLimiterMemory, each for 1 key, 10,000 keys and a new key every call
// (50,000 keys, each contender starting afresh when they come round, as ratelimit-memory.mjs does),
// each scenario alone in a node process under callgrind: --warmup sequential `await consume()`
// calls, counters zeroed, --calls more, counters dumped; the figure is the main thread's
// instructions ÷ calls. Node runs with --single-threaded (compiling and GC on the main thread, so
// they are counted and do not land at random times: with V8's helper threads the same build read
// 1.8k and 3.8k in two runs) and --max-semi-space-size=64, as ratelimit-memory.mjs is run.
//
//   npm run build && node benchmarks/ratelimit-memory-instructions.mjs [--dist DIR] [--filter REGEX] [--calls 50000] [--warmup 100000] [--keep DIR]
//
// --dist: the build to count (default: this checkout's dist/), for before/after comparisons.
// --keep DIR: each scenario's main-thread dump and V8's code map, for callgrind-jit.mjs
// (`--requests` there is --calls here). Needs valgrind.
import { spawn, execFileSync } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
const { values: args } = parseArgs({ options: {
  dist: { type: 'string', default: fileURLToPath(new URL('../dist', import.meta.url)) }, filter: { type: 'string' }, calls: { type: 'string', default: '50000' },
  warmup: { type: 'string', default: '100000' }, keep: { type: 'string' }, child: { type: 'string' } } });
const CALLS = Number(args.calls), WARMUP = Number(args.warmup);
const NEW = 50_000;
const keys10k = Array.from({ length: 10_000 }, (_, i) => `client-${String(i).padStart(5, "0")}`);
const newKeys = Array.from({ length: NEW }, (_, i) => `new-${String(i).padStart(5, "0")}`);
async function scenario(name) {
  const require = createRequire(join(args.dist, '..', 'package.json'));
  const { fixedWindow, memoryStore, rateLimiter } = await import(join(args.dist, 'index.js'));
  const { RateLimiterMemory } = require('rate-limiter-flexible');
  const [who, which] = name.split(':');
  let i = 0;
  if (who === 'bulwark') {
    const store = memoryStore();
    const l = rateLimiter({ algorithm: fixedWindow({ limit: 1e9, windowMs: 3_600_000 }), store });
    if (which === '1') return () => l.consume('10.0.0.1');
    if (which === '10k') return () => l.consume(keys10k[i++ % 10_000]);
    return () => { if (i === NEW) { i = 0; store.clear(); } return l.consume(newKeys[i++]); };
  }
  const mk = (d) => new RateLimiterMemory({ points: 1e9, duration: d });
  let l = mk(which === 'new' ? 1 : 3600);
  if (which === '1') return () => l.consume('10.0.0.1');
  if (which === '10k') return () => l.consume(keys10k[i++ % 10_000]);
  return () => { if (i === NEW) { i = 0; l = mk(1); } return l.consume(newKeys[i++]); };
}
const ALL = ['bulwark:1', 'rlf:1', 'bulwark:10k', 'rlf:10k', 'bulwark:new', 'rlf:new'];
if (args.child) {
  const fn = await scenario(args.child);
  const next = () => new Promise((r) => process.once('message', r));
  async function batch(n) { for (let i = 0; i < n; i++) await fn(); }
  await batch(WARMUP);
  process.send('warm'); await next();
  await batch(CALLS);
  process.send('done'); await next();
  process.exit(0);
}
async function measure(name, calls) {
  const dir = mkdtempSync(join(tmpdir(), 'memi-'));
  const keep = args.keep !== undefined;
  const cmd = ['-q', '--tool=callgrind', '--separate-threads=yes', `--callgrind-out-file=${join(dir, 'cg.out')}`];
  if (keep) cmd.push('--dump-instr=yes', process.execPath, '--max-semi-space-size=64', '--single-threaded', '--perf-basic-prof', '--no-logfile-per-isolate', `--logfile=${join(dir, 'v8.log')}`);
  else cmd.push(process.execPath, '--max-semi-space-size=64', '--single-threaded');
  const child = spawn('valgrind', [...cmd, fileURLToPath(import.meta.url), '--child', name, '--dist', args.dist, '--calls', String(calls), '--warmup', String(WARMUP)], { stdio: ['ignore', 'ignore', 'inherit', 'ipc'] });
  const exited = new Promise((r) => child.once('exit', r));
  const msg = (want) => new Promise((res, rej) => { child.once('message', (m) => (m === want ? res() : rej(new Error(m)))); exited.then((c) => rej(new Error(`exit ${c}`))); });
  try {
    await msg('warm');
    execFileSync('callgrind_control', ['-z', String(child.pid)], { stdio: 'ignore' });
    child.send('go'); await msg('done');
    execFileSync('callgrind_control', ['-d', String(child.pid)], { stdio: 'ignore' });
    const dumps = readdirSync(dir).filter((f) => /^cg\.out\.1-\d+$/.test(f)).sort();
    const total = Number(/^summary: (\d+)$/m.exec(readFileSync(join(dir, dumps[0]), 'utf8'))[1]);
    if (keep) { mkdirSync(args.keep, { recursive: true }); const id = name.replace(':', '-');
      copyFileSync(join(dir, dumps[0]), join(args.keep, `${id}.callgrind`)); copyFileSync(`/tmp/perf-${child.pid}.map`, join(args.keep, `${id}.perf-map`)); }
    return total;
  } finally { child.kill('SIGKILL'); await exited; rmSync(`/tmp/perf-${child.pid}.map`, { force: true }); rmSync(dir, { recursive: true, force: true }); }
}
for (const name of ALL.filter((n) => !args.filter || new RegExp(args.filter).test(n))) {
  const total = await measure(name, CALLS);
  console.log(`${name}: ${(total / CALLS).toFixed(0)} instructions/decision (${CALLS} counted after ${WARMUP} warm-up)`);
}
