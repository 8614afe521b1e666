// Reserve-then-settle on a real Redis (issue 16 §3): the same books as the memory store, leases
// that end by the server's clock (also when the process holding them is killed), and settles
// batched like decisions. The killed-holder test forks fixtures/reserve-holder.mjs, which imports
// the BUILT package: run `npm run build` first when running this file alone.
import { spawn } from 'node:child_process';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RateLimitAlgorithm } from '../../../src/ratelimit/algorithm.js';
import { fixedWindow, gcra, slidingWindow } from '../../../src/ratelimit/algorithms/index.js';
import { quota } from '../../../src/ratelimit/quota/quota.js';
import { rateLimiter } from '../../../src/ratelimit/rate-limiter.js';
import { StoreUnavailableError } from '../../../src/core/errors.js';
import { redisStore } from '../../../src/ratelimit/redis/redis-store.js';
import type { LimiterDecision } from '../../../src/ratelimit/store.js';
import { storeKey } from '../../../src/ratelimit/keys.js';
import { type RedisServer, startRedis } from '../support/redis.js';
import gcraLua from '../../../src/ratelimit/redis/lua/gcra.lua';
import { clearOfWindowEdge, connectReady, eventually } from './support.js';

const HOLDER = path.join(import.meta.dirname, 'fixtures', 'reserve-holder.mjs');
const cleanup: (() => Promise<void>)[] = [];
let server: RedisServer;
let client: Redis;
let n = 0;

beforeAll(async () => {
  server = await startRedis();
  cleanup.push(() => server.stop());
  client = await connectReady(server.port, cleanup);
});
afterAll(async () => {
  for (const step of cleanup.splice(0).reverse()) await step();
});

/** Units `key` has left: a peek's `remaining` counts the unit it asks about as taken. */
async function left(limiter: { peek(key: string): Promise<LimiterDecision> }, key: string): Promise<number> {
  const d = await limiter.peek(key);
  return d.allowed ? d.remaining + 1 : d.remaining;
}

function limiterOf(algorithm: RateLimitAlgorithm) {
  return rateLimiter({ name: `r${++n}`, algorithm, store: redisStore(client, { timeoutMs: 1_000 }) });
}

// Windows of an hour and a slow GCRA: nothing refills or rolls over while a test runs.
const algorithms: [string, () => RateLimitAlgorithm][] = [
  ['gcra', () => gcra({ limit: 100, periodMs: 3_600_000 })],
  ['fixedWindow', () => fixedWindow({ limit: 100, windowMs: 3_600_000 })],
  ['slidingWindow', () => slidingWindow({ limit: 100, windowMs: 3_600_000 })],
];

describe.each(algorithms)('reserve and settle on Redis, %s', (_name, make) => {
  it('holds the estimate, keeps the actual cost, charges an excess past the limit, cancels', async () => {
    await clearOfWindowEdge(3_600_000, 10_000);
    const limiter = limiterOf(make());
    const r = await limiter.reserve('t', { cost: 40 });
    expect(r.decision).toMatchObject({ allowed: true, store: 'redis', remaining: 60 });
    expect(await left(limiter, 't')).toBe(60);
    await expect(r.settle(15)).resolves.toBe('settled');
    expect(await left(limiter, 't')).toBe(85);
    await expect(r.settle(40)).resolves.toBe('settled'); // idempotent: the first settle counts
    expect(await left(limiter, 't')).toBe(85);

    const c = await limiter.reserve('t', 50);
    await expect(c.cancel()).resolves.toBe('cancelled');
    expect(await left(limiter, 't')).toBe(85);

    const over = await limiter.reserve('t', 80);
    await over.settle(110); // 30 over the estimate, 25 past the limit: owed
    expect(await limiter.peek('t')).toMatchObject({ allowed: false, remaining: 0 });
    expect((await limiter.reserve('t', 1)).allowed).toBe(false);
  });

  it('gives an unsettled lease back after leaseMs by the server clock, and a late settle charges in full', async () => {
    await clearOfWindowEdge(3_600_000, 10_000);
    const limiter = limiterOf(make());
    const lost = await limiter.reserve('t', { cost: 70, leaseMs: 300 });
    expect(lost.allowed).toBe(true);
    expect((await limiter.reserve('t', 40)).allowed).toBe(false); // 30 left
    await sleep(400);
    // The next reserve on the key sweeps the ended lease first: 100 left again, 40 taken.
    const next = await limiter.reserve('t', 40);
    expect(next.decision).toMatchObject({ allowed: true, remaining: 60 });
    await expect(lost.settle(20)).resolves.toBe('expired');
    expect(lost.status).toBe('expired');
    expect(await left(limiter, 't')).toBe(40);
  });
});

