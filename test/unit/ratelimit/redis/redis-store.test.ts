// The Redis store's own logic against a fake client: options, keys, batching, timeouts, the
// breaker around Redis, fallbacks, the deny cache and the accounting of late answers. Behaviour
// against real Redis servers is in test/integration/redis/.
import diagnosticsChannel from 'node:diagnostics_channel';
import { createRequire } from 'node:module';
import net from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { channelNames } from '../../../../src/core/diagnostics.js';
import { StoreUnavailableError } from '../../../../src/core/errors.js';
import { fixedWindow, gcra, slidingWindow } from '../../../../src/ratelimit/algorithms/index.js';
import { quota } from '../../../../src/ratelimit/quota/quota.js';
import { rateLimiter } from '../../../../src/ratelimit/rate-limiter.js';
import { redisStore, type RedisStoreOptions } from '../../../../src/ratelimit/redis/redis-store.js';
import { hashSlot } from '../../../../src/ratelimit/redis/slot.js';
import { calendarOf } from '../../../support/calendar.js';
import { capture, flush, stateOf } from '../../../support/helpers.js';
import { badCounts, expectRejected, type Row } from '../../../support/options.js';
import { admitAll, type Call, FakeClient, reply } from './fake-client.js';

function setup(options?: RedisStoreOptions, algorithm = fixedWindow({ limit: 10, windowMs: 60_000 })) {
  const client = new FakeClient();
  const store = redisStore(client, options);
  const limiter = rateLimiter({ name: 'api', algorithm, store });
  return { client, store, limiter };
}

const subscriptions: [string, (message: unknown) => void][] = [];
afterEach(() => {
  for (const [name, fn] of subscriptions.splice(0)) diagnosticsChannel.unsubscribe(name, fn);
});

describe('redisStore options', () => {
  it.each<[string, unknown]>([
    ['undefined', undefined],
    ['null', null],
    ['a number', 6379],
    ['an object without defineCommand', { status: 'ready' }],
  ])('a client given as %s throws a TypeError', (_label, client) => {
    expect(() => redisStore(client as never)).toThrow(TypeError);
    expect(() => redisStore(client as never)).toThrow(/client/);
  });

  const rows: Row[] = [
    ['prefix', 5, TypeError],
    ['prefix', 'a{b', RangeError],
    ['prefix', 'a}b', RangeError],
    ['prefix', 'x'.repeat(129), RangeError],
    ['timeoutMs', 0, RangeError],
    ['timeoutMs', -5, RangeError],
    ['timeoutMs', NaN, RangeError],
    ['timeoutMs', Infinity, RangeError],
    ['timeoutMs', 2 ** 31, RangeError],
    ['timeoutMs', '100', TypeError],
    ['onStoreError', 'maybe', TypeError],
    ['onStoreError', 1, TypeError],
    ['denyCache', 'yes', TypeError],
    ['denyCache', 1, TypeError],
    ['openMs', 0, RangeError],
    ['openMs', '1000', TypeError],
    ...badCounts('localMaxKeys', { max: 100_000_000 }),
    ...badCounts('openAfterFailures', { max: 1_000_000 }),
    ...badCounts('maxBatch', { max: 100_000 }),
    ...badCounts('reconnectAfterTimeouts', { max: 1_000_000 }),
  ];
  it.each(rows)('option %s = %s throws %O naming the option and the value', (option, value, kind) => {
    const shown = typeof value === 'string' ? JSON.stringify(value).slice(0, 20) : String(value);
    expectRejected(() => redisStore(new FakeClient(), { [option]: value }), kind, `"${option}"`, shown);
  });

  it('rejects unknown options, naming them', () => {
    expect(() => redisStore(new FakeClient(), { timeout: 5 } as never)).toThrow(/unknown option "timeout"/);
  });

  it('registers one versioned command per script, once per client', () => {
    const client = new FakeClient();
    redisStore(client);
    redisStore(client, { prefix: 'other:' });
    expect(client.defined.sort()).toEqual(['bulwarkCalendar3', 'bulwarkFixedWindow4', 'bulwarkGcra4', 'bulwarkMarker1', 'bulwarkSlidingWindow4']);
  });

  it('refuses an algorithm it has no script for', async () => {
    const { store } = setup();
    const odd = { ...fixedWindow({ limit: 1, windowMs: 1000 }), kind: 'leaky' } as never;
    expect(() => store.consume('k', odd, 1)).toThrow(/no Redis script for algorithm kind "leaky"/);
  });

  it('a cost above what the algorithm can ever admit throws the algorithm\'s RangeError before any call', async () => {
    const { client, limiter } = setup();
    await expect(limiter.consume('k', { cost: 11 })).rejects.toThrow(RangeError);
    await expect(limiter.consume('k', { cost: 11 })).rejects.toThrow(/"cost"/);
    expect(client.calls).toHaveLength(0);
  });
});

