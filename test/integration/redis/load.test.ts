// RELIABILITY.md rows L1, L2 and L8, and bad input against a real Redis:
//   L1  4 processes × 500 concurrent decisions on one key: exactly the limit is admitted, by Redis.
//   L8  4 processes taking weighted units from one calendar quota: never more than the limit, and
//       the quota is used up as far as the costs allow.
//   L2  10k keys under sustained concurrent load: no errors, every decision by Redis, every key
//       left with a TTL (decisions/s and p99 are printed).
//   keys: hostile and colliding keys each get their own counter; bad keys never reach Redis.
// L1 and L8 fork test/integration/redis/load-worker.mjs, which imports the BUILT package from
// dist/: `npm test` runs `npm run build` before vitest; when running this file alone, build first.
// Each describe starts its own redis-server on a random loopback port and kills it by pid.
//
// Limits and windows are sized so that nothing refills during a test: windows are the longest
// allowed (2^31 − 1 ms, about 24.9 days, nudged so that no window boundary falls within 10 min),
// so every count is exact. Decisions get a generous `timeoutMs` (these rows are about
// correctness under contention; a decision that fell back to the local store would be counted
// against the "every decision by Redis" assertion, and the shared 2-core machine can stall a
// process for more than the default 100 ms). faults.test.ts covers the timeout itself.
import { createHash } from 'node:crypto';
import diagnosticsChannel from 'node:diagnostics_channel';
import { type ChildProcess, fork } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { Redis, type RedisOptions } from 'ioredis';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { channelNames } from '../../../src/core/diagnostics.js';
import type { RateLimitAlgorithm } from '../../../src/ratelimit/algorithm.js';
import { fixedWindow, gcra, slidingWindow } from '../../../src/ratelimit/algorithms/index.js';
import { storeKey } from '../../../src/ratelimit/keys.js';
import { periodBounds } from '../../../src/ratelimit/quota/calendar.js';
import { quota } from '../../../src/ratelimit/quota/quota.js';
import { rateLimiter, type RateLimiter } from '../../../src/ratelimit/rate-limiter.js';
import { markerKey } from '../../../src/ratelimit/redis/marker.js';
import { redisStore } from '../../../src/ratelimit/redis/redis-store.js';
import type { LimiterDecision } from '../../../src/ratelimit/store.js';
import { between, seededRandom } from '../../unit/ratelimit/algorithms/support.js';
import { disconnectClient, startRedis, type RedisServer } from '../support/redis.js';
import { byStore, drive, percentile, type Sample } from './support.js';
import { fixedWindowCount, slidingWindowCounts } from './stored-values.js';

const root = path.resolve(import.meta.dirname, '../../..');
const WORKER = path.join(import.meta.dirname, 'load-worker.mjs');

/** The client options the README recommends. */
const recommended: RedisOptions = {
  enableOfflineQueue: false,
  autoResendUnfulfilledCommands: false,
  maxRetriesPerRequest: 1,
};

/** See the header: long enough that a stalled process still gets its answer from Redis. */
const TIMEOUT_MS = 5_000;

// ---------------------------------------------------------------------------------------------
// Shared helpers.

/** Rejects with `message` if `promise` has not settled within `ms`; the timer is always cleared. */
async function within<T>(promise: Promise<T>, ms: number, message: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(message)), ms);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** A server and an inspection client for one describe block, both gone after it. */
function redisFixture(): { server: () => RedisServer; client: () => Redis } {
  let server: RedisServer | undefined;
  let client: Redis | undefined;
  beforeAll(async () => {
    server = await startRedis();
    client = new Redis({ host: '127.0.0.1', port: server.port, ...recommended, lazyConnect: true });
    await client.connect();
  });
  afterAll(async () => {
    if (client) await disconnectClient(client);
    await server?.stop();
  });
  return { server: () => server!, client: () => client! };
}

/** The server clock in whole ms. */
async function serverNowMs(client: Redis): Promise<number> {
  const [sec, usec] = await client.time();
  return Number(sec) * 1000 + Math.floor(Number(usec) / 1000);
}

/**
 * The longest window length allowed (2^31 − 1 ms) or just below it, chosen so that the window
 * holding the server's time now does not end within 10 minutes: no count resets during a test.
 */
