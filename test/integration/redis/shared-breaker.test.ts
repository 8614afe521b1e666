// Issue 16 §4 on a single Redis node: a circuit breaker shared by the fleet through
// redisBreakerStore. Every test starts its own redis-server on a random port and kills it by pid.
// The child-process test imports the BUILT package (run `npm run build` first).
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { BrokenCircuitError, circuitBreaker, consecutive, countWindow, timeWindow } from '../../../src/index.js';
import { redisBreakerStore, type RedisBreakerStore, type RedisBreakerStoreOptions } from '../../../src/ratelimit/redis/breaker-store.js';
import { startRedis, type RedisServer } from '../support/redis.js';
import { exactProbeWindows, expectExactWindows, failTimes, runWorkers } from './shared-breaker-support.js';
import { connectReady, eventually } from './support.js';


// One server for the file (each test uses its own breaker names); the tests that freeze it thaw it.
let redis: RedisServer;
beforeAll(async () => {
  redis = await startRedis();
});
afterAll(() => redis.stop());

const cleanup: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  while (cleanup.length > 0) await cleanup.pop()!();
});

const server = async (): Promise<RedisServer> => redis;

/** A store on its own client (one "instance"), closed after the test. */
async function instance(port: number, options?: RedisBreakerStoreOptions): Promise<{ client: Redis; store: RedisBreakerStore }> {
  const client = await connectReady(port, cleanup as (() => Promise<void>)[]);
  const store = redisBreakerStore(client, { maxStalenessMs: 200, ...options });
  cleanup.push(() => store.close());
  return { client, store };
}

