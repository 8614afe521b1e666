// Rate-limit Redis benchmark: decisions/s and p50/p99 latency of `await limiter.consume(key)`
// against a real Redis, for bulwark's Redis store (fixedWindow — the like-for-like comparison
// with rate-limiter-flexible's RateLimiterRedis, which keeps one INCR counter per fixed window —
// and gcra and slidingWindow) and rate-limiter-flexible's `RateLimiterRedis`, on the same server
// and the same ioredis client, at concurrency 1, 16, 64, 256 and 1,024; plus `redis-benchmark` EVALSHA of a
// trivial script (`return 1`), unpipelined and pipelined, as the ceiling the server allows.
//
//   npm run bench                                      (builds, then runs every benchmark)
//   npm run build && taskset -c 0 node benchmarks/ratelimit-redis.mjs [--rounds 3] [--duration 2000] [--slice 250] [--quick] [--json]
//                                                            [--concurrency 16,64] [--no-ceiling]
//
// --concurrency: measure only these concurrencies (comma-separated; default 1,16,64,256,1024), for
// a shorter run while tuning; the targets then cover only those. --no-ceiling: skip redis-benchmark.
//
// --quick: unless given, --rounds 1, --duration 1000, --warmup 200, and a ceiling of 50,000
// requests instead of 200,000 (a smoke run, as `npm run bench -- --quick` makes). The target line
// ("Target: ... met / NOT met") is followed by the `bench-targets:` line benchmarks/run.mjs reads.
//
// The script starts its own redis-server (no persistence, temp dir, free loopback port) pinned to
// CPU 1 with `taskset -c 1`, and wants to run pinned to CPU 0 itself, so that client and server do
// not fight over a core: run it under `taskset -c 0`, or plainly — it then re-executes itself
// under `taskset -c 0` when taskset is installed and the machine has two CPUs or more. Without
// taskset (or with --no-pin) everything runs unpinned, and the output says so. The server is
// killed at the end, on an error and on Ctrl-C.
//
// Method: closed-loop workers (each awaits its decision, then asks the next), cycling through
// 10,000 keys. Every contender is warmed up at every concurrency first (scripts loaded, code
// optimised). Then each round measures, per concurrency, every contender for --duration ms in
// all, in slices of --slice ms taken in turn (order rotated every slice), so that bursts of load
// from elsewhere on a shared machine (they last seconds) hit every contender alike. Per round and
// contender: decisions/s over its slices, p50 and p99 over all its decisions; the figures are the
// medians over rounds, and each ratio is the median of the per-round ratios (both sides measured
// in the same slices). Limits are sized so that no decision is ever denied (RateLimiterRedis's consume() rejects on a denial): a failed or non-Redis decision
// is counted and shown, never hidden, and only decisions Redis made count towards decisions/s.
// bulwark's store gets `timeoutMs: 10_000` rather than its default 100 ms: RateLimiterRedis has
// no timeout and waits for Redis however long it takes, and so does bulwark here. With 100 ms, a
// stall of the (shared, noisy) machine makes a whole tick's decisions fall back to the in-memory
// store — three in a row open the store's breaker for a second — and those answers, much faster
// than Redis's, would flatter bulwark's figures. The ceiling (redis-benchmark -n 200000 -c 50,
// -P 1 and -P 16) is measured once per round too, pinned like the client.
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { cleanUpOnExit, freePort, onPath, printTargets } from './support.mjs';

const HOST = '127.0.0.1';
const CLIENT_CPU = 0;
const SERVER_CPU = 1;
const PINNED_ENV = 'BULWARK_BENCH_REDIS_PINNED';

