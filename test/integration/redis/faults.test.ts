// RELIABILITY.md rows F1–F4: Redis down at start, killed and restarted under load, frozen with
// SIGSTOP or blackholed through a TCP proxy, and slow around the store's timeout. Every test
// starts its own redis-server on a random loopback port and kills it by pid.
import { Redis, type RedisOptions } from 'ioredis';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, afterEach, beforeEach, describe, expect, it } from 'vitest';
import { fixedWindow, gcra } from '../../../src/ratelimit/algorithms/index.js';
import { storeKey } from '../../../src/ratelimit/keys.js';
import { quota } from '../../../src/ratelimit/quota/quota.js';
import { rateLimiter } from '../../../src/ratelimit/rate-limiter.js';
import { redisStore, type RedisStoreOptions } from '../../../src/ratelimit/redis/redis-store.js';
import { watchLoopStalls } from '../support/loop-stall.js';
import { startProxy, type FaultProxy } from '../support/proxy.js';
import { disconnectClient, startRedis, type RedisServer } from '../support/redis.js';
import { byStore, clearOfWindowEdge, drive, eventually, percentile, type Sample } from './support.js';
import { fixedWindowCount } from './stored-values.js';

/** The client options the README recommends. */
const recommended: RedisOptions = {
  enableOfflineQueue: false,
  autoResendUnfulfilledCommands: false,
  maxRetriesPerRequest: 1,
  retryStrategy: (times) => Math.min(times * 50, 500),
};
/** ioredis's defaults (offline queue on, unfulfilled commands resent), only a faster reconnect. */
const defaults: RedisOptions = { retryStrategy: (times) => Math.min(times * 50, 500) };

const cleanup: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const step of cleanup.splice(0).reverse()) await step();
});

async function server(): Promise<RedisServer> {
  const s = await startRedis();
  cleanup.push(() => s.stop());
  return s;
}

function connect(port: number, options: RedisOptions): Redis {
  const client = new Redis({ host: '127.0.0.1', port, ...options });
  client.on('error', () => {}); // connection errors are expected here; ioredis logs them otherwise
  cleanup.push(() => disconnectClient(client));
  return client;
}

async function proxyTo(s: RedisServer): Promise<FaultProxy> {
  const proxy = await startProxy({ host: '127.0.0.1', port: s.port });
  cleanup.push(() => proxy.close());
  return proxy;
}

/** The count a fixed-window limiter holds in Redis for `key` (0 when the key is absent). */
async function storedCount(client: Redis, store: ReturnType<typeof redisStore>, limiterName: string, key: string): Promise<number> {
  const value = await client.get(store.redisKey(storeKey('test', limiterName, key)));
  return fixedWindowCount(value);
}

function storeOf(client: Redis, options?: RedisStoreOptions) {
  return redisStore(client, { timeoutMs: 100, ...options });
}

function during(samples: readonly Sample[], from: number, to: number): Sample[] {
  return samples.filter((s) => s.at >= from && s.at < to);
}

/** The test's own event-loop stalls, counted from each test's start. */
const loop = watchLoopStalls();
beforeEach(() => loop.reset());
afterAll(() => loop.stop());

/**
 * Every decision resolves by the store timeout: p99 within 30 ms of it, and the slowest within
 * 250 ms, plus the longest stall of this process's event loop during the test (a timer cannot
 * fire while this shared, loaded machine keeps the loop busy).
 */
function expectBoundedLatency(samples: readonly Sample[], timeoutMs: number): void {
  const latencies = samples.map((x) => x.latencyMs);
  const stall = loop.maxMs();
  const seen = `the test's event loop stalled up to ${stall.toFixed(0)} ms`;
  expect(percentile(latencies, 99), `p99 decision latency (${seen})`).toBeLessThanOrEqual(timeoutMs + 30 + stall);
  expect(latencies.reduce((a, b) => (a > b ? a : b), 0), `slowest decision (${seen})`).toBeLessThanOrEqual(timeoutMs + 250 + stall);
}

const queued = (client: Redis): number =>
  (client as unknown as { offlineQueue: { length: number } }).offlineQueue.length +
  (client as unknown as { commandQueue: { length: number } }).commandQueue.length;