describe('redisBreakerStore on one node', () => {
  it('opens every instance within maxStalenessMs once the fleet has seen `threshold` failures in all', async () => {
    const s = await server();
    const stores = await Promise.all([1, 2, 3].map(() => instance(s.port)));
    const breakers = stores.map(({ store }) => circuitBreaker({ name: 'dep', breaker: consecutive(6), store, halfOpenAfterMs: 5_000 }));
    await sleep(100); // every breaker has read the fleet's state once
    // Two failures on each instance: none opens on its own (threshold 6), the fleet does.
    for (const b of breakers) await failTimes(b, 2);
    expect(breakers.map((b) => b.state)).toEqual(['closed', 'closed', 'closed']);
    const t0 = performance.now();
    await eventually('every breaker open', () => breakers.every((b) => b.state === 'open'), 2_000);
    expect(performance.now() - t0).toBeLessThanOrEqual(200 + 60);
    await expect(breakers[0]!.execute(() => 'x')).rejects.toBeInstanceOf(BrokenCircuitError);
  });

  it('sums count-window and time-window outcomes fleet-wide', async () => {
    const s = await server();
    for (const strategy of [countWindow({ size: 20, minimumCalls: 10 }), timeWindow({ windowMs: 10_000, minimumCalls: 10 })]) {
      const a = await instance(s.port);
      const b = await instance(s.port);
      const name = `dep-${strategy.kind}`;
      const ba = circuitBreaker({ name, breaker: strategy, store: a.store });
      const bb = circuitBreaker({ name, breaker: strategy, store: b.store });
      await sleep(100);
      for (let i = 0; i < 3; i++) await ba.execute(() => 'ok');
      await failTimes(ba, 3); // 3 of 6: 50 %, below minimumCalls on its own
      await failTimes(bb, 4); // fleet: 7 of 10 failed
      await eventually(`${strategy.kind}: both open`, () => ba.state === 'open' && bb.state === 'open', 2_000);
    }
  });

  it('runs exactly halfOpenMaxCalls probes fleet-wide per half-open window, across breakers in one process', async () => {
    const s = await server();
    const stores = await Promise.all([1, 2, 3].map(() => instance(s.port)));
    const breakers = stores.flatMap(({ store }) =>
      [1, 2].map(() => circuitBreaker({ name: 'probed', breaker: consecutive(1), store, halfOpenAfterMs: 500, halfOpenMaxCalls: 3 })),
    );
    await sleep(100);
    await failTimes(breakers[0]!, 1);
    await exactProbeWindows(breakers, 5, 3);
  });

  it('runs exactly halfOpenMaxCalls probes per window across 4 processes (the dependency stays dead)', async () => {
    const s = await server();
    const { store } = await instance(s.port);
    const opener = circuitBreaker({ name: 'fleet', breaker: consecutive(1), store, halfOpenAfterMs: 200, halfOpenMaxCalls: 2 });
    await sleep(100);
    await failTimes(opener, 1);
    const results = await runWorkers(4, cleanup, {
      port: s.port,
      name: 'fleet',
      maxStalenessMs: 200,
      threshold: 1,
      halfOpenAfterMs: 200,
      halfOpenMaxCalls: 2,
      rate: 100,
      durationMs: 3_000,
      callMs: 40,
      deadAt: 0,
      waitOpen: true,
    });
    expectExactWindows(results, 2, 6);
  });

  it('Redis frozen (SIGSTOP): a half-open call waits at most timeoutMs + 10 ms, then probes locally; closed calls never wait', async () => {
    const s = await server();
    const { store } = await instance(s.port, { timeoutMs: 50, maxStalenessMs: 2_000 });
    const breaker = circuitBreaker({ name: 'frozen', breaker: consecutive(2), store, halfOpenAfterMs: 200 });
    await sleep(100);
    await failTimes(breaker, 2);
    await eventually('half-open', () => breaker.state === 'half-open', 2_000);
    s.kill('SIGSTOP');
    cleanup.push(() => s.kill('SIGCONT'));
    const t0 = performance.now();
    await expect(breaker.execute(() => 'probe')).resolves.toBe('probe');
    expect(performance.now() - t0).toBeLessThanOrEqual(50 + 10);
    expect(breaker.state).toBe('closed');
    // Closed: calls never touch Redis, so none waits and none fails because of it.
    const latencies: number[] = [];
    for (let i = 0; i < 200; i++) {
      const t = performance.now();
      await breaker.execute(() => 'ok');
      latencies.push(performance.now() - t);
    }
    expect(Math.max(...latencies)).toBeLessThan(10);
    // Once the fleet's view is stale, the local strategy opens the breaker on its own.
    await sleep(2_100);
    await failTimes(breaker, 2);
    expect(breaker.state).toBe('open');
    s.kill('SIGCONT');
  });

  it('Redis down at start: breakers decide alone and no call fails because of Redis', async () => {
    const s = await server();
    const { store } = await instance(s.port, { timeoutMs: 50 });
    s.kill('SIGSTOP');
    cleanup.push(() => s.kill('SIGCONT'));
    const breaker = circuitBreaker({ name: 'alone', breaker: consecutive(3), store });
    for (let i = 0; i < 50; i++) await expect(breaker.execute(() => i)).resolves.toBe(i);
    await failTimes(breaker, 3);
    expect(breaker.state).toBe('open');
    expect(store.status).toBe('ready'); // the client has not noticed; the staleness bound did
    s.kill('SIGCONT');
  });

  it('a process that dies holding a probe slot does not hold the window: the fleet re-opens after probeTimeoutMs', async () => {
    const s = await server();
    const [a, b] = await Promise.all([instance(s.port), instance(s.port)]);
    const options = { name: 'orphan', breaker: consecutive(1), halfOpenAfterMs: 200, probeTimeoutMs: 300 };
    const dying = circuitBreaker({ ...options, store: a.store });
    const survivor = circuitBreaker({ ...options, store: b.store });
    await sleep(100);
    await failTimes(survivor, 1);
    await eventually('both half-open', () => dying.state === 'half-open' && survivor.state === 'half-open', 2_000);
    let release!: () => void;
    const held = dying.execute(() => new Promise<string>((resolve) => (release = () => resolve('late'))));
    await sleep(50); // its claim is answered: the only slot is taken
    a.store.close(); // the process "dies": nothing it does reaches Redis any more
    await expect(survivor.execute(() => 'no slot')).rejects.toBeInstanceOf(BrokenCircuitError);
    // The script gives the orphaned probe up after probeTimeoutMs and opens the fleet again.
    await eventually('the survivor sees the re-open', () => survivor.state === 'open', 2_000);
    await eventually('a new half-open window', () => survivor.state === 'half-open', 2_000);
    await expect(survivor.execute(() => 'probe')).resolves.toBe('probe');
    expect(survivor.state).toBe('closed');
    release();
    await held;
  });

  it('quorum: one failing instance does not open the fleet; two do', async () => {
    const s = await server();
    const stores = await Promise.all([1, 2, 3].map(() => instance(s.port, { quorum: 2 })));
    const breakers = stores.map(({ store }) => circuitBreaker({ name: 'q', breaker: consecutive(3), store }));
    await sleep(100);
    await failTimes(breakers[0]!, 5);
    await sleep(300);
    expect(breakers.map((b) => b.state)).toEqual(['closed', 'closed', 'closed']);
    await failTimes(breakers[1]!, 3);
    await eventually('all open', () => breakers.every((b) => b.state === 'open'), 2_000);
  });
});
