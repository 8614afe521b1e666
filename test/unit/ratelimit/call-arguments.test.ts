// The arguments of consume, peek, refund and reset on limiters and quotas, checked as the factories
// check options; maxCost; and one name per store (contracts C-d and C-e of issue 11).
import { describe, expect, it } from 'vitest';
import { ManualClock } from '../../../src/core/clock.js';
import { fixedWindow, gcra, slidingWindow } from '../../../src/ratelimit/algorithms/index.js';
import { memoryStore } from '../../../src/ratelimit/memory-store.js';
import { quota } from '../../../src/ratelimit/quota/quota.js';
import { rateLimiter } from '../../../src/ratelimit/rate-limiter.js';
import type { LimiterDecision, RateLimitStore } from '../../../src/ratelimit/store.js';
import { expectRejected } from '../../support/options.js';

const clock = () => new ManualClock(Date.UTC(2026, 10, 15, 12));

/** A store that records what it is asked, for the forms a memory store answers without asking. */
function recordingStore(): RateLimitStore & { readonly costs: number[]; readonly args: unknown[][] } {
  const costs: number[] = [];
  const args: unknown[][] = [];
  const decision: LimiterDecision = { allowed: true, limit: 10, remaining: 9, resetMs: 1_000, retryAfterMs: 0, store: 'rec' };
  return {
    name: 'rec',
    costs,
    args,
    consume(...a: unknown[]) {
      args.push(a);
      costs.push(a[2] as number);
      return decision;
    },
    peek(...a: unknown[]) {
      args.push(a);
      costs.push(a[2] as number);
      return decision;
    },
    refund(...a: unknown[]) {
      args.push(a);
      costs.push(a[2] as number);
    },
    reset(...a: unknown[]) {
      args.push(a);
    },
  };
}

const deciders = [
  ['a rate limiter', () => rateLimiter({ name: 'api', algorithm: fixedWindow({ limit: 10_000, windowMs: 60_000 }), store: memoryStore({ clock: clock() }) })],
  ['a quota', () => quota({ name: 'monthly', limit: 10_000, period: 'month', store: memoryStore({ clock: clock() }) })],
] as const;