describe('F1: Redis down at start', () => {
  it.each([
    ['the recommended client options', recommended],
    ["ioredis's defaults", defaults],
  ])('with %s, decisions follow onStoreError at once, nothing is queued, and Redis is used once it comes up', async (_label, options) => {
    const s = await server();
    s.kill('SIGKILL');
    await s.exited();
    const client = connect(s.port, options);
    const store = storeOf(client);
    const failOpen = storeOf(client, { onStoreError: 'fail-open' });
    expect(store.status).toBe('degraded');

    const limiter = rateLimiter({ name: 'f1', algorithm: fixedWindow({ limit: 5, windowMs: 60_000 }), store });
    const open = rateLimiter({ name: 'f1-open', algorithm: fixedWindow({ limit: 5, windowMs: 60_000 }), store: failOpen });
    const monthly = quota({ name: 'f1-quota', limit: 5, period: 'month', store });

    const samples = await drive(() => limiter.consume('k'), { workers: 20, durationMs: 400, maxDecisions: 2_000 });
    expect(byStore(samples)).toEqual({ local: samples.length });
    // The in-memory fallback still applies the limit.
    expect(samples.filter((x) => x.allowed)).toHaveLength(5);
    expect(percentile(samples.map((x) => x.latencyMs), 99)).toBeLessThanOrEqual(100 + 10);

    const quotaDecision = await monthly.consume('tenant');
    expect(quotaDecision).toMatchObject({ allowed: false, store: 'fail-closed', remaining: 0 });
    expect(quotaDecision.retryAfterMs).toBeGreaterThan(0);
    expect(await open.consume('k')).toMatchObject({ allowed: true, store: 'fail-open' });
    expect(queued(client)).toBe(0);

    await s.restart();
    await eventually('the client to reconnect', () => client.status === 'ready');
    expect(store.status).toBe('ready');
    const after = await limiter.consume('k');
    expect(after).toMatchObject({ store: 'redis', allowed: true, remaining: 4 });
    expect((await monthly.consume('tenant')).store).toBe('redis');
  });
});

describe('F2: Redis killed under load and back after 5 s', () => {
  it.each([
    ['the recommended client options', recommended],
    ["ioredis's defaults", defaults],
  ])('with %s: bounded latency, the local fallback during the outage, recovery by itself, no stale replay', async (_label, options) => {
    const s = await server();
    const client = connect(s.port, options);
    await eventually('the client to connect', () => client.status === 'ready');
    const store = storeOf(client);
    const name = 'f2';
    const limiter = rateLimiter({ name, algorithm: fixedWindow({ limit: 1_000_000_000, windowMs: 3_600_000 }), store });
    await clearOfWindowEdge(3_600_000, 20_000);

    let killedAt = 0;
    let restartingAt = 0;
    let restartedAt = 0;
    const started = performance.now();
    const chaos = (async () => {
      await sleep(800);
      killedAt = performance.now() - started;
      s.kill('SIGKILL');
      await s.exited();
      await sleep(5_000);
      // The server takes connections before restart() has seen it answer, and the client may
      // reconnect in between: the outage ends when the restart begins.
      restartingAt = performance.now() - started;
      await s.restart();
      restartedAt = performance.now() - started;
    })();
    const samples = await drive(() => limiter.consume('hot'), { workers: 40, durationMs: 9_000, pauseMs: 2, maxDecisions: 400_000 });
    await chaos;

    expectBoundedLatency(samples, 100);
    expect(samples.every((x) => x.allowed)).toBe(true);
    const outage = during(samples, killedAt + 150, restartingAt);
    expect(outage.length).toBeGreaterThan(100);
    expect(byStore(outage)).toEqual({ local: outage.length });
    const firstBack = samples.find((x) => x.at > restartedAt && x.store === 'redis');
    expect(firstBack, 'decisions return to Redis by themselves').toBeDefined();
    expect(firstBack!.at - restartedAt).toBeLessThan(2_000);
    const tail = during(samples, firstBack!.at + 300, Infinity);
    expect(byStore(tail)).toEqual({ redis: tail.length });

    // The restarted server started empty: it must hold exactly the decisions it answered, and
    // nothing replayed from before the crash.
    await sleep(50);
    const answeredAfterCrash = samples.filter((x) => x.at > killedAt && x.store === 'redis').length;
    expect(await storedCount(client, store, name, 'hot')).toBe(answeredAfterCrash);
  });
});

