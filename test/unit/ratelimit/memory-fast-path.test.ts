// The memory store's fast path (a limiter's short keys looked up by the key as given, the built-in
// algorithms' decisions built with `store` in them, state updated in place) against the store as
// it was before it: the same decisions, errors, keys, order of keys, expiries and evictions, over
// randomized sequences replayable from their seed.
import { describe, expect, it } from 'vitest';
import type { Clock, TimerHandle } from '../../../src/core/clock.js';
import type { AlgorithmState, RateLimitAlgorithm } from '../../../src/ratelimit/algorithm.js';
import { fixedWindow, gcra, slidingWindow } from '../../../src/ratelimit/algorithms/index.js';
import { storeKey } from '../../../src/ratelimit/keys.js';
import { MemoryStore, memoryStore } from '../../../src/ratelimit/memory-store.js';
import { type RateLimiter, rateLimiter } from '../../../src/ratelimit/rate-limiter.js';
import type { LimiterDecision, RateLimitStore } from '../../../src/ratelimit/store.js';
import { between, seededRandom } from './algorithms/support.js';
import { countingAlgorithm } from './support.js';

/** A clock the test sets by hand, backwards too (the stores never set timers). */
class SteppedClock implements Clock {
  t = 1_700_000_000_000;
  now(): number {
    return this.t;
  }
  setTimeout(): TimerHandle {
    throw new Error('the memory store sets no timers');
  }
  clearTimeout(): void {
    throw new Error('the memory store sets no timers');
  }
}

interface RefEntry {
  state: AlgorithmState | undefined;
  expiresAt: number;
  used: boolean;
}

/** The memory store as it was before the fast path, line for line: the reference. */
class ReferenceStore implements RateLimitStore {
  readonly name = 'memory';
  readonly entries = new Map<string, RefEntry>();
  private lastSweep = -Infinity;

  constructor(
    private readonly clock: Clock,
    readonly maxKeys: number,
  ) {}

  consume(key: string, algorithm: RateLimitAlgorithm, cost: number): LimiterDecision {
    const now = this.clock.now();
    const entry = this.live(key, now);
    const outcome = algorithm.consume(entry?.state, now, cost);
    if (outcome.state !== entry?.state) this.save(key, entry, outcome.state, now + outcome.ttlMs);
    return { ...outcome.decision, store: this.name };
  }

  peek(key: string, algorithm: RateLimitAlgorithm, cost: number): LimiterDecision {
    const now = this.clock.now();
    return { ...algorithm.peek(this.live(key, now)?.state, now, cost), store: this.name };
  }

  refund(key: string, algorithm: RateLimitAlgorithm, cost: number): void {
    const now = this.clock.now();
    const entry = this.live(key, now);
    if (entry === undefined) return;
    const outcome = algorithm.refund(entry.state, now, cost);
    this.save(key, entry, outcome.state, now + outcome.ttlMs);
  }

  reset(key: string): void {
    this.entries.delete(key);
  }

  private live(key: string, now: number): RefEntry | undefined {
    const entry = this.entries.get(key);
    if (entry === undefined) return undefined;
    if (entry.expiresAt <= now) {
      this.entries.delete(key);
      return undefined;
    }
    entry.used = true;
    return entry;
  }

  private save(key: string, entry: RefEntry | undefined, state: AlgorithmState | undefined, expiresAt: number): void {
    if (entry !== undefined) {
      entry.state = state;
      entry.expiresAt = expiresAt;
      return;
    }
    if (this.entries.size >= this.maxKeys) this.evict(this.clock.now());
    this.entries.set(key, { state, expiresAt, used: false });
  }

  // The store now sweeps 16 keys per eviction and keeps its CLOCK hand between evictions
  // (memory-eviction.test.ts): the same evictions as this whole sweep and restarted walk while at
  // most 16 keys are held, as in every case below that evicts (maxKeys 40 never fills).
  private evict(now: number): void {
    if (now - this.lastSweep >= 1_000 || now < this.lastSweep) {
      this.lastSweep = now;
      for (const [key, entry] of this.entries) if (entry.expiresAt <= now) this.entries.delete(key);
      if (this.entries.size < this.maxKeys) return;
    }
    const target = this.maxKeys - 1;
    for (const [key, entry] of this.entries) {
      if (this.entries.size <= target) return;
      this.entries.delete(key);
      if (entry.expiresAt > now && entry.used) {
        entry.used = false;
        this.entries.set(key, entry);
      }
    }
  }
}

