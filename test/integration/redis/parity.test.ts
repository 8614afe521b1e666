// The Lua scripts against the TypeScript algorithms they mirror: random batches of consume, peek
// and refund run on a real Redis, and every decision is replayed through the TypeScript function
// at the server time the script reported; decisions and stored state must match exactly. Then the
// same sequences through the public API on the memory and the Redis stores.
import { Redis as Redis5 } from 'ioredis';
import { Redis as Redis6 } from 'ioredis6';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AlgorithmState, RateLimitAlgorithm } from '../../../src/ratelimit/algorithm.js';
import { fixedWindow, gcra, slidingWindow } from '../../../src/ratelimit/algorithms/index.js';
import { memoryStore } from '../../../src/ratelimit/memory-store.js';
import { quota } from '../../../src/ratelimit/quota/quota.js';
import { rateLimiter } from '../../../src/ratelimit/rate-limiter.js';
import { redisStore } from '../../../src/ratelimit/redis/redis-store.js';
import { FLAG_TIME, OP_CONSUME, OP_PEEK, OP_REFUND, planFor, scripts } from '../../../src/ratelimit/redis/scripts.js';
import { between, seededRandom } from '../../unit/ratelimit/algorithms/support.js';
import { calendarOf } from '../../support/calendar.js';
import { disconnectClient, startRedis, type RedisServer } from '../support/redis.js';
import { fixedWindowCount, isInteger, slidingWindowCounts, windowTag } from './stored-values.js';

type Client = InstanceType<typeof Redis5>;
type Command = (...args: (string | number)[]) => Promise<number[]>;
/** A script run through {@link withTime}: the TIME it read, then its own reply. */
type TimedCommand = (...args: (string | number)[]) => Promise<[[string, string], number | number[]]>;

/**
 * The text of a script that runs `lua` unchanged and answers with the TIME it read (seconds and
 * µs) next to its own reply: the replay needs the server's clock to the µs (GCRA decides in µs),
 * which the reply itself gives only in whole ms, and only when the call asks for it.
 */
function withTime(lua: string): string {
  return [
    'local real, time = redis, nil',
    "local redis = setmetatable({ call = function(name, ...) local r = real.call(name, ...) if name == 'TIME' then time = r end return r end }, { __index = real })",
    'local function script()',
    lua,
    'end',
    'local reply = script()',
    'return { time, reply }',
  ].join('\n');
}

/**
 * Parses a stored value into the TypeScript state tuple it stands for. A windowed value of
 * version 3 (one integer: counts and a window tag) gives the start of the window within 4
 * windows of the one holding `nowMs` whose tag it carries; one of GCRA, the tat `value` µs before
 * `expireTimeMs`.
 */
function parseStored(algorithm: RateLimitAlgorithm, value: string, nowMs: number, expireTimeMs: number): number[] {
  const kind = algorithm.kind;
  // GCRA on Redis >= 7.0: the µs from the tat to the key's expiry (PEXPIRETIME), a whole ms.
  if (kind === 'gcra' && Number(value) < 1e6) return [expireTimeMs * 1000 - Number(value)];
  if ((kind === 'fixed-window' || kind === 'sliding-window') && isInteger(value)) {
    const W = algorithm.windowMs;
    const t = Math.floor(nowMs);
    const s = t - (((t % W) + W) % W);
    const d = (((windowTag(value) - (s / W)) % 8) + 8) % 8;
    const start = s + (d < 4 ? d : d - 8) * W;
    return kind === 'fixed-window' ? [start, fixedWindowCount(value)] : [start, ...slidingWindowCounts(value)];
  }
  const numbers = value.split(' ').map(Number);
  for (const n of numbers) expect(Number.isSafeInteger(n), `stored "${value}" holds whole numbers`).toBe(true);
  // The calendar stores the period end as a third number; the TypeScript state has two.
  return kind === 'calendar' ? numbers.slice(0, 2) : numbers;
}