describe('F3: Redis frozen or blackholed', () => {
  /** Drives load for 4 s with the fault from 0.5 s to 2.5 s; returns the samples and the most commands ever pending. */
  async function underFault(client: Redis, fault: () => void, heal: () => Promise<void> | void) {
    const store = storeOf(client, { openAfterFailures: 3, openMs: 400 });
    const limiter = rateLimiter({ name: 'f3', algorithm: gcra({ limit: 1_000_000, periodMs: 1_000 }), store });
    let maxPending = 0;
    let faultAt = 0;
    let healedAt = 0;
    const started = performance.now();
    const watch = setInterval(() => (maxPending = Math.max(maxPending, queued(client))), 20);
    cleanup.push(async () => clearInterval(watch));
    const chaos = (async () => {
      await sleep(500);
      faultAt = performance.now() - started;
      fault();
      await sleep(2_000);
      await heal();
      healedAt = performance.now() - started;
    })();
    const samples = await drive((w) => limiter.consume(`client-${w}`), { workers: 30, durationMs: 4_500, pauseMs: 3, maxDecisions: 300_000 });
    await chaos;
    clearInterval(watch);
    return { samples, maxPending, faultAt, healedAt, store };
  }

  function expectContained({ samples, maxPending, faultAt, healedAt }: Awaited<ReturnType<typeof underFault>>): void {
    expectBoundedLatency(samples, 100);
    // The window ends one timeout (100 ms, plus a margin) before the heal: a decision that began
    // just before it, such as the breaker's half-open probe, is still waiting on the frozen server
    // when SIGCONT arrives, and Redis then rightly answers it (CI saw this once, on 2026-11-30).
    const frozen = during(samples, faultAt + 400, healedAt - 100 - 20);
    expect(frozen.length).toBeGreaterThan(100);
    expect(byStore(frozen)).toEqual({ local: frozen.length });
    // The breaker around Redis opened: most decisions during the fault did not wait at all.
    const waited = frozen.filter((x) => x.latencyMs >= 50).length;
    expect(waited / frozen.length).toBeLessThan(0.2);
    // Commands sent into the void stay few and stop growing: the batches in flight when the
    // fault began (at most one per worker), then one probe per openMs (400) — not one per decision.
    expect(maxPending).toBeLessThanOrEqual(30 + Math.ceil((healedAt - faultAt) / 400) + 5);
    expect(frozen.length).toBeGreaterThan(10 * maxPending);
    const back = samples.find((x) => x.at > healedAt && x.store === 'redis');
    expect(back, 'decisions return to Redis').toBeDefined();
    expect(back!.at - healedAt).toBeLessThan(2_000);
  }

  it('SIGSTOP: every decision resolves by the timeout, the breaker opens, commands do not pile up, SIGCONT recovers', async () => {
    const s = await server();
    const client = connect(s.port, recommended);
    await eventually('the client to connect', () => client.status === 'ready');
    const result = await underFault(
      client,
      () => s.kill('SIGSTOP'),
      () => s.kill('SIGCONT'),
    );
    expectContained(result);
  });

  it('blackholed through a TCP proxy, then reset and passing again: the same', async () => {
    const s = await server();
    const proxy = await proxyTo(s);
    // The store's forced reconnect ends a blackholed socket: ioredis then destroys it after
    // `disconnectTimeout` (2 s by default), a timer a loaded CI run twice saw outlive the test.
    // 200 ms lets it fire within the test.
    const client = connect(proxy.port, { ...recommended, disconnectTimeout: 200 });
    await eventually('the client to connect', () => client.status === 'ready');
    const result = await underFault(
      client,
      () => proxy.mode('blackhole'),
      async () => {
        proxy.mode('reset');
        await sleep(50);
        proxy.mode('pass');
      },
    );
    expectContained(result);
  });
});

describe('F4: Redis latency around the timeout', () => {
  // One retry: on 2026-11-29 this failed once in about 20 runs (the full suite, once; never in
  // isolation), waiting for the late admissions' refunds. One possible cause is removed (a run that
  // straddled an hour, so the count was split between two windows), but none is confirmed: the
  // failure message says which way the count is off. Two failures in a row still fail the suite.
  it('decisions that timed out are accounted for: Redis ends holding exactly what it admitted and answered', { retry: 1 }, async () => {
    const s = await server();
    const proxy = await proxyTo(s);
    const client = connect(proxy.port, recommended);
    await eventually('the client to connect', () => client.status === 'ready');
    // Never open the breaker here: every decision goes to Redis and races the timeout.
    const store = redisStore(client, { timeoutMs: 40, onStoreError: 'fail-closed', openAfterFailures: 1_000_000 });
    const name = 'f4';
    const limiter = rateLimiter({ name, algorithm: fixedWindow({ limit: 1_000_000_000, windowMs: 3_600_000 }), store });
    await clearOfWindowEdge(3_600_000, 15_000);

    const started = performance.now();
    const jitter = (async () => {
      // Round trips of 24–56 ms (the delay applies each way) against a 40 ms timeout.
      for (let i = 0; performance.now() - started < 2_500; i++) {
        proxy.mode({ delayMs: 12 + ((i * 7) % 17) });
        await sleep(37);
      }
      proxy.mode('pass');
    })();
    const samples = await drive(() => limiter.consume('k'), { workers: 20, durationMs: 2_500, pauseMs: 1, maxDecisions: 100_000 });
    await jitter;
    const stores = byStore(samples);
    expect(stores.redis, 'some decisions came back in time').toBeGreaterThan(50);
    expect(stores['fail-closed'], 'some timed out').toBeGreaterThan(50);
    // Late answers were admissions the callers never got: the store gives them back.
    const admitted = samples.filter((x) => x.store === 'redis' && x.allowed).length;
    try {
      await eventually('the late admissions to be refunded', async () => (await storedCount(client, store, name, 'k')) === admitted, 5_000);
    } catch (error) {
      // Say which way it is off: more stored than admitted is a refund that never landed; less,
      // a refund of something a caller was told it got.
      const stored = await storedCount(client, store, name, 'k');
      throw new Error(`${String(error)}: Redis holds ${stored}, callers were admitted ${admitted} (${JSON.stringify(stores)})`);
    }
    await sleep(300);
    expect(await storedCount(client, store, name, 'k')).toBe(admitted);
  });
});
