// What the window scripts keep in Redis, and rolling upgrades from earlier releases: version 3
// stores one integer per key (small counts: a shared object, no memory of its own), reads the
// text values of version 2, and with `legacyValues` writes text that version 2's scripts read, so
// old and new processes sharing a Redis count every unit once. Version 4 changed only the call
// (fewer arguments, a shorter reply): it stores what version 3 stores, so the two share keys with
// no option. Earlier releases' scripts run here from fixtures/ (copies of them as they shipped).
import { Redis } from 'ioredis';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { RateLimitAlgorithm } from '../../../src/ratelimit/algorithm.js';
import { fixedWindow, gcra, slidingWindow } from '../../../src/ratelimit/algorithms/index.js';
import { storeKey } from '../../../src/ratelimit/keys.js';
import { rateLimiter } from '../../../src/ratelimit/rate-limiter.js';
import { redisStore } from '../../../src/ratelimit/redis/redis-store.js';
import { planFor } from '../../../src/ratelimit/redis/scripts.js';
import { disconnectClient, startRedis, type RedisServer } from '../support/redis.js';
import fixedWindowV2 from './fixtures/fixed-window-v2.lua';
import gcraV2 from './fixtures/gcra-v2.lua';
import slidingWindowV2 from './fixtures/sliding-window-v2.lua';
import fixedWindowV3 from './fixtures/fixed-window-v3.lua';
import gcraV3 from './fixtures/gcra-v3.lua';
import slidingWindowV3 from './fixtures/sliding-window-v3.lua';
import { fixedWindowCount, isInteger, slidingWindowCounts } from './stored-values.js';

type OldCommand = (...args: (string | number)[]) => Promise<number[]>;

let server: RedisServer;
let client: Redis;
beforeAll(async () => {
  server = await startRedis();
  client = new Redis({ port: server.port, host: '127.0.0.1', lazyConnect: true });
  await client.connect();
  client.defineCommand('oldFixedWindow', { lua: fixedWindowV2 });
  client.defineCommand('oldSlidingWindow', { lua: slidingWindowV2 });
  client.defineCommand('oldGcra', { lua: gcraV2 });
  client.defineCommand('v3FixedWindow', { lua: fixedWindowV3 });
  client.defineCommand('v3SlidingWindow', { lua: slidingWindowV3 });
  client.defineCommand('v3Gcra', { lua: gcraV3 });
});
afterAll(async () => {
  await disconnectClient(client);
  await server?.stop();
});
beforeEach(async () => {
  await client.flushall();
});

const HOUR = 3_600_000;
const kinds: [string, () => RateLimitAlgorithm, string, string][] = [
  ['fixedWindow', () => fixedWindow({ limit: 10, windowMs: HOUR }), 'oldFixedWindow', 'v3FixedWindow'],
  ['slidingWindow', () => slidingWindow({ limit: 10, windowMs: HOUR }), 'oldSlidingWindow', 'v3SlidingWindow'],
  ['gcra', () => gcra({ limit: 10, periodMs: HOUR }), 'oldGcra', 'v3Gcra'],
];

/** The current-window count a windowed value holds, in either format. */
function countOf(kind: string, value: string | null): number {
  return kind === 'fixedWindow' ? fixedWindowCount(value) : slidingWindowCounts(value)[0];
}

/**
 * The units a key holds: a window's count; for GCRA, the backlog in whole units of T (the tat
 * itself, or the remainder before the key's expiry on Redis >= 7.0).
 */
async function unitsOf(kind: string, key: string): Promise<number> {
  const value = await client.get(key);
  if (kind !== 'gcra') return countOf(kind, value);
  if (value === null) return 0;
  const tat = Number(value) >= 1e6 ? Number(value) : Number(await client.call('PEXPIRETIME', key)) * 1000 - Number(value);
  const [sec, usec] = await client.time();
  // T is 360,000,000 µs (6 minutes) here: the few ms of the test do not move the count.
  return Math.round((tat - (Number(sec) * 1e6 + Number(usec))) / 360_000_000);
}