const algorithms: [string, () => RateLimitAlgorithm][] = [
  ['gcra 10/100ms', () => gcra({ limit: 10, periodMs: 100 })],
  ['gcra 3/40ms burst 7', () => gcra({ limit: 3, periodMs: 40, burst: 7 })],
  ['gcra with a 50-day bucket (a tat of 16 digits)', () => gcra({ limit: 2, periodMs: 2 ** 31 - 1, burst: 4 })],
  ['gcra with a fractional period', () => gcra({ limit: 4, periodMs: 30.5 })],
  ['fixedWindow 10/50ms', () => fixedWindow({ limit: 10, windowMs: 50 })],
  ['fixedWindow 1/7ms', () => fixedWindow({ limit: 1, windowMs: 7 })],
  ['fixedWindow with the largest limit', () => fixedWindow({ limit: 2 ** 31 - 1, windowMs: 60_000 })],
  ['slidingWindow 10/50ms', () => slidingWindow({ limit: 10, windowMs: 50 })],
  ['slidingWindow 7/33ms', () => slidingWindow({ limit: 7, windowMs: 33 })],
  ['slidingWindow with limit × window near 2^52', () => slidingWindow({ limit: 2 ** 31 - 1, windowMs: 2 ** 21 })],
  ['calendar hour, 50 units', () => calendarOf({ limit: 50, period: 'hour', timeZone: 'Asia/Kolkata' })],
  ['calendar month, 2^50 units', () => calendarOf({ limit: 2 ** 50, period: 'month', timeZone: 'America/New_York' })],
];

const clients: [string, new (options: object) => Client][] = [
  ['ioredis 5', Redis5],
  ['ioredis 6', Redis6 as unknown as new (options: object) => Client],
];

let server: RedisServer;
beforeAll(async () => {
  server = await startRedis();
});
afterAll(async () => {
  await server?.stop();
});

