// RELIABILITY.md row F15: Redis restarts without persistence (the test servers run with
// `--save '' --appendonly no`), so every counter is gone and every quota would be handed out
// again. The store must see it — a new server `run_id` after the reconnect — and publish it on
// the store-error channel as `kind: 'state-lost'`.
import diagnosticsChannel from 'node:diagnostics_channel';
import { afterEach, describe, expect, it } from 'vitest';
import { channelNames } from '../../../src/core/diagnostics.js';
import { quota } from '../../../src/ratelimit/quota/quota.js';
import { redisStore, type StoreErrorMessage } from '../../../src/ratelimit/redis/redis-store.js';
import { startRedis } from '../support/redis.js';
import { connectReady, eventually } from './support.js';

const cleanup: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const step of cleanup.splice(0).reverse()) await step();
});

describe('F15: Redis restarted empty', () => {
  it('Regression (issue 12): the store publishes a state-lost event after the restart, and none while the server stays the same', async () => {
    const server = await startRedis();
    cleanup.push(() => server.stop());
    const client = await connectReady(server.port, cleanup);

    const events: StoreErrorMessage[] = [];
    const onMessage = (m: unknown) => {
      const message = m as StoreErrorMessage;
      if (message.kind === 'state-lost') events.push(message);
    };
    diagnosticsChannel.subscribe(channelNames.storeError, onMessage);
    cleanup.push(async () => void diagnosticsChannel.unsubscribe(channelNames.storeError, onMessage));

    const store = redisStore(client, { timeoutMs: 500 });
    const paid = quota({ name: 'f15-paid', limit: 3, period: 'month', store });
    for (let i = 0; i < 3; i++) expect(await paid.consume('tenant-1')).toMatchObject({ allowed: true, store: 'redis' });
    expect(await paid.consume('tenant-1')).toMatchObject({ allowed: false, store: 'redis' });
    expect(events).toEqual([]);

    await server.restart();
    await eventually('the client to reconnect', () => client.status === 'ready');
    // The first decision after the restart finds the quota full again: what the event warns of.
    let first: Awaited<ReturnType<typeof paid.consume>> | undefined;
    await eventually('a decision from Redis', async () => {
      first = await paid.consume('tenant-1');
      return first.store === 'redis';
    });
    expect(first).toMatchObject({ allowed: true, remaining: 2 });
    await eventually('the state-lost event', () => events.length > 0, 5_000);
    expect(events).toHaveLength(1);
    expect(events[0]).toMatchObject({ store: 'redis', kind: 'state-lost', fallback: 'state-lost', operations: 0 });
    expect(String((events[0]!.error as Error).message)).toMatch(/run_id [0-9a-f]{40} → [0-9a-f]{40}/);

    // A reconnect to the same server process is not a loss.
    client.disconnect(true);
    await eventually('the client to reconnect', () => client.status === 'ready');
    await eventually('a decision from Redis', async () => (await paid.consume('tenant-1')).store === 'redis');
    await paid.consume('tenant-1');
    expect(events).toHaveLength(1);
  });
});
