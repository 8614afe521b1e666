// Issue 12 §3 (F15), against a fake client: a FLUSHALL (or an eviction, a FLUSHDB) leaves the
// server's run_id as it was, so only the store's marker key tells that every counter is gone.
// The same against a real redis-server: test/integration/redis/state-lost.test.ts.
import diagnosticsChannel from 'node:diagnostics_channel';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { systemClock } from '../../../../src/core/clock.js';
import { channelNames } from '../../../../src/core/diagnostics.js';
import { fixedWindow } from '../../../../src/ratelimit/algorithms/index.js';
import { rateLimiter } from '../../../../src/ratelimit/rate-limiter.js';
import { MARKER_TTL_MS, markerKey, markerKeys, markerTagForSlot } from '../../../../src/ratelimit/redis/marker.js';
import { redisStore, type StoreErrorMessage } from '../../../../src/ratelimit/redis/redis-store.js';
import { hashSlot } from '../../../../src/ratelimit/redis/slot.js';
import { flush } from '../../../support/helpers.js';
import { admitAll, FakeClient } from './fake-client.js';

/** A fake client that also answers `info` with a run_id the test sets. */
class ServerClient extends FakeClient {
  runId = 'a'.repeat(40);

  info(): Promise<string> {
    return Promise.resolve(`# Server\r\nredis_version:7.0.15\r\nrun_id:${this.runId}\r\n`);
  }
}

const events: StoreErrorMessage[] = [];
const onMessage = (m: unknown) => {
  const message = m as StoreErrorMessage;
  if (message.kind === 'state-lost') events.push(message);
};
diagnosticsChannel.subscribe(channelNames.storeError, onMessage);
afterEach(() => {
  events.length = 0;
  vi.restoreAllMocks();
});

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** A limiter over a store on `client`, and `decide`, which answers each call with an admission. */
function admittingLimiter(client: FakeClient, stateCheckMs: number, prefix?: string) {
  const store = redisStore(client, { timeoutMs: 1_000, stateCheckMs, ...(prefix === undefined ? {} : { prefix }) });
  const limiter = rateLimiter({ name: 'api', algorithm: fixedWindow({ limit: 10, windowMs: 60_000 }), store });
  const decide = async (key: string) => {
    const d = limiter.consume(key);
    await flush();
    client.last().resolve(admitAll(client.last()));
    const decision = await d;
    await flush();
    return decision;
  };
  return { store, decide };
}

/** A store on a new client after its first decision (which checks the marker): its client and `decide`. */
async function started(stateCheckMs = 30) {
  const client = new ServerClient();
  const { decide } = admittingLimiter(client, stateCheckMs);
  await decide('a');
  return { client, decide };
}