async function steadyWindowMs(client: Redis): Promise<number> {
  const t = await serverNowMs(client);
  for (let W = 2 ** 31 - 1; W > 2 ** 31 - 100; W--) if (W - (t % W) > 600_000) return W;
  throw new Error('no window length near 2^31 ms keeps its boundary 10 min away (cannot happen)');
}

/** The one key besides the limiters' that a store with the default prefix writes: its state marker. */
const MARKER = markerKey('bulwark:', 'marker');

/** Every key in the database (SCAN, bounded to 1,000 rounds). */
async function allKeys(client: Redis): Promise<string[]> {
  const keys: string[] = [];
  let cursor = '0';
  for (let round = 0; round < 1_000; round++) {
    const [next, batch] = await client.scan(cursor, 'COUNT', 1_000);
    keys.push(...batch);
    cursor = next;
    if (cursor === '0') return [...new Set(keys)]; // SCAN may return a key twice
  }
  throw new Error('SCAN did not finish within 1,000 rounds');
}

/** PTTL of each key, in one pipeline. */
async function pttls(client: Redis, keys: readonly string[]): Promise<number[]> {
  if (keys.length === 0) return [];
  const pipeline = client.pipeline();
  for (const key of keys) pipeline.pttl(key);
  const results = (await pipeline.exec()) ?? [];
  return results.map(([error, value]) => {
    if (error) throw error;
    return Number(value);
  });
}

/** Counts the messages published on the store-error channel while subscribed. */
function watchStoreErrors(): { count: () => number; stop: () => void } {
  let n = 0;
  const listener = (): void => {
    n++;
  };
  diagnosticsChannel.subscribe(channelNames.storeError, listener);
  return { count: () => n, stop: () => diagnosticsChannel.unsubscribe(channelNames.storeError, listener) };
}

// ---------------------------------------------------------------------------------------------
// Load processes (load-worker.mjs).

/** What one worker is asked to do (see load-worker.mjs). */
type AlgorithmSpec =
  | { kind: 'gcra'; options: { limit: number; periodMs: number; burst: number } }
  | { kind: 'sliding-window' | 'fixed-window'; options: { limit: number; windowMs: number } };
type Job =
  | { type: 'burst'; name: string; key: string; count: number; algorithm: AlgorithmSpec; timeoutMs: number }
  | { type: 'weighted'; name: string; key: string; limit: number; costs: number[]; concurrency: number; timeoutMs: number };

interface BurstResult {
  admitted: number;
  stores: Record<string, number>;
  elapsedMs: number;
  startedAt: number;
  endedAt: number;
}
interface WeightedResult {
  decisions: { cost: number; allowed: boolean; store: string; remaining: number; resetMs: number }[];
  elapsedMs: number;
}

interface Message {
  type: 'ready' | 'result' | 'error';
  result?: unknown;
  error?: string;
}

/** One forked worker: its messages in arrival order, and its stderr for error reports. */
class Worker {
  readonly child: ChildProcess;
  private readonly inbox: Message[] = [];
  private waiting: ((m: Message) => void) | undefined;
  stderr = '';
  readonly exited: Promise<void>;

  constructor(readonly index: number) {
    this.child = fork(WORKER, [], { execArgv: [], stdio: ['ignore', 'inherit', 'pipe', 'ipc'], cwd: root });
    this.child.stderr!.setEncoding('utf8').on('data', (chunk: string) => (this.stderr += chunk));
    this.child.on('message', (m: Message) => {
      if (this.waiting) {
        const deliver = this.waiting;
        this.waiting = undefined;
        deliver(m);
      } else this.inbox.push(m);
    });
    // Gone: exited, and the IPC channel closed (so every message it sent has been read).
    this.exited = Promise.all([
      new Promise<void>((resolve) => this.child.once('exit', () => resolve())),
      new Promise<void>((resolve) => this.child.once('disconnect', () => resolve())),
    ]).then(() => undefined);
    this.child.on('error', () => {}); // shows up as an exit without an answer
  }

  get running(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null;
  }