const { values: args } = parseArgs({
  options: {
    rounds: { type: 'string' },
    duration: { type: 'string' },
    warmup: { type: 'string' },
    slice: { type: 'string', default: '250' },
    quick: { type: 'boolean', default: false },
    json: { type: 'boolean', default: false },
    'no-pin': { type: 'boolean', default: false },
    'no-ceiling': { type: 'boolean', default: false },
    concurrency: { type: 'string', default: '1,16,64,256,1024' },
  },
});
const ROUNDS = Number(args.rounds ?? (args.quick ? '1' : '3'));
const DURATION_MS = Number(args.duration ?? (args.quick ? '1000' : '2000'));
const WARMUP_MS = Number(args.warmup ?? (args.quick ? '200' : '300'));
const SLICE_MS = Number(args.slice);
for (const [name, value, min] of [
  ['--rounds', ROUNDS, 1],
  ['--duration', DURATION_MS, 100],
  ['--warmup', WARMUP_MS, 0],
  ['--slice', SLICE_MS, 10],
]) {
  if (!Number.isInteger(value) || value < min) {
    console.error(`${name} must be a whole number of at least ${min}, got ${value}`);
    process.exit(1);
  }
}
const CONCURRENCIES = args.concurrency.split(',').map(Number);
for (const c of CONCURRENCIES) {
  if (!Number.isInteger(c) || c < 1) {
    console.error(`--concurrency must list whole numbers of at least 1, comma-separated, got ${args.concurrency}`);
    process.exit(1);
  }
}
const KEY_COUNT = 10_000;
const CEILING_REQUESTS = args.quick ? 50_000 : 200_000;
const CEILING_CLIENTS = 50;

// ---------------------------------------------------------------------------------------------
// Pinning.

/** The CPUs this process may run on (Linux), or undefined when that cannot be read. */
function allowedCpus() {
  try {
    const line = /^Cpus_allowed_list:\s*(.+)$/m.exec(readFileSync('/proc/self/status', 'utf8'))?.[1];
    if (line === undefined) return undefined;
    const cpus = [];
    for (const part of line.trim().split(',')) {
      const [a, b] = part.split('-').map(Number);
      for (let c = a; c <= (b ?? a); c++) cpus.push(c);
    }
    return cpus;
  } catch {
    return undefined;
  }
}

const taskset = onPath('taskset');
let pinNote;
const cpusNow = allowedCpus();
const pinnedToClientCpu = cpusNow?.length === 1 && cpusNow[0] === CLIENT_CPU;
if (args['no-pin']) pinNote = 'unpinned (--no-pin)';
else if (taskset === undefined) pinNote = 'UNPINNED: taskset not found (client and Redis share the cores)';
else if (os.cpus().length < 2) pinNote = `UNPINNED: ${os.cpus().length} CPU, cannot pin client and Redis apart`;
else if (!pinnedToClientCpu && process.env[PINNED_ENV] === undefined) {
  // Run again under taskset -c 0, passing everything through, and exit with its status.
  const child = spawn(
    taskset,
    ['-c', String(CLIENT_CPU), process.execPath, ...process.execArgv, fileURLToPath(import.meta.url), ...process.argv.slice(2)],
    { stdio: 'inherit', env: { ...process.env, [PINNED_ENV]: '1' } },
  );
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP']) process.on(signal, () => child.kill(signal));
  child.on('exit', (code, signal) => process.exit(code ?? (signal ? 128 + (os.constants.signals[signal] ?? 0) : 1)));
  await new Promise(() => {}); // the child's exit ends this process
} else if (!pinnedToClientCpu) pinNote = `UNPINNED: taskset -c ${CLIENT_CPU} did not take (allowed CPUs: ${cpusNow?.join(',') ?? 'unknown'})`;
const pinServer = pinNote === undefined;

// ---------------------------------------------------------------------------------------------
// The server.

function ping(port, timeoutMs = 500) {
  return new Promise((resolve) => {
    const socket = net.connect({ host: HOST, port });
    let reply = '';
    const done = (ok) => {
      clearTimeout(timer);
      socket.destroy();
      resolve(ok);
    };
    const timer = setTimeout(() => done(false), timeoutMs);
    socket.on('connect', () => socket.write('PING\r\n'));
    socket.on('data', (chunk) => {
      reply += chunk;
      if (reply.includes('\r\n')) done(reply.startsWith('+PONG'));
    });
    socket.on('error', () => done(false));
  });
}

let server; // { child, dir, port, pinned }

function killServer() {
  if (server === undefined) return;
  const { child, dir } = server;
  server = undefined;
  if (child.exitCode === null && child.signalCode === null) {
    try {
      child.kill('SIGKILL');
    } catch {
      // already gone
    }
  }
  rmSync(dir, { recursive: true, force: true });
}
cleanUpOnExit(killServer);