describe.each(deciders)('consume on %s', (_label, make) => {
  it('takes a number as the cost, as rate-limiter-flexible users write it', async () => {
    const d = make();
    expect(await d.consume('k', 7)).toMatchObject({ allowed: true, remaining: 10_000 - 7 });
    expect(await d.consume('k', { cost: 3 })).toMatchObject({ allowed: true, remaining: 10_000 - 10 });
  });

  it('charges the cost asked for: 10,000 units admit 40 calls of cost 250, not 10,000 (regression: `{ costs }` and a numeric second argument were charged 1)', async () => {
    const d = make();
    let admitted = 0;
    for (let i = 0; i < 100; i++) if ((await d.consume('tenant', 250)).allowed) admitted++;
    expect(admitted).toBe(40);
    await expect(d.consume('tenant', { costs: 250 } as never)).rejects.toThrow(/unknown option "costs"/);
  });

  it.each<[string, unknown, typeof TypeError | typeof RangeError, string, string]>([
    ['null options', null, TypeError, 'options', 'null'],
    ['an array', [7], TypeError, 'options', 'an array'],
    ['a string cost', '7', TypeError, 'options', '"7"'],
    ['a Date', new Date(), TypeError, 'options', 'an object'],
    ['an unknown key', { costs: 7 }, TypeError, '"costs"', 'known options: cost, signal'],
    ['a non-signal signal', { signal: { aborted: false } }, TypeError, '"signal"', 'an object'],
    ['a string signal', { signal: 'abort' }, TypeError, '"signal"', '"abort"'],
    ['a null signal', { signal: null }, TypeError, '"signal"', 'null'],
    ['a zero cost', 0, RangeError, '"cost"', '0'],
    ['a fractional cost', 2.5, RangeError, '"cost"', '2.5'],
    ['a NaN cost', NaN, RangeError, '"cost"', 'NaN'],
    ['a negative cost in options', { cost: -1 }, RangeError, '"cost"', '-1'],
    ['a numeric-string cost in options', { cost: '7' }, TypeError, '"cost"', '"7"'],
    ['a null cost in options', { cost: null }, TypeError, '"cost"', 'null'],
  ])('refuses %s with an error naming the argument and the value', async (_what, options, kind, named, shown) => {
    const d = make();
    const error = await d.consume('k', options as never).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(kind);
    expect((error as Error).message).toContain(named);
    expect((error as Error).message).toContain(shown);
    expect((error as Error).message).toMatch(/^(rateLimiter|quota)\.consume: /);
  });

  it.each<[unknown, typeof TypeError | typeof RangeError, string]>([
    [undefined, TypeError, 'undefined'],
    [null, TypeError, 'null'],
    [42, TypeError, '42'],
    [{}, TypeError, 'an object'],
    ['', RangeError, '""'],
  ])('refuses the key %o, naming the key and showing it', async (key, kind, shown) => {
    const error = await make().consume(key as never).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(kind);
    expect((error as Error).message).toContain('key');
    expect((error as Error).message).toContain(shown);
  });

  it('checks the cost and signal of an options object reused across calls on every call', async () => {
    const d = make();
    const options: { cost: unknown; signal?: unknown } = { cost: 2 };
    expect(await d.consume('k', options as never)).toMatchObject({ remaining: 10_000 - 2 });
    options.cost = 0;
    await expect(d.consume('k', options as never)).rejects.toThrow(/"cost" .*got 0/);
    options.cost = 1;
    options.signal = 'abort';
    await expect(d.consume('k', options as never)).rejects.toThrow(/"signal" must be an AbortSignal, got "abort"/);
  });

  it('accepts a real AbortSignal and no options at all', async () => {
    const d = make();
    await expect(d.consume('k', { signal: new AbortController().signal })).resolves.toMatchObject({ allowed: true });
    await expect(d.consume('k')).resolves.toMatchObject({ remaining: 10_000 - 2 });
  });
});

describe.each(deciders)('peek, refund and reset on %s', (_label, make) => {
  it('peek takes a number or { cost }, and refuses what consume refuses (a signal too: peek takes none)', async () => {
    const d = make();
    expect(await d.peek('k', 10_000)).toMatchObject({ allowed: true });
    // A peek reports what would remain after taking its cost.
    expect(await d.peek('k', { cost: 1 })).toMatchObject({ allowed: true, remaining: 10_000 - 1 });
    await expect(d.peek('k', null as never)).rejects.toThrow(TypeError);
    await expect(d.peek('k', { costs: 2 } as never)).rejects.toThrow(/unknown option "costs"/);
    await expect(d.peek('k', { signal: new AbortController().signal } as never)).rejects.toThrow(/unknown option "signal"/);
    await expect(d.peek('', 1)).rejects.toThrow(RangeError);
  });

  it('refund takes a whole number of units or { cost }, as consume and peek do, and refuses null, strings and other objects', async () => {
    const d = make();
    await d.consume('k', 7);
    await d.refund('k', 2);
    expect(await d.peek('k')).toMatchObject({ remaining: 10_000 - 5 - 1 });
    await d.refund('k', { cost: 2 });
    expect(await d.peek('k')).toMatchObject({ remaining: 10_000 - 3 - 1 });
    await d.refund('k');
    await d.refund('k', {});
    expect(await d.peek('k')).toMatchObject({ remaining: 10_000 - 1 - 1 });
    await expect(d.refund('k', '2' as never)).rejects.toThrow(/\.refund: options must be a number \(the cost\) or an object such as \{ cost \}, got "2"/);
    for (const bad of [{ cost: '2' }, 0, { cost: 0 }, 1.5]) {
      const error = await d.refund('k', bad as never).catch((e: unknown) => e);
      expect(error, JSON.stringify(bad)).toBeInstanceOf(bad === 0 || bad === 1.5 || (bad as { cost?: unknown }).cost === 0 ? RangeError : TypeError);
      expect((error as Error).message).toMatch(/\.refund: option "cost"/);
    }
    await expect(d.refund('k', null as never)).rejects.toThrow(TypeError);
    await expect(d.refund('k', { costs: 2 } as never)).rejects.toThrow(/\.refund: unknown option "costs"/);
    await expect(d.refund('k', { cost: 2, signal: new AbortController().signal } as never)).rejects.toThrow(/unknown option "signal"/);
    await expect(d.refund(7 as never)).rejects.toThrow(/key must be a string, got 7/);
  });

  it('reset refuses a key that is not a non-empty string', async () => {
    const d = make();
    await expect(d.reset(null as never)).rejects.toThrow(/\.reset: key must be a string, got null/);
    await expect(d.reset('')).rejects.toThrow(RangeError);
  });
});