/** An entry of the store under test, read from its private fields. */
interface StoreEntry extends RefEntry {
  key: string;
  ns: Table;
  prev: StoreEntry;
  next: StoreEntry;
}
interface Table {
  prefix: string;
  table: Map<string, StoreEntry>;
}
/** What the store under test keeps, read from its private fields. */
interface Internals {
  ring: StoreEntry;
  count: number;
  other: Table;
  namespaces: Map<string, WeakRef<Table>>;
}

/** The store's entries in its order of keys (oldest first), by store key. */
function entriesOf(store: MemoryStore): Map<string, StoreEntry> {
  const { ring } = store as unknown as Internals;
  const entries = new Map<string, StoreEntry>();
  for (let e = ring.next; e !== ring; e = e.next) {
    expect(e.next.prev).toBe(e);
    entries.set(e.ns.prefix + e.key, e);
  }
  return entries;
}

/** Every entry, in order, as [key, state, expiresAt, used]. */
function snapshot(entries: Map<string, RefEntry>): unknown[] {
  return [...entries].map(([key, e]) => [key, e.state === undefined ? undefined : [...e.state], e.expiresAt, e.used]);
}

/**
 * The tables hold exactly the entries in the order, each under its own key, in the namespace its
 * store key names (a store key a limiter builds in its limiter's, any other in the store's own).
 */
function expectTablesConsistent(store: MemoryStore): void {
  const { count, other, namespaces } = store as unknown as Internals;
  const entries = entriesOf(store);
  expect(count).toBe(entries.size);
  let tabled = 0;
  for (const ns of [other, ...[...namespaces.values()].map((ref) => ref.deref())]) {
    if (ns === undefined) continue;
    for (const [k, e] of ns.table) {
      expect(e.ns).toBe(ns);
      expect(e.key).toBe(k);
      expect(entries.get(ns.prefix + k)).toBe(e);
      tabled++;
    }
  }
  expect(tabled).toBe(entries.size);
  for (const [key, e] of entries) {
    if (e.ns !== other) expect(namespaces.get(e.ns.prefix)?.deref()).toBe(e.ns);
    expect(e.ns === other).toBe(!/^\d+:/.test(key) || /^\d+:.*:h:/.test(key) || key === 'empty');
  }
}

/** A settled call: its decision (with the order of its properties) or its error. */
async function settle(run: () => Promise<unknown> | unknown): Promise<unknown> {
  try {
    const value = await run();
    return value === undefined ? 'void' : { value, keys: Object.keys(value as object) };
  } catch (error) {
    return { error: (error as Error).constructor.name, message: (error as Error).message };
  }
}

/** The same algorithm without its fast path: a copy of its own enumerable properties. */
function plain(algorithm: RateLimitAlgorithm): RateLimitAlgorithm {
  return { ...algorithm };
}

const KEYS = ['a', 'b', 'c', 'd', 'e', 'f', 'g', 'x'.repeat(256), 'y'.repeat(257), 'k:a', '1:a:k:a', ''];

const cases = [
  { name: 'gcra', make: () => gcra({ limit: 4, periodMs: 400, burst: 3 }), stepMs: 120 },
  { name: 'fixedWindow', make: () => fixedWindow({ limit: 4, windowMs: 300 }), stepMs: 90 },
  { name: 'slidingWindow', make: () => slidingWindow({ limit: 4, windowMs: 300 }), stepMs: 90 },
];

