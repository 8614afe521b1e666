import { describe, expect, it } from 'vitest';
import { fixedWindow, ManualClock, rateLimiter, wallClock } from '../../../src/index.js';
import { shortKeyPrefix } from '../../../src/ratelimit/keys.js';
import type { RateLimitAlgorithm } from '../../../src/ratelimit/algorithm.js';
import { evictionCounters, namespaceFor } from '../../../src/ratelimit/fast-path.js';
import { type MemoryStore, memoryStore } from '../../../src/ratelimit/memory-store.js';
import { countingAlgorithm } from './support.js';

const HOUR_MS = 3_600_000;

/** Takes 1 unit for each of the keys `prefix-0` … `prefix-(count − 1)`, directly on the store. */
function consumeEach(store: MemoryStore, prefix: string, count: number, algorithm: RateLimitAlgorithm): void {
  for (let i = 0; i < count; i++) store.consume(`${prefix}-${i}`, algorithm, 1);
}

describe('memoryStore eviction', () => {
  it('never holds more than maxKeys while keys rotate, checked after every decision', async () => {
    const clock = new ManualClock(1_000_000);
    const store = memoryStore({ clock, maxKeys: 300 });
    const limiter = rateLimiter({ name: 'rotation', algorithm: fixedWindow({ limit: 5, windowMs: HOUR_MS }), store });
    const direct = countingAlgorithm(5, HOUR_MS);
    for (let i = 0; i < 3_000; i++) {
      // Half through a limiter (its namespace index), half through store keys directly.
      if (i % 2 === 0) await limiter.consume(`client-${i}`);
      else store.consume(`direct-${i}`, direct, 1);
      expect(store.size).toBeLessThanOrEqual(300);
      if (i % 100 === 0) await clock.advance(7); // some time passes, nothing expires
    }
    expect(store.size).toBe(300);
  });

  it('keeps the namespace index in step with the keys held: evicted keys start afresh', async () => {
    const store = memoryStore({ clock: new ManualClock(1_000_000), maxKeys: 100 });
    const limiter = rateLimiter({ name: 'index', algorithm: fixedWindow({ limit: 2, windowMs: HOUR_MS }), store });
    for (let i = 0; i < 1_000; i++) await limiter.consume(`k${i}`);
    const index = store[namespaceFor](shortKeyPrefix('index')).table;
    expect(index.size).toBe(100);
    // The newest 100 keys are held (nothing was used twice, so CLOCK is FIFO here): each has 1 left.
    expect((await limiter.consume('k999')).remaining).toBe(0);
    expect((await limiter.consume('k900')).remaining).toBe(0);
    // An evicted key starts afresh.
    expect((await limiter.consume('k0')).remaining).toBe(1);
    expect(index.size).toBe(100);
  });

  it('does bounded work per insertion under key rotation (regression: each eviction restarted its walk from the oldest key, 53× a decision at 100k keys)', async () => {
    const maxKeys = 2_000;
    const store = memoryStore({ clock: new ManualClock(1_000_000), maxKeys });
    const limiter = rateLimiter({ name: 'walk', algorithm: fixedWindow({ limit: 5, windowMs: HOUR_MS }), store });
    for (let i = 0; i < maxKeys; i++) await limiter.consume(`fill-${i}`);
    const counters = store[evictionCounters];
    expect(counters).toEqual({ examined: 0, walks: 0 });
    const rotations = 20_000;
    for (let i = 0; i < rotations; i++) await limiter.consume(`rotate-${i}`);
    // One sweep (the clock stands still) and one CLOCK hand, each started once and kept between
    // evictions; the old code started a walk per eviction.
    expect(counters.walks).toBe(2);
    // The sweep looks at each key held at its start once; the hand at one key per eviction.
    expect(counters.examined).toBeLessThanOrEqual(maxKeys + rotations);
    expect(store.size).toBe(maxKeys);
  });

  it('pays for each second chance with the use that earned it: work stays within evictions + uses', async () => {
    const maxKeys = 1_000;
    const store = memoryStore({ clock: new ManualClock(1_000_000), maxKeys });
    const limiter = rateLimiter({ name: 'hot', algorithm: fixedWindow({ limit: 1e9, windowMs: HOUR_MS }), store });
    const hot = Array.from({ length: 500 }, (_, i) => `hot-${i}`);
    for (const key of hot) await limiter.consume(key);
    let uses = 0;
    let inserted = 0;
    for (let round = 0; round < 40; round++) {
      for (const key of hot) await limiter.consume(key);
      uses += hot.length;
      for (let i = 0; i < 300; i++) await limiter.consume(`cold-${inserted++}`);
    }
    const counters = store[evictionCounters];
    const evictions = hot.length + inserted - maxKeys;
    expect(counters.examined).toBeLessThanOrEqual(evictions + uses + maxKeys);
    // The hot keys, used between every two rounds of eviction, were never evicted.
    for (const key of hot) expect((await limiter.consume(key)).remaining).toBe(1e9 - 42);
  });

  /** A store of `maxKeys` on a manual clock, with an algorithm whose keys live 100 ms and one whose live a minute. */
  function mixedLifetimes(maxKeys: number) {
    const clock = new ManualClock(1_000_000);
    return { clock, store: memoryStore({ clock, maxKeys }), short: countingAlgorithm(1, 100), long: countingAlgorithm(5, 60_000) };
  }

  it('drops expired keys before live ones when the sweep reaches them first', async () => {
    const { clock, store, short, long } = mixedLifetimes(200);
    consumeEach(store, 'expiring', 100, short);
    consumeEach(store, 'live', 100, long);
    await clock.advance(200);
    consumeEach(store, 'new', 100, long);
    expect(store.size).toBe(200);
    for (let i = 0; i < 100; i++) expect(store.peek(`live-${i}`, long, 1).remaining).toBe(3);
  });

  it('keeps live keys in use while expired keys are held, wherever they stand in the order', async () => {
    const { clock, store, short, long } = mixedLifetimes(1_000);
    // The live keys are the oldest, ahead of 900 keys that are about to expire.
    consumeEach(store, 'live', 100, long);
    consumeEach(store, 'expiring', 900, short);
    await clock.advance(200);
    consumeEach(store, 'live', 100, long); // in use
    consumeEach(store, 'new', 800, long);
    expect(store.size).toBeLessThanOrEqual(1_000);
    for (let i = 0; i < 100; i++) expect(store.peek(`live-${i}`, long, 1).remaining).toBe(2);
  });

  it('sweeps again only once a second has passed, and after the clock goes back', () => {
    let nowMs = 1_000_000;
    const clock = { ...wallClock, now: () => nowMs };
    const store = memoryStore({ clock, maxKeys: 50 });
    const long = countingAlgorithm(1, HOUR_MS);
    consumeEach(store, 'fill', 50, long);
    const counters = store[evictionCounters];
    const sweeps = (): number => counters.walks - 1; // one walk is the CLOCK hand's
    store.consume('a', long, 1);
    expect(sweeps()).toBe(1);
    consumeEach(store, 'b', 100, long);
    nowMs += 999;
    store.consume('c', long, 1);
    expect(sweeps()).toBe(1);
    nowMs += 1;
    consumeEach(store, 'd', 10, long);
    expect(sweeps()).toBe(2);
    nowMs = 500_000; // a clock that went back
    consumeEach(store, 'e', 10, long);
    expect(sweeps()).toBe(3);
    expect(store.size).toBe(50);
  });

  it('uses no timer, however many keys are held or evicted', async () => {
    const clock = new ManualClock(1_000_000);
    const store = memoryStore({ clock, maxKeys: 100 });
    const limiter = rateLimiter({ name: 'timers', algorithm: fixedWindow({ limit: 1, windowMs: 1_000 }), store });
    for (let i = 0; i < 1_000; i++) {
      await limiter.consume(`k${i}`);
      if (i % 50 === 0) await clock.advance(600);
    }
    expect(clock.pendingTimers).toBe(0);
  });

  it('goes on evicting correctly after clear()', async () => {
    const store = memoryStore({ clock: new ManualClock(1_000_000), maxKeys: 20 });
    const alg = countingAlgorithm(3, HOUR_MS);
    consumeEach(store, 'a', 100, alg);
    store.clear();
    expect(store.size).toBe(0);
    consumeEach(store, 'b', 100, alg);
    expect(store.size).toBe(20);
    expect(store.peek('b-99', alg, 1).remaining).toBe(1);
    expect(store.peek('b-0', alg, 1).remaining).toBe(2); // evicted: starts afresh
  });
});
