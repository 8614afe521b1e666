import { subscribe, unsubscribe } from 'node:diagnostics_channel';
import { describe, expect, it } from 'vitest';
import {
  channelNames,
  constant,
  ManualClock,
  pipeline,
  QuotaExceededError,
  RateLimitedError,
  retry,
} from '../../../src/index.js';
import { fixedWindow } from '../../../src/ratelimit/algorithms/index.js';
import { storeKey } from '../../../src/ratelimit/keys.js';
import { memoryStore } from '../../../src/ratelimit/memory-store.js';
import { rateLimit } from '../../../src/ratelimit/rate-limit-policy.js';
import { rateLimiter } from '../../../src/ratelimit/rate-limiter.js';
import { countingAlgorithm } from './support.js';

function setup(limit = 2, windowMs = 1_000) {
  const clock = new ManualClock(1_000_000);
  const store = memoryStore({ clock });
  const limiter = rateLimiter({ name: 'api', algorithm: countingAlgorithm(limit, windowMs), store });
  return { clock, store, limiter };
}

describe('storeKey', () => {
  it('keeps limiters apart even when names and keys are chosen to collide', () => {
    expect(storeKey('t', 'a', 'b:c')).not.toBe(storeKey('t', 'a:b', 'c'));
    expect(storeKey('t', 'x', 'k')).not.toBe(storeKey('t', 'x', 'h:k'));
  });

  it('hashes oversized keys so a client cannot make us store them', () => {
    const key = storeKey('t', 'api', 'x'.repeat(1_000_000));
    expect(key.length).toBeLessThan(100);
    expect(storeKey('t', 'api', 'x'.repeat(1_000_000))).toBe(key);
    expect(storeKey('t', 'api', 'x'.repeat(999_999))).not.toBe(key);
  });

  it('keeps control characters and { } : inside keys distinct', () => {
    const keys = ['a{b}', 'a:b', 'a\u0000b', 'a\nb', 'ab'].map((k) => storeKey('t', 'api', k));
    expect(new Set(keys).size).toBe(5);
  });

  it.each([
    [undefined, TypeError],
    [42, TypeError],
    [{}, TypeError],
    ['', RangeError],
    ['\uD800', RangeError],
    ['a\uDC00', RangeError],
    [`${'x'.repeat(300)}\uD800`, RangeError],
  ])('refuses the key %o', (key, kind) => {
    expect(() => storeKey('rateLimiter.consume', 'api', key)).toThrow(kind);
  });

  it('refuses a key with a lone surrogate on the memory fast path too, and accepts U+FFFD and surrogate pairs', async () => {
    const limiter = rateLimiter({ name: 'api', algorithm: fixedWindow({ limit: 3, windowMs: 60_000 }) });
    await expect(limiter.consume('\uD800')).rejects.toThrow(/well-formed/);
    await expect(limiter.consume('\uFFFD')).resolves.toMatchObject({ remaining: 2 });
    await expect(limiter.consume('\uD83D\uDE00')).resolves.toMatchObject({ remaining: 2 });
  });
});