  /** The next message, which must be of `type`; rejects with the worker's stderr otherwise. */
  async next<T>(type: Message['type']): Promise<T> {
    const queued = this.inbox.shift();
    const m =
      queued ??
      (await Promise.race([
        new Promise<Message>((resolve) => (this.waiting = resolve)),
        this.exited.then((): Message => ({ type: 'error', error: `exited (${this.child.exitCode ?? this.child.signalCode})` })),
      ]));
    if (m.type !== type) throw new Error(`worker ${this.index}: expected "${type}", got ${m.type}: ${m.error ?? ''}\n${this.stderr}`);
    return m.result as T;
  }

  send(message: object): void {
    this.child.send(message);
  }
}

/**
 * Forks one worker per job, has each connect to the server on `port` and build its limiter,
 * then, once all are ready, tells them all to go at once and collects their results. Bounded:
 * 20 s to get ready, 30 s to answer, 10 s to exit; any worker still running afterwards is killed.
 */
async function runWorkers<R>(port: number, jobs: readonly Job[]): Promise<R[]> {
  if (!existsSync(path.join(root, 'dist', 'index.js')) || !existsSync(path.join(root, 'dist', 'redis.js'))) {
    throw new Error('dist/ is missing: run `npm run build` first (npm test does it).');
  }
  const workers = jobs.map((_, i) => new Worker(i));
  try {
    workers.forEach((w, i) => w.send({ type: 'config', port, job: jobs[i] }));
    await within(Promise.all(workers.map((w) => w.next('ready'))), 20_000, 'the load processes did not get ready within 20 s');
    // One start time for all (IPC delivery alone staggers them by the scheduler's whims).
    const at = Date.now() + 100;
    for (const w of workers) w.send({ type: 'go', at });
    const results = await within(
      Promise.all(workers.map((w) => w.next<R>('result'))),
      30_000,
      'the load processes did not answer within 30 s',
    );
    await within(Promise.all(workers.map((w) => w.exited)), 10_000, 'the load processes did not exit within 10 s');
    workers.forEach((w) => expect(w.child.exitCode, `worker ${w.index} exit code; stderr: ${w.stderr}`).toBe(0));
    return results;
  } finally {
    for (const w of workers) if (w.running) w.child.kill('SIGKILL');
    await within(Promise.all(workers.map((w) => w.exited)), 10_000, 'a killed load process did not exit within 10 s');
  }
}

// ---------------------------------------------------------------------------------------------

describe('L1: 4 processes × 500 concurrent decisions on one key', () => {
  const redis = redisFixture();
  const LIMIT = 100;
  const PROCESSES = 4;
  const PER_PROCESS = 500;

  const cases: [string, (windowMs: number) => AlgorithmSpec][] = [
    // One unit refills every 864 s: none during the test.
    ['gcra, burst 100 per day', () => ({ kind: 'gcra', options: { limit: LIMIT, periodMs: 86_400_000, burst: LIMIT } })],
    ['slidingWindow', (windowMs) => ({ kind: 'sliding-window', options: { limit: LIMIT, windowMs } })],
    ['fixedWindow', (windowMs) => ({ kind: 'fixed-window', options: { limit: LIMIT, windowMs } })],
  ];

  it.each(cases)('%s: exactly the limit is admitted in all, every decision by Redis', async (label, spec) => {
    const client = redis.client();
    await client.flushall();
    const algorithm = spec(await steadyWindowMs(client));
    const name = `l1-${algorithm.kind}`;
    const key = 'the-one-key';
    const jobs: Job[] = Array.from({ length: PROCESSES }, () => ({
      type: 'burst',
      name,
      key,
      count: PER_PROCESS,
      algorithm,
      timeoutMs: TIMEOUT_MS,
    }));

    const results = await runWorkers<BurstResult>(redis.server().port, jobs);

    const admitted = results.reduce((sum, r) => sum + r.admitted, 0);
    const stores: Record<string, number> = {};
    for (const r of results) for (const [s, n] of Object.entries(r.stores)) stores[s] = (stores[s] ?? 0) + n;
    // How long all four were deciding at the same time (negative: they did not overlap).
    const overlapMs = Math.min(...results.map((r) => r.endedAt)) - Math.max(...results.map((r) => r.startedAt));
    console.log(
      `L1 ${label}: admitted ${results.map((r) => r.admitted).join(' + ')} = ${admitted}; ` +
        `per-process wall time ${results.map((r) => `${r.elapsedMs.toFixed(0)} ms`).join(', ')}; all four overlapped ${overlapMs.toFixed(1)} ms`,
    );
    expect(stores).toEqual({ redis: PROCESSES * PER_PROCESS });
    expect(admitted).toBe(LIMIT);

    // What Redis holds agrees, and has a TTL.
    const redisKey = `bulwark:{${storeKey('test', name, key)}}`;
    const stored = await client.get(redisKey);
    expect(stored).not.toBeNull();
    if (algorithm.kind === 'fixed-window') expect(fixedWindowCount(stored)).toBe(LIMIT);
    if (algorithm.kind === 'sliding-window') expect(slidingWindowCounts(stored)).toEqual([LIMIT, 0]);
    expect(await client.pttl(redisKey)).toBeGreaterThan(0);
    expect((await allKeys(client)).sort()).toEqual([redisKey, MARKER].sort());
  });
});