describe('keys', () => {
  it('puts the whole store key, escaped, inside one hash tag after the prefix', () => {
    const store = redisStore(new FakeClient(), { prefix: 'app:' });
    expect(store.redisKey('3:api:k:user-1')).toBe('app:{3:api:k:user-1}');
    expect(store.redisKey('3:api:k:a{b}c%')).toBe('app:{3:api:k:a%7Bb%7Dc%25}');
  });

  it('is injective on keys that escaping could confuse', () => {
    const store = redisStore(new FakeClient());
    const keys = ['a{b}', 'a%7Bb%7D', 'a%257Bb', 'a%7Bb', '{', '}', '%', '%25', '{}', '}{', 'x:y', 'x%3Ay'];
    const mapped = keys.map((k) => store.redisKey(k));
    expect(new Set(mapped).size).toBe(keys.length);
    for (const key of mapped) {
      // Exactly one opening brace (the tag's) and the tag reaches to the end.
      expect(key.indexOf('{')).toBe(key.lastIndexOf('{'));
      expect(key.indexOf('}')).toBe(key.length - 1);
    }
  });
});

describe('hashSlot', () => {
  it('matches the Redis Cluster specification', () => {
    expect(hashSlot('123456789')).toBe(0x31c3 & 16383);
    expect(hashSlot('foo')).toBe(12182);
    expect(hashSlot('{user1000}.following')).toBe(hashSlot('{user1000}.followers'));
    expect(hashSlot('foo{}{bar}')).toBe(hashSlot('foo{}{bar}')); // an empty tag: the whole key counts
    expect(hashSlot('foo{}{bar}')).not.toBe(hashSlot('bar'));
    expect(hashSlot('foo{{bar}}zap')).toBe(hashSlot('{bar'));
  });

  it('agrees with the slot function ioredis uses, on many keys', () => {
    // cluster-key-slot ships with ioredis (a dev dependency here) and has no type declarations.
    const reference = createRequire(import.meta.url)('cluster-key-slot') as (key: string) => number;
    for (let i = 0; i < 2_000; i++) {
      const key = `bulwark:{${i}:k:user-${i * 7919}-é€😀}`;
      expect(hashSlot(key)).toBe(reference(key));
    }
  });
});