describe('the memory fast path', () => {
  it('passes the cost given as a number to a custom store, and passes no outage mode unless the limiter has one', async () => {
    const store = recordingStore();
    const limiter = rateLimiter({ name: 'api', algorithm: fixedWindow({ limit: 10, windowMs: 1_000 }), store });
    await limiter.consume('k', 7);
    await limiter.consume('k');
    expect(store.costs).toEqual([7, 1]);
    expect(store.args.map((a) => a.length)).toEqual([4, 4]);
  });
});

describe('maxCost', () => {
  it('is the largest cost ever admissible: a window\'s limit, GCRA\'s burst, a quota\'s limit', () => {
    expect(rateLimiter({ algorithm: fixedWindow({ limit: 12, windowMs: 1_000 }) }).maxCost).toBe(12);
    expect(rateLimiter({ algorithm: slidingWindow({ limit: 9, windowMs: 1_000 }) }).maxCost).toBe(9);
    expect(rateLimiter({ algorithm: gcra({ limit: 100, periodMs: 60_000, burst: 20 }) }).maxCost).toBe(20);
    expect(rateLimiter({ algorithm: gcra({ limit: 100, periodMs: 60_000 }) }).maxCost).toBe(100);
    expect(quota({ limit: 10_000, period: 'month' }).maxCost).toBe(10_000);
  });

  it('a cost of maxCost can be admitted, and one more is refused', async () => {
    const limiter = rateLimiter({ algorithm: gcra({ limit: 100, periodMs: 60_000, burst: 20 }) });
    await expect(limiter.consume('k', limiter.maxCost)).resolves.toMatchObject({ allowed: true });
    await expect(limiter.consume('k', limiter.maxCost + 1)).rejects.toThrow(RangeError);
  });
});

