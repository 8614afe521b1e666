// Compound limits on the memory store (issue 16 §5): every limit charged, or none.
import { subscribe, unsubscribe } from 'node:diagnostics_channel';
import { describe, expect, it } from 'vitest';
import { channelNames } from '../../../src/core/diagnostics.js';
import { fixedWindow, gcra } from '../../../src/ratelimit/algorithms/index.js';
import { compoundLimit } from '../../../src/ratelimit/compound.js';
import { memoryStore } from '../../../src/ratelimit/memory-store.js';
import { quota } from '../../../src/ratelimit/quota/quota.js';
import { rateLimiter } from '../../../src/ratelimit/rate-limiter.js';
import type { LimiterDecision } from '../../../src/ratelimit/store.js';

async function left(limiter: { peek(key: string): Promise<LimiterDecision> }, key: string): Promise<number> {
  const d = await limiter.peek(key);
  return d.allowed ? d.remaining + 1 : d.remaining;
}

function pair() {
  const store = memoryStore();
  const perSecond = rateLimiter({ name: 'per-second', algorithm: fixedWindow({ limit: 10, windowMs: 3_600_000 }), store });
  const perMinute = rateLimiter({ name: 'per-minute', algorithm: fixedWindow({ limit: 25, windowMs: 3_600_000 }), store });
  return { store, perSecond, perMinute, both: compoundLimit([perSecond, perMinute]) };
}

describe('compoundLimit on the memory store', () => {
  it('charges every limit or none, and names the limit that denied', async () => {
    const { perSecond, perMinute, both } = pair();
    for (let i = 0; i < 10; i++) expect((await both.consume('t')).allowed).toBe(true);
    const d = await both.consume('t');
    expect(d).toMatchObject({ allowed: false, deniedBy: 'per-second' });
    expect(d.parts.map((p) => p.decision.allowed)).toEqual([false, true]);
    // The per-minute limit was not charged by the denied call.
    expect(await left(perSecond, 't')).toBe(0);
    expect(await left(perMinute, 't')).toBe(15);
  });

  it('denies by the second limit without charging the first', async () => {
    const { perSecond, perMinute, both } = pair();
    for (let i = 0; i < 25; i++) await perMinute.consume('u');
    const d = await both.consume('u', 3);
    expect(d).toMatchObject({ allowed: false, deniedBy: 'per-minute' });
    expect(await left(perSecond, 'u')).toBe(10);
  });

  it('takes one key per limit with a tag, and refuses different keys without one', async () => {
    const { perSecond, perMinute, both } = pair();
    expect((await both.consume(['user-1', 'tenant-a'], { tag: 'tenant-a' })).allowed).toBe(true);
    expect(await left(perSecond, 'user-1')).toBe(9);
    expect(await left(perMinute, 'tenant-a')).toBe(24);
    await expect(both.consume(['user-1', 'tenant-a'])).rejects.toThrow(/"tag" is required/);
  });

  it('refuses limits on different stores, and costs over the smallest limit', async () => {
    const a = rateLimiter({ name: 'a', algorithm: gcra({ limit: 5, periodMs: 1_000 }) });
    const b = rateLimiter({ name: 'b', algorithm: gcra({ limit: 5, periodMs: 1_000 }) });
    expect(() => compoundLimit([a, b])).toThrow(/same store/);
    await expect(pair().both.consume('t', 11)).rejects.toThrow(RangeError);
  });

  it('takes a quota, and a limit set at run time for one tag', async () => {
    const store = memoryStore();
    const perSecond = rateLimiter({ name: 's', algorithm: fixedWindow({ limit: 2, windowMs: 3_600_000 }), store });
    const daily = quota({ name: 'd', limit: 100, period: 'day', store });
    const both = compoundLimit([perSecond, daily]);
    await both.consume('x');
    await both.consume('x');
    expect((await both.consume('x')).deniedBy).toBe('s');
    await both.setLimit('x', 's', fixedWindow({ limit: 5, windowMs: 3_600_000 }));
    expect((await both.consume('x')).allowed).toBe(true);
    expect((await both.consume('y')).allowed).toBe(true); // another tag keeps the configured limit
    await both.clearLimit('x', 's');
    expect((await both.consume('x')).allowed).toBe(false);
    expect(await left(daily, 'x')).toBe(97);
  });

  it('publishes the compound decision and each limit decision', async () => {
    const { both } = pair();
    const seen: unknown[] = [];
    const decisions: unknown[] = [];
    const onCompound = (m: unknown) => seen.push(m);
    const onDecision = (m: unknown) => decisions.push(m);
    subscribe(channelNames.rateLimitCompound, onCompound);
    subscribe(channelNames.rateLimitDecision, onDecision);
    try {
      await both.consume('t', 10);
      await both.consume('t');
    } finally {
      unsubscribe(channelNames.rateLimitCompound, onCompound);
      unsubscribe(channelNames.rateLimitDecision, onDecision);
    }
    expect(seen).toEqual([
      { policy: 'compound', allowed: true, deniedBy: undefined, store: 'memory' },
      { policy: 'compound', allowed: false, deniedBy: 'per-second', store: 'memory' },
    ]);
    expect(decisions).toHaveLength(4);
  });
});
