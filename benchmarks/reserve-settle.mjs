// Reserve-then-settle against a static reservation (issue 16 §3's figure): `--procs` processes ×
// `--callers` callers share one fixedWindow limit of `--limit` units per `--window-ms` on one
// Redis. Each caller loops: reserve `--estimate` units; when denied, wait 50–100 ms (or the
// retryAfterMs, if shorter) and ask again; when admitted, "work" for `--work-min`–`--work-max` ms,
// which turns out to cost a whole number of units drawn evenly from `--actual-min`–`--actual-max`,
// and then settle that cost (mode settle). Mode static charges the estimate with `consume` and
// never gives anything back: a static reservation (a reservation left to its lease would get its
// units back after leaseMs, and count work that was done as not done). Both modes run at once,
// on two limiters, in every process: the same run, the same machine load.
//
// Per fixed window (by the server's clock: each admission's window is read from its resetMs),
// the script adds up the actual cost of the work admitted in it and reports, over the whole
// windows of the run (the first, partial one is skipped):
//   over-admission  windows whose actual cost exceeds the limit (must be 0)
//   utilisation     actual cost / limit, median over the windows
//   demand          what the callers would spend per window without a limit (each caller doing
//                   back-to-back work at the mean work time and mean cost), as a multiple of the limit
// and prints one JSON line after `RESULT ` (test/integration/redis/reserve-figure.test.ts reads it).
//
//   npm run build && flock /tmp/bench.lock node benchmarks/reserve-settle.mjs [--windows 3] [--port P]
//
// Without --port it starts its own redis-server (no persistence, a temp dir, a free port).
import { fork, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { parseArgs } from 'node:util';
import { cleanUpOnExit, freePort, onPath, redisCommand } from './support.mjs';

const { values: args } = parseArgs({
  options: {
    worker: { type: 'boolean', default: false },
    port: { type: 'string' },
    procs: { type: 'string', default: '4' },
    callers: { type: 'string', default: '64' },
    limit: { type: 'string', default: '100000' },
    'window-ms': { type: 'string', default: '60000' },
    windows: { type: 'string', default: '3' },
    estimate: { type: 'string', default: '4000' },
    'actual-min': { type: 'string', default: '200' },
    'actual-max': { type: 'string', default: '1400' },
    'work-min': { type: 'string', default: '20' },
    'work-max': { type: 'string', default: '80' },
  },
});
const num = (name) => {
  const n = Number(args[name]);
  if (!Number.isSafeInteger(n) || n < 1) throw new Error(`--${name} must be a whole number ≥ 1, got ${args[name]}`);
  return n;
};

if (args.worker) await worker();
else await main();

/** One process: both modes' callers, until the parent's end time; reports per-window sums. */
async function worker() {
  const { Redis } = await import('ioredis');
  const { fixedWindow, rateLimiter } = await import('../dist/index.js');
  const { redisStore } = await import('../dist/redis.js');
  setTimeout(() => process.exit(3), 30 * 60_000).unref();
  process.on('disconnect', () => process.exit(4));
  const config = await new Promise((resolve) => process.once('message', resolve));
  const { port, startAt, endAt, callers, limit, windowMs, estimate, actualMin, actualMax, workMin, workMax } = config;
  const client = new Redis({ host: '127.0.0.1', port, enableOfflineQueue: false, maxRetriesPerRequest: 1 });
  await new Promise((resolve) => client.once('ready', resolve));
  const store = redisStore(client, { timeoutMs: 1_000 });
  const algorithm = fixedWindow({ limit, windowMs });
  const limiters = {
    settle: rateLimiter({ name: 'bench-settle', algorithm, store }),
    static: rateLimiter({ name: 'bench-static', algorithm, store }),
  };
  const stats = {};
  for (const mode of Object.keys(limiters)) stats[mode] = { windows: {}, counts: {}, admitted: 0, denied: 0, fallback: 0, settleErrors: 0, expired: 0 };
  const rand = (lo, hi) => lo + Math.floor(Math.random() * (hi - lo + 1));

  async function caller(mode) {
    const limiter = limiters[mode];
    const s = stats[mode];
    await sleep(Math.max(0, startAt - Date.now()) + rand(0, 50));
    while (Date.now() < endAt) {
      const r = mode === 'settle' ? await limiter.reserve('tenant', { cost: estimate, leaseMs: 10_000 }) : undefined;
      const decision = r === undefined ? await limiter.consume('tenant', estimate) : r.decision;
      if (decision.store !== 'redis') s.fallback++;
      if (!decision.allowed) {
        s.denied++;
        await sleep(Math.min(rand(50, 100), Math.max(1, decision.retryAfterMs)));
        continue;
      }
      s.admitted++;
      // The window the admission counted in, by the server's clock: it ends resetMs from now.
      const window = Math.round((Date.now() + decision.resetMs) / windowMs) - 1;
      await sleep(rand(workMin, workMax));
      const actual = rand(actualMin, actualMax);
      s.windows[window] = (s.windows[window] ?? 0) + actual;
      s.counts[window] = (s.counts[window] ?? 0) + 1;
      if (mode === 'settle') {
        try {
          if ((await r.settle(actual)) !== 'settled') s.expired++;
        } catch {
          s.settleErrors++;
        }
      }
    }
  }
  const all = [];
  for (const mode of Object.keys(limiters)) for (let i = 0; i < callers; i++) all.push(caller(mode));
  await Promise.all(all);
  process.send({ stats }, () => {
    client.disconnect();
    process.exit(0);
  });
}

async function startServer() {
  const redisServer = onPath('redis-server');
  if (redisServer === undefined) throw new Error('redis-server was not found on PATH');
  const dir = mkdtempSync(path.join(os.tmpdir(), 'bulwark-bench-reserve-'));
  const port = await freePort();
  const child = spawn(redisServer, ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir], { stdio: 'ignore' });
  cleanUpOnExit(() => {
    child.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  });
  for (let i = 0; i < 200; i++) {
    try {
      if (String(await redisCommand(port, ['PING'])).includes('PONG')) return port;
    } catch {
      // not up yet
    }
    await sleep(50);
  }
  throw new Error(`redis-server on port ${port} did not answer PING within 10 s`);
}

