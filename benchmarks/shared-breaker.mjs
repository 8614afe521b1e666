// Issue 16 §4's figure for redisBreakerStore, on a real redis-server this script starts (no
// persistence, temp dir, free loopback port; killed at the end, on an error and on Ctrl-C):
//
//   npm run build && flock /tmp/bench.lock node benchmarks/shared-breaker.mjs [--short] [--repeats 5] [--json]
//
// 1. The fleet: 4 processes (test/integration/redis/shared-breaker-worker.mjs, the built package)
//    each call a breaker named "fig" 200 times a second (consecutive(5), halfOpenMaxCalls 3,
//    halfOpenAfterMs 150, maxStalenessMs 1000); the dependency answers in 20 ms and dies at
//    t = 10 s for good. Reported: how long after the fleet-wide open (the first process to see it)
//    each process rejects, against maxStalenessMs; how many calls reached the dead dependency
//    before their process rejected, against threshold + instances × rate × staleness; and the
//    half-open windows that followed (probes grouped by the 150 ms open periods between them),
//    each of which must hold exactly halfOpenMaxCalls probes fleet-wide. --short: 3 s healthy,
//    8 s dead (about 30 windows) instead of 10 s and 25 s (100 and more).
// 2. Throughput: `await breaker.execute(() => 1)` in batches of 1,000, closed, for 1 s, by a
//    local breaker and by one on the Redis store, alternately, --repeats times; medians, and the
//    median of the per-repeat ratios (target ≥ 0.9).
import { fork } from 'node:child_process';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { Redis } from 'ioredis';
import { circuitBreaker, consecutive } from '../dist/index.js';
import { redisBreakerStore } from '../dist/redis.js';
import { messageFrom, printTargets, startRedisServer } from './support.mjs';

const { values: args } = parseArgs({
  options: { short: { type: 'boolean' }, repeats: { type: 'string' }, json: { type: 'boolean' } },
});
const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const WORKER = path.join(root, 'test/integration/redis/shared-breaker-worker.mjs');
const INSTANCES = 4;
const RATE = 200;
const STALENESS_MS = 1_000;
const THRESHOLD = 5;
const PROBES = 3;
const HALF_OPEN_AFTER_MS = 150;
const HEALTHY_MS = args.short ? 3_000 : 10_000;
const DEAD_MS = args.short ? 8_000 : 25_000;
const REPEATS = Number(args.repeats ?? 5);

const median = (values) => {
  const s = [...values].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

async function fleet(port) {
  const children = Array.from({ length: INSTANCES }, () => fork(WORKER, [], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] }));
  const ready = children.map((c) => messageFrom(c, 'ready'));
  for (const c of children) {
    c.send({
      type: 'config',
      port,
      name: 'fig',
      maxStalenessMs: STALENESS_MS,
      threshold: THRESHOLD,
      halfOpenAfterMs: HALF_OPEN_AFTER_MS,
      halfOpenMaxCalls: PROBES,
      rate: RATE,
      durationMs: HEALTHY_MS + DEAD_MS,
      callMs: 20,
      deadAt: Infinity,
    });
  }
  await Promise.all(ready);
  const deadAt = Date.now() + HEALTHY_MS;
  const done = children.map((c) => messageFrom(c, 'result'));
  for (const c of children) c.send({ type: 'go', deadAt });
  const results = await Promise.all(done);

  const firstOpen = results.map((r) => r.opened.find(([t]) => t >= deadAt)?.[0] ?? Infinity);
  const fleetOpenAt = Math.min(...firstOpen);
  const lags = firstOpen.map((t) => t - fleetOpenAt);
  const deadBeforeOpen = results.reduce((sum, r, i) => sum + r.executions.filter(([t, dead]) => dead && t < firstOpen[i]).length, 0);
  const allOpen = Math.max(...firstOpen);
  const probes = results
    .flatMap((r) => r.executions.filter(([t, dead]) => dead && t >= allOpen).map(([t]) => t))
    .sort((a, b) => a - b);
  const windows = [];
  for (const t of probes) {
    const last = windows.at(-1);
    if (last !== undefined && t - last[0] < HALF_OPEN_AFTER_MS / 2) last.push(t);
    else windows.push([t]);
  }
  const sizes = windows.map((w) => w.length);
  // Where each window that did not hold exactly PROBES probes lies: its index, and how long
  // before the last call of the run it began (a window the end of the run cut short is no fault).
  const lastCall = Math.max(...results.map((r) => r.executions.at(-1)?.[0] ?? 0));
  const inexact = windows.flatMap((w, index) => (w.length === PROBES ? [] : [{ index, size: w.length, msBeforeEnd: lastCall - w[0] }]));
  return {
    openLagsMs: lags,
    deadBeforeOpen,
    deadBound: THRESHOLD + INSTANCES * RATE * (STALENESS_MS / 1000),
    windows: windows.length,
    windowsExact: sizes.filter((n) => n === PROBES).length,
    inexact,
    windowSizes: Object.fromEntries([...new Set(sizes)].sort((a, b) => a - b).map((n) => [n, sizes.filter((m) => m === n).length])),
    calls: results.reduce((s, r) => s + r.calls, 0),
    healthyFailures: results.reduce((s, r) => s + r.executions.filter(([t, dead]) => !dead && t >= deadAt).length, 0),
    other: results.reduce((s, r) => s + r.other, 0),
  };
}

