// RELIABILITY.md row F6: a Sentinel failover under load. A master, a replica and 3 sentinels; an
// ioredis client that finds the master through the sentinels; steady load, then the master is
// SIGKILLed and the sentinels promote the replica. Decisions must never wait much past the
// store's timeout nor reject, must follow onStoreError during the outage, and must come back to
// Redis by themselves once the new master is up. The failover is one loss of state (the new
// master is another server, with another run_id): reported once, and not a second time by the
// marker checks that follow (the replica had received the marker).
import { Redis, type RedisOptions } from 'ioredis';
import diagnosticsChannel from 'node:diagnostics_channel';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterEach, describe, expect, it } from 'vitest';
import { channelNames } from '../../../src/core/diagnostics.js';
import { fixedWindow } from '../../../src/ratelimit/algorithms/index.js';
import { quota } from '../../../src/ratelimit/quota/quota.js';
import { rateLimiter } from '../../../src/ratelimit/rate-limiter.js';
import { redisStore, type StoreErrorMessage } from '../../../src/ratelimit/redis/redis-store.js';
import type { LimiterDecision } from '../../../src/ratelimit/store.js';
import { watchLoopStalls } from '../support/loop-stall.js';
import { disconnectClient, startSentinel } from '../support/redis.js';
import { byStore, eventually, percentile, type Sample } from './support.js';

/**
 * The client options for Sentinel: those the README recommends for a single node, which apply
 * unchanged (the store sends nothing while the client is not 'ready', so during the failover
 * every decision follows onStoreError at once, and nothing queues up to be replayed against the
 * new master):
 * - `enableOfflineQueue: false`, `autoResendUnfulfilledCommands: false`, `maxRetriesPerRequest: 1`;
 * - a `retryStrategy` with a short cap. While the old master is dead and not yet replaced, each
 *   reconnection attempt asks a sentinel, is told the dead address and fails with ECONNREFUSED
 *   (after every sentinel has been asked once, ioredis also emits a misleading "All sentinels are
 *   unreachable. Retrying from scratch" error); the first attempt after the promotion connects to
 *   the new master. So the outage is the sentinels' detection and election plus at most one
 *   retry delay: ioredis's default (50 ms more per attempt, up to 2 s) adds ~0.5 s after a 2.5 s
 *   election and up to 2 s after a longer one; capped at 500 ms here. Measured outage: 2.4–2.7 s
 *   (the harness's down-after-milliseconds is 1000), of which 0–0.35 s after failover() saw the
 *   promotion (it polls every 100 ms).
 */
const sentinelOptions = (sentinels: { host: string; port: number }[], name: string): RedisOptions => ({
  sentinels,
  name,
  enableOfflineQueue: false,
  autoResendUnfulfilledCommands: false,
  maxRetriesPerRequest: 1,
  retryStrategy: (times) => Math.min(times * 50, 500),
});

const cleanup: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const step of cleanup.splice(0).reverse()) await step();
});

/** A decision as the load saw it, and which subject asked. */
interface Asked extends Sample {
  readonly subject: 'limiter' | 'quota';
}

const TIMEOUT_MS = 100;
/** What a noisy shared machine may add to a decision's wait past the store's timeout. */
const SLACK_MS = 100;

