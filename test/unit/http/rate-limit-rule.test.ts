import { describe, expect, it } from 'vitest';
import { clientAddressResolver } from '../../../src/http/client-address.js';
import { countValue, problem, secondsUp } from '../../../src/http/problem.js';
import { decideRequest, decideRequestNow, RateLimitRule, retryAfterValue } from '../../../src/http/rate-limit-rule.js';
import { type Decider, fixedWindow, gcra, type LimiterDecision, quota, rateLimiter, slidingWindow } from '../../../src/index.js';

const shared = { headers: 'draft' as const, clientOf: clientAddressResolver() };

function decision(overrides: Partial<LimiterDecision>): LimiterDecision {
  return { allowed: true, limit: 10, remaining: 5, resetMs: 1_500, retryAfterMs: 0, store: 'memory', ...overrides };
}

function custom(name: string, extra: object = {}): Decider {
  return { kind: 'custom', name, consume: () => Promise.resolve(decision({})), ...extra };
}

describe('header values', () => {
  it.each([
    [0, 0],
    [-5, 0],
    [Number.NaN, 0],
    [1, 1],
    [999, 1],
    [1_000, 1],
    [1_001, 2],
    [Number.POSITIVE_INFINITY, 2_147_483_647],
  ])('secondsUp(%d) = %d', (ms, s) => {
    expect(secondsUp(ms)).toBe(s);
  });

  it.each([
    [5, 5],
    [5.7, 5],
    [-1, 0],
    [Number.NaN, 0],
  ])('countValue(%d) = %d', (n, v) => {
    expect(countValue(n)).toBe(v);
  });

  it('Retry-After is whole seconds, rounded up, at least 1, never NaN', () => {
    expect(retryAfterValue(decision({ retryAfterMs: 1 }))).toBe('1');
    expect(retryAfterValue(decision({ retryAfterMs: 2_000 }))).toBe('2');
    expect(retryAfterValue(decision({ retryAfterMs: 2_001 }))).toBe('3');
    expect(retryAfterValue(decision({ retryAfterMs: 0 }))).toBe('1');
    expect(retryAfterValue(decision({ retryAfterMs: -10 }))).toBe('1');
    expect(retryAfterValue(decision({ retryAfterMs: Number.NaN }))).toBe('1');
  });

  it('RateLimit never carries a negative or NaN value', () => {
    const rule = new RateLimitRule('t', custom('x'), {}, shared);
    expect(rule.rateLimitHeader(decision({ remaining: -3, resetMs: Number.NaN }))).toBe('"x";r=0;t=0');
    expect(rule.rateLimitHeader(decision({ allowed: false, remaining: 0, retryAfterMs: 2_500 }))).toBe('"x";r=0;t=3');
    expect(rule.rateLimitHeader(decision({ remaining: 4, resetMs: 1 }))).toBe('"x";r=4;t=1');
  });

  it('on a denial, RateLimit t agrees with Retry-After (at least 1, never an invitation to retry at once)', () => {
    const rule = new RateLimitRule('t', custom('x'), {}, shared);
    for (const retryAfterMs of [0, -5, Number.NaN, 1, 1_000, 1_001]) {
      const d = decision({ allowed: false, remaining: 0, retryAfterMs });
      expect(rule.rateLimitHeader(d)).toBe(`"x";r=0;t=${retryAfterValue(d)}`);
    }
  });

  it('problem bodies hold exactly type, title, status and detail', () => {
    const p = problem(429, 'Too Many Requests', 'slow down');
    expect(JSON.parse(p.body)).toEqual({ type: 'about:blank', title: 'Too Many Requests', status: 429, detail: 'slow down' });
    expect(p.length).toBe(String(Buffer.byteLength(p.body)));
  });
});