function median(values) {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

async function main() {
  const procs = num('procs');
  const callers = num('callers');
  const limit = num('limit');
  const windowMs = num('window-ms');
  const windows = num('windows');
  const config = {
    callers,
    limit,
    windowMs,
    estimate: num('estimate'),
    actualMin: num('actual-min'),
    actualMax: num('actual-max'),
    workMin: num('work-min'),
    workMax: num('work-max'),
  };
  const port = args.port === undefined ? await startServer() : Number(args.port);
  await redisCommand(port, ['FLUSHALL']);
  // Start in the middle of a window (its rest is the warm-up), run `windows` whole windows after it.
  const now = Date.now();
  const startAt = now + 1_000;
  const firstWhole = Math.ceil(startAt / windowMs) * windowMs;
  const endAt = firstWhole + windows * windowMs;
  const children = [];
  const results = [];
  for (let p = 0; p < procs; p++) {
    const child = fork(new URL(import.meta.url).pathname, ['--worker'], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    children.push(child);
    results.push(
      new Promise((resolve, reject) => {
        child.once('message', (m) => resolve(m.stats));
        child.once('exit', (code) => code !== 0 && reject(new Error(`worker exited with ${code}`)));
      }),
    );
    child.send({ ...config, port, startAt, endAt });
  }
  const stats = await Promise.all(results);
  const first = firstWhole / windowMs;
  const meanActual = (config.actualMin + config.actualMax) / 2;
  const meanWork = (config.workMin + config.workMax) / 2;
  const demand = (procs * callers * (windowMs / meanWork) * meanActual) / limit;
  const report = { procs, callers, limit, windowMs, windows, warmUpMs: firstWhole - startAt, demandPerLimit: Math.round(demand * 10) / 10, modes: {} };
  for (const mode of ['settle', 'static']) {
    const perWindow = [];
    for (let w = first; w < first + windows; w++) perWindow.push(stats.reduce((sum, s) => sum + (s[mode].windows[w] ?? 0), 0));
    const admittedPerWindow = [];
    for (let w = first; w < first + windows; w++) admittedPerWindow.push(stats.reduce((sum, s) => sum + (s[mode].counts[w] ?? 0), 0));
    const total = (field) => stats.reduce((sum, s) => sum + s[mode][field], 0);
    report.modes[mode] = {
      actualPerWindow: perWindow,
      admittedPerWindow,
      // Every window seen, relative to the first whole one (the warm-up's is -1): a check on the attribution.
      seen: Object.fromEntries(
        [...new Set(stats.flatMap((s) => Object.keys(s[mode].counts)))].sort().map((w) => [w - first, stats.reduce((sum, s) => sum + (s[mode].counts[w] ?? 0), 0)]),
      ),
      overAdmittedWindows: perWindow.filter((units) => units > limit).length,
      utilisation: Math.round((median(perWindow) / limit) * 1000) / 1000,
      admitted: total('admitted'),
      denied: total('denied'),
      fallback: total('fallback'),
      settleErrors: total('settleErrors'),
      expiredLeases: total('expired'),
    };
  }
  console.log(`RESULT ${JSON.stringify(report)}`);
  process.exit(0);
}
