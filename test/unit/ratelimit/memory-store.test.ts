import { describe, expect, it } from 'vitest';
import { ManualClock } from '../../../src/index.js';
import { memoryStore } from '../../../src/ratelimit/memory-store.js';
import { countingAlgorithm } from './support.js';

describe('memoryStore', () => {
  it('applies the algorithm per key and says it decided', () => {
    const clock = new ManualClock(1_000_000);
    const store = memoryStore({ clock });
    const alg = countingAlgorithm(2, 1_000);
    expect(store.consume('a', alg, 1)).toMatchObject({ allowed: true, remaining: 1, store: 'memory' });
    expect(store.consume('a', alg, 1)).toMatchObject({ allowed: true, remaining: 0 });
    expect(store.consume('a', alg, 1)).toMatchObject({ allowed: false, remaining: 0 });
    expect(store.consume('b', alg, 1)).toMatchObject({ allowed: true, remaining: 1 });
  });

  it('forgets a key once its state has expired, without any timer', async () => {
    const clock = new ManualClock(1_000_000);
    const store = memoryStore({ clock });
    const alg = countingAlgorithm(1, 1_000);
    store.consume('a', alg, 1);
    expect(clock.pendingTimers).toBe(0);
    await clock.advance(1_000);
    expect(store.consume('a', alg, 1)).toMatchObject({ allowed: true });
  });

  it('peek takes nothing; refund gives back; reset forgets', () => {
    const clock = new ManualClock(1_000_000);
    const store = memoryStore({ clock });
    const alg = countingAlgorithm(2, 1_000);
    store.consume('a', alg, 2);
    expect(store.peek('a', alg, 1)).toMatchObject({ allowed: false, remaining: 0 });
    expect(store.peek('a', alg, 1)).toMatchObject({ allowed: false });
    store.refund('a', alg, 1);
    expect(store.peek('a', alg, 1)).toMatchObject({ allowed: true, remaining: 0 });
    store.reset('a');
    expect(store.peek('a', alg, 1)).toMatchObject({ allowed: true, remaining: 1 });
    store.refund('never-seen', alg, 1); // nothing to give back to: no key is created
    expect(store.size).toBe(0);
  });

  it('never holds more than maxKeys, evicting expired keys before live ones', async () => {
    const clock = new ManualClock(1_000_000);
    const store = memoryStore({ clock, maxKeys: 3 });
    const short = countingAlgorithm(1, 100);
    const long = countingAlgorithm(1, 60_000);
    store.consume('live-1', long, 1);
    store.consume('expiring', short, 1);
    store.consume('live-2', long, 1);
    await clock.advance(200);
    store.consume('new', long, 1);
    expect(store.size).toBe(3);
    // The expired key made room; both live keys are still limited.
    expect(store.peek('live-1', long, 1).allowed).toBe(false);
    expect(store.peek('live-2', long, 1).allowed).toBe(false);
  });

  it('evicts the least recently used live key when none has expired', () => {
    const clock = new ManualClock(1_000_000);
    const store = memoryStore({ clock, maxKeys: 3 });
    const alg = countingAlgorithm(5, 60_000);
    for (const k of ['a', 'b', 'c']) store.consume(k, alg, 1);
    store.consume('a', alg, 1); // a is used again; b is now the least recently used
    store.consume('d', alg, 1);
    expect(store.size).toBe(3);
    // peek reports what would remain after taking 1 more.
    expect(store.peek('a', alg, 1).remaining).toBe(2); // kept: 2 taken
    expect(store.peek('b', alg, 1).remaining).toBe(4); // evicted: starts afresh
  });

  it('stays bounded under 10,000 distinct keys', () => {
    const clock = new ManualClock(1_000_000);
    const store = memoryStore({ clock, maxKeys: 1_000 });
    const alg = countingAlgorithm(1, 60_000);
    for (let i = 0; i < 10_000; i++) store.consume(`k${i}`, alg, 1);
    expect(store.size).toBeLessThanOrEqual(1_000);
  });

  it.each([
    [{ maxKeys: 0 }, RangeError, /"maxKeys".*0/],
    [{ maxKeys: 1.5 }, RangeError, /"maxKeys".*1\.5/],
    [{ maxKeys: '10' }, TypeError, /"maxKeys".*"10"/],
    [{ maxkeys: 10 }, TypeError, /unknown option "maxkeys"/],
    [{ clock: {} }, TypeError, /"clock"/],
  ])('rejects bad options %o', (options, kind, message) => {
    expect(() => memoryStore(options as never)).toThrow(kind);
    expect(() => memoryStore(options as never)).toThrow(message);
  });
});
