// Compound limits on a 3-master Redis Cluster: every key of a call (and its run-time limits) is
// under the call's tag, so one script call runs on one node (no CROSSSLOT), whichever node the
// tag's slot is on; tags spread over every node keep their books.
import { Cluster } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fixedWindow, gcra } from '../../../src/ratelimit/algorithms/index.js';
import { compoundLimit } from '../../../src/ratelimit/compound.js';
import { rateLimiter } from '../../../src/ratelimit/rate-limiter.js';
import { redisStore } from '../../../src/ratelimit/redis/redis-store.js';
import { hashSlot } from '../../../src/ratelimit/redis/slot.js';
import { disconnectClient, type RedisCluster, startCluster } from '../support/redis.js';
import { eventually } from './support.js';

let cluster: RedisCluster;
let client: Cluster;

beforeAll(async () => {
  cluster = await startCluster();
  client = new Cluster(cluster.startupNodes, { scaleReads: 'master', redisOptions: { autoResendUnfulfilledCommands: false } });
  client.on('error', () => {});
  await eventually('the cluster client', () => client.status === 'ready');
}, 60_000);
afterAll(async () => {
  if (client !== undefined) await disconnectClient(client);
  await cluster?.stop();
});

describe('compoundLimit on a Redis Cluster', () => {
  it('charges per user AND per tenant in one call for tenants on every node, all or nothing', async () => {
    const store = redisStore(client, { timeoutMs: 2_000 });
    const perUser = rateLimiter({ name: 'c-user', algorithm: fixedWindow({ limit: 3, windowMs: 3_600_000 }), store });
    const perTenant = rateLimiter({ name: 'c-tenant', algorithm: gcra({ limit: 5, periodMs: 3_600_000 }), store });
    const both = compoundLimit([perUser, perTenant]);
    const tenants = Array.from({ length: 12 }, (_, i) => `tenant-${i}`);
    // The tags' slots fall in more than one third of the slot range: more than one node.
    expect(new Set(tenants.map((t) => Math.floor(hashSlot(`bulwark:{c:${t}}`) / 5462))).size).toBeGreaterThan(1);
    for (const tenant of tenants) {
      const outcomes: string[] = [];
      for (const user of ['a', 'a', 'a', 'a', 'b', 'b', 'b']) {
        const d = await both.consume([`${tenant}/${user}`, tenant], { tag: tenant });
        expect(d.store).toBe('redis');
        outcomes.push(d.allowed ? 'ok' : d.deniedBy!);
      }
      // a: 3 admitted, the 4th denied per user (the tenant not charged); b: 2 admitted, then the tenant's 5 are used.
      expect(outcomes).toEqual(['ok', 'ok', 'ok', 'c-user', 'ok', 'ok', 'c-tenant']);
    }
    // A run-time limit under one tag, on that tag's node: user a of tenant-3 may take a 4th unit
    // now, so the call is turned down by the tenant's limit instead.
    await both.setLimit('tenant-3', 'c-user', fixedWindow({ limit: 4, windowMs: 3_600_000 }));
    const d = await both.consume(['tenant-3/a', 'tenant-3'], { tag: 'tenant-3' });
    expect(d).toMatchObject({ allowed: false, deniedBy: 'c-tenant' });
    expect(d.parts[0]!.decision).toMatchObject({ allowed: true, limit: 4 });
  }, 30_000);
});