describe('L8: 4 processes taking weighted units from one calendar quota', () => {
  const redis = redisFixture();
  const LIMIT = 5_000;
  const PROCESSES = 4;
  const PER_PROCESS = 100; // costs 1–50, about 2,550 units a process: twice the limit in all

  it('admits no more than the limit, and uses it up as far as the costs allow', async () => {
    const client = redis.client();
    // A month boundary (Berlin time) within the next 30 s would split the run over two periods:
    // wait it out (bounded; it happens for 30 s a month).
    await client.flushall();
    const now = await serverNowMs(client);
    const untilPeriodEnd = periodBounds('month', 'Europe/Berlin', now).end - now;
    if (untilPeriodEnd < 30_000) await sleep(untilPeriodEnd + 1_000);

    const name = 'l8-monthly';
    const key = 'tenant-42';
    const jobs: Job[] = Array.from({ length: PROCESSES }, (_, i) => {
      const random = seededRandom(0x5eed + i);
      return {
        type: 'weighted',
        name,
        key,
        limit: LIMIT,
        costs: Array.from({ length: PER_PROCESS }, () => between(random, 1, 50)),
        concurrency: 16,
        timeoutMs: TIMEOUT_MS,
      };
    });

    const results = await runWorkers<WeightedResult>(redis.server().port, jobs);

    const decisions = results.flatMap((r) => r.decisions);
    expect(decisions).toHaveLength(PROCESSES * PER_PROCESS);
    expect(byStore(decisions.map((d) => ({ at: 0, latencyMs: 0, allowed: d.allowed, store: d.store })))).toEqual({
      redis: decisions.length,
    });
    const used = decisions.filter((d) => d.allowed).reduce((sum, d) => sum + d.cost, 0);
    const denied = decisions.filter((d) => !d.allowed).map((d) => d.cost);
    const smallestDenied = Math.min(...denied);
    console.log(
      `L8: ${decisions.length} decisions asking ${decisions.reduce((s, d) => s + d.cost, 0)} units of ${LIMIT}: ` +
        `${used} admitted, ${denied.length} denied (smallest ${smallestDenied}), ${LIMIT - used} left; ` +
        `per-process wall time ${results.map((r) => `${r.elapsedMs.toFixed(0)} ms`).join(', ')}`,
    );
    expect(used).toBeLessThanOrEqual(LIMIT);
    expect(denied.length, 'the demand exceeded the limit').toBeGreaterThan(0);
    // Once a cost c was denied, used + c > limit held, and usage only grows: what is left at the
    // end is below every denied cost.
    expect(LIMIT - used).toBeLessThan(smallestDenied);
    // No admitted decision lost, none counted twice: Redis holds exactly the admitted units.
    const redisKey = `bulwark:{${storeKey('test', name, key)}}`;
    const stored = (await client.get(redisKey))?.split(' ') ?? [];
    expect(stored[1]).toBe(String(used));
    const ttl = await client.pttl(redisKey);
    expect(ttl).toBeGreaterThan(0);
    expect(ttl).toBeLessThanOrEqual(32 * 86_400_000);
    for (const d of decisions) expect(d.resetMs).toBeLessThanOrEqual(32 * 86_400_000);
  });
});