describe('RateLimit-Policy', () => {
  it.each<[string, Decider, string]>([
    ['a fixed window', rateLimiter({ name: 'api', algorithm: fixedWindow({ limit: 100, windowMs: 60_000 }) }), '"api";q=100;w=60'],
    ['a sliding window', rateLimiter({ name: 's', algorithm: slidingWindow({ limit: 5, windowMs: 1_000 }) }), '"s";q=5;w=1'],
    ['a GCRA limiter (its rate, not its burst)', rateLimiter({ name: 'g', algorithm: gcra({ limit: 100, periodMs: 60_000, burst: 10 }) }), '"g";q=100;w=60'],
    ['a window of part seconds (no w)', rateLimiter({ name: 'h', algorithm: fixedWindow({ limit: 3, windowMs: 1_500 }) }), '"h";q=3'],
    ['an hourly quota', quota({ name: 'q', limit: 7, period: 'hour' }), '"q";q=7;w=3600'],
    ['a weekly quota', quota({ name: 'q', limit: 7, period: 'week' }), '"q";q=7;w=604800'],
    ['a monthly quota (no w)', quota({ name: 'q', limit: 7, period: 'month' }), '"q";q=7'],
    ['a name with quotes and backslashes', custom('a"b\\c', { algorithm: { limit: 1, windowMs: 1_000 } }), '"a\\"b\\\\c";q=1;w=1'],
    ['a name with control and non-ASCII characters', custom('ü\n1', { algorithm: { limit: 1, windowMs: 1_000 } }), '"__1";q=1;w=1'],
  ])('for %s', (_what, decider, expected) => {
    expect(new RateLimitRule('t', decider, {}, shared).policyHeader(decision({}))).toBe(expected);
  });

  it('for an unknown limiter, comes from its first decision and stays', () => {
    const rule = new RateLimitRule('t', custom('c'), {}, shared);
    expect(rule.policyHeader(decision({ limit: 12 }))).toBe('"c";q=12');
    expect(rule.policyHeader(decision({ limit: 99 }))).toBe('"c";q=12');
  });
});

describe('decideRequest', () => {
  const req = { socket: { remoteAddress: '203.0.113.1' }, headers: {} };

  it('consumes without options on the fast path, with one shared options object for a fixed cost', async () => {
    const calls: unknown[][] = [];
    const d: Decider = { kind: 'x', name: 'x', consume: (...args: unknown[]) => (calls.push(args), Promise.resolve(decision({}))) };
    await decideRequest(new RateLimitRule('t', d, {}, shared), req, req);
    const fixed = new RateLimitRule('t', d, { cost: 3 }, shared);
    await decideRequest(fixed, req, req);
    await decideRequest(fixed, req, req);
    expect(calls[0]).toEqual(['203.0.113.1']);
    expect(calls[1]).toEqual(['203.0.113.1', { cost: 3 }]);
    expect(calls[1]![1]).toBe(calls[2]![1]);
  });

  it('turns a synchronous throw of a limiter into a rejection', async () => {
    const d: Decider = {
      kind: 'x',
      name: 'x',
      consume: () => {
        throw new Error('boom');
      },
    };
    await expect(decideRequest(new RateLimitRule('t', d, {}, shared), req, req)).rejects.toThrow('boom');
  });

  it('rejects keys that are not non-empty strings, and costs that are not whole numbers', async () => {
    const d = custom('x');
    for (const key of [undefined, null, 5, '', {}]) {
      await expect(decideRequest(new RateLimitRule('own', d, { key: () => key as never }, shared), req, req)).rejects.toThrow(
        /own: option "key" must return a non-empty string/,
      );
    }
    for (const cost of [undefined, 0, -1, 1.5, Number.NaN, '2']) {
      await expect(decideRequest(new RateLimitRule('own', d, { cost: () => cost as never }, shared), req, req)).rejects.toThrow(
        /own: option "cost"/,
      );
    }
  });
});