async function startServer(pinned) {
  const redisServer = onPath('redis-server');
  if (redisServer === undefined) throw new Error('redis-server was not found on PATH (apt-get install -y redis-server)');
  const dir = mkdtempSync(path.join(os.tmpdir(), 'bulwark-bench-redis-'));
  const port = await freePort();
  const argv = [
    '--port', String(port), '--bind', HOST, '--protected-mode', 'no', '--dir', dir,
    '--logfile', path.join(dir, 'redis.log'), '--save', '', '--appendonly', 'no', '--daemonize', 'no',
  ];
  // taskset execs redis-server in place: the pid is the server's.
  const child = pinned
    ? spawn(taskset, ['-c', String(SERVER_CPU), redisServer, ...argv], { stdio: 'ignore' })
    : spawn(redisServer, argv, { stdio: 'ignore' });
  child.on('error', () => {});
  server = { child, dir, port, pinned };
  const deadline = Date.now() + 10_000;
  while (Date.now() < deadline) {
    if (child.exitCode !== null || child.signalCode !== null) break;
    if (await ping(port)) return server;
    await sleep(50);
  }
  let log = '';
  try {
    log = readFileSync(path.join(dir, 'redis.log'), 'utf8').split('\n').slice(-10).join('\n');
  } catch {
    // no log
  }
  killServer();
  throw new Error(`redis-server on port ${port}${pinned ? ` (taskset -c ${SERVER_CPU})` : ''} did not answer PING within 10 s\n${log}`);
}

// ---------------------------------------------------------------------------------------------
// Measuring.

function median(xs) {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

/** Nearest-rank percentile of a sorted Float64Array. */
function percentile(sorted, p) {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))];
}

const keys = Array.from({ length: KEY_COUNT }, (_, i) => `user-${String(i).padStart(5, '0')}`);
let keyIndex = 0;

/** Where the slices of one contender at one concurrency in one round add up. */
function accumulator() {
  return { latencies: new Float64Array(1 << 16), n: 0, failed: 0, notRedis: 0, elapsedMs: 0 };
}

/**
 * `concurrency` closed loops calling `decide(key)` for `durationMs` (waiting for the decisions
 * in flight at the end), adding to `acc`; `decide` resolves with 'redis' for a decision Redis
 * made, anything else for one it did not (a fallback or a denial).
 */
async function slice(decide, concurrency, durationMs, acc) {
  const start = performance.now();
  const end = start + durationMs;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      for (;;) {
        const t0 = performance.now();
        if (t0 >= end) return;
        const key = keys[keyIndex];
        keyIndex = keyIndex + 1 === KEY_COUNT ? 0 : keyIndex + 1;
        try {
          if ((await decide(key)) !== 'redis') acc.notRedis++;
        } catch {
          acc.failed++;
        }
        if (acc.n === acc.latencies.length) {
          const grown = new Float64Array(acc.n * 2);
          grown.set(acc.latencies);
          acc.latencies = grown;
        }
        acc.latencies[acc.n++] = performance.now() - t0;
      }
    }),
  );
  acc.elapsedMs += performance.now() - start;
}

/** decisions/s, p50 and p99 of an accumulator. */
function summary(acc) {
  const sorted = acc.latencies.subarray(0, acc.n).sort();
  // Only decisions Redis made count towards decisions/s (none other is expected: see the header).
  const byRedis = acc.n - acc.failed - acc.notRedis;
  return {
    rate: (byRedis / acc.elapsedMs) * 1000,
    p50: percentile(sorted, 50),
    p99: percentile(sorted, 99),
    decisions: acc.n,
    failed: acc.failed,
    notRedis: acc.notRedis,
  };
}