describe('batching', () => {
  it('sends the decisions made in one tick in order, with the algorithm\'s arguments, as two calls when none is in flight', async () => {
    const { client, limiter } = setup();
    const decisions = Array.from({ length: 10 }, (_, i) => limiter.consume(`user-${i % 3}`, { cost: 1 + (i % 2) }));
    await flush();
    // Two calls, so that Redis runs one while Node reads the other's answer.
    expect(client.calls.map((c) => c.ops.length)).toEqual([5, 5]);
    const [first, second] = client.calls as [Call, Call];
    expect(first.command).toBe('bulwarkFixedWindow4');
    expect(first.args[0]).toBe(5);
    expect([...first.keys, ...second.keys]).toEqual(Array.from({ length: 10 }, (_, i) => `bulwark:{3:api:k:user-${i % 3}}`));
    expect(first.args.slice(6, 8)).toEqual([10, 60_000]); // limit, windowMs
    expect(second.args.slice(6, 8)).toEqual([10, 60_000]);
    // No reply yet: the clocks are assumed to agree; the call is stale after our own deadline.
    expect(first.staleAfterUs / 1000).toBeGreaterThanOrEqual(Date.now() - 50 + 100);
    expect(first.staleAfterUs / 1000).toBeLessThanOrEqual(Date.now() + 100);
    expect([...first.ops, ...second.ops]).toEqual(Array.from({ length: 10 }, (_, i) => [1, 1 + (i % 2)]));
    const rows = Array.from({ length: 10 }, (_, i) => [i < 8 ? 1 : 0, 9 - i, 500, i < 8 ? 0 : 500] as const);
    // The second call may answer first: each decision still gets its own answer.
    second.resolve(reply(Date.now(), rows.slice(5)));
    first.resolve(reply(Date.now(), rows.slice(0, 5)));
    const results = await Promise.all(decisions);
    expect(results.map((d) => d.allowed)).toEqual([true, true, true, true, true, true, true, true, false, false]);
    expect(results[3]).toEqual({ allowed: true, limit: 10, remaining: 6, resetMs: 500, retryAfterMs: 0, store: 'redis' });
  });

  it('sends a tick of fewer than 8 decisions as one call', async () => {
    const { client, limiter } = setup();
    const decisions = Array.from({ length: 7 }, (_, i) => limiter.consume(`k${i}`));
    await flush();
    expect(client.calls.map((c) => c.ops.length)).toEqual([7]);
    client.last().resolve(admitAll(client.last()));
    expect((await Promise.all(decisions)).every((d) => d.store === 'redis')).toBe(true);
  });

  it('while a call is in flight, sends the next tick\'s decisions as one more call, not split', async () => {
    const { client, limiter } = setup();
    const first = limiter.consume('a');
    await flush();
    expect(client.calls).toHaveLength(1);
    const next = Array.from({ length: 16 }, (_, i) => limiter.consume(`k${i}`));
    await new Promise((resolve) => setImmediate(resolve));
    await flush();
    // Two calls in flight already overlap: splitting more only adds calls.
    expect(client.calls.map((c) => c.ops.length)).toEqual([1, 16]);
    for (const call of client.calls) call.resolve(admitAll(call));
    expect((await Promise.all([first, ...next])).every((d) => d.store === 'redis')).toBe(true);
  });

  it('once its calls are answered, splits the next tick\'s decisions again', async () => {
    const { client, limiter } = setup();
    const round1 = Array.from({ length: 16 }, (_, i) => limiter.consume(`k${i}`));
    await flush();
    expect(client.calls.map((c) => c.ops.length)).toEqual([8, 8]);
    for (const call of client.calls) call.resolve(admitAll(call));
    await Promise.all(round1);
    const round2 = Array.from({ length: 9 }, (_, i) => limiter.consume(`k${i}`));
    await flush();
    expect(client.calls.slice(2).map((c) => c.ops.length)).toEqual([5, 4]);
    for (const call of client.calls.slice(2)) call.resolve(admitAll(call));
    expect((await Promise.all(round2)).every((d) => d.store === 'redis')).toBe(true);
  });

  it('never puts more than maxBatch decisions in one call', async () => {
    const { client, limiter } = setup({ maxBatch: 4 });
    const decisions = Array.from({ length: 10 }, (_, i) => limiter.consume(`k${i}`));
    await flush();
    expect(client.calls.map((c) => c.ops.length)).toEqual([4, 4, 2]);
    for (const call of client.calls) call.resolve(admitAll(call));
    expect((await Promise.all(decisions)).every((d) => d.store === 'redis')).toBe(true);
  });

  it('reports GCRA decisions with burst as their limit and sends the emission interval and bucket in µs', async () => {
    const { client, limiter } = setup(undefined, gcra({ limit: 10, periodMs: 1_000, burst: 4 }));
    const d = limiter.consume('k');
    await flush();
    expect(client.last().args.slice(2, 4)).toEqual([100_000, 400_000]);
    client.last().resolve(reply(Date.now(), [[1, 3, 100, 0]]));
    expect((await d).limit).toBe(4);
  });

  it('keeps decisions of different algorithms in separate calls', async () => {
    const client = new FakeClient();
    const store = redisStore(client);
    const a = rateLimiter({ name: 'a', algorithm: slidingWindow({ limit: 5, windowMs: 1_000 }), store });
    const b = rateLimiter({ name: 'b', algorithm: gcra({ limit: 5, periodMs: 1_000 }), store });
    void a.consume('x');
    void b.consume('x');
    await flush();
    expect(client.calls.map((c) => c.command).sort()).toEqual(['bulwarkGcra4', 'bulwarkSlidingWindow4']);
    for (const call of client.calls) call.resolve(admitAll(call));
  });

  it('on a Cluster client, batches only keys of the same hash slot together', async () => {
    const client = new FakeClient();
    client.isCluster = true;
    const store = redisStore(client);
    const limiter = rateLimiter({ name: 'api', algorithm: fixedWindow({ limit: 10, windowMs: 1_000 }), store });
    const keys = Array.from({ length: 40 }, (_, i) => `user-${i}`);
    const decisions = keys.flatMap((k) => [limiter.consume(k), limiter.consume(k)]);
    await flush();
    const slots = new Set(keys.map((k) => hashSlot(store.redisKey(`3:api:k:${k}`))));
    expect(client.calls).toHaveLength(slots.size);
    for (const call of client.calls) {
      expect(new Set(call.keys.map(hashSlot)).size).toBe(1);
      call.resolve(admitAll(call));
    }
    await Promise.all(decisions);
  });

  it('after a reply, sets staleAfterUs to the estimated server time at its own deadline', async () => {
    const { client, limiter } = setup({ timeoutMs: 250 });
    const sentNoEarlierThan = Date.now();
    const first = limiter.consume('k');
    await flush();
    const serverAhead = Date.now() + 60_000; // the server clock runs a minute ahead of ours
    client.last().resolve(reply(serverAhead, [[1, 9, 100, 0]]));
    await first;
    // The estimate errs towards a later server time by up to the round trip (here, from sending
    // to the reply's making, which a loaded machine stretches) and one whole ms: never earlier.
    const roundTrip = serverAhead - 60_000 - sentNoEarlierThan;
    const before = Date.now();
    const second = limiter.consume('k');
    await flush();
    const call = client.last();
    call.resolve(admitAll(call));
    await second;
    const staleAfterMs = call.staleAfterUs / 1000;
    expect(staleAfterMs).toBeGreaterThanOrEqual(before + 60_000 + 250 - 2);
    expect(staleAfterMs).toBeLessThanOrEqual(Date.now() + 60_000 + 250 + roundTrip + 2);
  });
});

