// Issue 12 §3, against a fake client: the store drops a connection that only times out while the
// client says it is ready (F14, a flow a NAT dropped silently), and reports a Redis server whose
// run_id changed across a reconnect (F15, a restart that may have emptied every counter). The
// same against a real redis-server: test/integration/redis/flow-loss.test.ts and state-lost.test.ts.
import diagnosticsChannel from 'node:diagnostics_channel';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { systemClock } from '../../../../src/core/clock.js';
import { channelNames } from '../../../../src/core/diagnostics.js';
import { fixedWindow } from '../../../../src/ratelimit/algorithms/index.js';
import { rateLimiter } from '../../../../src/ratelimit/rate-limiter.js';
import { HANDSHAKE_WATCH_MS } from '../../../../src/ratelimit/redis/link.js';
import { redisStore, type StoreErrorMessage } from '../../../../src/ratelimit/redis/redis-store.js';
import { flush } from '../../../support/helpers.js';
import { admitAll, FakeClient, masters } from './fake-client.js';

const window = () => fixedWindow({ limit: 10, windowMs: 60_000 });

/**
 * Makes decisions that time out, one after the other, until the store disconnects (at most 10):
 * how many it took. (A timeout that fires late because this process was busy does not count,
 * by design: on a loaded machine it may take more than `reconnectAfterTimeouts`.)
 */
async function timeOutUntilDisconnect(client: ReconnectingClient, consume: (key: string) => Promise<unknown>): Promise<number> {
  for (let n = 1; n <= 10; n++) {
    await consume(`k${n}`);
    if (client.disconnects.length > 0) return n;
  }
  return Infinity;
}

/** A fake client that records `disconnect` and answers `info` with a run_id the test sets. */
class ReconnectingClient extends FakeClient {
  readonly disconnects: (boolean | undefined)[] = [];
  /** The socket, as ioredis exposes it: a new object once the client has reconnected. */
  stream?: unknown;
  runId = 'a'.repeat(40);
  infoCalls = 0;

  disconnect(reconnect?: boolean): void {
    this.disconnects.push(reconnect);
  }

  info(section: string): Promise<string> {
    this.infoCalls++;
    return Promise.resolve(`# Server\r\nredis_version:7.0.15\r\nrun_id:${this.runId}\r\ntcp_port:6379\r\n${section === 'server' ? '' : 'x:1\r\n'}`);
  }
}

const events: StoreErrorMessage[] = [];
const onMessage = (m: unknown) => {
  const message = m as StoreErrorMessage;
  if (message.kind !== 'operations') events.push(message);
};
diagnosticsChannel.subscribe(channelNames.storeError, onMessage);
afterEach(() => {
  events.length = 0;
});