function runRedisBenchmark(port, sha, pipeline) {
  const bin = onPath('redis-benchmark');
  if (bin === undefined) return { rps: NaN, note: 'redis-benchmark not found' };
  const argv = ['-h', HOST, '-p', String(port), '-n', String(CEILING_REQUESTS), '-c', String(CEILING_CLIENTS), '-P', String(pipeline), '-q', 'EVALSHA', sha, '0'];
  const r = spawnSync(bin, argv, { encoding: 'utf8', timeout: 60_000 });
  const matches = [...`${r.stdout}`.matchAll(/([\d.]+) requests per second/g)];
  const rps = Number(matches.at(-1)?.[1]);
  if (r.status !== 0 || !Number.isFinite(rps)) {
    return { rps: NaN, note: `redis-benchmark failed (${r.error?.message ?? r.signal ?? `exit ${r.status}`}): ${`${r.stderr}${r.stdout}`.trim().slice(-200)}` };
  }
  return { rps };
}

// ---------------------------------------------------------------------------------------------

const require = createRequire(import.meta.url);
const { Redis } = await import('ioredis');
const { RateLimiterRedis } = require('rate-limiter-flexible');
const rlfVersion = require('rate-limiter-flexible/package.json').version;
const ioredisVersion = require('ioredis/package.json').version;
let bulwark;
let bulwarkRedis;
try {
  bulwark = await import('../dist/index.js');
  bulwarkRedis = await import('../dist/redis.js');
} catch (error) {
  console.error(`dist/ is missing or broken: run \`npm run build\` first (npm run bench does it).\n${error.message}`);
  process.exit(1);
}
const { fixedWindow, gcra, rateLimiter, slidingWindow } = bulwark;
const { redisStore } = bulwarkRedis;