describe('F15: a Redis that lost the store keys while its run_id stayed the same', () => {
  it('Regression (issue 12): a marker key that vanished is published as state-lost (keys-lost) once, and again after a second loss', async () => {
    const { client, decide } = await started();
    expect([...client.markers.keys()]).toEqual(['bulwark:{marker}:state-marker']);
    await sleep(40);
    await decide('b'); // the marker is still there: nothing to report
    expect(events).toEqual([]);

    client.markers.clear(); // FLUSHALL
    await sleep(40);
    await decide('c');
    expect(events).toHaveLength(1);
    expect(events[0]).toMatchObject({ store: 'redis', kind: 'state-lost', fallback: 'state-lost', operations: 0, reason: 'keys-lost' });
    expect(String((events[0]!.error as Error).message)).toMatch(/marker key was gone, with no new server seen/);
    expect(client.markers.size).toBe(1); // written again

    // Reported once, not once per decision or per check.
    for (const key of ['d', 'e', 'f']) await decide(key);
    await sleep(40);
    await decide('g');
    expect(events).toHaveLength(1);

    client.markers.clear();
    await sleep(40);
    await decide('h');
    expect(events).toHaveLength(2);
  });

  it('checks the marker at most once per stateCheckMs, on a call it makes anyway, never per decision', async () => {
    const { client, decide } = await started(60_000);
    for (const key of ['b', 'c', 'd', 'e']) await decide(key);
    expect(client.markerChecks).toBe(1);
    client.markers.clear();
    await decide('f');
    expect(events).toEqual([]); // not due yet: found on the first call 60 s after the last check
  });

  it('Regression (issue 12): a marker rewritten by another store (another process found it missing first) is a loss too', async () => {
    const { client, decide } = await started();
    client.markers.set('bulwark:{marker}:state-marker', 'written-by-another-process');
    await sleep(40);
    await decide('b');
    expect(events).toHaveLength(1);
    expect(events[0]).toMatchObject({ reason: 'keys-lost' });
  });

  it('a restart (a new run_id) that also emptied the marker is reported once, as server-changed', async () => {
    const { client, decide } = await started();
    client.status = 'reconnecting';
    await decide('b').catch(() => undefined);
    client.markers.clear();
    client.runId = 'b'.repeat(40);
    client.status = 'ready';
    await sleep(40);
    await decide('c');
    await flush();
    expect(events).toHaveLength(1);
    expect(events[0]).toMatchObject({ kind: 'state-lost', reason: 'server-changed' });
    await sleep(40);
    await decide('d');
    expect(events).toHaveLength(1);
  });

  it('a marker this store had not looked at for longer than its TTL may have expired: not reported', async () => {
    const { client, decide } = await started();
    const now = systemClock.now();
    vi.spyOn(systemClock, 'now').mockImplementation(() => now + MARKER_TTL_MS + 1_000);
    client.markers.clear();
    await decide('b');
    expect(client.markerChecks).toBe(2);
    expect(events).toEqual([]);
  });

  it('keeps one marker per prefix, which no limiter key can equal', async () => {
    const client = new ServerClient();
    const a = admittingLimiter(client, 30, 'app-a:');
    const b = admittingLimiter(client, 30, 'app-b:');
    await a.decide('x');
    await b.decide('x');
    expect([...client.markers.keys()].sort()).toEqual(['app-a:{marker}:state-marker', 'app-b:{marker}:state-marker']);
    // Every limiter key ends with its hash tag's `}`: a key named like the marker's tag stays apart.
    expect(a.store.redisKey('marker')).toBe('app-a:{marker}');
    expect(a.store.redisKey('marker}:state-marker')).not.toBe('app-a:{marker}:state-marker');
    expect(client.calls.flatMap((c) => c.keys).some((k) => k.endsWith(':state-marker'))).toBe(false);
  });

  it('on a Cluster, keeps one marker per master, in a slot that master serves', () => {
    const client = new FakeClient();
    client.isCluster = true;
    const slots: string[][] = [];
    for (let slot = 0; slot < 16384; slot++) slots.push([slot < 5461 ? 'n1:7000' : slot < 10923 ? 'n2:7001' : 'n3:7002']);
    (client as { slots?: unknown }).slots = slots;
    const keys = markerKeys('bulwark:', client);
    expect(keys.map(hashSlot)).toEqual([0, 5461, 10923]);
    expect(keys.every((k) => k.startsWith('bulwark:{marker-') && k.endsWith('}:state-marker'))).toBe(true);
    expect(markerKey('p:', markerTagForSlot(12345))).toMatch(/^p:\{marker-\d+\}:state-marker$/);
    expect(hashSlot(markerKey('p:', markerTagForSlot(12345)))).toBe(12345);
    // Before the client has its slot map, there is nothing to check.
    (client as { slots?: unknown }).slots = undefined;
    expect(markerKeys('bulwark:', client)).toEqual([]);
  });

  it('rejects a stateCheckMs that is not a duration, naming it', () => {
    expect(() => redisStore(new FakeClient(), { stateCheckMs: 0 })).toThrow(/"stateCheckMs" must be at least 1 ms, got 0/);
  });
});
