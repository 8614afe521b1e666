// RELIABILITY.md row F14: a NAT or firewall drops the store's established flow to a healthy Redis
// without a reset. The client keeps saying it is 'ready', every call times out, and the kernel
// would give up on the connection only after about 15 minutes of retransmissions: until then a
// quota (fail-closed) denied every request. The fault proxy's 'blackhole-existing' mode plays the
// path after it heals: the connections open at the switch swallow every byte and every close,
// both ways, forever (their state is gone), while new connections pass. The figure is measured
// from that switch to the first decision Redis answered again.
import diagnosticsChannel from 'node:diagnostics_channel';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import type { RedisOptions } from 'ioredis';
import { afterEach, describe, expect, it } from 'vitest';
import { channelNames } from '../../../src/core/diagnostics.js';
import { quota } from '../../../src/ratelimit/quota/quota.js';
import { redisStore, type StoreErrorMessage } from '../../../src/ratelimit/redis/redis-store.js';
import { startProxy } from '../support/proxy.js';
import { startRedis } from '../support/redis.js';
import { byStore, connectReady, drive, recommendedClientOptions } from './support.js';

const cleanup: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const step of cleanup.splice(0).reverse()) await step();
});

const LOST_AT_MS = 1_000;

/** The README's client setup since issue 12: keepAlive and socketTimeout on top of the others. */
const readmeClientOptions: RedisOptions = { ...recommendedClientOptions, keepAlive: 10_000, socketTimeout: 2_000 };

interface Scenario {
  readonly name: string;
  readonly client: RedisOptions;
  /** How long nothing passes at all (new connections included) before the path heals. */
  readonly outageMs: number;
  readonly runMs: number;
}

async function measure({ client: clientOptions, outageMs, runMs, name }: Scenario) {
  const server = await startRedis();
  cleanup.push(() => server.stop());
  const proxy = await startProxy({ host: '127.0.0.1', port: server.port });
  cleanup.push(() => proxy.close());
  const client = await connectReady(proxy.port, cleanup, clientOptions);

  let started = performance.now();
  const events: StoreErrorMessage[] = [];
  const eventTimes: number[] = [];
  const onMessage = (m: unknown) => {
    const message = m as StoreErrorMessage;
    if (message.kind !== 'reconnect' && message.kind !== 'state-lost') return;
    events.push(message);
    eventTimes.push(performance.now() - started);
  };
  diagnosticsChannel.subscribe(channelNames.storeError, onMessage);
  cleanup.push(async () => void diagnosticsChannel.unsubscribe(channelNames.storeError, onMessage));
  // The client's own story, for the figure line: a failure in CI then says whether the client
  // came back on a new connection, and when.
  const clientEvents: string[] = [];
  for (const event of ['close', 'reconnecting', 'connect', 'ready'] as const) {
    const note = () => void clientEvents.push(`${event} at +${(performance.now() - started - lostAt).toFixed(0)} ms`);
    client.on(event, note);
    cleanup.push(async () => void client.off(event, note));
  }

  const store = redisStore(client, { timeoutMs: 100, openAfterFailures: 3, openMs: 1_000 });
  const paid = quota({ name: 'f14-paid', limit: 1_000_000_000, period: 'month', store });

  let lostAt = 0;
  let healedAt = 0;
  started = performance.now();
  const loss = (async () => {
    await sleep(LOST_AT_MS);
    lostAt = performance.now() - started;
    if (outageMs > 0) {
      proxy.mode('blackhole');
      await sleep(outageMs);
    }
    proxy.mode('blackhole-existing');
    healedAt = performance.now() - started;
  })();
  // 16 clients, each asking again 5 ms after its answer, for runMs or 100,000 decisions at most.
  const samples = await drive((w, n) => paid.consume(`tenant-${(w * 7 + n) % 50}`), {
    workers: 16,
    durationMs: runMs,
    pauseMs: 5,
    maxDecisions: 100_000,
  });
  await loss;

  const back = samples.filter((s) => s.at > healedAt && s.store === 'redis').sort((a, b) => a.at + a.latencyMs - (b.at + b.latencyMs))[0];
  const backMs = back === undefined ? Infinity : back.at + back.latencyMs - healedAt;
  const figure =
    `F14 (${name}): back on Redis ${backMs.toFixed(0)} ms after the path healed (flow lost at ${lostAt.toFixed(0)} ms, healed at ${healedAt.toFixed(0)} ms); ` +
    `${samples.length} decisions ${JSON.stringify(byStore(samples))}; ` +
    `events ${JSON.stringify(events.map((e, i) => `${e.kind} at +${(eventTimes[i]! - lostAt).toFixed(0)} ms`))}; ` +
    `client ${JSON.stringify(clientEvents)}`;
  console.log(figure);

  expect(samples.some((s) => s.at > lostAt && s.store === 'fail-closed'), `${figure}: the loss was felt`).toBe(true);
  expect(samples.filter((s) => !s.allowed).every((s) => s.store === 'fail-closed'), figure).toBe(true);
  expect(backMs, figure).toBeLessThan(5_000);
  // Once back, it stays back: nearly every decision asked a second after the return is Redis's.
  const tail = samples.filter((s) => back !== undefined && s.at > back.at + 1_000);
  expect(tail.length, figure).toBeGreaterThan(50);
  expect(tail.filter((s) => s.store === 'redis').length / tail.length, figure).toBeGreaterThanOrEqual(0.99);
  expect(store.status).toBe('ready');
  return { events, figure };
}

describe('F14: an established Redis flow silently dropped', () => {
  it('Regression (issue 12): with no keepAlive or socketTimeout on the client, the store forces a reconnect and a fail-closed quota is back on Redis within 5 s', async () => {
    // The path heals the moment the flow is lost: only the store's own reconnect can help.
    const { events, figure } = await measure({ name: 'store reconnect', client: recommendedClientOptions, outageMs: 0, runMs: LOST_AT_MS + 7_000 });
    expect(events.length, figure).toBeGreaterThanOrEqual(1);
    expect(events[0], figure).toMatchObject({ store: 'redis', kind: 'reconnect', fallback: 'reconnect', operations: 0 });
  });

  it('with no socketTimeout, a path down for 3 s, new connections included: the connection the client opens into the outage is stuck before its ready check, and the store replaces it; back on Redis within 5 s of healing', async () => {
    // The store drops the silent connection at once; ioredis destroys it 2 s later
    // (disconnectTimeout) and connects again while the path still swallows everything: that new
    // connection's ready check never gets an answer, and nothing in ioredis ends it. Before the
    // store watched for it, the quota failed closed for good (back: never).
    const { events, figure } = await measure({ name: 'reconnect into the outage', client: recommendedClientOptions, outageMs: 3_000, runMs: LOST_AT_MS + 3_000 + 5_000 });
    expect(events.map((e) => (e.error as Error).message).filter((m) => /ready check/.test(m)).length, figure).toBeGreaterThanOrEqual(1);
  });

  it("with the README's client setup (keepAlive, socketTimeout), a path down for 2 s, new connections included, is back on Redis within 5 s of healing", async () => {
    await measure({ name: 'README setup', client: readmeClientOptions, outageMs: 2_000, runMs: LOST_AT_MS + 2_000 + 7_000 });
  });
});