const loadBefore = os.loadavg();
let client;
try {
  try {
    await startServer(pinServer);
  } catch (error) {
    if (!pinServer) throw error;
    pinNote = `client pinned to CPU ${CLIENT_CPU}, Redis UNPINNED (taskset -c ${SERVER_CPU} redis-server failed: ${error.message.split('\n')[0]})`;
    await startServer(false);
  }
  pinNote ??= `client pinned to CPU ${CLIENT_CPU}, redis-server to CPU ${SERVER_CPU} (taskset)`;
  const port = server.port;

  client = new Redis({
    host: HOST,
    port,
    enableOfflineQueue: false,
    autoResendUnfulfilledCommands: false,
    maxRetriesPerRequest: 1,
    lazyConnect: true,
  });
  client.on('error', (error) => console.error(`ioredis: ${error.message}`));
  await client.connect();
  const redisVersion = /redis_version:(\S+)/.exec(await client.info('server'))?.[1] ?? '?';

  // Limits no run can reach: at most ~100k decisions/s for ~90 s over 10k keys is < 1,000 a key.
  const HOUR_MS = 3_600_000;
  // The defaults (maxBatch 128, onStoreError 'local'), except timeoutMs: see the header.
  const store = redisStore(client, { timeoutMs: 10_000 });
  const bulwarkFixed = rateLimiter({ name: 'bench-fixed', algorithm: fixedWindow({ limit: 1_000_000_000, windowMs: HOUR_MS }), store });
  // One unit refills every 100 µs; a key sees a call every ~0.1 s at most: it never holds a backlog.
  const bulwarkGcra = rateLimiter({ name: 'bench-gcra', algorithm: gcra({ limit: 10_000, periodMs: 1_000 }), store });
  const bulwarkSliding = rateLimiter({ name: 'bench-sliding', algorithm: slidingWindow({ limit: 1_000_000, windowMs: HOUR_MS }), store });
  const rlf = new RateLimiterRedis({ storeClient: client, points: 1_000_000_000, duration: HOUR_MS / 1000, keyPrefix: 'bench-rlf' });

  const redisOnly = (d) => (d.allowed ? d.store : `denied by ${d.store}`);
  const contenders = [
    { name: `rate-limiter-flexible ${rlfVersion} RateLimiterRedis`, short: 'RateLimiterRedis', decide: (key) => rlf.consume(key).then(() => 'redis') },
    { name: 'bulwark fixedWindow', short: 'bulwark fixedWindow', decide: (key) => bulwarkFixed.consume(key).then(redisOnly) },
    { name: 'bulwark gcra', short: 'bulwark gcra', decide: (key) => bulwarkGcra.consume(key).then(redisOnly) },
    { name: 'bulwark slidingWindow', short: 'bulwark slidingWindow', decide: (key) => bulwarkSliding.consume(key).then(redisOnly) },
  ];
  const baseline = contenders[0];

  // The ceiling: a script that does nothing, EVALSHA'd by redis-benchmark.
  const sha = await client.script('LOAD', 'return 1');

  const results = new Map(); // `${contender}|${concurrency}` → [{ rate, p50, p99, ... }]
  const ceilings = { 1: [], 16: [] };
  const ceilingNotes = new Set();
  const record = (c, concurrency, r) => {
    const k = `${c.name}|${concurrency}`;
    if (!results.has(k)) results.set(k, []);
    results.get(k).push(r);
  };

  const started = performance.now();
  for (const concurrency of CONCURRENCIES) {
    for (const c of contenders) await slice(c.decide, concurrency, WARMUP_MS, accumulator());
  }
  const slices = Math.max(1, Math.round(DURATION_MS / SLICE_MS));
  for (let round = 0; round < ROUNDS; round++) {
    for (const concurrency of CONCURRENCIES) {
      // DURATION_MS per contender, in slices of SLICE_MS taken in turn (order rotated every
      // slice), so a burst of load from elsewhere on the machine hits every contender alike.
      const accs = contenders.map(() => accumulator());
      for (let s = 0; s < slices; s++) {
        for (let k = 0; k < contenders.length; k++) {
          const i = (k + s + round) % contenders.length;
          await slice(contenders[i].decide, concurrency, SLICE_MS, accs[i]);
        }
      }
      contenders.forEach((c, i) => record(c, concurrency, summary(accs[i])));
    }
    for (const pipeline of args['no-ceiling'] ? [] : [1, 16]) {
      const r = runRedisBenchmark(port, sha, pipeline);
      if (r.note) ceilingNotes.add(r.note);
      ceilings[pipeline].push(r.rps);
    }
    if (!args.json) process.stderr.write(`round ${round + 1}/${ROUNDS} done (${((performance.now() - started) / 1000).toFixed(0)} s)\n`);
  }
  const loadAfter = os.loadavg();

  const rows = [];
  for (const concurrency of CONCURRENCIES) {
    for (const c of contenders) {
      const runs = results.get(`${c.name}|${concurrency}`);
      rows.push({
        concurrency,
        contender: c.name,
        rate: median(runs.map((r) => r.rate)),
        p50: median(runs.map((r) => r.p50)),
        p99: median(runs.map((r) => r.p99)),
        rates: runs.map((r) => r.rate),
        failed: runs.reduce((s, r) => s + r.failed, 0),
        notRedis: runs.reduce((s, r) => s + r.notRedis, 0),
        decisions: runs.reduce((s, r) => s + r.decisions, 0),
      });
    }
  }
  for (const row of rows) {
    // Ratios round by round (both measured in the same slices), then their median.
    const mine = results.get(`${row.contender}|${row.concurrency}`);
    const base = results.get(`${baseline.name}|${row.concurrency}`);
    row.rateRatio = median(mine.map((r, i) => r.rate / base[i].rate));
    row.p99Ratio = median(mine.map((r, i) => r.p99 / base[i].p99));
  }
  const ceiling = { 1: median(ceilings[1]), 16: median(ceilings[16]), runs: ceilings };
  // Issue 14 §1: every bulwark algorithm at every concurrency makes at least RateLimiterRedis's
  // decisions/s (2.5× from concurrency 256 up), with a p99 no worse.
  const targets = rows
    .filter((r) => r.contender !== baseline.name)
    .map((r) => {
      const minRate = r.concurrency >= 256 ? 2.5 : 1;
      return {
        concurrency: r.concurrency,
        contender: r.contender,
        minRate,
        rateRatio: r.rateRatio,
        p99Ratio: r.p99Ratio,
        met: r.rateRatio >= minRate && r.p99Ratio <= 1,
      };
    });
  const meta = {
    node: process.version,
    cpu: `${os.cpus()[0]?.model ?? 'cpu'} × ${os.cpus().length}`,
    redis: redisVersion,
    ioredis: ioredisVersion,
    rlf: rlfVersion,
    pinning: pinNote,
    rounds: ROUNDS,
    durationMs: DURATION_MS,
    sliceMs: SLICE_MS,
    loadBefore,
    loadAfter,
    seconds: (performance.now() - started) / 1000,
  };

  if (args.json) {
    console.log(JSON.stringify({ meta, rows, ceiling, targets }, null, 2));
  } else {
    const int = (x) => (Number.isFinite(x) ? Math.round(x).toLocaleString('en') : 'n/a');
    const ms = (x) => `${x.toFixed(x < 1 ? 3 : 2)} ms`;
    const la = (l) => l.map((x) => x.toFixed(2)).join(' ');
    console.log('');
    console.log(
      `Node ${meta.node}, ${meta.cpu}, Redis ${meta.redis}, ioredis ${meta.ioredis}; ${meta.pinning}. ` +
        `${ROUNDS} rounds of ${DURATION_MS} ms per cell (slices of ${SLICE_MS} ms, interleaved), medians (ratios: median of the per-round ratios); 10,000 keys; load average ${la(loadBefore)} before, ${la(loadAfter)} after; ` +
        `${meta.seconds.toFixed(0)} s.`,
    );
    console.log('');
    console.log('| concurrency | contender | decisions/s | p50 | p99 | decisions/s ÷ RateLimiterRedis | p99 ÷ RateLimiterRedis | rounds (decisions/s) |');
    console.log('|---:|---|---:|---:|---:|---:|---:|---|');
    for (const r of rows) {
      const flags = [r.failed ? `${r.failed} failed` : '', r.notRedis ? `${r.notRedis} not by Redis` : ''].filter(Boolean).join(', ');
      const isBase = r.contender === baseline.name;
      console.log(
        `| ${r.concurrency} | ${r.contender}${flags ? ` (${flags})` : ''} | ${int(r.rate)} | ${ms(r.p50)} | ${ms(r.p99)} | ` +
          `${isBase ? '—' : `${r.rateRatio.toFixed(2)}×`} | ${isBase ? '—' : `${r.p99Ratio.toFixed(2)}×`} | ${r.rates.map(int).join(', ')} |`,
      );
    }
    for (const p of args['no-ceiling'] ? [] : [1, 16]) {
      console.log(
        `| ${CEILING_CLIENTS} conn. | ceiling: redis-benchmark EVALSHA \`return 1\`, -P ${p} | ${int(ceiling[p])} req/s | | | | | ${ceilings[p].map(int).join(', ')} |`,
      );
    }
    for (const note of ceilingNotes) console.log(`\nceiling: ${note}`);
    console.log('');
    console.log('Targets (issue 14 §1): each bulwark algorithm ≥ 1× RateLimiterRedis decisions/s at every concurrency, ≥ 2.5× from 256 up; p99 ≤ 1×.');
    for (const t of targets) {
      console.log(
        `  concurrency ${t.concurrency}, ${t.contender}: ${t.rateRatio.toFixed(2)}× decisions/s (≥ ${t.minRate}×), p99 ${t.p99Ratio.toFixed(2)}× — ${t.met ? 'met' : 'NOT met'}.`,
      );
    }
    const bad = rows.filter((r) => r.failed || r.notRedis);
    if (bad.length > 0) console.log(`\nWARNING: some decisions failed or were not made by Redis (see the flagged rows).`);
    printTargets(
      targets.map((t) => ({
        name: `${t.contender} ÷ RateLimiterRedis at concurrency ${t.concurrency}: decisions/s, and p99`,
        met: t.met,
        value: `${t.rateRatio.toFixed(2)}× decisions/s, p99 ${t.p99Ratio.toFixed(2)}×`,
        target: `≥ ${t.minRate}× decisions/s, p99 ≤ 1×`,
      })),
    );
  }
} finally {
  if (client !== undefined && client.status !== 'end') {
    const ended = new Promise((resolve) => client.once('end', resolve));
    client.disconnect();
    await Promise.race([ended, sleep(2_000, undefined, { ref: false })]);
  }
  // Kill the server and wait (bounded) until it has exited, so it is reaped, not left a zombie.
  const child = server?.child;
  const exited = child && child.exitCode === null && child.signalCode === null ? new Promise((resolve) => child.once('exit', resolve)) : undefined;
  killServer();
  if (exited) await Promise.race([exited, sleep(5_000, undefined, { ref: false })]);
}