describe('a server clock far from ours', () => {
  it('a call the server finds stale is sent again once, with the offset its reply showed', async () => {
    const { client, limiter } = setup({ timeoutMs: 100 });
    const d = limiter.consume('k');
    await flush();
    const serverNow = Date.now() + 3_600_000; // an hour ahead
    client.last().resolve(reply(serverNow, [], 2));
    await flush();
    expect(client.calls).toHaveLength(2);
    expect(client.last().staleAfterUs / 1000).toBeGreaterThanOrEqual(serverNow + 100 - 5);
    client.last().resolve(reply(serverNow, [[1, 9, 100, 0]]));
    expect((await d).store).toBe('redis');
  });
});

describe('on a Cluster during a slot migration', () => {
  it('a batch answered TRYAGAIN is sent again one key per call, still bounded by the timeout', async () => {
    const client = new FakeClient();
    client.isCluster = true;
    const store = redisStore(client, { timeoutMs: 60 });
    const limiter = rateLimiter({ name: 'api', algorithm: fixedWindow({ limit: 10, windowMs: 1_000 }), store });
    // Two user keys in one slot: find them.
    const slotOf = (k: string) => hashSlot(store.redisKey(`3:api:k:${k}`));
    const first = 'user-0';
    let second = '';
    for (let i = 1; second === ''; i++) if (slotOf(`user-${i}`) === slotOf(first)) second = `user-${i}`;
    const decisions = [limiter.consume(first), limiter.consume(second), limiter.consume(first)];
    await flush();
    expect(client.calls).toHaveLength(1);
    client.last().reject(new Error('Too many Cluster redirections. Last error: ReplyError: TRYAGAIN Multiple keys request during rehashing of slot'));
    await flush();
    expect(client.calls).toHaveLength(3);
    const [a, b] = client.calls.slice(1);
    expect(new Set(a!.keys).size).toBe(1);
    expect(new Set(b!.keys).size).toBe(1);
    expect(a!.ops.length + b!.ops.length).toBe(3);
    a!.resolve(admitAll(a!));
    // b never answers: its decision follows onStoreError at the original deadline.
    const results = await Promise.all(decisions);
    expect(results.map((r) => r.store).sort()).toEqual(a!.keys.length === 2 ? ['local', 'redis', 'redis'] : ['local', 'local', 'redis']);
  });

  it('a TRYAGAIN for a single key is a failure like any other', async () => {
    const client = new FakeClient();
    client.isCluster = true;
    const limiter = rateLimiter({ name: 'api', algorithm: fixedWindow({ limit: 10, windowMs: 1_000 }), store: redisStore(client) });
    const d = Promise.all([limiter.consume('k'), limiter.consume('k')]);
    await flush();
    client.last().reject(new Error('TRYAGAIN'));
    expect((await d).map((r) => r.store)).toEqual(['local', 'local']);
    expect(client.calls).toHaveLength(1);
  });
});