describe('F14: calls that only time out while the client says it is ready', () => {
  it("the dropped socket is destroyed at once, after disconnect(true), not left to ioredis's disconnectTimeout (2 s), which waits for a close a dropped flow never sends", async () => {
    const client = new ReconnectingClient();
    const order: string[] = [];
    const socket = { destroy: () => order.push('destroy') };
    Object.assign(client, { stream: socket, disconnect: (reconnect?: boolean) => order.push(`disconnect(${reconnect})`) });
    const store = redisStore(client, { timeoutMs: 40, openAfterFailures: 1_000, reconnectAfterTimeouts: 2 });
    const limiter = rateLimiter({ name: 'api', algorithm: window(), store });
    for (let n = 0; n < 10 && order.length === 0; n++) await limiter.consume(`k${n}`);
    expect(order).toEqual(['disconnect(true)', 'destroy']);
  });

  it('Regression (issue 12): after reconnectAfterTimeouts timeouts in a row, the store calls disconnect(true) once and publishes a reconnect event', async () => {
    const client = new ReconnectingClient();
    const store = redisStore(client, { timeoutMs: 40, openAfterFailures: 1_000, reconnectAfterTimeouts: 2 });
    const limiter = rateLimiter({ name: 'api', algorithm: window(), store });
    expect(await limiter.consume('a')).toMatchObject({ store: 'local' }); // times out: one
    expect(client.disconnects).toEqual([]);
    expect(await timeOutUntilDisconnect(client, (k) => limiter.consume(k))).toBeLessThanOrEqual(9);
    expect(client.disconnects).toEqual([true]);
    expect(events).toHaveLength(1);
    expect(events[0]).toMatchObject({ store: 'redis', kind: 'reconnect', fallback: 'reconnect', operations: 0 });
    expect(String((events[0]!.error as Error).message)).toMatch(/2 calls in a row timed out/);
    // Until the client leaves 'ready', nothing is sent to the dropped connection.
    const calls = client.calls.length;
    expect(await limiter.consume('c')).toMatchObject({ store: 'local' });
    expect(client.calls).toHaveLength(calls);
    expect(store.status).toBe('degraded');
    // Once it has reconnected, the first decision goes to Redis at once.
    client.status = 'reconnecting';
    expect(await limiter.consume('d')).toMatchObject({ store: 'local' });
    client.status = 'ready';
    const back = limiter.consume('e');
    await flush();
    expect(client.calls).toHaveLength(calls + 1);
    client.last().resolve(admitAll(client.last()));
    expect(await back).toMatchObject({ store: 'redis' });
    expect(store.status).toBe('ready');
  });

  it('Regression (issue 11 §3): a forced reconnect that completes between two decisions is seen by its new socket, and the next decision goes to Redis at once (a 0.7 s freeze under light traffic answered 503 for 5 s after it)', async () => {
    const client = new ReconnectingClient();
    client.stream = { socket: 1 };
    const store = redisStore(client, { timeoutMs: 40, openAfterFailures: 1_000, reconnectAfterTimeouts: 2 });
    const limiter = rateLimiter({ name: 'api', algorithm: window(), store });
    await limiter.consume('a'); // times out: one
    expect(await timeOutUntilDisconnect(client, (k) => limiter.consume(k))).toBeLessThanOrEqual(9);
    expect(client.disconnects).toEqual([true]);
    // The old socket is still there: nothing is sent to it.
    const calls = client.calls.length;
    expect(await limiter.consume('c')).toMatchObject({ store: 'local' });
    expect(client.calls).toHaveLength(calls);
    // The old socket closed and a new one became ready while no decision was made, so no
    // decision saw the client leave 'ready'.
    client.stream = { socket: 2 };
    const back = limiter.consume('d');
    await flush();
    expect(client.calls).toHaveLength(calls + 1);
    client.last().resolve(admitAll(client.last()));
    expect(await back).toMatchObject({ store: 'redis' });
    expect(store.status).toBe('ready');
  });

  it('an answer between timeouts (even a late one) starts the count again: a slow Redis is not a dead flow', async () => {
    const client = new ReconnectingClient();
    const store = redisStore(client, { timeoutMs: 40, openAfterFailures: 1_000, reconnectAfterTimeouts: 2 });
    const limiter = rateLimiter({ name: 'api', algorithm: window(), store });
    await limiter.consume('a'); // times out: one
    const late = client.last();
    late.resolve(admitAll(late)); // answers after all
    await flush();
    await limiter.consume('b'); // times out: one again (or not counted at all)
    expect(client.disconnects).toEqual([]);
    expect(await timeOutUntilDisconnect(client, (k) => limiter.consume(k))).toBeLessThanOrEqual(10);
    expect(client.disconnects).toEqual([true]);
  });

  it('errors are not silent: calls that fail (rather than time out) never force a reconnect', async () => {
    const client = new ReconnectingClient();
    const store = redisStore(client, { timeoutMs: 1_000, openAfterFailures: 1_000, reconnectAfterTimeouts: 1 });
    const limiter = rateLimiter({ name: 'api', algorithm: window(), store });
    for (const key of ['a', 'b', 'c']) {
      const d = limiter.consume(key);
      await flush();
      client.last().reject(new Error('Connection is closed.'));
      await d;
    }
    expect(client.disconnects).toEqual([]);
    expect(events).toEqual([]);
  });

  it('a Cluster is never disconnected by the store (its disconnect(true) drops every node)', async () => {
    const client = new ReconnectingClient();
    client.isCluster = true;
    const store = redisStore(client, { timeoutMs: 40, openAfterFailures: 1_000, reconnectAfterTimeouts: 1 });
    const limiter = rateLimiter({ name: 'api', algorithm: window(), store });
    expect(await timeOutUntilDisconnect(client, (k) => limiter.consume(k))).toBe(Infinity);
    expect(client.infoCalls).toBe(0);
  });
});

/** A limiter over a store on `client`, and `decide`, which answers each call with an admission. */
function admittingLimiter(client: ReconnectingClient) {
  const store = redisStore(client, { timeoutMs: 1_000 });
  const limiter = rateLimiter({ name: 'api', algorithm: window(), store });
  const decide = async (key: string) => {
    const d = limiter.consume(key);
    await flush();
    client.last().resolve(admitAll(client.last()));
    return d;
  };
  return { limiter, decide };
}

