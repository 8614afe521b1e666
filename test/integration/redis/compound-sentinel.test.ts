// Compound limits through Sentinel: the counters of a compound limit and its run-time limits are
// plain keys under the tag, replicated like every other, so after a failover the promoted replica
// keeps the books and the run-time limit; during it, calls follow onStoreError (deny by default:
// a compound call has no local fallback).
import { setTimeout as sleep } from 'node:timers/promises';
import { afterEach, describe, expect, it } from 'vitest';
import { fixedWindow } from '../../../src/ratelimit/algorithms/index.js';
import { compoundLimit } from '../../../src/ratelimit/compound.js';
import { rateLimiter } from '../../../src/ratelimit/rate-limiter.js';
import { redisStore } from '../../../src/ratelimit/redis/redis-store.js';
import { startSentinel } from '../support/redis.js';
import { connectSentinelReady, eventually } from './support.js';

const cleanup: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const step of cleanup.splice(0).reverse()) await step();
});

describe('compoundLimit through Sentinel', () => {
  it('keeps the counters and a run-time limit across a failover', async () => {
    const setup = await startSentinel();
    cleanup.push(() => setup.stop());
    const client = await connectSentinelReady(setup, cleanup);
    const store = redisStore(client, { timeoutMs: 500 });
    const perUser = rateLimiter({ name: 's-user', algorithm: fixedWindow({ limit: 5, windowMs: 3_600_000 }), store });
    const perTenant = rateLimiter({ name: 's-tenant', algorithm: fixedWindow({ limit: 100, windowMs: 3_600_000 }), store });
    const both = compoundLimit([perUser, perTenant]);
    for (let i = 0; i < 3; i++) expect((await both.consume(['u', 't'], { tag: 't' })).store).toBe('redis');
    await both.setLimit('t', 's-tenant', fixedWindow({ limit: 4, windowMs: 3_600_000 }));
    await sleep(200); // let the replica catch up (replication is asynchronous)

    await setup.failover();
    await eventually('a decision from the new master', async () => (await both.peek(['u', 't'], { tag: 't' })).store === 'redis', 20_000);
    const d = await both.consume(['u', 't'], { tag: 't' });
    expect(d).toMatchObject({ allowed: true, store: 'redis' });
    expect(d.parts.map((p) => [p.decision.limit, p.decision.remaining])).toEqual([
      [5, 1],
      [4, 0],
    ]);
    expect(await both.consume(['u', 't'], { tag: 't' })).toMatchObject({ allowed: false, deniedBy: 's-tenant' });
  }, 60_000);
});