/** One consume of `cost` by the previous release's script; resolves with [allowed, remaining]. */
async function oldConsume(command: string, redisKey: string, algorithm: RateLimitAlgorithm, cost = 1): Promise<[boolean, number]> {
  const call = (client as unknown as Record<string, OldCommand>)[command]!;
  // Version 2's arguments: the two fixed ones of version 4, staleAfterUs, the operations, the costs.
  const reply = await call.call(client, 1, redisKey, ...planFor(algorithm).fixedArgs, 0, '1', cost === 1 ? '' : String(cost));
  const first = reply[3]!;
  return first >= 0 ? [true, first] : [false, -1 - first];
}

/** One consume by version 3's script (writing integers); resolves with [allowed, remaining]. */
async function v3Consume(command: string, redisKey: string, algorithm: RateLimitAlgorithm): Promise<[boolean, number]> {
  const call = (client as unknown as Record<string, OldCommand>)[command]!;
  // Version 3's arguments: the two fixed ones, legacyValues 0, staleAfterUs, the operations, the costs.
  const reply = await call.call(client, 1, redisKey, ...planFor(algorithm).fixedArgs, 0, 0, '1', '');
  const first = reply[3]!;
  return first >= 0 ? [true, first] : [false, -1 - first];
}

function setup(name: string, build: () => RateLimitAlgorithm, legacyValues?: boolean) {
  const store = redisStore(client, { timeoutMs: 2_000, ...(legacyValues === undefined ? {} : { legacyValues }) });
  const algorithm = build();
  const limiter = rateLimiter({ name: `upgrade-${name}`, algorithm, store });
  const redisKey = (key: string) => store.redisKey(storeKey('test', `upgrade-${name}`, key));
  return { algorithm, limiter, redisKey };
}

describe.each(kinds)('%s', (name, build, oldCommand, v3Command) => {
  it('stores one integer, a shared object for a small count', async () => {
    const { limiter, redisKey } = setup(name, build);
    for (let i = 0; i < 3; i++) expect((await limiter.consume('user-1')).allowed).toBe(true);
    const key = redisKey('user-1');
    const value = await client.get(key);
    expect(isInteger(value!), `stored ${value}`).toBe(true);
    expect(await unitsOf(name, key)).toBe(3);
    expect(await client.object('ENCODING', key)).toBe('int');
    // Redis's shared integers (0 to 9,999) have the largest reference count, 2^31 - 1.
    expect(await client.object('REFCOUNT', key)).toBe(2 ** 31 - 1);
    expect(await client.pttl(key)).toBeGreaterThan(0);
  });

  it("reads the previous release's values: no count is lost in an upgrade", async () => {
    const { algorithm, limiter, redisKey } = setup(name, build);
    const key = redisKey('user-2');
    expect(await oldConsume(oldCommand, key, algorithm, 4)).toEqual([true, 6]);
    expect(Number(await client.get(key)) < 10_000).toBe(false);
    const d = await limiter.consume('user-2');
    expect([d.allowed, d.remaining, d.store]).toEqual([true, 5, 'redis']);
    // Rewritten as an integer by that change, with the count and the TTL it had.
    const value = await client.get(key);
    expect(isInteger(value!), `stored ${value}`).toBe(true);
    expect(Number(value), 'a small integer').toBeLessThan(10_000);
    expect(await unitsOf(name, key)).toBe(5);
    expect(await client.pttl(key)).toBeGreaterThan(0);
    expect((await limiter.consume('user-2', { cost: 5 })).allowed).toBe(true);
    expect((await limiter.consume('user-2')).allowed).toBe(false);
  });

  /**
   * 16 consumes of 1 on one key (limit 10), taking turns: an older release's script, then this
   * store. Resolves with how many were admitted and the value left stored.
   */
  async function takingTurns(older: (key: string, algorithm: RateLimitAlgorithm) => Promise<[boolean, number]>, legacyValues: boolean | undefined, user: string) {
    const { algorithm, limiter, redisKey } = setup(name, build, legacyValues);
    const key = redisKey(user);
    let admitted = 0;
    for (let i = 0; i < 16; i++) {
      const allowed = i % 2 === 0 ? (await older(key, algorithm))[0] : (await limiter.consume(user)).allowed;
      if (allowed) admitted++;
    }
    expect(await unitsOf(name, key)).toBe(10);
    return { admitted, value: await client.get(key) };
  }

  it('with legacyValues, old and new processes sharing a key count every unit once', async () => {
    const { admitted, value } = await takingTurns((key, algorithm) => oldConsume(oldCommand, key, algorithm), true, 'user-3');
    expect(admitted).toBe(10);
    expect(Number(value) < 10_000, `stored ${value}`).toBe(false);
  });

  it('version 3 and this version share a key with no option: every unit is counted once, as an integer', async () => {
    const { admitted, value } = await takingTurns((key, algorithm) => v3Consume(v3Command, key, algorithm), undefined, 'user-10');
    expect(admitted).toBe(10);
    expect(Number(value), `stored ${value}`).toBeLessThan(10_000);
  });

  it("without legacyValues, the previous release's script does not see the new values (why the option exists)", async () => {
    const { algorithm, limiter, redisKey } = setup(name, build, false);
    for (let i = 0; i < 4; i++) await limiter.consume('user-4');
    // Version 2 finds no text it can read: to it the key is new, and its count starts again.
    expect(await oldConsume(oldCommand, redisKey('user-4'), algorithm)).toEqual([true, 9]);
  });
});