describe('rateLimiter', () => {
  it('decides by key and cost and never throws on a denial', async () => {
    const { limiter } = setup(3);
    await expect(limiter.consume('u1', { cost: 2 })).resolves.toMatchObject({ allowed: true, remaining: 1 });
    await expect(limiter.consume('u1', { cost: 2 })).resolves.toMatchObject({ allowed: false, remaining: 1 });
    await expect(limiter.consume('u2')).resolves.toMatchObject({ allowed: true, remaining: 2 });
  });

  it('peek, refund and reset act on one key', async () => {
    const { limiter } = setup(1);
    await limiter.consume('u');
    await expect(limiter.peek('u')).resolves.toMatchObject({ allowed: false });
    await limiter.refund('u');
    await expect(limiter.peek('u')).resolves.toMatchObject({ allowed: true });
    await limiter.consume('u');
    await limiter.reset('u');
    await expect(limiter.consume('u')).resolves.toMatchObject({ allowed: true });
  });

  it('two limiters on one store do not share counters', async () => {
    const clock = new ManualClock(1_000_000);
    const store = memoryStore({ clock });
    const a = rateLimiter({ name: 'a', algorithm: countingAlgorithm(1, 1_000), store });
    const b = rateLimiter({ name: 'b', algorithm: countingAlgorithm(1, 1_000), store });
    await a.consume('same');
    await expect(b.consume('same')).resolves.toMatchObject({ allowed: true });
  });

  it('publishes each decision without the key', async () => {
    const { limiter } = setup(1);
    const seen: unknown[] = [];
    const listener = (m: unknown) => seen.push(m);
    subscribe(channelNames.rateLimitDecision, listener);
    try {
      await limiter.consume('secret-user-id');
    } finally {
      unsubscribe(channelNames.rateLimitDecision, listener);
    }
    expect(seen).toEqual([{ kind: 'rate-limiter', policy: 'api', decision: expect.objectContaining({ allowed: true, store: 'memory' }), mode: 'enforce' }]);
    expect(JSON.stringify(seen)).not.toContain('secret-user-id');
  });

  it.each([
    [{ cost: 0 }, RangeError],
    [{ cost: -1 }, RangeError],
    [{ cost: 1.5 }, RangeError],
    [{ cost: Number.NaN }, RangeError],
    [{ cost: '2' }, TypeError],
  ])('rejects the consume options %o', async (options, kind) => {
    const { limiter } = setup();
    await expect(limiter.consume('u', options as never)).rejects.toThrow(kind);
  });

  it("adopts a custom store's answer given as another library's promise, and publishes the decision, not the promise", async () => {
    const inner = memoryStore();
    const thenable = <T>(value: T) => ({ then: (ok: (v: T) => unknown) => ok(value) });
    const store = {
      consume: (...args: Parameters<typeof inner.consume>) => thenable(inner.consume(...args)),
      peek: inner.peek.bind(inner),
      refund: inner.refund.bind(inner),
      reset: inner.reset.bind(inner),
    };
    const limiter = rateLimiter({ name: 'foreign', algorithm: countingAlgorithm(1, 1_000), store: store as never });
    const seen: unknown[] = [];
    const listener = (m: unknown) => seen.push(m);
    subscribe(channelNames.rateLimitDecision, listener);
    try {
      expect(await limiter.consume('u')).toMatchObject({ allowed: true });
      expect(await limiter.consume('u')).toMatchObject({ allowed: false });
    } finally {
      unsubscribe(channelNames.rateLimitDecision, listener);
    }
    expect(seen).toEqual([
      { kind: 'rate-limiter', policy: 'foreign', decision: expect.objectContaining({ allowed: true }), mode: 'enforce' },
      { kind: 'rate-limiter', policy: 'foreign', decision: expect.objectContaining({ allowed: false }), mode: 'enforce' },
    ]);
  });

  it('rejects with the reason when the signal is already aborted', async () => {
    const { limiter } = setup();
    const c = new AbortController();
    c.abort(new Error('gone'));
    await expect(limiter.consume('u', { signal: c.signal })).rejects.toThrow('gone');
  });

  it.each([
    [undefined, TypeError, /options must be an object/],
    [{}, TypeError, /"algorithm"/],
    [{ algorithm: countingAlgorithm(1, 1), store: {} }, TypeError, /"store"/],
    [{ algorithm: countingAlgorithm(1, 1), name: '' }, TypeError, /"name"/],
    [{ algorithm: countingAlgorithm(1, 1), limit: 5 }, TypeError, /unknown option "limit"/],
  ])('rejects bad options (%#)', (options, kind, message) => {
    expect(() => rateLimiter(options as never)).toThrow(kind);
    expect(() => rateLimiter(options as never)).toThrow(message);
  });
});

