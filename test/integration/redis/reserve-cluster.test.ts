// Reserve-then-settle on a 3-master Redis Cluster: a key's leases live in its state's hash slot,
// so batches of reservations and settles over keys on every node keep their books, leases end by
// the server clock, and a slot migration carries a key's leases with its state.
import { Cluster } from 'ioredis';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { fixedWindow, gcra } from '../../../src/ratelimit/algorithms/index.js';
import { storeKey } from '../../../src/ratelimit/keys.js';
import { rateLimiter } from '../../../src/ratelimit/rate-limiter.js';
import { redisStore } from '../../../src/ratelimit/redis/redis-store.js';
import { hashSlot } from '../../../src/ratelimit/redis/slot.js';
import type { LimiterDecision } from '../../../src/ratelimit/store.js';
import { disconnectClient, type RedisCluster, startCluster } from '../support/redis.js';
import { eventually } from './support.js';

let cluster: RedisCluster;
let client: Cluster;

beforeAll(async () => {
  cluster = await startCluster();
}, 60_000);
afterAll(async () => {
  await cluster?.stop();
});
// A client per test, disconnected by it: a migration makes ioredis open and close node connections.
beforeEach(async () => {
  client = new Cluster(cluster.startupNodes, {
    scaleReads: 'master',
    retryDelayOnMoved: 0,
    retryDelayOnTryAgain: 0,
    redisOptions: { autoResendUnfulfilledCommands: false },
  });
  client.on('error', () => {});
  await eventually('the cluster client', () => client.status === 'ready');
});
afterEach(async () => {
  await disconnectClient(client);
});

async function left(limiter: { peek(key: string): Promise<LimiterDecision> }, key: string): Promise<number> {
  const d = await limiter.peek(key);
  return d.allowed ? d.remaining + 1 : d.remaining;
}

describe('reserve on a Redis Cluster', () => {
  it('keeps the books of keys on every node, batched, and gives ended leases back', async () => {
    const limiter = rateLimiter({
      name: 'cluster-reserve',
      algorithm: gcra({ limit: 1_000, periodMs: 3_600_000 }),
      store: redisStore(client, { timeoutMs: 1_000 }),
    });
    const keys = Array.from({ length: 12 }, (_, i) => `tenant-${i}`);
    const owners = new Set(await Promise.all(keys.map((k) => cluster.slotOwner(hashSlot(`bulwark:{${storeKey('t', 'cluster-reserve', k)}}`)))));
    expect(owners.size).toBe(3); // the keys are spread over every master
    const reservations = await Promise.all(keys.map((k) => limiter.reserve(k, { cost: 400, leaseMs: 400 })));
    expect(reservations.every((r) => r.allowed && r.decision.store === 'redis')).toBe(true);
    // Half settle now; the other half are left to their leases.
    await Promise.all(reservations.slice(0, 6).map((r, i) => r.settle(100 + i)));
    for (let i = 0; i < 6; i++) expect(await left(limiter, keys[i]!)).toBe(1_000 - 100 - i);
    for (let i = 6; i < 12; i++) expect(await left(limiter, keys[i]!)).toBe(600);
    await sleep(500);
    const again = await Promise.all(keys.slice(6).map((k) => limiter.reserve(k, 1)));
    for (const r of again) expect(r.decision).toMatchObject({ allowed: true, remaining: 999 });
    const late = await Promise.all(reservations.slice(6).map((r) => r.settle(50)));
    expect(late.every((s) => s === 'expired')).toBe(true);
    for (let i = 6; i < 12; i++) expect(await left(limiter, keys[i]!)).toBe(1_000 - 1 - 50);
  }, 30_000);

  it("moves a key's leases with its state when its slot migrates", async () => {
    const limiter = rateLimiter({
      name: 'cluster-migrate',
      algorithm: fixedWindow({ limit: 1_000, windowMs: 3_600_000 }),
      store: redisStore(client, { timeoutMs: 1_000 }),
    });
    const slot = hashSlot(`bulwark:{${storeKey('t', 'cluster-migrate', 'moving')}}`);
    const r = await limiter.reserve('moving', 700);
    expect(r.allowed).toBe(true);
    const from = await cluster.slotOwner(slot);
    await cluster.migrateSlot(slot, (from + 1) % 3);
    expect(await cluster.slotOwner(slot)).toBe((from + 1) % 3);
    await expect(r.settle(200)).resolves.toBe('settled'); // the lease moved with the state
    expect(await left(limiter, 'moving')).toBe(800);
  }, 60_000);
});