describe('decisions from custom limiters', () => {
  const req = { socket: { remoteAddress: '203.0.113.1' }, headers: {} };

  it.each<[string, unknown]>([
    ['null', null],
    ['undefined', undefined],
    ['a number', 5],
    ['an object without allowed', { limit: 1 }],
  ])('rejects when a custom limiter resolves to %s, with or without key functions', async (_what, value) => {
    const d = custom('bad', { consume: () => Promise.resolve(value) });
    for (const options of [{}, { key: () => 'k' }]) {
      await expect(decideRequest(new RateLimitRule('own', d, options, shared), req, req)).rejects.toThrow(
        /own: the limiter's consume must resolve to a decision/,
      );
    }
  });

  it('waits for a custom limiter answering with a thenable that is not a native promise', async () => {
    const thenable = { then: (resolve: (d: LimiterDecision) => void) => resolve(decision({ allowed: false, limit: 3 })) };
    const d = custom('thenable', { consume: () => thenable });
    const outcome = decideRequestNow(new RateLimitRule('t', d, {}, shared), req, req);
    expect(outcome).toBeInstanceOf(Promise);
    await expect(outcome).resolves.toMatchObject({ allowed: false, limit: 3 });
    await expect(decideRequest(new RateLimitRule('t', d, { key: () => 'k' }, shared), req, req)).resolves.toMatchObject({ allowed: false });
  });

  it('takes a custom limiter that answers synchronously without a promise', () => {
    const d = custom('sync', { consume: () => decision({ remaining: 2 }) });
    expect(decideRequestNow(new RateLimitRule('t', d, {}, shared), req, req)).toMatchObject({ allowed: true, remaining: 2 });
    const bad = custom('sync', { consume: () => null });
    expect(() => decideRequestNow(new RateLimitRule('t', bad, {}, shared), req, req)).toThrow(/must resolve to a decision/);
  });
});

describe('decideRequestNow', () => {
  const req = { socket: { remoteAddress: '203.0.113.1' }, headers: {} };

  it('answers without a promise for a limiter or a quota over a memory store, and takes the units', async () => {
    const limiter = rateLimiter({ name: 'sync', algorithm: fixedWindow({ limit: 2, windowMs: 60_000 }) });
    const rule = new RateLimitRule('t', limiter, {}, shared);
    const first = decideRequestNow(rule, req, req);
    expect(first).not.toBeInstanceOf(Promise);
    expect(first).toMatchObject({ allowed: true, remaining: 1 });
    expect(decideRequestNow(new RateLimitRule('t', limiter, { cost: 1 }, shared), req, req)).toMatchObject({ allowed: true, remaining: 0 });
    expect(decideRequestNow(rule, req, req)).toMatchObject({ allowed: false, remaining: 0 });
    // The same counter as consume's.
    expect(await limiter.consume('203.0.113.1')).toMatchObject({ allowed: false });

    const monthly = quota({ name: 'q', limit: 5, period: 'month' });
    const fromQuota = decideRequestNow(new RateLimitRule('t', monthly, { cost: 2 }, shared), req, req);
    expect(fromQuota).not.toBeInstanceOf(Promise);
    expect(fromQuota).toMatchObject({ allowed: true, remaining: 3 });
  });

  it('returns the promise of a decider that has no synchronous path, and of rules with functions', async () => {
    const d = custom('other');
    const outcome = decideRequestNow(new RateLimitRule('t', d, {}, shared), req, req);
    expect(outcome).toBeInstanceOf(Promise);
    await expect(outcome).resolves.toMatchObject({ allowed: true });
    const limiter = rateLimiter({ name: 'fn', algorithm: fixedWindow({ limit: 2, windowMs: 60_000 }) });
    const withKey = decideRequestNow(new RateLimitRule('t', limiter, { key: () => 'k' }, shared), req, req);
    expect(withKey).toBeInstanceOf(Promise);
    await expect(withKey).resolves.toMatchObject({ allowed: true, remaining: 1 });
  });

  it('throws what goes wrong before a decision exists (decideRequest turns it into a rejection)', async () => {
    const d = custom('thrower', {
      consume: () => {
        throw new Error('boom');
      },
    });
    const rule = new RateLimitRule('t', d, {}, shared);
    expect(() => decideRequestNow(rule, req, req)).toThrow('boom');
    await expect(decideRequest(rule, req, req)).rejects.toThrow('boom');
  });
});
