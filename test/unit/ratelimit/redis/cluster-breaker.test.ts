// RELIABILITY.md row F7 on a fake Cluster client: the store's breaker is per master. Failures on
// one master's slots open that master's breaker only; decisions for the other masters' keys keep
// going to Redis (regression: one breaker for the whole Cluster, so a dead master's busy keys sent
// every quiet key to onStoreError too). The same against a real Cluster whose master is killed is
// in test/integration/redis/cluster-master.test.ts.
import { setTimeout as sleep } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';
import { fixedWindow } from '../../../../src/ratelimit/algorithms/index.js';
import { redisStore } from '../../../../src/ratelimit/redis/redis-store.js';
import { hashSlot } from '../../../../src/ratelimit/redis/slot.js';
import type { LimiterDecision } from '../../../../src/ratelimit/store.js';
import { flush } from '../../../support/helpers.js';
import { admitAll, FakeClient, masters } from './fake-client.js';

const window = fixedWindow({ limit: 10, windowMs: 60_000 });

/** A store on a fake three-master Cluster, and a store key on each master. */
function setup(options: { openMs: number; timeoutMs?: number }) {
  const client = new FakeClient();
  client.isCluster = true;
  client.slots = masters();
  const store = redisStore(client, { openAfterFailures: 3, timeoutMs: options.timeoutMs ?? 1_000, openMs: options.openMs });
  const keyOn = (node: string): string => {
    for (let i = 0; i < 10_000; i++) if (client.slots![hashSlot(store.redisKey(`k${i}`))]![0] === node) return `k${i}`;
    throw new Error(`no key on ${node}`);
  };
  /** One decision for `key`, its call (if one was made) answered by `answer`. */
  const decide = async (key: string, answer: 'admit' | 'fail' | 'none'): Promise<{ decision: LimiterDecision; called: boolean }> => {
    const calls = client.calls.length;
    const pending = store.consume(key, window, 1);
    await flush();
    const called = client.calls.length > calls;
    if (called && answer === 'admit') client.last().resolve(admitAll(client.last()));
    if (called && answer === 'fail') client.last().reject(new Error('Connection is closed.'));
    return { decision: await pending, called };
  };
  return { client, store, keyOn, decide };
}