it('slidingWindow: a text value of the previous window becomes the previous count', async () => {
  const { limiter, redisKey } = setup('sliding-previous', () => slidingWindow({ limit: 10, windowMs: HOUR }));
  const [sec] = await client.time();
  const s = Number(sec) * 1000 - ((Number(sec) * 1000) % HOUR);
  const key = redisKey('user-5');
  // Written by version 2 in the window before this one: 6 units, expiring 2W after its start.
  await client.set(key, `${s - HOUR} 6 0`, 'PX', s + HOUR - Number(sec) * 1000);
  const d = await limiter.consume('user-5');
  expect(d.allowed).toBe(true);
  // 6 units from the previous window, weighted by what is left of it, and this one.
  const elapsed = Date.now() - s;
  expect(d.remaining).toBeLessThanOrEqual(10 - 1 - Math.floor((6 * (HOUR - elapsed - 5_000)) / HOUR));
  expect(slidingWindowCounts(await client.get(key))).toEqual([1, 6]);
});

it('slidingWindow: counts of 2^24 and more are stored as text (one integer would pass 2^53)', async () => {
  const { limiter, redisKey } = setup('sliding-big', () => slidingWindow({ limit: 2 ** 25, windowMs: 60_000 }));
  expect((await limiter.consume('user-6', { cost: 2 ** 24 })).allowed).toBe(true);
  const value = await client.get(redisKey('user-6'));
  expect(isInteger(value!), `stored ${value}`).toBe(false);
  expect(slidingWindowCounts(value)).toEqual([2 ** 24, 0]);
  expect((await limiter.consume('user-6', { cost: 2 ** 24 })).allowed).toBe(true);
  expect((await limiter.consume('user-6')).allowed).toBe(false);
});

it('redisStore: legacyValues must be a boolean', () => {
  expect(() => redisStore(client, { legacyValues: 'yes' as unknown as boolean })).toThrow(
    /redisStore: option "legacyValues" must be a boolean, got "yes"/,
  );
});