describe('L2: 10k keys under sustained concurrent load', () => {
  const redis = redisFixture();
  const KEYS = 10_000;
  const WORKERS = 256;
  const DURATION_MS = 3_000;
  let client: Redis | undefined; // the load's own client

  afterEach(async () => {
    if (client) await disconnectClient(client);
    client = undefined;
  });

  it('no errors, every decision by Redis, every key left with a TTL', async () => {
    const inspect = redis.client();
    client = new Redis({ host: '127.0.0.1', port: redis.server().port, ...recommended, lazyConnect: true });
    const clientErrors: Error[] = [];
    client.on('error', (error: Error) => clientErrors.push(error));
    await client.connect();
    const store = redisStore(client, { timeoutMs: TIMEOUT_MS });
    const W = await steadyWindowMs(inspect);
    // Far more room than any key gets (a few decisions each): nothing is denied, and every count
    // stays in its window. GCRA refills one unit per 86.4 s: its keys outlive the test too.
    const limiters: RateLimiter[] = [
      rateLimiter({ name: 'l2-gcra', algorithm: gcra({ limit: 1_000, periodMs: 86_400_000 }), store }),
      rateLimiter({ name: 'l2-sliding', algorithm: slidingWindow({ limit: 1_000, windowMs: W }), store }),
      rateLimiter({ name: 'l2-fixed', algorithm: fixedWindow({ limit: 1_000, windowMs: W }), store }),
    ];
    const keys = Array.from({ length: KEYS }, (_, i) => `client-${i}`);
    const asked = limiters.map(() => new Map<string, number>()); // per limiter: key → decisions
    let next = 0;
    const errors = watchStoreErrors();
    let samples: Sample[] = [];
    const started = performance.now();
    try {
      // Decision i goes to limiter i % 3 and key i % 10,000 (coprime: all 30,000 pairs in turn).
      samples = await drive(
        () => {
          const i = next++;
          const which = i % 3;
          const key = keys[i % KEYS]!;
          asked[which]!.set(key, (asked[which]!.get(key) ?? 0) + 1);
          return limiters[which]!.consume(key);
        },
        { workers: WORKERS, durationMs: DURATION_MS, maxDecisions: 600_000 },
      );
    } finally {
      errors.stop();
    }
    const elapsedS = (performance.now() - started) / 1000;
    const latencies = samples.map((s) => s.latencyMs);
    console.log(
      `L2: ${samples.length} decisions over ${KEYS} keys × 3 algorithms in ${elapsedS.toFixed(2)} s with ${WORKERS} workers: ` +
        `${Math.round(samples.length / elapsedS)} decisions/s; latency p50 ${percentile(latencies, 50).toFixed(2)} ms, ` +
        `p99 ${percentile(latencies, 99).toFixed(2)} ms, max ${percentile(latencies, 100).toFixed(2)} ms`,
    );

    expect(samples.length).toBeGreaterThan(WORKERS);
    expect(errors.count(), 'store errors published').toBe(0);
    expect(clientErrors).toEqual([]);
    expect(byStore(samples)).toEqual({ redis: samples.length });
    expect(samples.every((s) => s.allowed)).toBe(true);

    // Every key decided on is in Redis, nothing else is (but the store's marker), and every one has a TTL.
    const redisKeyOf = (limiter: RateLimiter, key: string): string => store.redisKey(storeKey('test', limiter.name, key));
    const expected = [...limiters.flatMap((l, i) => [...asked[i]!.keys()].map((k) => redisKeyOf(l, k))), MARKER];
    const found = await allKeys(inspect);
    expect(found.length).toBe(expected.length);
    expect(new Set(found)).toEqual(new Set(expected));
    const ttls = await pttls(inspect, found);
    const withoutTtl = found.filter((_, i) => ttls[i] === -1);
    expect(withoutTtl, 'keys without a TTL').toEqual([]);
    expect(ttls.every((t) => t > 0)).toBe(true);

    // The windowed counts hold exactly the decisions made: none lost, none counted twice.
    for (const which of [1, 2]) {
      const limiter = limiters[which]!;
      const pairs = [...asked[which]!];
      const values = await inspect.mget(pairs.map(([k]) => redisKeyOf(limiter, k)));
      const count = which === 1 ? (value: string | null | undefined) => slidingWindowCounts(value)[0] : fixedWindowCount;
      const mismatched = pairs.filter(([, n], i) => count(values[i]) !== n);
      expect(mismatched, `${limiter.name}: keys whose stored count differs from the decisions made`).toEqual([]);
    }
  });
});