describe('when Redis does not answer in time', () => {
  it('a decision follows onStoreError (local by default) once timeoutMs has passed', async () => {
    const { client, limiter } = setup({ timeoutMs: 20 });
    const started = performance.now();
    const d = await limiter.consume('k');
    expect(performance.now() - started).toBeGreaterThanOrEqual(19);
    expect(d).toMatchObject({ allowed: true, store: 'local', remaining: 9 });
    expect(client.calls).toHaveLength(1);
  });

  it('a reply that came in while this process was blocked past the deadline is still used, and no failure is counted', async () => {
    // The reply travels over a real loopback socket, so that it waits to be read while the
    // event loop runs its timers first, as an ioredis reply would.
    let serverSide: net.Socket | undefined;
    const server = net.createServer((socket) => (serverSide = socket));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const socket = net.connect((server.address() as net.AddressInfo).port, '127.0.0.1');
    await new Promise((resolve) => socket.once('connect', resolve));
    while (serverSide === undefined) await sleep(1);
    try {
      const { client, store, limiter } = setup({ timeoutMs: 30, openAfterFailures: 1 });
      const d = limiter.consume('k');
      await flush();
      const call = client.last();
      socket.once('data', () => call.resolve(admitAll(call)));
      setImmediate(() => {
        serverSide!.write('reply');
        // A long synchronous task: when it ends, the deadline has passed and the reply is unread.
        const until = performance.now() + 60;
        while (performance.now() < until);
      });
      expect((await d).store).toBe('redis');
      expect(store.status).toBe('ready');
    } finally {
      socket.destroy();
      serverSide.destroy();
      await new Promise((resolve) => server.close(resolve));
    }
  });

  it('a quota fails closed by default; fail-open admits', async () => {
    const client = new FakeClient();
    const store = redisStore(client, { timeoutMs: 10 });
    const q = quota({ name: 'q', limit: 10, period: 'day', store });
    expect(await q.consume('t')).toMatchObject({ allowed: false, store: 'fail-closed', remaining: 0, limit: 10 });
    const open = rateLimiter({ algorithm: fixedWindow({ limit: 3, windowMs: 1_000 }), store: redisStore(client, { timeoutMs: 10, onStoreError: 'fail-open' }) });
    expect(await open.consume('t')).toMatchObject({ allowed: true, store: 'fail-open', remaining: 2 });
  });

  it('gives back, in Redis, a late admission whose caller was told no, in a call that cannot go stale', async () => {
    const { client, limiter } = setup({ timeoutMs: 15, onStoreError: 'fail-closed' });
    const d = await limiter.consume('k', { cost: 3 });
    expect(d.store).toBe('fail-closed');
    const late = client.last();
    late.resolve(reply(Date.now(), [[1, 7, 100, 0]]));
    await flush();
    expect(client.calls).toHaveLength(2);
    const refund = client.last();
    expect(refund.ops).toEqual([[3, 3]]);
    expect(refund.keys).toEqual(late.keys);
    expect(refund.staleAfterUs).toBe(0);
    refund.resolve(admitAll(refund));
  });

  it('keeps a late admission whose caller was admitted by the fallback (the work happened)', async () => {
    const { client, limiter } = setup({ timeoutMs: 15, onStoreError: 'fail-open' });
    await limiter.consume('k');
    client.last().resolve(reply(Date.now(), [[1, 9, 100, 0]]));
    await flush();
    expect(client.calls).toHaveLength(1);
  });

  it('ignores a late reply that says the call was stale (it changed nothing)', async () => {
    const { client, limiter } = setup({ timeoutMs: 15, onStoreError: 'fail-closed' });
    await limiter.consume('k');
    client.last().resolve(reply(Date.now(), [], 2));
    await flush();
    expect(client.calls).toHaveLength(1);
  });
});