describe('F7: on a Cluster, the breaker is per master', () => {
  it("failures on one master's slots open its breaker only: the other masters' decisions stay on Redis", async () => {
    const { store, keyOn, decide } = setup({ openMs: 60_000 });
    const dead = keyOn('n2:7001');
    const live = [keyOn('n1:7000'), keyOn('n3:7002')];
    for (let i = 0; i < 3; i++) expect(await decide(dead, 'fail')).toMatchObject({ called: true, decision: { store: 'local' } });
    // The dead master's keys now follow onStoreError without a call to Redis...
    expect(await decide(dead, 'admit')).toMatchObject({ called: false, decision: { store: 'local' } });
    // ...and the live masters' keys still go to Redis, again and again.
    for (let i = 0; i < 5; i++) {
      for (const key of live) expect(await decide(key, 'admit')).toMatchObject({ called: true, decision: { store: 'redis' } });
    }
    expect(await decide(dead, 'admit')).toMatchObject({ called: false, decision: { store: 'local' } });
    // Some keys follow onStoreError: the store says so.
    expect(store.status).toBe('degraded');
  });

  it("answers from the other masters do not reset a failing master's count (regression: quiet keys on live masters kept a dead one's breaker closed)", async () => {
    const { keyOn, decide } = setup({ openMs: 60_000 });
    const dead = keyOn('n1:7000');
    const live = keyOn('n3:7002');
    for (let i = 0; i < 3; i++) {
      await decide(dead, 'fail');
      expect(await decide(live, 'admit')).toMatchObject({ called: true, decision: { store: 'redis' } });
    }
    expect(await decide(dead, 'admit')).toMatchObject({ called: false, decision: { store: 'local' } });
  });

  it("a fail-closed denial for an open master's key suggests a retry when that master is tried again", async () => {
    const { store, keyOn, decide } = setup({ openMs: 3_000 });
    const dead = keyOn('n2:7001');
    for (let i = 0; i < 3; i++) await decide(dead, 'fail');
    const pending = store.consume(dead, window, 1, undefined, 'fail-closed');
    const denied = await pending;
    expect(denied).toMatchObject({ allowed: false, store: 'fail-closed' });
    expect(denied.retryAfterMs).toBeGreaterThan(2_000);
    expect(denied.retryAfterMs).toBeLessThanOrEqual(3_000);
  });

  it("after openMs one tick probes the failing master; its answer closes that master's breaker", async () => {
    const { store, keyOn, decide } = setup({ openMs: 40 });
    const dead = keyOn('n2:7001');
    for (let i = 0; i < 3; i++) await decide(dead, 'fail');
    expect(store.status).toBe('degraded');
    await sleep(50);
    expect(await decide(dead, 'admit')).toMatchObject({ called: true, decision: { store: 'redis' } });
    expect(store.status).toBe('ready');
    expect(await decide(dead, 'admit')).toMatchObject({ called: true, decision: { store: 'redis' } });
  });

  it('a probe that fails opens that master again for openMs, and decisions after its tick wait for its verdict', async () => {
    const { client, store, keyOn, decide } = setup({ openMs: 40 });
    const dead = keyOn('n2:7001');
    for (let i = 0; i < 3; i++) await decide(dead, 'fail');
    await sleep(50);
    const probe = store.consume(dead, window, 1);
    await flush();
    const calls = client.calls.length;
    // The probe is in flight: a later tick's decision does not go too.
    expect(await decide(dead, 'admit')).toMatchObject({ called: false, decision: { store: 'local' } });
    client.calls[calls - 1]!.reject(new Error('Connection is closed.'));
    expect(await probe).toMatchObject({ store: 'local' });
    expect(await decide(dead, 'admit')).toMatchObject({ called: false, decision: { store: 'local' } });
    expect(store.status).toBe('degraded');
  });

  it("timeouts on one master open its breaker only, one stall counting once per master", async () => {
    const { store, keyOn, decide } = setup({ openMs: 60_000, timeoutMs: 15 });
    const dead = keyOn('n3:7002');
    const live = keyOn('n1:7000');
    for (let i = 0; i < 3; i++) {
      expect(await decide(dead, 'none')).toMatchObject({ called: true, decision: { store: 'local' } });
      expect(await decide(live, 'admit')).toMatchObject({ called: true, decision: { store: 'redis' } });
    }
    expect(await decide(dead, 'none')).toMatchObject({ called: false, decision: { store: 'local' } });
    expect(await decide(live, 'admit')).toMatchObject({ called: true, decision: { store: 'redis' } });
    expect(store.status).toBe('degraded');
  });

  it("once a replica serves the dead master's slots, they go to Redis at once and the store is ready again", async () => {
    const { client, store, keyOn, decide } = setup({ openMs: 60_000 });
    const dead = keyOn('n2:7001');
    for (let i = 0; i < 3; i++) await decide(dead, 'fail');
    expect(store.status).toBe('degraded');
    client.slots = masters({ from: 'n2:7001', to: 'r2:7004' });
    expect(await decide(dead, 'admit')).toMatchObject({ called: true, decision: { store: 'redis' } });
    // The dead master serves no slot any more: its open breaker no longer counts.
    expect(store.status).toBe('ready');
  });

  it('slots the client has no master for share one breaker', async () => {
    const { client, keyOn, decide } = setup({ openMs: 60_000 });
    const a = keyOn('n1:7000');
    const b = keyOn('n3:7002');
    client.slots = [];
    for (let i = 0; i < 3; i++) await decide(a, 'fail');
    expect(await decide(b, 'admit')).toMatchObject({ called: false, decision: { store: 'local' } });
  });

  it('a reset of a key on an open master is refused without a call, and resets on other masters go', async () => {
    const { client, store, keyOn, decide } = setup({ openMs: 60_000 });
    const dead = keyOn('n2:7001');
    for (let i = 0; i < 3; i++) await decide(dead, 'fail');
    await expect(store.reset(dead)).rejects.toThrow(/Cluster node n2:7001: 3 failed calls in a row/);
    expect(client.deleted).toEqual([]);
    await store.reset(keyOn('n1:7000'));
    expect(client.deleted).toHaveLength(1);
  });
});