describe('bad input and key isolation against Redis', () => {
  const redis = redisFixture();
  const LIMIT = 1_000;
  const long = 'λ'.repeat(10_240); // 10 kB of characters (20 kB of UTF-8): stored under its SHA-256
  const sha = createHash('sha256').update(long).digest('hex');

  /** Limiter names and keys; every pair must get its own counter. */
  const entries: [name: string, key: string][] = [
    ['a', 'plain'],
    ['a', 'ctl\u0000\u0001\u001f\u007f\r\n\t'],
    ['a', 'ctl\u0000'],
    ['a', 'ctl'],
    ['a', '{'],
    ['a', '}'],
    ['a', '{}'],
    ['a', '}{'],
    ['a', '{tag}'],
    ['a', 'x{y}'],
    ['a', 'x%7By%7D'],
    ['a', 'x%7by%7d'],
    ['a', '%'],
    ['a', '%25'],
    ['a', '%7B'],
    ['a', ':'],
    ['a', '::'],
    ['a', 'k:'],
    ['a', 'b:c'],
    ['a:b', 'c'],
    ['a:b:k', 'c'],
    ['1:a', 'k:c'],
    ['a', 'k:b:c'],
    ['a', ' '],
    ['a', ' padded '],
    ['a', 'héllo'],
    ['a', 'he\u0301llo'], // the same text as above in NFD: a different key
    ['a', '日本語のキー'],
    ['a', '🙂'],
    ['a', '\u200f\u202e'],
    ['a', 'x'.repeat(256)], // the longest key kept as it is
    ['a', 'x'.repeat(257)], // the shortest one hashed
    ['a', long],
    ['a', `${long}!`],
    ['a', `h:${sha}`], // a short key spelling the long key's hashed form
    ['a', sha],
    ['{a}', 'b'],
    ['a%', 'b'],
  ];

  const cases: [string, (W: number) => RateLimitAlgorithm | 'quota'][] = [
    ['fixedWindow', (W) => fixedWindow({ limit: LIMIT, windowMs: W })],
    ['slidingWindow', (W) => slidingWindow({ limit: LIMIT, windowMs: W })],
    ['gcra', () => gcra({ limit: LIMIT, periodMs: 86_400_000 })],
    ['quota (calendar month)', () => 'quota'],
  ];

  it.each(cases)('%s: every key gets its own counter, and every key written has a TTL', async (_label, make) => {
    const client = redis.client();
    await client.flushall();
    const store = redisStore(client, { timeoutMs: TIMEOUT_MS });
    const algorithm = make(await steadyWindowMs(client));
    const deciders = new Map<string, { consume(key: string): Promise<LimiterDecision>; peek(key: string): Promise<LimiterDecision> }>();
    for (const [name] of entries) {
      if (deciders.has(name)) continue;
      deciders.set(
        name,
        algorithm === 'quota'
          ? quota({ name, limit: LIMIT, period: 'month', timeZone: 'Europe/Berlin', store })
          : rateLimiter({ name, algorithm, store }),
      );
    }
    // Entry i takes i + 1 units, all entries at once (so they share script calls): a collision
    // would show as a count that is the sum of two entries'. A peek of 1 unit then reports what
    // would be left after taking it: LIMIT − (i + 1) − 1.
    const decisions = await Promise.all(
      entries.flatMap(([name, key], i) => Array.from({ length: i + 1 }, () => deciders.get(name)!.consume(key))),
    );
    expect(byStore(decisions.map((d) => ({ at: 0, latencyMs: 0, allowed: d.allowed, store: d.store })))).toEqual({
      redis: decisions.length,
    });
    expect(decisions.every((d) => d.allowed)).toBe(true);
    const peeks = await Promise.all(entries.map(([name, key]) => deciders.get(name)!.peek(key)));
    const wrong = entries
      .map(([name, key], i) => ({ name, key: key.length > 40 ? `${key.slice(0, 20)}…(${key.length})` : key, remaining: peeks[i]!.remaining, expected: LIMIT - (i + 2) }))
      .filter((e) => e.remaining !== e.expected);
    expect(wrong, 'keys whose counter was changed by another key').toEqual([]);

    // One Redis key per entry (and the store's marker), none of them long, each with a TTL.
    const found = await allKeys(client);
    expect(found.length).toBe(entries.length + 1);
    expect(new Set(found)).toEqual(new Set([...entries.map(([name, key]) => store.redisKey(storeKey('test', name, key))), MARKER]));
    for (const key of found) expect(Buffer.byteLength(key), 'a stored key is short (long keys are hashed)').toBeLessThan(300);
    const ttls = await pttls(client, found);
    expect(found.filter((_, i) => !(ttls[i]! > 0)), 'keys without a TTL').toEqual([]);
  });

  it('non-string and empty keys, and bad costs, are refused before any Redis call', async () => {
    const client = redis.client();
    await client.flushall();
    const store = redisStore(client, { timeoutMs: TIMEOUT_MS });
    const limiter = rateLimiter({ name: 'bad', algorithm: fixedWindow({ limit: 10, windowMs: 60_000 }), store });
    const monthly = quota({ name: 'bad-quota', limit: 10, period: 'month', store });
    // Define the scripts' commands first (the store does it on its first decision for an algorithm).
    expect((await limiter.consume('warm-up')).store).toBe('redis');
    expect((await monthly.consume('warm-up')).store).toBe('redis');
    await client.flushall();
    const sent = vi.spyOn(client, 'sendCommand');
    try {
      const notStrings: unknown[] = [undefined, null, 0, 42, NaN, true, {}, [], ['k'], Symbol('k'), 10n, () => 'k', new String('k')];
      for (const key of notStrings) {
        await expect(limiter.consume(key as string), String(typeof key)).rejects.toThrow(TypeError);
        await expect(limiter.peek(key as string)).rejects.toThrow(TypeError);
        await expect(limiter.refund(key as string)).rejects.toThrow(TypeError);
        await expect(limiter.reset(key as string)).rejects.toThrow(TypeError);
        await expect(monthly.consume(key as string)).rejects.toThrow(TypeError);
      }
      await expect(limiter.consume('')).rejects.toThrow(RangeError);
      await expect(limiter.peek('')).rejects.toThrow(RangeError);
      await expect(limiter.refund('')).rejects.toThrow(RangeError);
      await expect(limiter.reset('')).rejects.toThrow(RangeError);
      await expect(monthly.consume('')).rejects.toThrow(RangeError);
      for (const cost of [0, -1, 1.5, NaN, Infinity, 11, 2 ** 53]) {
        await expect(limiter.consume('k', { cost }), `cost ${cost}`).rejects.toThrow(RangeError);
        await expect(monthly.consume('k', { cost }), `quota cost ${cost}`).rejects.toThrow(RangeError);
      }
      await expect(limiter.consume('k', { cost: '1' as unknown as number })).rejects.toThrow(TypeError);
      expect(sent).not.toHaveBeenCalled();
      expect(await client.dbsize()).toBe(0);
      // The spy does see the store's calls: a good key goes through it.
      expect((await limiter.consume('good')).store).toBe('redis');
      expect(sent).toHaveBeenCalled();
    } finally {
      sent.mockRestore();
    }
  });

  // UTF-8 (what Redis stores, what SHA-256 hashes) turns every lone UTF-16 surrogate into U+FFFD,
  // so '\uD800', '\uDC00' and '\uFFFD' would share one counter: keys must be well-formed.
  it('keys holding a lone surrogate are refused before any call; U+FFFD itself is a key like any other', async () => {
    const client = redis.client();
    await client.flushall();
    const limiter = rateLimiter({
      name: 'surrogates',
      algorithm: fixedWindow({ limit: 10, windowMs: 60_000 }),
      store: redisStore(client, { timeoutMs: TIMEOUT_MS }),
    });
    for (const key of ['\uD800', '\uDC00', `a\uD800b`, `${'x'.repeat(300)}\uD800`, `${'x'.repeat(300)}\uDC00`]) {
      await expect(limiter.consume(key)).rejects.toThrow(RangeError);
      await expect(limiter.consume(key)).rejects.toThrow(/well-formed/);
    }
    expect(await client.dbsize()).toBe(0);
    expect((await limiter.consume('\uFFFD')).remaining).toBe(9);
    expect((await limiter.consume('\uD83D\uDE00')).remaining).toBe(9); // a proper surrogate pair
  });
});