describe("a value whose tag is not the current window's: the key's TTL tells which window it holds", () => {
  const W = 60_000;
  const cases: [string, () => RateLimitAlgorithm, number, number][] = [
    // name, algorithm, the stored pair or count for 2 current units, how long after its start the key lives
    ['fixedWindow', () => fixedWindow({ limit: 10, windowMs: W }), 2, W],
    ['slidingWindow', () => slidingWindow({ limit: 10, windowMs: W }), 2 * 2 + 2, 2 * W],
  ];
  it.each(cases)('%s: a count of a window 9 windows ahead (the clock stepped back) is kept', async (name, build, counts, lives) => {
    const { limiter, redisKey } = setup(`ahead-${name}`, build);
    const [sec, usec] = await client.time();
    const t = Number(sec) * 1000 + Math.floor(Number(usec) / 1000);
    const s = t - (t % W);
    const start = s + 9 * W;
    // The tag repeats every 8 windows: 9 windows ahead carries the tag of the next window.
    const key = redisKey('user-7');
    await client.set(key, String(counts * 8 + ((start / W) % 8)), 'PX', start + lives - t);
    const d = await limiter.consume('user-7');
    expect([d.allowed, d.remaining]).toEqual([true, 7]);
    // The window in force ends with the stored one: start + lives, not the next window's end.
    expect(d.resetMs).toBeGreaterThan(start + lives - t - 1_000);
    expect(d.resetMs).toBeLessThanOrEqual(start + lives - t);
    expect(countOf(name, await client.get(key))).toBe(3);
  });

  it.each(cases)('%s: a count of the window that just ended is not carried into the next one', async (name, build, counts, lives) => {
    const { limiter, redisKey } = setup(`behind-${name}`, build);
    const [sec, usec] = await client.time();
    const t = Number(sec) * 1000 + Math.floor(Number(usec) / 1000);
    const s = t - (t % W);
    // A key of a window 8 windows before this one (the same tag) would have expired long ago;
    // one of the window before, still alive for a moment, must not count in full in this one.
    const start = s - W;
    const key = redisKey('user-8');
    await client.set(key, String(counts * 8 + ((((start / W) % 8) + 8) % 8)), 'PX', Math.max(start + lives - t, 1) + 500);
    const d = await limiter.consume('user-8');
    if (name === 'fixedWindow') expect([d.allowed, d.remaining]).toEqual([true, 9]);
    else expect(slidingWindowCounts(await client.get(key))).toEqual([1, 2]);
  });
});

describe('writes', () => {
  const windows: [string, () => RateLimitAlgorithm][] = [
    ['fixedWindow', () => fixedWindow({ limit: 100, windowMs: HOUR })],
    ['slidingWindow', () => slidingWindow({ limit: 100, windowMs: HOUR })],
  ];
  /** Calls of each command Redis ran (scripts' own calls included) since the last CONFIG RESETSTAT. */
  async function calls(): Promise<Record<string, number>> {
    const info = await client.info('commandstats');
    return Object.fromEntries([...info.matchAll(/^cmdstat_(\w+):calls=(\d+)/gm)].map((m) => [m[1]!, Number(m[2])]));
  }
  it.each(windows)('%s: a key holding a count of its window changes by INCRBY, its TTL untouched', async (name, build) => {
    const { limiter, redisKey } = setup(`writes-${name}`, build);
    expect((await limiter.consume('user-9')).allowed).toBe(true); // a new key: SET ... PX
    const key = redisKey('user-9');
    const ttl = await client.pttl(key);
    await client.config('RESETSTAT');
    for (let i = 0; i < 5; i++) expect((await limiter.consume('user-9', { cost: 2 })).allowed).toBe(true);
    // A refund too, in a fixed window (in a sliding one, it may bring the key's end closer: SET ... PX).
    if (name === 'fixedWindow') await limiter.refund('user-9', 3);
    const counted = await calls();
    expect(counted.incrby, 'INCRBY calls').toBe(name === 'fixedWindow' ? 6 : 5);
    expect(counted.set, 'SET calls').toBeUndefined();
    expect(countOf(name, await client.get(key))).toBe(name === 'fixedWindow' ? 1 + 10 - 3 : 1 + 10);
    const after = await client.pttl(key);
    expect(after).toBeLessThanOrEqual(ttl);
    expect(after).toBeGreaterThan(ttl - 5_000);
  });
});