describe('the breaker around Redis', () => {
  it('after openAfterFailures failed calls, decides locally without calling Redis, then probes after openMs', async () => {
    const { client, store, limiter } = setup({ openAfterFailures: 2, openMs: 40 });
    for (let i = 0; i < 2; i++) {
      const d = limiter.consume('k');
      await flush();
      client.last().reject(new Error('Connection is closed.'));
      expect((await d).store).toBe('local');
    }
    expect(store.status).toBe('degraded');
    const calls = client.calls.length;
    const started = performance.now();
    const fast = await Promise.all(Array.from({ length: 5 }, () => limiter.consume('k')));
    expect(performance.now() - started).toBeLessThan(15);
    expect(fast.every((d) => d.store === 'local')).toBe(true);
    expect(client.calls).toHaveLength(calls);

    await sleep(45);
    const probe = limiter.consume('k');
    const during = limiter.consume('k'); // same tick: joins the probe's batch
    await flush();
    expect(client.calls).toHaveLength(calls + 1);
    const whileProbing = await limiter.consume('k'); // after the probe went out: local
    expect(whileProbing.store).toBe('local');
    client.last().resolve(admitAll(client.last()));
    expect((await probe).store).toBe('redis');
    expect((await during).store).toBe('redis');
    expect(store.status).toBe('ready');
  });

  it('a failed probe opens it again for openMs', async () => {
    const { client, limiter } = setup({ openAfterFailures: 1, openMs: 30 });
    const first = limiter.consume('k');
    await flush();
    client.last().reject(new Error('down'));
    await first;
    await sleep(35);
    const probe = limiter.consume('k');
    await flush();
    client.last().reject(new Error('still down'));
    expect((await probe).store).toBe('local');
    const calls = client.calls.length;
    await limiter.consume('k');
    expect(client.calls).toHaveLength(calls);
  });

  it('decides at once, without a call, while the client is not ready', async () => {
    const { client, store, limiter } = setup();
    client.status = 'reconnecting';
    expect(store.status).toBe('degraded');
    expect(await stateOf(limiter.consume('k'))).toBe('fulfilled');
    expect((await limiter.consume('k')).store).toBe('local');
    expect(client.calls).toHaveLength(0);
  });

  it('a batch that finds the client gone when it is sent falls back at once', async () => {
    const { client, limiter } = setup();
    const d = limiter.consume('k');
    client.status = 'close';
    expect((await d).store).toBe('local');
    expect(client.calls).toHaveLength(0);
  });

  it('an unexpected reply counts as a failure', async () => {
    const { client, limiter } = setup();
    const d = limiter.consume('k');
    await flush();
    client.last().resolve('OK');
    expect((await d).store).toBe('local');
  });

  it.each([
    ['one answer short', (ms: number) => reply(ms, [[1, 4, 100, 0]])],
    ['an answer cut in half', (ms: number) => reply(ms, [[1, 4, 100, 0], [1, 3, 100, 0]]).slice(0, -1)],
    ['a denial missing its retryAfterMs', (ms: number) => reply(ms, [[1, 4, 100, 0], [0, 0, 100, 50]]).slice(0, -1)],
    ['one answer too many', (ms: number) => reply(ms, [[1, 4, 100, 0], [1, 3, 100, 0], [1, 2, 100, 0]])],
  ])('a decided reply with %s counts as a failure, and no caller reads a wrong answer', async (_label, make) => {
    const { client, limiter } = setup();
    const d = Promise.all([limiter.consume('a'), limiter.consume('b')]);
    await flush();
    expect(client.last().ops).toHaveLength(2);
    client.last().resolve(make(Date.now()));
    expect((await d).map((x) => x.store)).toEqual(['local', 'local']);
  });

  it.each([1.5, -3, 0, Number.NaN, 11])('rejects a cost of %s given to the store directly, before anything is sent', async (cost) => {
    // The costs of a batch travel as one string of whole numbers: a bad one must not get that far.
    const { client, store } = setup();
    const fw = fixedWindow({ limit: 10, windowMs: 60_000 });
    expect(() => store.consume('a', fw, cost)).toThrow(/cost/);
    expect(() => store.peek('a', fw, cost)).toThrow(/cost/);
    if (cost < 11) await expect(store.refund('a', fw, cost)).rejects.toThrow(/cost/);
    await flush();
    expect(client.calls).toHaveLength(0);
  });

  it('rejects such a cost even for an algorithm whose own check lets it through (a calendar quota checks only the limit)', async () => {
    const { client, store } = setup();
    const calendar = calendarOf({ limit: 50, period: 'day', timeZone: 'UTC' });
    expect(() => calendar.peek(undefined, Date.now(), 1.5)).not.toThrow();
    expect(() => store.consume('t', calendar, 1.5)).toThrow(/redisStore: "cost" must be a whole number from 1 to 50, got 1.5/);
    expect(() => store.peek('t', calendar, 0)).toThrow(/redisStore: "cost"/);
    await flush();
    expect(client.calls).toHaveLength(0);
  });

  it('sends the operations as one string and the costs as another, and leaves out what the script assumes: all consumes, costs of 1, no flags', async () => {
    const { client, limiter } = setup();
    // The first call asks for the server's time (flags 2), so the arguments before it go too, as ''.
    const first = limiter.consume('a');
    await flush();
    expect(client.last().args.slice(-3)).toEqual(['', '', 2]);
    client.last().resolve(admitAll(client.last()));
    await first;
    const d = Promise.all([limiter.consume('a'), limiter.consume('b'), limiter.peek('c')]);
    await flush();
    expect(client.last().args.slice(-2)).toEqual([client.last().staleAfterUs, '112']);
    client.last().resolve(reply(Date.now(), [[1, 4, 100, 0], [0, 0, 100, 50], [1, 9, 100, 0]]));
    expect((await d).map((x) => [x.allowed, x.remaining, x.retryAfterMs])).toEqual([
      [true, 4, 0],
      [false, 0, 50],
      [true, 9, 0],
    ]);
    const e = Promise.all([limiter.consume('a', { cost: 3 }), limiter.consume('b')]);
    await flush();
    expect(client.last().args.slice(-2)).toEqual(['', '3 1']);
    client.last().resolve(reply(Date.now(), [[1, 1, 100, 0], [1, 3, 100, 0]]));
    expect((await e).map((x) => x.remaining)).toEqual([1, 3]);
    // The usual call: keys, the two fixed arguments and staleAfterUs, nothing more.
    const f = limiter.consume('a');
    await flush();
    expect(client.last().args).toEqual([1, client.last().keys[0], 10, 60_000, client.last().staleAfterUs]);
    client.last().resolve(reply(Date.now(), [[1, 0, 100, 0]]));
    expect((await f).remaining).toBe(0);
  });

  it('asks for the server time on the first call, then once a second, and again after a failure', async () => {
    const { client, limiter } = setup({ timeoutMs: 100 });
    const answer = async (d: Promise<unknown>) => {
      await flush();
      client.last().resolve(admitAll(client.last()));
      await d;
      return client.last().flags;
    };
    expect(await answer(limiter.consume('a'))).toBe(2);
    expect(await answer(limiter.consume('a'))).toBe(0);
    expect(await answer(limiter.consume('a'))).toBe(0);
    const realNow = Date.now;
    const start = realNow();
    const clock = vi.spyOn(Date, 'now').mockImplementation(() => start + 1_001);
    try {
      expect(await answer(limiter.consume('a'))).toBe(2);
      expect(await answer(limiter.consume('a'))).toBe(0);
    } finally {
      clock.mockRestore();
    }
    const failed = limiter.consume('a');
    await flush();
    client.last().reject(new Error('Connection is closed.'));
    expect((await failed).store).toBe('local');
    expect(await answer(limiter.consume('a'))).toBe(2);
  });

  it('a reply with the time when the call did not ask for it, or without it when it did, counts as a failure', async () => {
    const { client, limiter } = setup();
    const first = limiter.consume('a');
    await flush();
    client.last().resolve(admitAll(client.last()));
    await first;
    const untimed = limiter.consume('a');
    await flush();
    expect(client.last().flags).toBe(0);
    client.last().resolveAsIs([Date.now() * 4, 4, 100]);
    expect((await untimed).store).toBe('local');
    // After the failure the next call asks for the time.
    const timed = limiter.consume('a');
    await flush();
    expect(client.last().flags).toBe(2);
    client.last().resolveAsIs([4, 100]); // admitted, 4 left: the answer alone
    expect((await timed).store).toBe('local');
  });

  it('publishes store errors on bulwark:ratelimit:store-error when someone listens', async () => {
    const messages: unknown[] = [];
    const listener = (m: unknown) => messages.push(m);
    diagnosticsChannel.subscribe(channelNames.storeError, listener);
    subscriptions.push([channelNames.storeError, listener]);
    const { client, limiter } = setup();
    const d = Promise.all([limiter.consume('a'), limiter.consume('b')]);
    await flush();
    const cause = new Error('Connection is closed.');
    client.last().reject(cause);
    await d;
    expect(messages).toHaveLength(1);
    expect(messages[0]).toMatchObject({ store: 'redis', fallback: 'local', operations: 2 });
    expect((messages[0] as { error: StoreUnavailableError }).error).toBeInstanceOf(StoreUnavailableError);
    expect((messages[0] as { error: StoreUnavailableError }).error.cause).toBe(cause);
  });
});