describe.each(clients)('Lua scripts mirror the TypeScript algorithms (%s)', (_label, RedisClass) => {
  let client: Client;
  beforeAll(async () => {
    client = new RedisClass({ port: server.port, host: '127.0.0.1', enableOfflineQueue: true, lazyConnect: true });
    await client.connect();
    redisStore(client); // registers the scripts
    for (const { command, lua } of Object.values(scripts)) client.defineCommand(`${command}Timed`, { lua: withTime(lua) });
  });
  afterAll(async () => {
    await disconnectClient(client);
  });

  it.each(algorithms)('%s: a call whose operations or costs do not match its keys is refused, and changes nothing', async (label, build) => {
    const algorithm = build();
    const plan = planFor(algorithm);
    const keys = [`{q}${label}:a`, `{q}${label}:b`];
    await client.del(...keys);
    const call = (ops: string, costs: string): Promise<number[]> => {
      const args: (string | number)[] = [keys.length, ...keys, ...plan.fixedArgs];
      if (plan.calendar !== undefined) {
        const bounds = plan.calendar.periodAt(Date.now());
        args.push(bounds.start, bounds.end);
      }
      args.push(0, ops, costs);
      return (client as unknown as Record<string, Command>)[plan.command]!(...args);
    };
    await expect(call('1', '')).rejects.toThrow(/1 operations and 2 costs for 2 keys/);
    await expect(call('111', '')).rejects.toThrow(/3 operations/);
    // A cost that is not a whole number would split in two ("1.5": 1 and 5) and shift the rest.
    await expect(call('11', '1.5 1')).rejects.toThrow(/3 costs for 2 keys/);
    await expect(call('11', '1')).rejects.toThrow(/1 costs for 2 keys/);
    expect(await client.exists(...keys)).toBe(0);
    expect((await call('11', '1 1')).length).toBeGreaterThan(3);
  });

  // Batches of 1 to 12, and calls of one decision each: the scripts take a path of their own
  // for a call that carries one decision, which must answer and store exactly as a batch does.
  const sizes = algorithms.flatMap(([label, build]) => [[label, 12, build] as const, [label, 1, build] as const]);
  it.each(sizes)('%s: every decision and every stored state match (calls of 1 to %i decisions)', async (label, largest, build) => {
    const algorithm = build();
    const plan = planFor(algorithm);
    const random = seededRandom(label.length * 7919 + 17);
    const keys = [`{p}${label}:a`, `{p}${label}:b`, `{p}${label}:c`];
    await client.del(...keys);
    const model = new Map<string, AlgorithmState | undefined>();
    /** Server time (ms) at which each key's last write expires. */
    const expiry = new Map<string, number>();
    const maxCost = plan.maxCost;
    const bigCost = (): number => (maxCost > 1000 && random() < 0.3 ? between(random, 1, maxCost) : between(random, 1, Math.min(maxCost, 4)));
    let compared = 0;
    let admitted = 0;
    let denied = 0;

    // One decision a call: as many calls as 40 batches make decisions (6.5 on average).
    const rounds = largest === 1 ? 260 : 40;
    for (let round = 0; round < rounds; round++) {
      const n = between(random, 1, largest);
      const batch = Array.from({ length: n }, () => {
        const r = random();
        const op = r < 0.65 ? OP_CONSUME : r < 0.85 ? OP_PEEK : OP_REFUND;
        // Every fourth round costs 1 throughout: the costs then travel as '' (as the store sends them).
        return { key: keys[between(random, 0, keys.length - 1)]!, op, cost: round % 4 === 3 ? 1 : bigCost() };
      });
      const args: (string | number)[] = [n, ...batch.map((b) => b.key), ...plan.fixedArgs];
      if (plan.calendar !== undefined) {
        const bounds = plan.calendar.periodAt(Date.now());
        args.push(bounds.start, bounds.end);
      }
      args.push(0);
      // The operations, one character each ('' when all consume), their costs ('' when all are 1)
      // and the flags: left out from the end while they hold the script's default (as the store
      // sends them). Every other round asks for the time first in the reply.
      const costs = batch.map((b) => (b.op === OP_REFUND ? Math.min(b.cost, maxCost) : b.cost));
      const timed = random() < 0.5;
      const optional = [
        batch.every((b) => b.op === OP_CONSUME) ? '' : batch.map((b) => String(b.op)).join(''),
        costs.every((c) => c === 1) ? '' : costs.join(' '),
        timed ? String(plan.flags | FLAG_TIME) : plan.flags === 0 ? '' : String(plan.flags),
      ];
      while (optional.at(-1) === '') optional.pop();
      args.push(...optional);
      const sentAt = Date.now();
      const [time, answer] = await (client as unknown as Record<string, TimedCommand>)[`${plan.command}Timed`]!(...args);
      const nowMs = Number(time[0]) * 1000 + Number(time[1]) / 1000;
      expect(Array.isArray(answer), `decided: a table, not ${String(answer)}`).toBe(true);
      const reply = answer as number[];
      // The time when asked: whole ms × 4 (status 0), first.
      if (timed) expect(reply[0], 'the time first').toBe(Math.floor(nowMs) * 4);

      let at = timed ? 1 : 0;
      for (let i = 0; i < n; i++) {
        const { key, op, cost } = batch[i]!;
        // Admitted (and refunds): remaining, resetMs. Denied: -1 - remaining, resetMs, retryAfterMs.
        const first = reply[at]!;
        const got = first >= 0 ? [1, first, reply[at + 1], 0] : [0, -1 - first, reply[at + 1], reply[at + 2]];
        at += first >= 0 ? 2 : 3;
        const state = model.get(key);
        if (op === OP_REFUND) {
          // The memory store ignores a refund to a key it does not hold; so does the script.
          if (state !== undefined) {
            const outcome = algorithm.refund(state, nowMs, cost);
            model.set(key, outcome.state);
            expiry.set(key, nowMs + outcome.ttlMs);
          }
          expect(got).toEqual([1, 0, 0, 0]);
          continue;
        }
        const expected = op === OP_CONSUME ? algorithm.consume(state, nowMs, cost) : { decision: algorithm.peek(state, nowMs, cost), state };
        const d = expected.decision;
        expect(got, `${label} round ${round} op ${i} (${op === OP_CONSUME ? 'consume' : 'peek'} ${cost}) at ${nowMs}`).toEqual([
          d.allowed ? 1 : 0,
          d.remaining,
          d.resetMs,
          d.retryAfterMs,
        ]);
        if (op === OP_CONSUME) {
          if (d.allowed) {
            model.set(key, expected.state);
            expiry.set(key, nowMs + (expected as { ttlMs: number }).ttlMs);
            admitted++;
          } else denied++;
        }
        compared++;
      }
      expect(at, 'one answer per operation, nothing after').toBe(reply.length);

      for (const key of keys) {
        const [stored, pttl, expireTime] = await Promise.all([client.get(key), client.pttl(key), client.call('PEXPIRETIME', key)]);
        // Upper bound on the server time of these reads: the batch's time plus all that passed since it was sent.
        const readBy = nowMs + (Date.now() - sentAt) + 1;
        const state = model.get(key);
        const expiresAt = expiry.get(key);
        // The three reads run one after another: a key can expire between them (PEXPIRETIME -2).
        if (stored === null || pttl === -2 || Number(expireTime) === -2) {
          // Gone: deleted by a refund to nothing, or expired, but never before its TTL ran out.
          if (state !== undefined) {
            expect(expiresAt!, `${key} vanished before its TTL ran out`).toBeLessThanOrEqual(Math.ceil(readBy));
            model.delete(key);
          }
          continue;
        }
        expect(parseStored(algorithm, stored, nowMs, Number(expireTime)), `${key} after round ${round}`).toEqual(state === undefined ? undefined : [...state]);
        // The TTL is the one the TypeScript algorithm asks for. PX is whole ms, counted by Redis
        // from its own clock when the SET runs, which may have ticked past the script's TIME by
        // a ms; and a window's key written with KEEPTTL keeps the expiry of an earlier batch of
        // the same window (the same instant, up to that rounding). On a loaded machine the
        // redis-server process can also be descheduled between the script's TIME and its SET (CI
        // saw 3 ms once, and a helper's loaded run once): so 10 ms of slack above, far below any
        // TTL a wrong window or period would give.
        expect(pttl, `${key} has a TTL`).toBeGreaterThanOrEqual(0); // -1 would mean none; 0, under 1 ms left
        expect(pttl).toBeLessThanOrEqual(Math.ceil(expiresAt! - nowMs) + 10);
        expect(pttl).toBeGreaterThanOrEqual(Math.floor(expiresAt! - readBy) - 1);
      }
      // Pauses let windows roll and keys expire between rounds. Calls of one decision each are
      // shorter pauses (1–5 ms): at 1–25 ms, a slow CI run once made too few decisions per 50 ms
      // to reach slidingWindow 10/50ms's limit, and the denial path went untested.
      if (random() < 0.5) await sleep(between(random, 1, largest === 1 ? 5 : 25));
    }
    expect(compared).toBeGreaterThan(100);
    expect(admitted).toBeGreaterThan(0);
    if (!/largest|2\^5/.test(label)) expect(denied).toBeGreaterThan(0);
  });
});

