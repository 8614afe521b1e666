// Reserve-then-settle through Sentinel: leases are replicated with the state they belong to, so a
// reservation made before a failover settles on the promoted replica, and one whose holder went
// away with the old master still ends by the new master's clock.
import { Redis } from 'ioredis';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterEach, describe, expect, it } from 'vitest';
import { gcra } from '../../../src/ratelimit/algorithms/index.js';
import { rateLimiter } from '../../../src/ratelimit/rate-limiter.js';
import { redisStore } from '../../../src/ratelimit/redis/redis-store.js';
import type { LimiterDecision } from '../../../src/ratelimit/store.js';
import { disconnectClient, startSentinel } from '../support/redis.js';
import { eventually } from './support.js';

const cleanup: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const step of cleanup.splice(0).reverse()) await step();
});

async function left(limiter: { peek(key: string): Promise<LimiterDecision> }, key: string): Promise<number> {
  const d = await limiter.peek(key);
  return d.allowed ? d.remaining + 1 : d.remaining;
}

describe('reserve through Sentinel', () => {
  it('settles on the promoted replica after a failover, and ended leases come back there', async () => {
    const setup = await startSentinel();
    cleanup.push(() => setup.stop());
    const client = new Redis({
      sentinels: setup.sentinelAddresses,
      name: setup.masterName,
      enableOfflineQueue: false,
      autoResendUnfulfilledCommands: false,
      maxRetriesPerRequest: 1,
      retryStrategy: (times) => Math.min(times * 50, 500),
    });
    client.on('error', () => {});
    cleanup.push(() => disconnectClient(client));
    await eventually('the client to connect', () => client.status === 'ready');
    const limiter = rateLimiter({
      name: 'sentinel-reserve',
      algorithm: gcra({ limit: 100, periodMs: 3_600_000 }),
      store: redisStore(client, { timeoutMs: 500 }),
    });
    const kept = await limiter.reserve('t', { cost: 40, leaseMs: 60_000 });
    const lost = await limiter.reserve('u', { cost: 70, leaseMs: 3_000 });
    expect([kept.decision.store, lost.decision.store]).toEqual(['redis', 'redis']);
    await sleep(200); // let the replica catch up (replication is asynchronous)

    const started = Date.now();
    await setup.failover();
    await eventually('a decision from the new master', async () => (await limiter.peek('t')).store === 'redis', 20_000);
    expect(await left(limiter, 't')).toBe(60); // the reservation survived the failover
    await expect(kept.settle(10)).resolves.toBe('settled');
    expect(await left(limiter, 't')).toBe(90);

    await sleep(Math.max(0, started + 3_200 - Date.now()));
    const next = await limiter.reserve('u', 1); // sweeps the lease that ended on the new master
    expect(next.decision).toMatchObject({ allowed: true, store: 'redis', remaining: 99 });
  }, 60_000);
});