describe('cancellation', () => {
  it('a decision rejects with the signal\'s reason when aborted, and a late admission is given back', async () => {
    const { client, limiter } = setup();
    const controller = new AbortController();
    const d = capture(limiter.consume('k', { signal: controller.signal, cost: 2 }));
    await flush();
    const reason = new Error('client went away');
    controller.abort(reason);
    expect(await d).toEqual({ ok: false, error: reason });
    client.last().resolve(reply(Date.now(), [[1, 8, 100, 0]]));
    await flush();
    expect(client.last().ops).toEqual([[3, 2]]);
    client.last().resolve(admitAll(client.last()));
  });

  it('removes its abort listener once the decision settles', async () => {
    const { client, limiter } = setup();
    const controller = new AbortController();
    const d = limiter.consume('k', { signal: controller.signal });
    await flush();
    client.last().resolve(admitAll(client.last()));
    await d;
    const { abortListeners } = await import('../../../support/helpers.js');
    expect(abortListeners(controller.signal)).toBe(0);
  });

  it('20 decisions in flight on one signal share one abort listener (no MaxListeners warning)', async () => {
    const { client, limiter } = setup();
    const controller = new AbortController();
    const { abortListeners } = await import('../../../support/helpers.js');
    const ds = Array.from({ length: 20 }, (_, i) => limiter.consume(`k${i}`, { signal: controller.signal }));
    await flush();
    expect(abortListeners(controller.signal)).toBe(1);
    const reason = new Error('client went away');
    controller.abort(reason);
    for (const d of ds) await expect(d).rejects.toBe(reason);
    expect(abortListeners(controller.signal)).toBe(0);
    // Redis answers late: every admission is given back, in one more round trip.
    const sent = client.calls.length;
    for (const call of client.calls.slice(0, sent)) call.resolve(admitAll(call));
    await flush();
    for (const call of client.calls.slice(sent)) call.resolve(admitAll(call));
    await flush();
  });
});