describe('F6: Sentinel failover under load', () => {
  it('decisions follow onStoreError within the timeout during the outage, never reject, and return to Redis by themselves', async () => {
    const setup = await startSentinel();
    cleanup.push(() => setup.stop());
    const client = new Redis(sentinelOptions(setup.sentinelAddresses, setup.masterName));
    const errors: Error[] = [];
    client.on('error', (error: Error) => errors.push(error));
    cleanup.push(async () => {
      // ioredis's disconnect() does not end a client that is between reconnection attempts: if
      // the test failed mid-outage, give it a while to reconnect first.
      await eventually('the client to be ready', () => client.status === 'ready', 15_000).catch(() => {});
      await disconnectClient(client);
    });
    await eventually('the client to connect', () => client.status === 'ready');

    const stateLost: StoreErrorMessage[] = [];
    const onStoreError = (m: unknown): void => {
      if ((m as StoreErrorMessage).kind === 'state-lost') stateLost.push(m as StoreErrorMessage);
    };
    diagnosticsChannel.subscribe(channelNames.storeError, onStoreError);
    cleanup.push(async () => void diagnosticsChannel.unsubscribe(channelNames.storeError, onStoreError));
    const store = redisStore(client, { timeoutMs: TIMEOUT_MS, stateCheckMs: 300 });
    const limiter = rateLimiter({ name: 'f6', algorithm: fixedWindow({ limit: 1_000_000_000, windowMs: 3_600_000 }), store });
    const monthly = quota({ name: 'f6-quota', limit: 1_000_000_000, period: 'month', store });
    await Promise.all([limiter.consume('warm-up'), monthly.consume('warm-up')]);

    const samples: Asked[] = [];
    // The test's own event loop: a decision cannot be answered while it is blocked (a busy shared
    // machine), so the longest stall it saw is allowed on top of the store's timeout.
    const loop = watchLoopStalls();
    const started = performance.now();
    let killedAt = Infinity;
    let promotedAt = Infinity;
    // failover() SIGKILLs whichever server the sentinels name as master: note when.
    for (const server of [setup.master, setup.replica]) {
      const kill = server.kill.bind(server);
      server.kill = (signal) => {
        if (signal === 'SIGKILL' && killedAt === Infinity) killedAt = performance.now() - started;
        kill(signal);
      };
    }
    let end = started + 40_000; // a hard bound; brought forward once Redis answers after the kill
    let back = false;
    const chaos = (async () => {
      await sleep(1_000);
      const port = await setup.failover();
      promotedAt = performance.now() - started;
      return port;
    })();
    chaos.catch(() => (end = 0));

    const workers = 20;
    await Promise.all(
      Array.from({ length: workers }, async (_, worker) => {
        const subject = worker === 0 ? 'quota' : 'limiter';
        for (let n = 0; performance.now() < end && samples.length < 300_000; n++) {
          const t = performance.now();
          const d: LimiterDecision = subject === 'quota' ? await monthly.consume('tenant') : await limiter.consume(`client-${worker % 5}`);
          const at = t - started;
          samples.push({ at, latencyMs: performance.now() - t, store: d.store, allowed: d.allowed, subject });
          if (!back && d.store === 'redis' && at > killedAt) {
            back = true; // keep going for 1.5 s more
            end = Math.min(end, performance.now() + 1_500);
          }
          await sleep(2);
        }
      }),
    );
    const newPort = await chaos;

    expect(newPort).toBe(setup.replica.port);
    const firstBack = samples.find((s) => s.at > killedAt && s.store === 'redis');
    expect(firstBack, 'decisions return to Redis by themselves').toBeDefined();
    const outageMs = firstBack!.at - killedAt;
    const latencies = samples.map((s) => s.latencyMs);
    console.log(
      `F6: Sentinel failover outage ${outageMs.toFixed(0)} ms (kill → first 'redis' decision); ` +
        `the sentinels named the new master ${(promotedAt - killedAt).toFixed(0)} ms after the kill; ` +
        `${samples.length} decisions ${JSON.stringify(byStore(samples))}; latency p50 ${percentile(latencies, 50).toFixed(1)} ms, ` +
        `p99 ${percentile(latencies, 99).toFixed(1)} ms, max ${Math.max(...latencies).toFixed(1)} ms; ` +
        // Only a count: the messages (connection refused, sentinels unreachable) are what a failover
        // looks like, checked below, and read as alarms in the log of a passing run.
        `${errors.length} client 'error' events while the master was down (each of an expected kind, checked below)`,
    );
    expect(outageMs, 'the outage is bounded').toBeLessThan(15_000);

    // No decision waited much past the store's timeout, during the outage or ever.
    const loopStallMs = loop.maxMs();
    loop.stop();
    expect(Math.max(...latencies), `the test's event loop stalled up to ${loopStallMs.toFixed(0)} ms`).toBeLessThanOrEqual(TIMEOUT_MS + SLACK_MS + loopStallMs);
    // Answered before the kill: Redis. (Those in flight at the kill fell back at their timeout.)
    const before = samples.filter((s) => s.at + s.latencyMs < killedAt);
    expect(before.length).toBeGreaterThan(100);
    expect(byStore(before)).toEqual({ redis: before.length });
    // During the outage (past the batches in flight at the kill): onStoreError, 'local' for the
    // rate limiter and 'fail-closed' for the quota (their defaults).
    const outage = samples.filter((s) => s.at > killedAt + TIMEOUT_MS + SLACK_MS && s.at < firstBack!.at);
    expect(outage.filter((s) => s.subject === 'limiter').length).toBeGreaterThan(100);
    expect(byStore(outage.filter((s) => s.subject === 'limiter'))).toEqual({ local: outage.filter((s) => s.subject === 'limiter').length });
    const quotaOutage = outage.filter((s) => s.subject === 'quota');
    expect(quotaOutage.length).toBeGreaterThan(0);
    expect(byStore(quotaOutage)).toEqual({ 'fail-closed': quotaOutage.length });
    expect(quotaOutage.every((s) => !s.allowed)).toBe(true);
    // The rate limiter went on admitting (locally) throughout.
    expect(samples.filter((s) => s.subject === 'limiter').every((s) => s.allowed)).toBe(true);
    // Back on Redis for good shortly after the first answer.
    const after = samples.filter((s) => s.at > firstBack!.at + 300);
    expect(after.length).toBeGreaterThan(100);
    expect(byStore(after)).toEqual({ redis: after.length });
    expect(store.status).toBe('ready');
    expect(stateLost.map((m) => m.reason)).toEqual(['server-changed']);
    // The client reported only what a dead master looks like.
    for (const error of errors) expect(error.message, 'a client error of a kind a failover does not explain').toMatch(/ECONNREFUSED|ECONNRESET|EPIPE|Connection is closed|All sentinels are unreachable/);
  });
});
