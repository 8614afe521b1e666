// RELIABILITY.md row F15: Redis restarts without persistence (the test servers run with
// `--save '' --appendonly no`), so every counter is gone and every quota would be handed out
// again. The store must see it — a new server `run_id` after the reconnect — and publish it on
// the store-error channel as `kind: 'state-lost'`. A FLUSHALL empties the same server without
// changing its run_id: the store's marker key tells.
import diagnosticsChannel from 'node:diagnostics_channel';
import { setTimeout as sleep } from 'node:timers/promises';
import { Registry } from 'prom-client';
import { afterEach, describe, expect, it } from 'vitest';
import { channelNames } from '../../../src/core/diagnostics.js';
import { registerMetrics } from '../../../src/metrics/register.js';
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
    expect(events[0]).toMatchObject({ store: 'redis', kind: 'state-lost', fallback: 'state-lost', operations: 0, reason: 'server-changed' });
    expect(String((events[0]!.error as Error).message)).toMatch(/run_id [0-9a-f]{40} → [0-9a-f]{40}/);

    // A reconnect to the same server process is not a loss.
    client.disconnect(true);
    await eventually('the client to reconnect', () => client.status === 'ready');
    await eventually('a decision from Redis', async () => (await paid.consume('tenant-1')).store === 'redis');
    await paid.consume('tenant-1');
    expect(events).toHaveLength(1);
  });

  it('Regression (issue 12): a FLUSHALL while the store is in use is published as state-lost (keys-lost) within stateCheckMs, counted once, and a second one again', async () => {
    const server = await startRedis();
    cleanup.push(() => server.stop());
    const client = await connectReady(server.port, cleanup);

    const events: { message: StoreErrorMessage; atMs: number }[] = [];
    const onMessage = (m: unknown) => {
      const message = m as StoreErrorMessage;
      if (message.kind === 'state-lost') events.push({ message, atMs: performance.now() });
    };
    diagnosticsChannel.subscribe(channelNames.storeError, onMessage);
    cleanup.push(async () => void diagnosticsChannel.unsubscribe(channelNames.storeError, onMessage));
    const registry = new Registry();
    const metrics = registerMetrics(registry);
    cleanup.push(async () => metrics.dispose());
    const stateLostCount = async (): Promise<number> => {
      const metric = (await registry.getMetricsAsJSON()).find((m) => m.name === 'bulwark_ratelimit_store_errors_total');
      const value = metric?.values.find((v) => v.labels.fallback === 'state-lost');
      return Number(value?.value ?? 0);
    };

    const stateCheckMs = 400;
    const store = redisStore(client, { timeoutMs: 500, stateCheckMs });
    const paid = quota({ name: 'f15-flush', limit: 3, period: 'month', store });
    // Decisions every 20 ms, as a service in use makes them, until `until` says stop (bounded).
    const decideWhile = async (until: () => boolean, maxMs: number): Promise<number> => {
      const deadline = performance.now() + maxMs;
      let admitted = 0;
      while (!until() && performance.now() < deadline) {
        if ((await paid.consume('tenant-1')).allowed) admitted++;
        await sleep(20);
      }
      return admitted;
    };

    // Three check periods of an untouched server: nothing to report, and the quota stays spent.
    expect(await decideWhile(() => false, 3 * stateCheckMs)).toBe(3);
    expect(events).toEqual([]);
    const marker = 'bulwark:{marker}:state-marker';
    const ttlMs = Number(await server.command(['PTTL', marker]));
    expect(ttlMs).toBeGreaterThan(0); // a TTL, as every key the store writes

    for (const round of [1, 2]) {
      const flushedAt = performance.now();
      await server.command(['FLUSHALL']);
      // The quota is handed out again at once: what the event warns of.
      const admitted = await decideWhile(() => events.length === round, stateCheckMs + 2_000);
      expect(events).toHaveLength(round);
      expect(admitted).toBeGreaterThan(0);
      const { message, atMs } = events[round - 1]!;
      expect(message).toMatchObject({ store: 'redis', kind: 'state-lost', fallback: 'state-lost', operations: 0, reason: 'keys-lost' });
      expect(String((message.error as Error).message)).toMatch(/marker key was gone, with no new server seen/);
      // The documented bound: the first call stateCheckMs after the previous check (plus a round
      // trip, and slack for a loaded test machine).
      console.log(`F15: FLUSHALL ${round} reported as keys-lost ${(atMs - flushedAt).toFixed(0)} ms later (stateCheckMs ${stateCheckMs}), admitted meanwhile from the spent quota: ${admitted}`);
      expect(atMs - flushedAt).toBeLessThan(stateCheckMs + 500);
      expect(Number(await server.command(['EXISTS', marker]))).toBe(1); // written again
      // Counted once, not once per decision or per check.
      await decideWhile(() => false, 3 * stateCheckMs);
      expect(events).toHaveLength(round);
      expect(await stateLostCount()).toBe(round);
    }
  });
});