describe('F15: a Redis server that changed across a reconnect', () => {
  it('Regression (issue 12): a new run_id after a reconnect is published as state-lost, once, and the same run_id is not', async () => {
    const client = new ReconnectingClient();
    const { limiter, decide } = admittingLimiter(client);
    await decide('a'); // learns the run_id
    expect(client.infoCalls).toBe(1);
    await decide('b'); // no reconnect: no INFO, not per decision
    expect(client.infoCalls).toBe(1);
    // A reconnect to the same server.
    client.status = 'reconnecting';
    await limiter.consume('c');
    client.status = 'ready';
    await decide('d');
    expect(client.infoCalls).toBe(2);
    expect(events).toEqual([]);
    // A restart: a new process, a new run_id.
    client.status = 'reconnecting';
    await limiter.consume('e');
    client.runId = 'b'.repeat(40);
    client.status = 'ready';
    await decide('f');
    await flush();
    expect(events).toHaveLength(1);
    expect(events[0]).toMatchObject({ store: 'redis', kind: 'state-lost', fallback: 'state-lost', operations: 0, reason: 'server-changed' });
    expect(String((events[0]!.error as Error).message)).toContain(`run_id ${'a'.repeat(40)} → ${'b'.repeat(40)}`);
    await decide('g');
    await flush();
    expect(events).toHaveLength(1);
  });

  it('Regression (issue 12): a reconnect no decision saw (a new socket, the status never seen leaving ready) is checked too', async () => {
    const client = new ReconnectingClient();
    client.stream = { id: 1 };
    const { decide } = admittingLimiter(client);
    await decide('a');
    expect(client.infoCalls).toBe(1);
    client.stream = { id: 2 };
    client.runId = 'c'.repeat(40);
    await decide('b');
    await flush();
    expect(client.infoCalls).toBe(2);
    expect(events).toHaveLength(1);
    expect(events[0]).toMatchObject({ kind: 'state-lost' });
  });

  it('Regression (issue 12, found while building F15): an INFO the server refuses (an ACL without it) is not asked again on every call', async () => {
    const client = new ReconnectingClient();
    client.info = () => {
      client.infoCalls++;
      return Promise.reject(new Error("NOPERM this user has no permissions to run the 'info' command"));
    };
    const store = redisStore(client, { timeoutMs: 1_000 });
    const limiter = rateLimiter({ name: 'api', algorithm: window(), store });
    for (const key of ['a', 'b', 'c']) {
      const d = limiter.consume(key);
      await flush();
      client.last().resolve(admitAll(client.last()));
      expect(await d).toMatchObject({ store: 'redis' });
    }
    expect(client.infoCalls).toBe(1);
    expect(events).toEqual([]);
  });
});

describe('F14: a new connection stuck before its ready check', () => {
  /** A client connected (status 'connect') on `stream`, whose clock the test moves. */
  function stuck(stream: { bytesRead: number; destroy?: () => void }, options: { cluster?: boolean } = {}) {
    const client = new ReconnectingClient();
    client.isCluster = options.cluster === true;
    client.status = 'connect';
    client.stream = stream;
    const store = redisStore(client, { timeoutMs: 40 });
    const limiter = rateLimiter({ name: 'stuck', algorithm: window(), store });
    // A whole number: sums of a fractional performance.now() would land a hair short of the bound.
    let now = 1_000_000;
    vi.spyOn(systemClock, 'now').mockImplementation(() => now);
    // A new key each time: the fallback's own denials (10 per key) would answer without the store.
    let n = 0;
    const decide = () => limiter.consume(`k${n++}`);
    return { client, decide, advance: (ms: number) => void (now += ms) };
  }
  afterEach(() => {
    vi.restoreAllMocks();
  });

  it('a connection with not one byte read for HANDSHAKE_WATCH_MS is destroyed (the client connects again) and a reconnect event says why', async () => {
    const destroyed: number[] = [];
    const stream = { bytesRead: 0, destroy: () => void destroyed.push(1) };
    const { client, decide, advance } = stuck(stream);
    expect(await decide()).toMatchObject({ store: 'local' });
    advance(HANDSHAKE_WATCH_MS - 1);
    await decide();
    expect(destroyed).toEqual([]);
    advance(1);
    await decide();
    expect(destroyed).toEqual([1]);
    expect(client.disconnects).toEqual([]);
    expect(events).toMatchObject([{ store: 'redis', kind: 'reconnect', fallback: 'reconnect' }]);
    expect((events[0]!.error as Error).message).toMatch(/no answer to its ready check within 2000 ms/);
    // Once: the same socket is not destroyed again, and a new one gets its own time.
    advance(HANDSHAKE_WATCH_MS);
    await decide();
    expect(destroyed).toEqual([1]);
    client.stream = { bytesRead: 0, destroy: () => void destroyed.push(2) };
    await decide();
    advance(HANDSHAKE_WATCH_MS - 1);
    await decide();
    expect(destroyed).toEqual([1]);
    advance(1);
    await decide();
    expect(destroyed).toEqual([1, 2]);
  });

  it('a connection that read bytes (a Redis loading its data answers the check) is left alone', async () => {
    const destroyed: number[] = [];
    const { decide, advance } = stuck({ bytesRead: 120, destroy: () => void destroyed.push(1) });
    await decide();
    advance(10 * HANDSHAKE_WATCH_MS);
    await decide();
    expect(destroyed).toEqual([]);
    expect(events).toEqual([]);
  });

  it('without a destroy method the client is told to reconnect; on a Cluster nothing is done', async () => {
    const plain = stuck({ bytesRead: 0 });
    await plain.decide();
    plain.advance(HANDSHAKE_WATCH_MS);
    await plain.decide();
    expect(plain.client.disconnects).toEqual([true]);
    vi.restoreAllMocks();
    events.length = 0;
    const destroyed: number[] = [];
    const cluster = stuck({ bytesRead: 0, destroy: () => void destroyed.push(1) }, { cluster: true });
    cluster.client.slots = masters();
    await cluster.decide();
    cluster.advance(HANDSHAKE_WATCH_MS);
    await cluster.decide();
    expect(destroyed).toEqual([]);
    expect(cluster.client.disconnects).toEqual([]);
  });
});
