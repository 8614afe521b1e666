// Issue 16 §1's figure, full length: an upstream enforcing 10 req/s (burst 20) per API key with
// bulwark's own Express rate limiter (so it advertises `RateLimit-Policy: "per-key";q=20;w=2`),
// and 4 client processes offering 40 req/s in total for the same key. Two modes, in the same run:
//   retry  — today's createFetch with its default retry (the baseline),
//   pacing — createFetch({ pacing: { maxWaitMs: 2000, store: redis } }), one redis-server shared.
// Measured at the upstream, after the first window (the 2 s a full bucket takes to refill): the
// share of requests answered 429, and accepted requests per second against the advertised 10.
// Each mode runs REPEATS times, alternating; medians are reported.
//
//   npm run build && flock /tmp/bench.lock node benchmarks/pacing.mjs [durationS=30] [repeats=3]
//
// Starts its own redis-server (no persistence, free loopback port) and kills it at the end.
import { fork, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import express from 'express';
import { Redis } from 'ioredis';
import { gcra, memoryStore, rateLimiter } from '../dist/index.js';
import { rateLimitMiddleware } from '../dist/express.js';

const root = path.resolve(import.meta.dirname, '..');
const WORKER = path.join(root, 'test/integration/redis/pacing-worker.mjs');
const durationS = Number(process.argv[2] ?? 30);
const repeats = Number(process.argv[3] ?? 3);
const PROCESSES = 4;
const OFFERED_EACH = 10;
const LIMIT = 10;
const BURST = 20;
const WINDOW_MS = (BURST / LIMIT) * 1000;

function freePort() {
  return new Promise((resolve) => {
    const s = net.createServer().listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

async function startRedis() {
  const port = await freePort();
  const dir = mkdtempSync(path.join(os.tmpdir(), 'bulwark-pacing-'));
  const child = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir], { stdio: 'ignore' });
  const client = new Redis({ host: '127.0.0.1', port, lazyConnect: true, retryStrategy: () => 50 });
  client.on('error', () => {});
  for (let i = 0; i < 100 && client.status !== 'ready'; i++) {
    await client.connect().catch(() => {});
    if (client.status !== 'ready') await new Promise((r) => setTimeout(r, 100));
  }
  return {
    port,
    client,
    stop() {
      client.disconnect();
      child.kill('SIGKILL');
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** A fresh upstream (its own limiter) logging each request's arrival and status. */
async function upstream() {
  const log = [];
  const limiter = rateLimiter({ name: 'per-key', algorithm: gcra({ limit: LIMIT, periodMs: 1_000, burst: BURST }), store: memoryStore() });
  const app = express();
  app.use((req, res, next) => {
    const at = Date.now();
    res.on('finish', () => log.push({ at, status: res.statusCode }));
    next();
  });
  app.use(rateLimitMiddleware(limiter, { key: (req) => String(req.get('x-api-key') ?? 'none'), exemptProbes: false }));
  app.get('/', (_req, res) => res.send('ok'));
  const server = await new Promise((resolve) => {
    const s = app.listen(0, '127.0.0.1', () => resolve(s));
  });
  return { url: `http://127.0.0.1:${server.address().port}/`, log, close: () => new Promise((r) => (server.closeAllConnections(), server.close(r))) };
}

function runWorkers(jobs) {
  return Promise.all(
    jobs.map(
      (job) =>
        new Promise((resolve, reject) => {
          const child = fork(WORKER, [JSON.stringify(job)], { execArgv: [], stdio: ['ignore', 'inherit', 'inherit', 'ipc'], cwd: root });
          child.on('message', resolve);
          child.on('exit', (code) => (code === 0 ? undefined : reject(new Error(`worker exited with ${code}`))));
        }),
    ),
  );
}

async function once(mode, redis) {
  await redis.client.flushall();
  const up = await upstream();
  const startAt = Date.now() + 1_500;
  const job = { redisPort: redis.port, url: up.url, ratePerSec: OFFERED_EACH, durationMs: durationS * 1000, startAt, mode, maxWaitMs: 2_000 };
  const counts = await runWorkers(Array.from({ length: PROCESSES }, (_, id) => ({ ...job, id })));
  await up.close();
  const first = up.log.reduce((m, e) => Math.min(m, e.at), Infinity);
  const last = up.log.reduce((m, e) => Math.max(m, e.at), 0);
  const after = up.log.filter((e) => e.at >= first + WINDOW_MS);
  const limited = after.filter((e) => e.status === 429).length;
  const accepted = after.filter((e) => e.status === 200).length;
  const seconds = (last - first - WINDOW_MS) / 1000;
  return {
    mode,
    requests: up.log.length,
    afterWindow: after.length,
    limitedShare: limited / after.length,
    acceptedPerSec: accepted / seconds,
    quotaShare: accepted / seconds / LIMIT,
    refusedLocally: counts.reduce((n, c) => n + c.refused, 0),
    failed: counts.reduce((n, c) => n + c.failed, 0),
  };
}

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

const redis = await startRedis();
const results = { retry: [], pacing: [] };
try {
  for (let i = 0; i < repeats; i++) {
    for (const mode of ['retry', 'pacing']) {
      const r = await once(mode, redis);
      results[mode].push(r);
      console.log(JSON.stringify(r));
    }
  }
} finally {
  redis.stop();
}
console.log(`\n${PROCESSES} processes × ${OFFERED_EACH} req/s for ${durationS} s; upstream ${LIMIT} req/s burst ${BURST} per key; medians of ${repeats}`);
console.log('| mode | upstream requests/s | 429 share after first window | accepted req/s | of quota | refused locally (total) |');
console.log('|---|---|---|---|---|---|');
for (const mode of ['retry', 'pacing']) {
  const rs = results[mode];
  const perSec = median(rs.map((r) => r.afterWindow / durationS));
  console.log(
    `| ${mode} | ${perSec.toFixed(1)} | ${(median(rs.map((r) => r.limitedShare)) * 100).toFixed(2)} % | ${median(rs.map((r) => r.acceptedPerSec)).toFixed(2)} | ${(median(rs.map((r) => r.quotaShare)) * 100).toFixed(1)} % | ${median(rs.map((r) => r.refusedLocally))} |`,
  );
}
process.exit(0);
