// Compound calls on the Redis store count for its breaker around Redis as batched decisions do
// (regression: they only asked whether the breaker admitted calls, so with compound traffic alone
// a dead Redis never opened it: every compound call waited out the full timeout, for ever, and
// the store still said 'ready'). On a Cluster, for the breaker of the tag's master.
import { describe, expect, it } from 'vitest';
import { fixedWindow } from '../../../../src/ratelimit/algorithms/index.js';
import { compoundLimit } from '../../../../src/ratelimit/compound.js';
import { rateLimiter } from '../../../../src/ratelimit/rate-limiter.js';
import { redisStore } from '../../../../src/ratelimit/redis/redis-store.js';
import { hashSlot, redisKeyOf } from '../../../../src/ratelimit/redis/slot.js';
import { deferred } from '../../../support/helpers.js';
import { FakeClient, masters } from './fake-client.js';

/** Two limits on a store over a fake client whose compound calls all fail at once ('fail') or never answer ('hang'). */
function setup(options: { cluster?: boolean } = {}) {
  const client = new FakeClient();
  if (options.cluster === true) {
    client.isCluster = true;
    client.slots = masters();
  }
  const calls: { tag: string }[] = [];
  let answer: 'fail' | 'hang' = 'fail';
  client.bulwarkCompound1 = (...args: unknown[]) => {
    const d = deferred<unknown>();
    const tag = /\{c:([^}]*)\}/.exec(String(args[1]))?.[1] ?? '';
    calls.push({ tag });
    if (answer === 'fail') d.reject(new Error('Connection is closed.'));
    return d.promise;
  };
  const store = redisStore(client, { timeoutMs: 30, openAfterFailures: 3, openMs: 60_000, onStoreError: 'fail-closed' });
  const perUser = rateLimiter({ name: 'per-user', algorithm: fixedWindow({ limit: 10, windowMs: 1_000 }), store });
  const perTenant = rateLimiter({ name: 'per-tenant', algorithm: fixedWindow({ limit: 100, windowMs: 60_000 }), store });
  const both = compoundLimit([perUser, perTenant]);
  return { client, store, calls, both, answer: (a: 'fail' | 'hang') => void (answer = a) };
}

describe('compound calls and the breaker around Redis', () => {
  it('three failed compound calls in a row open the breaker: the next ones fail closed at once, without a call, and the store says degraded', async () => {
    const { store, calls, both } = setup();
    for (let i = 0; i < 3; i++) expect(await both.consume('t').catch(() => undefined)).toMatchObject({ allowed: false });
    expect(calls.length).toBe(3);
    expect(store.status).toBe('degraded');
    expect(await both.consume('t').catch(() => undefined)).toMatchObject({ allowed: false });
    expect(calls.length).toBe(3);
  });

  it('timeouts count as failures too', async () => {
    const { store, calls, both, answer } = setup();
    answer('hang');
    for (let i = 0; i < 3; i++) await both.consume('t').catch(() => undefined);
    expect(calls.length).toBe(3);
    expect(store.status).toBe('degraded');
    await both.consume('t').catch(() => undefined);
    expect(calls.length).toBe(3);
  });

  it("on a Cluster, a failing tag's master opens its own breaker only: another master's tag still goes to Redis", async () => {
    const { calls, both, client } = setup({ cluster: true });
    const masterOf = (tag: string) => client.slots![hashSlot(redisKeyOf('bulwark:', `c:${tag}`))]![0];
    const dead = 't0';
    let live = 't1';
    for (let i = 1; masterOf(live) === masterOf(dead); i++) live = `t${i}`;
    for (let i = 0; i < 3; i++) await both.consume(dead).catch(() => undefined);
    expect(calls.length).toBe(3);
    await both.consume(dead).catch(() => undefined);
    expect(calls.length).toBe(3);
    await both.consume(live).catch(() => undefined);
    expect(calls.length).toBe(4);
    expect(calls.at(-1)!.tag).toBe(live);
  });
});