describe('reserve on Redis: quotas and batching', () => {
  it('reserves and settles against a quota period', async () => {
    const monthly = quota({ name: `q${++n}`, limit: 1_000, period: 'month', store: redisStore(client, { timeoutMs: 1_000 }) });
    const r = await monthly.reserve('tenant', { cost: 400 });
    expect(r.decision).toMatchObject({ allowed: true, store: 'redis', remaining: 600 });
    await r.settle(120);
    expect(await left(monthly, 'tenant')).toBe(880);
    const s = await monthly.reserve('tenant', 800);
    expect(s.allowed).toBe(true);
    await s.settle(900);
    expect(await monthly.peek('tenant')).toMatchObject({ allowed: false, remaining: 0 });
  });

  it('sends the settles of one tick in one script call, as consume does', async () => {
    const limiter = rateLimiter({
      name: `b${++n}`,
      algorithm: gcra({ limit: 100_000, periodMs: 3_600_000 }),
      store: redisStore(client, { timeoutMs: 1_000 }),
    });
    const reservations = await Promise.all(Array.from({ length: 50 }, (_, i) => limiter.reserve(`k${i % 5}`, 100)));
    const calls: string[] = [];
    const original = client.sendCommand.bind(client);
    client.sendCommand = ((command: { name: string }) => {
      calls.push(command.name);
      return original(command as never);
    }) as typeof client.sendCommand;
    try {
        const statuses = await Promise.all(reservations.map((r, i) => r.settle(i)));
        expect(statuses.every((s) => s === 'settled')).toBe(true);
    } finally {
      client.sendCommand = original;
    }
    // One call per batch: maxBatch (128) holds all 50 settles, at most two calls in flight.
    const scriptCalls = calls.filter((c) => c === 'evalsha' || c === 'eval').length;
    expect(scriptCalls).toBeGreaterThanOrEqual(1);
    expect(scriptCalls).toBeLessThanOrEqual(2);
    let total = 0;
    for (let k = 0; k < 5; k++) total += 100_000 - (await left(limiter, `k${k}`));
    expect(total).toBe((49 * 50) / 2); // sum of i for i < 50: only the actual costs stay
  });
});

describe('reserve on Redis: a holder killed mid-reservation', () => {
  it('gets its units back after leaseMs, with no settle from anyone', async () => {
    const child = spawn(process.execPath, [HOLDER, String(server.port), '60', '500'], { stdio: ['ignore', 'pipe', 'inherit'] });
    cleanup.push(async () => void child.kill('SIGKILL'));
    let out = '';
    child.stdout.on('data', (chunk: Buffer) => (out += chunk.toString()));
    await eventually('the holder to reserve', () => out.includes('reserved'), 10_000);
    expect(out).toContain('reserved 40');
    child.kill('SIGKILL');
    await new Promise((resolve) => child.once('exit', resolve));

    const limiter = rateLimiter({ name: 'killed', algorithm: gcra({ limit: 100, periodMs: 3_600_000 }), store: redisStore(client) });
    expect(await left(limiter, 'tenant')).toBe(40); // still held: the lease has not ended
    await sleep(600);
    const r = await limiter.reserve('tenant', 1); // sweeps the ended lease
    expect(r.decision).toMatchObject({ allowed: true, remaining: 99 });
    await r.cancel();
  });
});

describe('reserve on Redis: an outage', () => {
  it('reserves locally while Redis is away, and a settle Redis cannot take rejects and stays pending', async () => {
    const ownClient = await connectReady(server.port, []);
    const store = redisStore(ownClient, { timeoutMs: 200, onStoreError: 'local' });
    const limiter = rateLimiter({ name: 'outage', algorithm: gcra({ limit: 100, periodMs: 3_600_000 }), store });
    const held = await limiter.reserve('t', 30);
    expect(held.decision.store).toBe('redis');
    ownClient.disconnect(); // no reconnect: Redis is away for this store from now on
    await eventually('the client to end', () => ownClient.status === 'end');

    const fallen = await limiter.reserve('t', 50);
    expect(fallen.decision).toMatchObject({ allowed: true, store: 'local', remaining: 50 });
    await expect(fallen.settle(10)).resolves.toBe('settled'); // 40 back to the local store
    expect((await limiter.reserve('t', 90)).decision).toMatchObject({ allowed: true, store: 'local', remaining: 0 });

    await expect(held.settle(5)).rejects.toThrow(StoreUnavailableError);
    expect(held.status).toBe('pending');
  });
});

describe('reserve on Redis: processes of the previous release on the same keys', () => {
  it('a version-4 process consumes from a key holding leases, and the books still add up', async () => {
    // The GCRA script as the release before reservations shipped it: today's without the one line
    // reservations added (operation 4, which only lease.lua sends).
    const gcraV4 = gcraLua.replace(/^ {2}if op == 4 then .*\n/m, '');
    expect(gcraV4.length).toBeLessThan(gcraLua.length);
    client.defineCommand('v4GcraForReserve', { lua: gcraV4 });
    const v4 = (client as unknown as Record<string, (...args: unknown[]) => Promise<number[]>>).v4GcraForReserve!;
    const algorithm = gcra({ limit: 100, periodMs: 3_600_000 });
    const store = redisStore(client, { timeoutMs: 1_000 });
    const limiter = rateLimiter({ name: 'mixed', algorithm, store });
    const r = await limiter.reserve('t', 50);
    // Version 4's arguments: T, tau, staleAfterUs, the operations, the costs.
    const redisKey = store.redisKey(storeKey('test', 'mixed', 't'));
    const reply = await v4.call(client, 1, redisKey, algorithm.emissionIntervalUs, algorithm.burst * algorithm.emissionIntervalUs, 0, '1', '20');
    expect(reply[0]).toBe(30); // it sees the 50 reserved
    await expect(r.settle(10)).resolves.toBe('settled');
    expect(await left(limiter, 't')).toBe(70); // 10 settled, 20 taken by version 4
  });
});