describe('rateLimit policy', () => {
  it('runs the call while allowed and rejects with RateLimitedError carrying the decision', async () => {
    const { limiter } = setup(1, 1_000);
    const policy = rateLimit(limiter, { key: 'partner' });
    await expect(policy.execute(() => 'ok')).resolves.toBe('ok');
    const error = await policy.execute(() => 'not called').catch((e: unknown) => e);
    expect(error).toBeInstanceOf(RateLimitedError);
    expect(error).toMatchObject({ code: 'ERR_BULWARK_RATE_LIMITED', limit: 1, remaining: 0, retryAfterMs: 1_000 });
  });

  it('a retry outside it waits the retryAfterMs the denial carries', async () => {
    const { clock, limiter } = setup(1, 1_000);
    const delays: number[] = [];
    const r = retry({ clock, maxAttempts: 2, backoff: constant(1), maxDelayMs: 5_000 });
    r.onRetry((e) => delays.push(e.delayMs));
    const policy = pipeline(r, rateLimit(limiter, { key: 'k' }));
    await policy.execute(() => 'first');
    const second = policy.execute(() => 'second');
    await clock.advance(1_000);
    await expect(second).resolves.toBe('second');
    expect(delays).toEqual([1_000]);
  });

  it('keys and costs may come from the context; a key function that throws rejects the call', async () => {
    const { limiter } = setup(3);
    const policy = rateLimit(limiter, { key: ({ attempt }) => `attempt-${attempt}`, cost: () => 3 });
    await expect(policy.execute(() => 1)).resolves.toBe(1);
    await expect(policy.execute(() => 1)).rejects.toBeInstanceOf(RateLimitedError);
    const broken = rateLimit(limiter, {
      key: () => {
        throw new Error('no key');
      },
    });
    await expect(broken.execute(() => 1)).rejects.toThrow('no key');
    const wrong = rateLimit(limiter, { key: (() => 42) as never });
    await expect(wrong.execute(() => 1)).rejects.toThrow(TypeError);
  });

  it('an async key or cost is awaited: the call is decided once both are known, and a rejected one rejects the call without charging', async () => {
    const { limiter } = setup(5);
    let ran = 0;
    const policy = rateLimit(limiter, { key: async () => 'tenant-7', cost: () => Promise.resolve(3) });
    await expect(policy.execute(() => ++ran)).resolves.toBe(1);
    expect(await limiter.peek('tenant-7')).toMatchObject({ remaining: 5 - 3 - 1 });
    await expect(policy.execute(() => ++ran)).rejects.toBeInstanceOf(RateLimitedError);
    expect(ran).toBe(1);
    // Any thenable, a synchronous key with an async cost, and the reverse.
    const thenable = { then: (resolve: (v: string) => void) => resolve('other') } as unknown as PromiseLike<string>;
    await expect(rateLimit(limiter, { key: () => thenable, cost: async () => 2 }).execute(() => 'ok')).resolves.toBe('ok');
    await expect(rateLimit(limiter, { key: async () => 'third', cost: 2 }).execute(() => 'ok')).resolves.toBe('ok');
    expect(await limiter.peek('other')).toMatchObject({ remaining: 5 - 2 - 1 });
    expect(await limiter.peek('third')).toMatchObject({ remaining: 5 - 2 - 1 });
    // A key lookup that fails rejects with its error; nothing is charged, the call never runs.
    const failing = rateLimit(limiter, { key: () => Promise.reject(new Error('tenant lookup failed')) });
    await expect(failing.execute(() => ++ran)).rejects.toThrow('tenant lookup failed');
    expect(ran).toBe(1);
    // What it resolves to is checked as a synchronous key or cost is, by consume.
    await expect(rateLimit(limiter, { key: (async () => 42) as never }).execute(() => 1)).rejects.toThrow(/consume: key must be a string, got 42/);
    await expect(rateLimit(limiter, { key: 'k', cost: (async () => 0) as never }).execute(() => 1)).rejects.toThrow(/consume: option "cost"/);
  });

  it('a quota denial becomes QuotaExceededError', async () => {
    const quotaLike = {
      kind: 'quota',
      name: 'monthly',
      consume: async () => ({ allowed: false, limit: 10, remaining: 0, resetMs: 5_000, retryAfterMs: 5_000, store: 'memory' }),
    };
    const error = await rateLimit(quotaLike, { key: 'tenant' }).execute(() => 1).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(QuotaExceededError);
    expect(error).toMatchObject({ resetMs: 5_000 });
  });

  it.each([
    [null, { key: 'k' }, /first argument/],
    [{ kind: 'x', name: 'x', consume: () => Promise.resolve() }, undefined, /"key"/],
    [{ kind: 'x', name: 'x', consume: () => Promise.resolve() }, { key: 5 }, /"key"/],
    [{ kind: 'x', name: 'x', consume: () => Promise.resolve() }, { key: 'k', cost: 0 }, /"cost"/],
    [{ kind: 'x', name: 'x', consume: () => Promise.resolve() }, { key: 'k', keys: 1 }, /unknown option "keys"/],
  ])('rejects bad arguments (%#)', (limiter, options, message) => {
    expect(() => rateLimit(limiter as never, options as never)).toThrow(message);
  });
});