async function throughput(port) {
  const client = new Redis({ host: '127.0.0.1', port, enableOfflineQueue: false, autoResendUnfulfilledCommands: false, maxRetriesPerRequest: 1 });
  client.on('error', () => {});
  while (client.status !== 'ready') await sleep(10);
  const store = redisBreakerStore(client, { maxStalenessMs: STALENESS_MS });
  const local = circuitBreaker({ name: 'tp-local', breaker: consecutive(THRESHOLD) });
  const shared = circuitBreaker({ name: 'tp-shared', breaker: consecutive(THRESHOLD), store });
  const fn = () => 1;
  const rate = async (breaker) => {
    const end = performance.now() + 1_000;
    let n = 0;
    while (performance.now() < end) {
      const batch = new Array(1_000);
      for (let i = 0; i < 1_000; i++) batch[i] = breaker.execute(fn);
      await Promise.all(batch);
      n += 1_000;
    }
    return n;
  };
  await rate(local);
  await rate(shared); // warm-up
  const rows = [];
  for (let i = 0; i < REPEATS; i++) {
    const order = i % 2 ? [shared, local] : [local, shared];
    const r = {};
    for (const b of order) r[b === local ? 'local' : 'shared'] = await rate(b);
    if (shared.state !== 'closed' || store.status !== 'ready') throw new Error('the shared breaker left the closed state or Redis');
    rows.push({ ...r, ratio: r.shared / r.local });
  }
  store.close();
  client.disconnect();
  return { local: median(rows.map((r) => r.local)), shared: median(rows.map((r) => r.shared)), ratio: median(rows.map((r) => r.ratio)), rows };
}

const server = await startRedisServer('shared-breaker');
try {
  const f = await fleet(server.port);
  const t = await throughput(server.port);
  const lagMax = Math.max(...f.openLagsMs);
  console.log(`fleet: ${INSTANCES} processes × ${RATE} req/s, dependency dead at t = ${HEALTHY_MS / 1000} s, maxStalenessMs ${STALENESS_MS}`);
  console.log(`  rejecting after the fleet-wide open: ${f.openLagsMs.map((ms) => `${ms} ms`).join(', ')} (bound ${STALENESS_MS} ms)`);
  console.log(`  calls reaching the dead dependency before their process rejected: ${f.deadBeforeOpen} (bound ${f.deadBound})`);
  console.log(`  half-open windows: ${f.windows}, with exactly ${PROBES} probes: ${f.windowsExact}; sizes ${JSON.stringify(f.windowSizes)}`);
  if (f.inexact.length > 0) console.log(`  not exact: ${JSON.stringify(f.inexact)} (of ${f.windows} windows)`);
  console.log(`  calls ${f.calls}, failing for another reason than the dependency: ${f.other}`);
  console.log(`throughput (closed, batches of 1,000): local ${Math.round(t.local)}/s, shared ${Math.round(t.shared)}/s, ratio ${t.ratio.toFixed(3)} (median of ${REPEATS})`);
  const targets = [
    { name: 'shared-breaker open lag ≤ maxStalenessMs', met: lagMax <= STALENESS_MS },
    { name: 'shared-breaker dead calls ≤ bound', met: f.deadBeforeOpen <= f.deadBound },
    { name: 'shared-breaker exact probes per window', met: f.windows > 0 && f.windowsExact === f.windows && f.windows >= (args.short ? 20 : 100) },
    { name: 'shared-breaker throughput ≥ 0.9× local', met: t.ratio >= 0.9 },
  ];
  for (const target of targets) console.log(`Target: ${target.name}: ${target.met ? 'met' : 'NOT met'}`);
  printTargets(targets);
  if (args.json) console.log(JSON.stringify({ fleet: f, throughput: t }));
} finally {
  server.stop();
}