describe.each(cases)('memory store fast path, $name', ({ make, stepMs }) => {
  it.each([
    [1, 3, true],
    [2, 5, false],
    [3, 40, true],
    [4, 4, false],
  ])('matches the store as it was, operation for operation (seed %i, maxKeys %i, shared algorithm %s)', async (seed, maxKeys, shared) => {
    const random = seededRandom(seed);
    const clock = new SteppedClock();
    const store = memoryStore({ clock, maxKeys });
    const reference = new ReferenceStore(clock, maxKeys);
    const algA = make();
    const algB = shared ? algA : make();
    // Limiters whose names could collide if keys were not length-prefixed. (Two limiters with one
    // name on one store are refused at construction.)
    const names = ['a', 'a:k', '1:a'];
    const algorithms = [algA, algB, algA];
    const limiters: [RateLimiter, RateLimiter][] = names.map((name, i) => [
      rateLimiter({ name, algorithm: algorithms[i]!, store }),
      rateLimiter({ name, algorithm: plain(algorithms[i]!), store: reference }),
    ]);
    const limit = algA.kind === 'gcra' ? 3 : 4;

    for (let step = 0; step < 1_500; step++) {
      const roll = random();
      if (roll < 0.15) {
        // Time passes; now and then the clock steps back a little.
        clock.t += random() < 0.1 ? -between(random, 0, 50) : between(random, 0, stepMs * 2);
        continue;
      }
      const which = between(random, 0, limiters.length - 1);
      const [fast, ref] = limiters[which]!;
      const key = KEYS[between(random, 0, KEYS.length - 1)]!;
      const cost = random() < 0.05 ? limit + 1 : between(random, 1, limit);
      let got: unknown;
      let want: unknown;
      if (roll < 0.7) {
        const options = random() < 0.3 ? undefined : { cost };
        got = await settle(() => fast.consume(key, options));
        want = await settle(() => ref.consume(key, options));
      } else if (roll < 0.78) {
        got = await settle(() => fast.peek(key, { cost }));
        want = await settle(() => ref.peek(key, { cost }));
      } else if (roll < 0.86) {
        got = await settle(() => fast.refund(key, cost));
        want = await settle(() => ref.refund(key, cost));
      } else if (roll < 0.9) {
        got = await settle(() => fast.reset(key));
        want = await settle(() => ref.reset(key));
      } else {
        // The store used directly with a store key, as a quota or another store would.
        const full = key === '' ? 'empty' : storeKey('t', names[which]!, key);
        got = await settle(() => store.consume(full, algorithms[which]!, cost));
        want = await settle(() => reference.consume(full, plain(algorithms[which]!), cost));
      }
      expect(got, `step ${step}`).toEqual(want);
      expect(snapshot(entriesOf(store)), `step ${step}`).toEqual(snapshot(reference.entries));
      expectTablesConsistent(store);
    }
  });
});

describe('memory store fast path, when it must not be taken', () => {
  it('a spy or replacement on the store consume is honoured', async () => {
    const store = memoryStore();
    const limiter = rateLimiter({ algorithm: fixedWindow({ limit: 5, windowMs: 1_000 }), store });
    const seen: string[] = [];
    const original = store.consume.bind(store);
    store.consume = (key, algorithm, cost) => {
      seen.push(key);
      return original(key, algorithm, cost);
    };
    await expect(limiter.consume('u')).resolves.toMatchObject({ allowed: true, remaining: 4, store: 'memory' });
    expect(seen).toEqual([storeKey('t', 'ratelimit', 'u')]);
  });

  it('a store key stored directly whose key a limiter would refuse or hash stays apart: the limiter still checks its keys', async () => {
    // A limiter finds a key in its table without checking it again, so a table must never hold a
    // key the limiter would refuse (a lone surrogate) or hash (over 256 characters).
    const store = memoryStore({ clock: new SteppedClock() });
    const algorithm = fixedWindow({ limit: 5, windowMs: 1_000 });
    const limiter = rateLimiter({ name: 'api', algorithm, store });
    const long = 'z'.repeat(257);
    for (const key of ['\uD800', long]) {
      expect(store.consume(`3:api:k:${key}`, algorithm, 2)).toMatchObject({ allowed: true, remaining: 3 });
      expect(store.peek(`3:api:k:${key}`, algorithm, 1)).toMatchObject({ remaining: 2 });
    }
    await expect(limiter.consume('\uD800')).rejects.toThrow(RangeError);
    // The long key is hashed, so its counter is not the one stored under the unhashed store key.
    await expect(limiter.consume(long)).resolves.toMatchObject({ allowed: true, remaining: 4 });
    expect(store.size).toBe(3);
    store.reset(`3:api:k:${long}`);
    expect(store.size).toBe(2);
    expect(store.peek(`3:api:k:${long}`, algorithm, 1)).toMatchObject({ remaining: 4 });
  });

  it('a subclass of MemoryStore goes through its own consume', async () => {
    const seen: string[] = [];
    class Counting extends MemoryStore {
      override consume(key: string, algorithm: RateLimitAlgorithm, cost: number): LimiterDecision {
        seen.push(key);
        return super.consume(key, algorithm, cost);
      }
    }
    const limiter = rateLimiter({ name: 'api', algorithm: gcra({ limit: 5, periodMs: 1_000 }), store: new Counting() });
    await limiter.consume('u');
    await limiter.consume('u');
    expect(seen).toEqual([storeKey('t', 'api', 'u'), storeKey('t', 'api', 'u')]);
  });

  it('a custom algorithm gets the same decisions, spread with the store name', async () => {
    const clock = new SteppedClock();
    const store = memoryStore({ clock });
    const limiter = rateLimiter({ algorithm: countingAlgorithm(2, 1_000), store });
    await expect(limiter.consume('u')).resolves.toEqual({
      allowed: true,
      limit: 2,
      remaining: 1,
      resetMs: 1_000,
      retryAfterMs: 0,
      store: 'memory',
    });
    await limiter.consume('u');
    await expect(limiter.consume('u')).resolves.toMatchObject({ allowed: false, remaining: 0 });
  });
});