describe('names on a shared store', () => {
  const algorithm = () => fixedWindow({ limit: 5, windowMs: 60_000 });

  it('refuses a second limiter with the same name on one store, saying why (regression: they silently shared counters)', () => {
    const store = memoryStore();
    rateLimiter({ name: 'api', algorithm: algorithm(), store });
    expect(() => rateLimiter({ name: 'api', algorithm: algorithm(), store })).toThrow(/named "api" already uses this store.*share counters/);
  });

  it('refuses a second unnamed limiter, and a second unnamed quota, on one store', () => {
    const store = memoryStore();
    rateLimiter({ algorithm: algorithm(), store });
    expect(() => rateLimiter({ algorithm: algorithm(), store })).toThrow(/"ratelimit"/);
    quota({ limit: 5, period: 'day', store });
    expect(() => quota({ limit: 5, period: 'day', store })).toThrow(/^quota: a quota named "quota"/);
  });

  it('refuses a quota named like a limiter on the same store (their keys collide), and accepts the defaults side by side', () => {
    const store = memoryStore();
    rateLimiter({ name: 'tenant', algorithm: algorithm(), store });
    expect(() => quota({ name: 'tenant', limit: 5, period: 'day', store })).toThrow(/^quota: a rate limiter named "tenant"/);
    rateLimiter({ algorithm: algorithm(), store });
    expect(() => quota({ limit: 5, period: 'day', store })).not.toThrow();
  });

  it('allows one name on different stores, and different names on one store', () => {
    const store = memoryStore();
    rateLimiter({ name: 'a', algorithm: algorithm(), store });
    rateLimiter({ name: 'b', algorithm: algorithm(), store });
    rateLimiter({ name: 'a', algorithm: algorithm(), store: memoryStore() });
  });

  it('dispose() frees the name for a replacement, which continues from the same counters; the disposed one refuses calls', async () => {
    const store = memoryStore();
    const first = rateLimiter({ name: 'api', algorithm: algorithm(), store });
    await first.consume('k', 2);
    first.dispose();
    first.dispose(); // idempotent
    const second = rateLimiter({ name: 'api', algorithm: algorithm(), store });
    expect(await second.consume('k')).toMatchObject({ remaining: 2 });
    await expect(first.consume('k')).rejects.toThrow(/rateLimiter\.consume: "api" has been disposed/);
    await expect(first.peek('k')).rejects.toThrow(/disposed/);
    // Disposing of the old one again must not free the name its replacement holds.
    first.dispose();
    expect(() => rateLimiter({ name: 'api', algorithm: algorithm(), store })).toThrow(/already uses this store/);
  });

  it('a quota frees its name with dispose() and with using', async () => {
    const store = memoryStore();
    {
      using q = quota({ name: 'q', limit: 5, period: 'day', store });
      await q.consume('k');
    }
    const q2 = quota({ name: 'q', limit: 5, period: 'day', store });
    q2.dispose();
    expect(() => quota({ name: 'q', limit: 5, period: 'day', store })).not.toThrow();
  });
});

describe('options that swallowed null', () => {
  it.each<[string, Record<string, unknown>, typeof TypeError | typeof RangeError, string, string]>([
    ['quota timeZone', { limit: 5, period: 'day', timeZone: null }, TypeError, '"timeZone"', 'null'],
    ['quota store', { limit: 5, period: 'day', store: null }, TypeError, '"store"', 'null'],
    ['quota name', { limit: 5, period: 'day', name: null }, TypeError, '"name"', 'null'],
    ['quota onStoreError', { limit: 5, period: 'day', onStoreError: null }, TypeError, '"onStoreError"', 'null'],
    ['quota onStoreError', { limit: 5, period: 'day', onStoreError: 'deny' }, TypeError, '"onStoreError"', '"deny"'],
  ])('%s = %o is refused, not replaced by the default', (_what, options, kind, option, shown) => {
    expectRejected(() => quota(options as never), kind, option, shown);
    expect(() => quota(options as never)).toThrow(/^quota: /);
  });

  it.each<[Record<string, unknown>, string, string]>([
    [{ store: null }, '"store"', 'null'],
    [{ name: null }, '"name"', 'null'],
    [{ onStoreError: null }, '"onStoreError"', 'null'],
    [{ onStoreError: 'closed' }, '"onStoreError"', '"closed"'],
    [{ onStoreError: 1 }, '"onStoreError"', '1'],
  ])('rateLimiter option %o is refused', (options, option, shown) => {
    expectRejected(() => rateLimiter({ algorithm: fixedWindow({ limit: 1, windowMs: 1_000 }), ...options } as never), TypeError, option, shown);
  });

  it('every onStoreError mode is accepted and kept, and the memory store decides as usual with any of them', async () => {
    for (const mode of ['local', 'fail-open', 'fail-closed'] as const) {
      const limiter = rateLimiter({ algorithm: fixedWindow({ limit: 1, windowMs: 1_000 }), onStoreError: mode });
      expect(limiter.onStoreError).toBe(mode);
      expect(await limiter.consume('k')).toMatchObject({ allowed: true, store: 'memory' });
      expect(await limiter.consume('k')).toMatchObject({ allowed: false, store: 'memory' });
      expect(quota({ limit: 1, period: 'day', onStoreError: mode }).onStoreError).toBe(mode);
    }
  });
});