describe('the deny cache', () => {
  it('denies a key Redis denied, without a round trip, until retryAfterMs; a smaller cost still asks Redis', async () => {
    const { client, limiter } = setup({ denyCache: true });
    const first = limiter.consume('k', { cost: 3 });
    await flush();
    client.last().resolve(reply(Date.now(), [[0, 1, 900, 60]]));
    expect(await first).toMatchObject({ allowed: false, store: 'redis', retryAfterMs: 60 });
    const cached = await limiter.consume('k', { cost: 3 });
    expect(cached).toMatchObject({ allowed: false, store: 'deny-cache', remaining: 0, limit: 10 });
    expect(cached.retryAfterMs).toBeGreaterThan(0);
    expect(cached.retryAfterMs).toBeLessThanOrEqual(60);
    expect(cached.resetMs).toBeGreaterThanOrEqual(cached.retryAfterMs);
    expect(client.calls).toHaveLength(1);

    const smaller = limiter.consume('k', { cost: 1 });
    await flush();
    expect(client.calls).toHaveLength(2);
    client.last().resolve(admitAll(client.last()));
    expect((await smaller).store).toBe('redis');

    await sleep(65);
    const later = limiter.consume('k', { cost: 3 });
    await flush();
    expect(client.calls).toHaveLength(3);
    client.last().resolve(admitAll(client.last()));
    expect((await later).store).toBe('redis');
  });

  it('reset forgets a cached denial', async () => {
    const { client, limiter } = setup({ denyCache: true });
    const first = limiter.consume('k');
    await flush();
    client.last().resolve(reply(Date.now(), [[0, 0, 900, 5_000]]));
    await first;
    await limiter.reset('k');
    const after = limiter.consume('k');
    await flush();
    expect(client.calls).toHaveLength(2);
    client.last().resolve(admitAll(client.last()));
    expect((await after).store).toBe('redis');
  });

  it('is off by default', async () => {
    const { client, limiter } = setup();
    const first = limiter.consume('k');
    await flush();
    client.last().resolve(reply(Date.now(), [[0, 0, 900, 5_000]]));
    await first;
    void limiter.consume('k');
    await flush();
    expect(client.calls).toHaveLength(2);
    client.last().resolve(admitAll(client.last()));
  });
});

describe('refund, peek and reset', () => {
  it('refund clamps to what the algorithm holds and resolves once Redis has it', async () => {
    const { client, limiter } = setup();
    const done = limiter.refund('k', 1_000);
    await flush();
    expect(client.last().ops).toEqual([[3, 10]]);
    // A caller's refund is guarded like a decision: rejected means not applied, even if late.
    expect(client.last().staleAfterUs).toBeGreaterThan(0);
    client.last().resolve(admitAll(client.last()));
    await expect(done).resolves.toBeUndefined();
  });

  it('refund rejects with StoreUnavailableError when Redis fails or is unreachable', async () => {
    const { client, limiter } = setup({ timeoutMs: 10 });
    await expect(limiter.refund('k')).rejects.toBeInstanceOf(StoreUnavailableError);
    client.status = 'end';
    await expect(limiter.refund('k')).rejects.toThrow(/client status is "end"/);
  });

  it('peek sends a peek operation and falls back like a decision', async () => {
    const { client, limiter } = setup({ timeoutMs: 10 });
    const p = limiter.peek('k', { cost: 2 });
    await flush();
    expect(client.last().ops).toEqual([[2, 2]]);
    client.last().resolve(reply(Date.now(), [[1, 8, 100, 0]]));
    expect(await p).toMatchObject({ allowed: true, remaining: 8, store: 'redis' });
    expect((await limiter.peek('k')).store).toBe('local');
  });

  it('reset deletes the key, and rejects with StoreUnavailableError on failure or after timeoutMs', async () => {
    const { client, limiter } = setup({ timeoutMs: 15 });
    await limiter.reset('k');
    expect(client.deleted).toEqual(['bulwark:{3:api:k:k}']);
    client.delBehaviour = 'fail';
    await expect(limiter.reset('k')).rejects.toBeInstanceOf(StoreUnavailableError);
    client.delBehaviour = 'hang';
    await expect(limiter.reset('k')).rejects.toThrow(/no answer within 15 ms/);
  });
});

describe('calendar quotas', () => {
  it('send the bounds of the period holding the server time, and call again when the server says the period differs', async () => {
    const client = new FakeClient();
    const store = redisStore(client);
    const q = quota({ name: 'q', limit: 100, period: 'day', timeZone: 'UTC', store });
    const d = q.consume('t', { cost: 5 });
    await flush();
    const first = client.last();
    const now = Date.now();
    const dayStart = now - (now % 86_400_000);
    expect(first.period).toEqual([dayStart, dayStart + 86_400_000]);
    // The server is two days ahead.
    const serverNow = now + 2 * 86_400_000;
    first.resolve(reply(serverNow, [], 1));
    await flush();
    const second = client.last();
    expect(second).not.toBe(first);
    expect(second.period).toEqual([dayStart + 2 * 86_400_000, dayStart + 3 * 86_400_000]);
    second.resolve(reply(serverNow, [[1, 95, 1_000, 0]]));
    expect(await d).toMatchObject({ allowed: true, remaining: 95, store: 'redis' });
  });

  it('give up after one retry and follow onStoreError', async () => {
    const client = new FakeClient();
    const q = quota({ name: 'q', limit: 100, period: 'day', store: redisStore(client) });
    const d = q.consume('t');
    await flush();
    client.last().resolve(reply(Date.now(), [], 1));
    await flush();
    client.last().resolve(reply(Date.now(), [], 1));
    expect(await d).toMatchObject({ allowed: false, store: 'fail-closed' });
    expect(client.calls).toHaveLength(2);
  });
});
