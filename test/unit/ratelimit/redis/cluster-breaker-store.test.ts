// RELIABILITY.md row F7 for the shared circuit breaker's store, on a fake Cluster client: the
// store's own breaker around Redis is per master, as the rate-limit store's is
// (cluster-breaker.test.ts). Regression: one breaker for the whole Cluster, which three failed
// calls to a dead master in a row (no live master's answer between them) opened for every
// breaker of the process; and which, while live answers kept it closed, let the dead master's
// breakers call it on every sync. The same on a real Cluster whose master is killed is in
// test/integration/redis/shared-breaker-cluster-master.test.ts.
import { setTimeout as sleep } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';
import { redisBreakerStore } from '../../../../src/ratelimit/redis/breaker-store.js';
import { hashSlot, redisKeyOf } from '../../../../src/ratelimit/redis/slot.js';
import { breakerPeer } from '../../../support/breaker-peer.js';
import { deferred } from '../../../support/helpers.js';
import { FakeClient, masters } from './fake-client.js';

/** A reply of the breaker script: state closed, nothing remaining, no opens, epoch 1, no probe. */
const CLOSED_REPLY = [0, 0, 0, 1, 0];

/** A breaker store on a fake three-master Cluster whose script calls the test answers one by one. */
function setup(options: { openMs: number; maxStalenessMs?: number; autoAnswer?: (key: string) => 'ok' | 'fail' }) {
  const client = new FakeClient();
  client.isCluster = true;
  client.slots = masters();
  const store = redisBreakerStore(client, { openAfterFailures: 3, openMs: options.openMs, timeoutMs: 20, maxStalenessMs: options.maxStalenessMs ?? 1_000 });
  const calls: { key: string; answer: (reply: unknown) => void; fail: () => void }[] = [];
  client.bulwarkBreaker1 = (_count: number, key: string) => {
    const d = deferred<unknown>();
    const fail = () => d.reject(new Error('Connection is closed.'));
    calls.push({ key, answer: d.resolve, fail });
    const auto = options.autoAnswer?.(key);
    if (auto === 'ok') d.resolve(CLOSED_REPLY);
    if (auto === 'fail') fail();
    return d.promise;
  };
  const nameOn = (node: string, from = 0): string => {
    for (let i = from; i < 10_000; i++) if (client.slots![hashSlot(redisKeyOf(store.prefix, `breaker:b${i}`))]![0] === node) return `b${i}`;
    throw new Error(`no breaker name on ${node}`);
  };
  /** One script call for breaker `name` if the store admits it, answered as `answer` says. */
  const sync = async (name: string, answer: 'ok' | 'fail'): Promise<{ called: boolean; reply: readonly number[] | undefined }> => {
    if (!store.admits(name)) return { called: false, reply: undefined };
    const pending = store.call(name, [0]);
    const call = calls.at(-1)!;
    if (answer === 'ok') call.answer(CLOSED_REPLY);
    else call.fail();
    return { called: true, reply: await pending };
  };
  return { store, calls, nameOn, sync };
}

describe('redisBreakerStore on a Cluster: one breaker around Redis per master', () => {
  it("failed calls for one master's breakers leave the other masters' breakers synced", async () => {
    const { store, nameOn, sync } = setup({ openMs: 60_000 });
    const dead = [nameOn('n2:7001'), nameOn('n2:7001', 1_000), nameOn('n2:7001', 2_000)];
    const live = [nameOn('n1:7000'), nameOn('n3:7002')];
    for (const name of dead) expect(await sync(name, 'fail')).toEqual({ called: true, reply: undefined });
    // The dead master's breakers now decide alone without a call...
    for (const name of dead) expect(await sync(name, 'ok')).toEqual({ called: false, reply: undefined });
    // ...and the live masters' breakers still sync, again and again.
    for (let i = 0; i < 5; i++) {
      for (const name of live) expect(await sync(name, 'ok')).toEqual({ called: true, reply: CLOSED_REPLY });
    }
    // Some breakers decide alone: the store says so.
    expect(store.status).toBe('degraded');
  });

  it("answers from the other masters do not reset a failing master's count", async () => {
    const { nameOn, sync } = setup({ openMs: 60_000 });
    const dead = nameOn('n1:7000');
    const live = nameOn('n3:7002');
    for (let i = 0; i < 3; i++) {
      await sync(dead, 'fail');
      expect(await sync(live, 'ok')).toMatchObject({ called: true });
    }
    expect(await sync(dead, 'ok')).toEqual({ called: false, reply: undefined });
  });

  it("after openMs one call probes the failing master, and its answer closes that master's breaker", async () => {
    const { store, calls, nameOn, sync } = setup({ openMs: 40 });
    const first = nameOn('n2:7001');
    const second = nameOn('n2:7001', 1_000);
    for (let i = 0; i < 3; i++) await sync(first, 'fail');
    expect(store.admits(first)).toBe(false);
    await sleep(60);
    // One call probes; another breaker of that master waits for the probe's answer.
    expect(store.admits(first)).toBe(true);
    const probe = store.call(first, [0]);
    expect(store.admits(second)).toBe(false);
    calls.at(-1)!.answer(CLOSED_REPLY);
    expect(await probe).toEqual(CLOSED_REPLY);
    expect(store.admits(second)).toBe(true);
    expect(store.status).toBe('ready');
  });

  it('a probe that fails opens the master again for openMs', async () => {
    const { nameOn, sync, store } = setup({ openMs: 40 });
    const name = nameOn('n3:7002');
    for (let i = 0; i < 3; i++) await sync(name, 'fail');
    await sleep(60);
    expect(await sync(name, 'fail')).toEqual({ called: true, reply: undefined });
    expect(store.admits(name)).toBe(false);
    await sleep(60);
    expect(await sync(name, 'ok')).toEqual({ called: true, reply: CLOSED_REPLY });
  });

  it("a breaker whose keys live on another master keeps following the fleet while one master's breaker is open (regression: every breaker decided alone)", async () => {
    const client = { slots: masters() };
    const on = (node: string, from: number): string => {
      for (let i = from; i < 10_000; i++) if (client.slots[hashSlot(redisKeyOf('bulwark:', `breaker:b${i}`))]![0] === node) return `b${i}`;
      throw new Error(`no breaker name on ${node}`);
    };
    const deadName = on('n2:7001', 0);
    const liveName = on('n1:7000', 0);
    const deadKey = redisKeyOf('bulwark:', `breaker:${deadName}`);
    // Every call for the dead master's breaker fails at once; the others are answered at once.
    const { store, calls } = setup({ openMs: 60_000, maxStalenessMs: 200, autoAnswer: (key) => (key === deadKey ? 'fail' : 'ok') });
    const live = store.connect(breakerPeer(liveName));
    const dead = store.connect(breakerPeer(deadName));
    try {
      // Syncs every 50 ms: three failed ones open the dead master's breaker (bounded: 4 s).
      for (let i = 0; i < 400 && store.status === 'ready'; i++) await sleep(10);
      expect(store.status).toBe('degraded');
      const before = calls.length;
      await sleep(300);
      expect(dead.active).toBe(false);
      expect(live.active).toBe(true);
      // Only the live breaker's syncs went out meanwhile.
      const since = calls.slice(before);
      expect(since.length).toBeGreaterThanOrEqual(3);
      expect(since.every((c) => c.key !== deadKey)).toBe(true);
    } finally {
      store.close();
    }
  });
});
