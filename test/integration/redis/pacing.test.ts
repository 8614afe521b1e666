// Issue 16 §1 on real Redis: pacing state shared by processes. Each test starts its own
// redis-server; client processes are forked from pacing-worker.mjs, which imports the BUILT
// package (run `npm run build` first when running this file alone).
import { fork } from 'node:child_process';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { describe, expect, it, onTestFinished } from 'vitest';
import { createFetch } from '../../../src/adapters/fetch.js';
import { limitedUpstream } from '../../support/limited-upstream.js';
import { startRedis, type RedisServer } from '../support/redis.js';
import { connectReady, recommendedClientOptions } from './support.js';

const WORKER = path.join(import.meta.dirname, 'pacing-worker.mjs');
const root = path.resolve(import.meta.dirname, '../../..');

/** Runs `step` when the test ends (last registered, first run), pass or fail. */
const atEnd = (step: () => Promise<void>): void => onTestFinished(step);

/** A fresh redis-server for this test, stopped when it ends. */
async function freshRedis(): Promise<RedisServer> {
  const redis = await startRedis();
  atEnd(() => redis.stop());
  return redis;
}

interface Counts {
  id: number;
  sent: number;
  ok: number;
  limited: number;
  refused: number;
  failed: number;
}

/** Forks one worker per job and collects their counts. */
function run(jobs: object[]): Promise<Counts[]> {
  return Promise.all(
    jobs.map(
      (job) =>
        new Promise<Counts>((resolve, reject) => {
          const child = fork(WORKER, [JSON.stringify(job)], { execArgv: [], stdio: ['ignore', 'inherit', 'inherit', 'ipc'], cwd: root });
          child.on('message', (m) => resolve(m as Counts));
          child.on('exit', (code) => (code === 0 ? undefined : reject(new Error(`worker exited with ${code}`))));
        }),
    ),
  );
}

describe('pacing shared through Redis', () => {
  it('a Retry-After seen by one process stops the other within 100 ms, for its whole length', async () => {
    const redis = await freshRedis();
    // `at`: when the worker sent it (after pacing), from its x-sent-at stamp.
    const arrivals: { at: number; who: string }[] = [];
    let blockedAt = 0;
    const http: Server = createServer((req, res) => {
      const now = Date.now();
      const who = String(req.headers['x-who']);
      arrivals.push({ at: Number(req.headers['x-sent-at']), who });
      // About 1 s into the run, the first request of worker 0 is told to stay away for 2 s.
      if (blockedAt === 0 && who === '0' && arrivals.length > 1 && now - arrivals[0]!.at > 1_000) {
        blockedAt = now;
        res.writeHead(429, { 'retry-after': '2' }).end();
        return;
      }
      res.writeHead(200).end('ok');
    });
    await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', resolve));
    atEnd(() => new Promise((resolve) => (http.closeAllConnections(), http.close(() => resolve()))));
    const url = `http://127.0.0.1:${(http.address() as AddressInfo).port}/`;
    const startAt = Date.now() + 800;
    const job = { redisPort: redis.port, url, ratePerSec: 20, durationMs: 4_000, startAt, mode: 'pacing', maxWaitMs: 5_000 };
    await run([
      { ...job, id: 0 },
      { ...job, id: 1 },
    ]);
    expect(blockedAt).toBeGreaterThan(0);
    const during = arrivals.filter((a) => a.at > blockedAt + 100 && a.at < blockedAt + 2_000 - 20);
    expect(during).toEqual([]);
    // Worker 1 was sending before, and both send again after the block.
    expect(arrivals.some((a) => a.who === '1' && a.at < blockedAt)).toBe(true);
    expect(arrivals.some((a) => a.who === '1' && a.at > blockedAt + 2_000)).toBe(true);
  }, 30_000);

  it('figure, shortened: 10 req/s (burst 20) per key, 4 processes offering 40 req/s: ≤ 1 % 429 after the first window, ≥ 95 % of the quota', async () => {
    const redis = await freshRedis();
    const upstream = await limitedUpstream({ limit: 10, burst: 20 });
    atEnd(() => upstream.close());
    const startAt = Date.now() + 1_000;
    const durationMs = 6_000;
    const job = { redisPort: redis.port, url: `${upstream.url}/`, ratePerSec: 10, durationMs, startAt, mode: 'pacing', maxWaitMs: 2_000 };
    const counts = await run([0, 1, 2, 3].map((id) => ({ ...job, id })));
    expect(counts.reduce((n, c) => n + c.failed, 0)).toBe(0);
    const first = upstream.log[0]!.at;
    // The first window: the 2 s a full bucket takes to refill (q=20;w=2).
    const after = upstream.log.filter((e) => e.at >= first + 2_000);
    const limited = after.filter((e) => e.status === 429).length;
    expect(limited / after.length).toBeLessThanOrEqual(0.01);
    // Accepted throughput over the run after the first window, against the advertised 10/s.
    const last = upstream.log.at(-1)!.at;
    const accepted = after.filter((e) => e.status === 200).length / ((last - first - 2_000) / 1000);
    expect(accepted).toBeGreaterThanOrEqual(9.5);
  }, 30_000);

  it('Redis down: calls are paced locally and none fails because of Redis', async () => {
    const redis = await freshRedis();
    // No reconnects: once the server is gone the client ends, and nothing is left open.
    const ends: (() => Promise<void>)[] = [];
    atEnd(async () => {
      for (const step of ends) await step();
    });
    const client = await connectReady(redis.port, ends, { ...recommendedClientOptions, retryStrategy: () => null });
    const upstream = await limitedUpstream({ limit: 20 });
    atEnd(() => upstream.close());
    const f = createFetch({ retry: false, pacing: { maxWaitMs: 3_000, store: client } });
    expect((await f(`${upstream.url}/`)).status).toBe(200);
    await redis.stop();
    const started = performance.now();
    const answers = await Promise.all(Array.from({ length: 20 }, () => f(`${upstream.url}/`)));
    expect(answers.map((r) => r.status).filter((s) => s !== 200)).toEqual([]);
    // Still paced (20 slots at about 19.6/s), locally.
    expect(performance.now() - started).toBeGreaterThan(800);
  }, 30_000);
});