describe('the memory and Redis stores give the same decisions for the same operations', () => {
  let client: Client;
  beforeAll(async () => {
    client = new Redis5({ port: server.port, host: '127.0.0.1', enableOfflineQueue: false, lazyConnect: true });
    await client.connect();
  });
  afterAll(async () => {
    await disconnectClient(client);
  });

  // Long windows, so that the few ms between the two runs cannot change a decision.
  const longWindows: [string, () => RateLimitAlgorithm][] = [
    ['gcra', () => gcra({ limit: 20, periodMs: 86_400_000, burst: 12 })],
    ['slidingWindow', () => slidingWindow({ limit: 25, windowMs: 86_400_000 })],
    ['fixedWindow', () => fixedWindow({ limit: 25, windowMs: 86_400_000 })],
  ];
  it.each(longWindows)('%s', async (name, build) => {
    const random = seededRandom(name.length);
    const ops = Array.from({ length: 300 }, () => ({
      key: `user-${between(random, 0, 3)}{}:`,
      what: random() < 0.8 ? 'consume' : random() < 0.5 ? 'peek' : 'refund',
      cost: between(random, 1, 5),
    }));
    const limiters = {
      memory: rateLimiter({ name: `parity-${name}`, algorithm: build(), store: memoryStore() }),
      redis: rateLimiter({ name: `parity-${name}`, algorithm: build(), store: redisStore(client, { timeoutMs: 2_000 }) }),
    };
    await Promise.all([0, 1, 2, 3].map((k) => limiters.redis.reset(`user-${k}{}:`)));
    const results: Record<string, unknown[]> = { memory: [], redis: [] };
    for (const [storeName, limiter] of Object.entries(limiters)) {
      for (const op of ops) {
        if (op.what === 'refund') {
          await limiter.refund(op.key, op.cost);
          continue;
        }
        const d = op.what === 'consume' ? await limiter.consume(op.key, { cost: op.cost }) : await limiter.peek(op.key, { cost: op.cost });
        expect(d.store).toBe(storeName);
        results[storeName]!.push([op.what, d.allowed, d.limit, d.remaining]);
      }
    }
    expect(results.redis).toEqual(results.memory);
    expect(results.memory!.filter((r) => (r as unknown[])[1] === false).length).toBeGreaterThan(10);
  });

  // The same, with the operations sent in groups of 1 to 12 in one tick: the Redis store sends each
  // group as one script call, with a mix of admissions, denials, peeks and refunds in its reply.
  it.each(longWindows)('%s, in batches', async (name, build) => {
    const random = seededRandom(name.length + 1);
    const groups = Array.from({ length: 40 }, () =>
      Array.from({ length: between(random, 1, 12) }, () => ({
        key: `batch-${between(random, 0, 2)}`,
        what: random() < 0.7 ? 'consume' : random() < 0.5 ? 'peek' : 'refund',
        cost: between(random, 1, 5),
      })),
    );
    const limiters = {
      memory: rateLimiter({ name: `parity-batch-${name}`, algorithm: build(), store: memoryStore() }),
      redis: rateLimiter({ name: `parity-batch-${name}`, algorithm: build(), store: redisStore(client, { timeoutMs: 2_000, stateCheckMs: 60_000 }) }),
    };
    await Promise.all([0, 1, 2].map((k) => limiters.redis.reset(`batch-${k}`)));
    // The store's first call also checks its state marker (a script call of its own, not again
    // within the test): a warm-up takes it out of the count below.
    await limiters.redis.peek('batch-warm-up');
    await sleep(50);
    const scriptCalls = async (): Promise<number> => {
      const info = await client.info('commandstats');
      return [...info.matchAll(/^cmdstat_(?:eval|evalsha):calls=(\d+)/gm)].reduce((sum, m) => sum + Number(m[1]), 0);
    };
    const before = await scriptCalls();
    type Row = [string, boolean, number, number, number, number];
    const results: Record<string, Row[]> = { memory: [], redis: [] };
    for (const [storeName, limiter] of Object.entries(limiters)) {
      for (const group of groups) {
        const answers = await Promise.all(
          group.map((op) =>
            op.what === 'refund'
              ? limiter.refund(op.key, op.cost).then(() => undefined)
              : op.what === 'consume'
                ? limiter.consume(op.key, { cost: op.cost })
                : limiter.peek(op.key, { cost: op.cost }),
          ),
        );
        answers.forEach((d, i) => {
          if (d === undefined) return;
          expect(d.store).toBe(storeName);
          results[storeName]!.push([group[i]!.what, d.allowed, d.limit, d.remaining, d.resetMs, d.retryAfterMs]);
        });
      }
    }
    const calls = (await scriptCalls()) - before;
    const operations = groups.reduce((n, g) => n + g.length, 0);
    // One call per group, or two for a group of 8 or more (sent with no other call in flight,
    // it is split so that Redis and Node overlap), with the one call to spare allowed before.
    const batchedCalls = groups.reduce((n, g) => n + (g.length >= 8 ? 2 : 1), 0);
    expect(calls, 'the Redis store batched each group').toBeLessThanOrEqual(batchedCalls + 1);
    expect(operations).toBeGreaterThan(3 * groups.length);
    // Decisions equal; times equal but for the few ms between the two runs (and whole-ms rounding).
    const exact = (rows: Row[]) => rows.map(([what, allowed, limit, remaining, , retryAfterMs]) => [what, allowed, limit, remaining, retryAfterMs > 0]);
    expect(exact(results.redis!)).toEqual(exact(results.memory!));
    results.redis!.forEach((row, i) => {
      const other = results.memory![i]!;
      expect(Math.abs(row[4] - other[4]), `resetMs of decision ${i}`).toBeLessThan(2_000);
      expect(Math.abs(row[5] - other[5]), `retryAfterMs of decision ${i}`).toBeLessThan(2_000);
    });
    expect(results.memory!.filter((r) => !r[1]).length, 'denials in the mix').toBeGreaterThan(10);
  });

  it('a quota', async () => {
    const random = seededRandom(99);
    const build = (store: Parameters<typeof quota>[0]['store']) =>
      quota({ name: 'parity-quota', limit: 100, period: 'month', timeZone: 'Europe/Berlin', store });
    const stores = { memory: build(memoryStore()), redis: build(redisStore(client, { timeoutMs: 2_000 })) };
    await stores.redis.reset('tenant');
    const ops = Array.from({ length: 120 }, () => ({ refund: random() < 0.15, cost: between(random, 1, 9) }));
    const results: Record<string, unknown[]> = { memory: [], redis: [] };
    for (const [storeName, q] of Object.entries(stores)) {
      for (const op of ops) {
        if (op.refund) await q.refund('tenant', op.cost);
        else {
          const d = await q.consume('tenant', { cost: op.cost });
          expect(d.store).toBe(storeName);
          results[storeName]!.push([d.allowed, d.remaining]);
        }
      }
    }
    expect(results.redis).toEqual(results.memory);
  });
});