describe('built-in algorithms', () => {
  it('look exactly as before: the fast path is a hidden property', () => {
    expect(Object.keys(gcra({ limit: 1, periodMs: 1_000 }))).toEqual([
      'kind',
      'limit',
      'windowMs',
      'burst',
      'emissionIntervalUs',
      'consume',
      'peek',
      'refund',
    ]);
    expect(Object.keys(fixedWindow({ limit: 1, windowMs: 1_000 }))).toEqual(['kind', 'limit', 'windowMs', 'consume', 'peek', 'refund']);
    expect(Object.keys(slidingWindow({ limit: 1, windowMs: 1_000 }))).toEqual(['kind', 'limit', 'windowMs', 'consume', 'peek', 'refund']);
    expect(JSON.stringify(fixedWindow({ limit: 1, windowMs: 1_000 }))).toBe('{"kind":"fixed-window","limit":1,"windowMs":1000}');
  });

  it('never change a state once the store has handed it to other code', async () => {
    const clock = new SteppedClock();
    const store = memoryStore({ clock });
    const algorithm = slidingWindow({ limit: 100, windowMs: 1_000 });
    const limiter = rateLimiter({ algorithm, store });
    const full = storeKey('t', 'ratelimit', 'u');
    const seen: { state: AlgorithmState; copy: number[] }[] = [];
    const record = (state: AlgorithmState | undefined) => {
      if (state !== undefined) seen.push({ state, copy: [...state] });
    };
    // An algorithm of the user's that keeps the states it is given and those it returns.
    const keeper: RateLimitAlgorithm = {
      ...algorithm,
      consume: (state, now, cost) => {
        record(state);
        const outcome = algorithm.consume(state, now, cost);
        record(outcome.state);
        return outcome;
      },
      peek: (state, now, cost) => (record(state), algorithm.peek(state, now, cost)),
      refund: (state, now, cost) => {
        record(state);
        const outcome = algorithm.refund(state, now, cost);
        record(outcome.state);
        return outcome;
      },
    };
    const first = await limiter.consume('u');
    const firstCopy = { ...first };
    store.peek(full, keeper, 1);
    await limiter.consume('u');
    await limiter.consume('u');
    store.refund(full, keeper, 1);
    await limiter.consume('u');
    await limiter.consume('u');
    store.consume(full, keeper, 1);
    await limiter.consume('u');
    await limiter.consume('u');
    expect(seen).toHaveLength(5);
    for (const { state, copy } of seen) expect([...state]).toEqual(copy);
    expect(first).toEqual(firstCopy);
    await expect(limiter.peek('u')).resolves.toMatchObject({ remaining: 100 - 7 - 1 });
  });
});
