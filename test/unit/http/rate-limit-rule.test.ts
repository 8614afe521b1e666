import { describe, expect, it } from 'vitest';
import { ManualClock } from '../../../src/core/clock.js';
import { clientAddressResolver } from '../../../src/http/client-address.js';
import { countValue, MAX_SF_INTEGER, problem, PROBLEM_TYPES, secondsUp } from '../../../src/http/problem.js';
import { boundedConsoleReporter, checkHttpOptions } from '../../../src/http/rate-limit-options.js';
import {
  applyOutcome,
  decideRequest,
  decideRequestNow,
  type HeaderAccess,
  RateLimitRule,
  retryAfterValue,
  type RuleOutcome,
} from '../../../src/http/rate-limit-rule.js';
import { compoundLimit, type Decider, fixedWindow, gcra, type LimiterDecision, memoryStore, quota, rateLimiter, slidingWindow } from '../../../src/index.js';

const shared = { headers: 'draft' as const, clientOf: clientAddressResolver() };
const legacy = { headers: 'draft+legacy' as const, clientOf: clientAddressResolver() };

function decision(overrides: Partial<LimiterDecision>): LimiterDecision {
  return { allowed: true, limit: 10, remaining: 5, resetMs: 1_500, retryAfterMs: 0, store: 'memory', ...overrides };
}

function custom(name: string, extra: object = {}): Decider {
  return { kind: 'custom', name, consume: () => Promise.resolve(decision({})), ...extra };
}

/** A fresh request from one address: each call is a new request (charges are marked per request). */
const fresh = (remoteAddress = '203.0.113.1') => ({ socket: { remoteAddress }, headers: {} });

/** Headers kept in a Map, as a response would hold them. */
type Headers = Map<string, string>;
const access: HeaderAccess<Headers> = {
  get: (h, name) => h.get(name.toLowerCase()),
  set: (h, name, value) => {
    h.set(name.toLowerCase(), value);
  },
};

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
    [Number.MAX_SAFE_INTEGER, MAX_SF_INTEGER],
    [Number.POSITIVE_INFINITY, MAX_SF_INTEGER],
  ])('countValue(%d) = %d (never past the structured-field integer range)', (n, v) => {
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

  it('problem bodies hold type, title, status and detail, and policy when given', () => {
    const p = problem(429, PROBLEM_TYPES.rateLimited, 'Too Many Requests', 'slow down', 'api');
    expect(JSON.parse(p.body)).toEqual({ type: 'urn:bulwark:problem:rate-limited', title: 'Too Many Requests', status: 429, detail: 'slow down', policy: 'api' });
    expect(p.length).toBe(String(Buffer.byteLength(p.body)));
    expect(Object.keys(JSON.parse(problem(500, 'urn:x', 't', 'd').body))).toEqual(['type', 'title', 'status', 'detail']);
  });
});

describe('RateLimit-Policy', () => {
  it.each<[string, Decider, string]>([
    ['a fixed window', rateLimiter({ name: 'api', algorithm: fixedWindow({ limit: 100, windowMs: 60_000 }) }), '"api";q=100;w=60'],
    ['a sliding window', rateLimiter({ name: 's', algorithm: slidingWindow({ limit: 5, windowMs: 1_000 }) }), '"s";q=5;w=1'],
    ['a GCRA limiter (its bucket: burst, and the seconds a full bucket takes to refill)', rateLimiter({ name: 'g', algorithm: gcra({ limit: 100, periodMs: 60_000, burst: 10 }) }), '"g";q=10;w=6'],
    ['a GCRA limiter with the default burst', rateLimiter({ name: 'g', algorithm: gcra({ limit: 100, periodMs: 60_000 }) }), '"g";q=100;w=60'],
    ['a GCRA limiter whose burst exceeds its rate (q is the burst, so r never exceeds q)', rateLimiter({ name: 'g', algorithm: gcra({ limit: 10, periodMs: 1_000, burst: 50 }) }), '"g";q=50;w=5'],
    ['a GCRA bucket that refills in part seconds (no w)', rateLimiter({ name: 'g', algorithm: gcra({ limit: 10, periodMs: 1_000, burst: 2 }) }), '"g";q=2'],
    ['a window of part seconds (no w)', rateLimiter({ name: 'h', algorithm: fixedWindow({ limit: 3, windowMs: 1_500 }) }), '"h";q=3'],
    ['an hourly quota', quota({ name: 'q', limit: 7, period: 'hour' }), '"q";q=7;w=3600'],
    ['a weekly quota', quota({ name: 'q', limit: 7, period: 'week' }), '"q";q=7;w=604800'],
    ['a monthly quota (no w)', quota({ name: 'q', limit: 7, period: 'month' }), '"q";q=7'],
    ['a quota above the structured-field integer range (q capped, so parsers accept it)', quota({ name: 'big', limit: 2 ** 52, period: 'day' }), `"big";q=${MAX_SF_INTEGER};w=86400`],
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

describe('RateLimit t (draft-11 effective window)', () => {
  const tOf = (item: string): number | undefined => {
    const m = /;t=(\d+)/.exec(item);
    return m === null ? undefined : Number(m[1]);
  };

  it('regression: an allowed GCRA response never advertises a longer t than the denial that follows (it said: until the bucket is full)', () => {
    for (const [limit, periodMs, burst] of [
      [100, 60_000, 20],
      [10, 1_000, 2],
      [1, 90_000, 3],
      [5, 7_000, 5],
    ] as const) {
      const clock = new ManualClock(1_700_000_000_123);
      const limiter = rateLimiter({ name: 'g', algorithm: gcra({ limit, periodMs, burst }), store: memoryStore({ clock }) });
      const rule = new RateLimitRule('t', limiter, {}, shared);
      let last: string | undefined;
      for (let i = 0; i < burst + 1; i++) {
        const d = decideRequestNow(rule, fresh(), fresh()) as LimiterDecision;
        const item = rule.rateLimitHeader(d);
        if (d.allowed) {
          last = item;
          continue;
        }
        expect(last, `${limit}/${periodMs} burst ${burst}`).toMatch(/;r=0;t=\d+$/);
        expect(tOf(last!)!).toBeLessThanOrEqual(tOf(item)!);
        expect(tOf(last!)!).toBeGreaterThanOrEqual(1);
        // And t is the time to one more unit, not to a full bucket.
        expect(tOf(last!)).toBe(Math.ceil(periodMs / limit / 1000));
      }
    }
  });

  it('an allowed GCRA response with units left tells when the next unit is back', () => {
    const clock = new ManualClock(5_000_000);
    const limiter = rateLimiter({ name: 'g', algorithm: gcra({ limit: 100, periodMs: 60_000, burst: 20 }), store: memoryStore({ clock }) });
    const rule = new RateLimitRule('t', limiter, {}, shared);
    expect(rule.rateLimitHeader(decideRequestNow(rule, fresh(), fresh()) as LimiterDecision)).toBe('"g";r=19;t=1');
  });

  it('regression: an allowed sliding-window response carries no t (units come back continuously; it used to say up to two windows)', () => {
    const clock = new ManualClock(1_000_000);
    const limiter = rateLimiter({ name: 's', algorithm: slidingWindow({ limit: 2, windowMs: 60_000 }), store: memoryStore({ clock }) });
    const rule = new RateLimitRule('t', limiter, {}, shared);
    const first = decideRequestNow(rule, fresh(), fresh()) as LimiterDecision;
    expect(rule.rateLimitHeader(first)).toBe('"s";r=1');
    decideRequestNow(rule, fresh(), fresh());
    const denied = decideRequestNow(rule, fresh(), fresh()) as LimiterDecision;
    expect(rule.rateLimitHeader(denied)).toMatch(/^"s";r=0;t=\d+$/);
  });

  it('fixed windows and quotas: t is the time until the window or period resets, on allowed and denied alike', () => {
    const clock = new ManualClock(1_000_000);
    const limiter = rateLimiter({ name: 'f', algorithm: fixedWindow({ limit: 1, windowMs: 60_000 }), store: memoryStore({ clock }) });
    const rule = new RateLimitRule('t', limiter, {}, shared);
    const allowed = rule.rateLimitHeader(decideRequestNow(rule, fresh(), fresh()) as LimiterDecision);
    const denied = rule.rateLimitHeader(decideRequestNow(rule, fresh(), fresh()) as LimiterDecision);
    expect(allowed).toBe('"f";r=0;t=20');
    expect(denied).toBe('"f";r=0;t=20');
  });
});

describe('applyOutcome: headers of stacked limiters, outages, bad costs', () => {
  it('regression: a second limiter on one request appends its items instead of overwriting the first (the exhausted policy was hidden)', () => {
    const perKey = rateLimiter({ name: 'per-key', algorithm: fixedWindow({ limit: 5, windowMs: 60_000 }) });
    const perTenant = quota({ name: 'tenant', limit: 1, period: 'day' });
    const a = new RateLimitRule('t', perKey, {}, shared);
    const b = new RateLimitRule('t', perTenant, {}, shared);
    const req = fresh();
    const headers: Headers = new Map();
    expect(applyOutcome(a, decideRequestNow(a, req, req) as RuleOutcome, req, headers, access)).toBeUndefined();
    expect(applyOutcome(b, decideRequestNow(b, req, req) as RuleOutcome, req, headers, access)).toBeUndefined();
    expect(headers.get('ratelimit-policy')).toBe('"per-key";q=5;w=60, "tenant";q=1;w=86400');
    expect(headers.get('ratelimit')).toMatch(/^"per-key";r=4;t=\d+, "tenant";r=0;t=\d+$/);

    const req2 = fresh();
    const h2: Headers = new Map();
    applyOutcome(a, decideRequestNow(a, req2, req2) as RuleOutcome, req2, h2, access);
    const answer = applyOutcome(b, decideRequestNow(b, req2, req2) as RuleOutcome, req2, h2, access);
    expect(answer?.status).toBe(429);
    expect(JSON.parse(answer!.body)).toMatchObject({ type: PROBLEM_TYPES.quotaExceeded, policy: 'tenant', status: 429 });
    expect(h2.get('ratelimit')).toMatch(/^"per-key";r=3;t=\d+, "tenant";r=0;t=\d+$/);
    expect(Number(h2.get('retry-after'))).toBeGreaterThan(0);
  });

  it('the same limiter met twice on one request charges once; another request is charged again', () => {
    const limiter = rateLimiter({ name: 'twice', algorithm: fixedWindow({ limit: 10, windowMs: 60_000 }) });
    const first = new RateLimitRule('t', limiter, {}, shared);
    const second = new RateLimitRule('t', limiter, {}, shared);
    const req = fresh();
    expect(decideRequestNow(first, req, req)).toMatchObject({ remaining: 9 });
    expect(decideRequestNow(second, req, req)).toBeUndefined();
    expect(decideRequestNow(first, req, req)).toBeUndefined();
    const other = fresh();
    expect(decideRequestNow(first, other, other)).toMatchObject({ remaining: 8 });
  });

  it('a rule that cannot meet a request twice records nothing while it is alone over its limiter, and charges once as soon as another rule shares it', () => {
    const limiter = rateLimiter({ name: 'solo', algorithm: fixedWindow({ limit: 10, windowMs: 60_000 }) });
    const solo = new RateLimitRule('t', limiter, {}, shared, false);
    const req = fresh();
    expect(decideRequestNow(solo, req, req)).toMatchObject({ remaining: 9 });
    expect(solo.charges.requests.has(req)).toBe(false);
    const other = new RateLimitRule('t', limiter, {}, shared, false);
    const req2 = fresh();
    expect(decideRequestNow(solo, req2, req2)).toMatchObject({ remaining: 8 });
    expect(decideRequestNow(other, req2, req2)).toBeUndefined();
  });

  it('regression: the same limiter met again for the same key with another cost throws (it charged the first cost and dropped the second)', async () => {
    const limiter = rateLimiter({ name: 'api', algorithm: fixedWindow({ limit: 10, windowMs: 60_000 }) });
    const appWide = new RateLimitRule('own', limiter, {}, shared);
    const search = new RateLimitRule('own', limiter, { cost: 3 }, shared);
    const weighed = new RateLimitRule('own', limiter, { cost: () => 3 }, shared);
    const req = fresh();
    expect(decideRequestNow(appWide, req, req)).toMatchObject({ remaining: 9 });
    expect(() => decideRequestNow(search, req, req)).toThrow(/own: limiter "api" met twice on one request for the same key, with cost 1 and then 3; .*mount it once/);
    await expect(decideRequest(weighed, req, req)).rejects.toThrow(/with cost 1 and then 3/);
    // The same cost again (one rule mounted twice, fixed or computed) is charged once, silently.
    const other = fresh();
    expect(decideRequestNow(search, other, other)).toMatchObject({ remaining: 6 });
    await expect(decideRequest(weighed, other, other)).resolves.toBeUndefined();
    expect(await limiter.peek('203.0.113.1')).toMatchObject({ remaining: 5 });
  });

  it('one limiter under two different keys on one request charges each key', async () => {
    const limiter = rateLimiter({ name: 'k', algorithm: fixedWindow({ limit: 10, windowMs: 60_000 }) });
    const byA = new RateLimitRule('t', limiter, { key: () => 'a' }, shared);
    const byB = new RateLimitRule('t', limiter, { key: () => 'b' }, shared);
    const req = fresh();
    await expect(decideRequest(byA, req, req)).resolves.toMatchObject({ remaining: 9 });
    await expect(decideRequest(byB, req, req)).resolves.toMatchObject({ remaining: 9 });
    await expect(decideRequest(byA, req, req)).resolves.toBeUndefined();
  });

  it('C-b: a denial by a store that failed closed is a 503 store-unavailable, with Retry-After and no claim the limit is used up', () => {
    const rule = new RateLimitRule('t', quota({ name: 'monthly', limit: 100, period: 'month' }), {}, legacy);
    const headers: Headers = new Map();
    const outage = decision({ allowed: false, limit: 100, remaining: 0, resetMs: 2_000, retryAfterMs: 1_200, store: 'fail-closed' });
    const req = fresh();
    const answer = applyOutcome(rule, outage, req, headers, access);
    expect(answer?.status).toBe(503);
    expect(JSON.parse(answer!.body)).toEqual({
      type: 'urn:bulwark:problem:store-unavailable',
      title: 'Service Unavailable',
      status: 503,
      detail: expect.any(String),
      policy: 'monthly',
    });
    expect(headers.get('retry-after')).toBe('2');
    expect(headers.has('ratelimit')).toBe(false);
    expect(headers.has('x-ratelimit-remaining')).toBe(false);
    // At least one second, whatever the store said.
    const h2: Headers = new Map();
    applyOutcome(rule, { ...outage, retryAfterMs: 0 }, fresh(), h2, access);
    expect(h2.get('retry-after')).toBe('1');
  });

  it('a fail-open decision (nothing counted) shows its policy but no made-up remaining units', () => {
    const rule = new RateLimitRule('t', rateLimiter({ name: 'open', algorithm: fixedWindow({ limit: 5, windowMs: 60_000 }) }), {}, legacy);
    const headers: Headers = new Map();
    expect(applyOutcome(rule, decision({ store: 'fail-open', remaining: 4 }), fresh(), headers, access)).toBeUndefined();
    expect(headers.get('ratelimit-policy')).toBe('"open";q=5;w=60');
    expect(headers.has('ratelimit')).toBe(false);
    expect(headers.has('x-ratelimit-remaining')).toBe(false);
  });

  it('legacy X-RateLimit-Reset is epoch seconds (as GitHub and express-rate-limit send it), and stacked limiters show the one closest to exhaustion', () => {
    const a = new RateLimitRule('t', rateLimiter({ name: 'a', algorithm: fixedWindow({ limit: 5, windowMs: 60_000 }) }), {}, legacy);
    const b = new RateLimitRule('t', rateLimiter({ name: 'b', algorithm: fixedWindow({ limit: 50, windowMs: 60_000 }) }), {}, legacy);
    const req = fresh();
    const headers: Headers = new Map();
    const before = Math.floor(Date.now() / 1000);
    applyOutcome(a, decideRequestNow(a, req, req) as RuleOutcome, req, headers, access);
    applyOutcome(b, decideRequestNow(b, req, req) as RuleOutcome, req, headers, access);
    expect(headers.get('x-ratelimit-limit')).toBe('5');
    expect(headers.get('x-ratelimit-remaining')).toBe('4');
    const reset = Number(headers.get('x-ratelimit-reset'));
    expect(reset).toBeGreaterThan(before);
    expect(reset).toBeLessThanOrEqual(before + 61);
  });

  it('C-e: a cost function answering 0, NaN, negative, fractional, a numeric string or more than maxCost gets a 400 problem, and nothing is charged', async () => {
    const limiter = rateLimiter({ name: 'c', algorithm: fixedWindow({ limit: 10, windowMs: 60_000 }) });
    for (const cost of [0, Number.NaN, -1, 1.5, '2', undefined, null, Number.POSITIVE_INFINITY, 11]) {
      const rule = new RateLimitRule('own', limiter, { cost: () => cost as never }, shared);
      const req = fresh();
      const outcome = await decideRequest(rule, req, req);
      const answer = applyOutcome(rule, outcome, req, new Map(), access);
      expect(answer?.status, String(cost)).toBe(400);
      expect(JSON.parse(answer!.body)).toMatchObject({ type: 'urn:bulwark:problem:bad-cost', policy: 'c' });
    }
    // peek answers as if one unit were taken now: 9 left means nothing was charged.
    expect(await limiter.peek('203.0.113.1')).toMatchObject({ allowed: true, remaining: 9 });
    const async = new RateLimitRule('own', limiter, { cost: async () => 4 }, shared);
    const req = fresh();
    await expect(decideRequest(async, req, req)).resolves.toMatchObject({ allowed: true, remaining: 6 });
  });

  it('maxCost is read from the limiter by duck typing: declared, or the window limit, GCRA burst, quota limit', () => {
    expect(new RateLimitRule('t', custom('m', { maxCost: 3 }), {}, shared).maxCost).toBe(3);
    expect(new RateLimitRule('t', rateLimiter({ algorithm: gcra({ limit: 100, periodMs: 1_000, burst: 7 }) }), {}, shared).maxCost).toBe(7);
    expect(new RateLimitRule('t', quota({ limit: 9, period: 'day' }), {}, shared).maxCost).toBe(9);
    expect(new RateLimitRule('t', custom('u'), {}, shared).maxCost).toBeUndefined();
    expect(() => new RateLimitRule('own', custom('m', { maxCost: 3 }), { cost: 4 }, shared)).toThrow(/own: option "cost" must not exceed what limiter "m" can ever admit \(3\), got 4/);
  });
});

describe('a compound limit as the limiter', () => {
  it('regression: a limit set at run time for a tenant is advertised as its own quota, so r never exceeds q (it showed the configured q=5 beside r=49)', async () => {
    const store = memoryStore();
    const both = compoundLimit(
      [rateLimiter({ name: 'per-min', algorithm: fixedWindow({ limit: 5, windowMs: 60_000 }), store }), quota({ name: 'daily', limit: 100, period: 'day', store })],
      { name: 'both' },
    );
    await both.setLimit('203.0.113.9', 'per-min', fixedWindow({ limit: 50, windowMs: 60_000 }));
    const rule = new RateLimitRule('t', both, {}, shared);
    const tenant = fresh('203.0.113.9');
    const headers: Headers = new Map();
    applyOutcome(rule, await decideRequest(rule, tenant, tenant), tenant, headers, access);
    expect(headers.get('ratelimit-policy')).toBe('"per-min";q=50, "daily";q=100;w=86400');
    expect(headers.get('ratelimit')).toMatch(/^"per-min";r=49;t=\d+, "daily";r=99;t=\d+$/);
    // Everyone else keeps the configured limit, and its window.
    const other = fresh('203.0.113.10');
    const h2: Headers = new Map();
    applyOutcome(rule, await decideRequest(rule, other, other), other, h2, access);
    expect(h2.get('ratelimit-policy')).toBe('"per-min";q=5;w=60, "daily";q=100;w=86400');
  });
});

describe('draft-11 parameters qu and pk', () => {
  it('quotaUnit adds qu to RateLimit-Policy, for known and unknown limiters', () => {
    const bytes = new RateLimitRule('t', rateLimiter({ name: 'up', algorithm: fixedWindow({ limit: 1_000_000, windowMs: 60_000 }) }), { quotaUnit: 'content-bytes' }, shared);
    expect(bytes.policyHeader(decision({}))).toBe('"up";q=1000000;w=60;qu="content-bytes"');
    expect(new RateLimitRule('t', custom('c'), { quotaUnit: 'requests' }, shared).policyHeader(decision({ limit: 4 }))).toBe('"c";q=4;qu="requests"');
    expect(() => checkHttpOptions('own', { quotaUnit: 'bytes' } as never)).toThrow(/own: option "quotaUnit" must be one of "requests", "content-bytes", "concurrent-requests", got "bytes"/);
  });

  it('partitionKey adds pk (a byte sequence of what it returns for the key) to both items; nothing by default', () => {
    const { shared: withPk } = checkHttpOptions<unknown>('own', { partitionKey: (key: string) => `tenant:${key}` });
    const limiter = rateLimiter({ name: 'p', algorithm: fixedWindow({ limit: 5, windowMs: 60_000 }) });
    const rule = new RateLimitRule('t', limiter, { key: () => 'acme' }, withPk);
    const req = fresh();
    const headers: Headers = new Map();
    return decideRequest(rule, req, req).then((outcome) => {
      applyOutcome(rule, outcome, req, headers, access);
      const pk = `pk=:${Buffer.from('tenant:acme').toString('base64')}:`;
      expect(headers.get('ratelimit-policy')).toBe(`"p";q=5;w=60;${pk}`);
      expect(headers.get('ratelimit')).toMatch(new RegExp(`^"p";r=4;t=\\d+;${pk.replace(/[+/]/g, '\\$&')}$`));
      const plain = new RateLimitRule('t', limiter, {}, shared);
      const h2: Headers = new Map();
      const r2 = fresh();
      applyOutcome(plain, decideRequestNow(plain, r2, r2) as RuleOutcome, r2, h2, access);
      expect(h2.get('ratelimit')).not.toMatch(/pk=/);
    });
  });
});

describe('options', () => {
  it.each(['cost', 'key', 'skip', 'quotaUnit', 'headers', 'trustProxy', 'exemptProbes', 'onError', 'partitionKey', 'ipv6Subnet'])('null for %s is refused by name, not read as "not given"', (name) => {
    expect(() => checkHttpOptions('own', { [name]: null } as never)).toThrow(new RegExp(`own: option "${name}".*null`));
  });

  it('the bounded console reporter writes at most one line per interval, and counts the rest', () => {
    const lines: unknown[][] = [];
    const original = console.error;
    console.error = (...args: unknown[]) => lines.push(args);
    try {
      const report = boundedConsoleReporter('own', 60_000);
      for (let i = 0; i < 50; i++) report(new Error(`e${i}`));
      expect(lines).toHaveLength(1);
      expect(String(lines[0]![0])).toMatch(/own: a rate limit could not be checked/);
    } finally {
      console.error = original;
    }
  });
});

describe('decideRequest', () => {
  it('consumes without options on the fast path, with one shared options object for a fixed cost', async () => {
    const calls: unknown[][] = [];
    const d: Decider = { kind: 'x', name: 'x', consume: (...args: unknown[]) => (calls.push(args), Promise.resolve(decision({}))) };
    let req = fresh();
    await decideRequest(new RateLimitRule('t', d, {}, shared), req, req);
    const fixed = new RateLimitRule('t', d, { cost: 3 }, shared);
    req = fresh();
    await decideRequest(fixed, req, req);
    req = fresh();
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
    const req = fresh();
    await expect(decideRequest(new RateLimitRule('t', d, {}, shared), req, req)).rejects.toThrow('boom');
  });

  it('rejects keys that are not non-empty strings', async () => {
    const d = custom('x');
    for (const key of [undefined, null, 5, '', {}]) {
      const req = fresh();
      await expect(decideRequest(new RateLimitRule('own', d, { key: () => key as never }, shared), req, req)).rejects.toThrow(
        /own: option "key" must return a non-empty string/,
      );
    }
  });

  it('regression: a skip function answering something other than a boolean is refused, not read as "limit it" (issue 11 §4: no silent defaults)', async () => {
    const d = custom('x');
    for (const answer of ['yes', 1, undefined, null, {}, Promise.resolve('true')]) {
      const req = fresh();
      await expect(decideRequest(new RateLimitRule('own', d, { skip: () => answer as never }, shared), req, req), String(answer)).rejects.toThrow(
        /own: option "skip" must return a boolean \(or a promise of one\), got /,
      );
    }
    for (const [answer, skipped] of [[true, true], [false, false], [Promise.resolve(true), true], [Promise.resolve(false), false]] as const) {
      const req = fresh();
      const outcome = await decideRequest(new RateLimitRule('own', d, { skip: () => answer }, shared), req, req);
      expect(outcome === undefined, String(answer)).toBe(skipped);
    }
  });
});

describe('decisions from custom limiters', () => {
  it.each<[string, unknown]>([
    ['null', null],
    ['undefined', undefined],
    ['a number', 5],
    ['an object without allowed', { limit: 1 }],
  ])('rejects when a custom limiter resolves to %s, with or without key functions', async (_what, value) => {
    const d = custom('bad', { consume: () => Promise.resolve(value) });
    for (const options of [{}, { key: () => 'k' }]) {
      const req = fresh();
      await expect(decideRequest(new RateLimitRule('own', d, options, shared), req, req)).rejects.toThrow(
        /own: the limiter's consume must resolve to a decision/,
      );
    }
  });

  it('waits for a custom limiter answering with a thenable that is not a native promise', async () => {
    const thenable = { then: (resolve: (d: LimiterDecision) => void) => resolve(decision({ allowed: false, limit: 3 })) };
    const d = custom('thenable', { consume: () => thenable });
    let req = fresh();
    const outcome = decideRequestNow(new RateLimitRule('t', d, {}, shared), req, req);
    expect(outcome).toBeInstanceOf(Promise);
    await expect(outcome).resolves.toMatchObject({ allowed: false, limit: 3 });
    req = fresh();
    await expect(decideRequest(new RateLimitRule('t', d, { key: () => 'k' }, shared), req, req)).resolves.toMatchObject({ allowed: false });
  });

  it('takes a custom limiter that answers synchronously without a promise', () => {
    const d = custom('sync', { consume: () => decision({ remaining: 2 }) });
    let req = fresh();
    expect(decideRequestNow(new RateLimitRule('t', d, {}, shared), req, req)).toMatchObject({ allowed: true, remaining: 2 });
    const bad = custom('sync', { consume: () => null });
    req = fresh();
    expect(() => decideRequestNow(new RateLimitRule('t', bad, {}, shared), req, req)).toThrow(/must resolve to a decision/);
  });
});

describe('decideRequestNow', () => {
  it('answers without a promise for a limiter or a quota over a memory store, and takes the units', async () => {
    const limiter = rateLimiter({ name: 'sync', algorithm: fixedWindow({ limit: 2, windowMs: 60_000 }) });
    const rule = new RateLimitRule('t', limiter, {}, shared);
    let req = fresh();
    const first = decideRequestNow(rule, req, req);
    expect(first).not.toBeInstanceOf(Promise);
    expect(first).toMatchObject({ allowed: true, remaining: 1 });
    req = fresh();
    expect(decideRequestNow(new RateLimitRule('t', limiter, { cost: 1 }, shared), req, req)).toMatchObject({ allowed: true, remaining: 0 });
    req = fresh();
    expect(decideRequestNow(rule, req, req)).toMatchObject({ allowed: false, remaining: 0 });
    // The same counter as consume's.
    expect(await limiter.consume('203.0.113.1')).toMatchObject({ allowed: false });

    const monthly = quota({ name: 'q', limit: 5, period: 'month' });
    req = fresh();
    const fromQuota = decideRequestNow(new RateLimitRule('t', monthly, { cost: 2 }, shared), req, req);
    expect(fromQuota).not.toBeInstanceOf(Promise);
    expect(fromQuota).toMatchObject({ allowed: true, remaining: 3 });
  });

  it('returns the promise of a decider that has no synchronous path, and of rules with functions', async () => {
    const d = custom('other');
    let req = fresh();
    const outcome = decideRequestNow(new RateLimitRule('t', d, {}, shared), req, req);
    expect(outcome).toBeInstanceOf(Promise);
    await expect(outcome).resolves.toMatchObject({ allowed: true });
    const limiter = rateLimiter({ name: 'fn', algorithm: fixedWindow({ limit: 2, windowMs: 60_000 }) });
    req = fresh();
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
    let req = fresh();
    expect(() => decideRequestNow(rule, req, req)).toThrow('boom');
    req = fresh();
    await expect(decideRequest(rule, req, req)).rejects.toThrow('boom');
  });
});

describe('applyOutcome: a limiter in shadow mode (issue 15 §3)', () => {
  /** A custom decider whose `mode` getter counts its reads. */
  function watched(mode: 'enforce' | 'shadow') {
    const reads = { count: 0 };
    const decider = custom('watched');
    Object.defineProperty(decider, 'mode', {
      get: () => {
        reads.count++;
        return mode;
      },
    });
    return { rule: new RateLimitRule('test', decider, {}, legacy), reads };
  }

  it('writes the headers of a denial and lets the request go on, where enforcing answers 429', () => {
    const denied = decision({ allowed: false, remaining: 0, retryAfterMs: 2_500 });
    const shadow = watched('shadow');
    const enforce = watched('enforce');
    const shadowHeaders: Headers = new Map();
    const enforceHeaders: Headers = new Map();
    expect(applyOutcome(shadow.rule, denied, fresh(), shadowHeaders, access)).toBeUndefined();
    expect(applyOutcome(enforce.rule, denied, fresh(), enforceHeaders, access)).toBe(enforce.rule.denial);
    expect(shadowHeaders.get('retry-after')).toBe('3');
    expect([...shadowHeaders.keys()].sort()).toEqual([...enforceHeaders.keys()].sort());
    for (const name of ['ratelimit-policy', 'ratelimit', 'retry-after', 'x-ratelimit-limit', 'x-ratelimit-remaining']) {
      expect(shadowHeaders.get(name), name).toBe(enforceHeaders.get(name));
    }
  });

  it('lets a store outage and a bad cost go on, with the outage’s Retry-After', () => {
    const { rule } = watched('shadow');
    const headers: Headers = new Map();
    expect(applyOutcome(rule, decision({ allowed: false, store: 'fail-closed', retryAfterMs: 1_000 }), fresh(), headers, access)).toBeUndefined();
    expect(headers.get('retry-after')).toBe('1');
    expect(applyOutcome(rule, rule.badCost, fresh(), new Map(), access)).toBeUndefined();
    expect(applyOutcome(rule, rule.costTooLarge, fresh(), new Map(), access)).toBeUndefined();
  });

  it('never reads the mode on an allowed decision: the admitted path costs the same in both modes', () => {
    const { rule, reads } = watched('shadow');
    for (let i = 0; i < 3; i++) expect(applyOutcome(rule, decision({}), fresh(), new Map(), access)).toBeUndefined();
    expect(reads.count).toBe(0);
    applyOutcome(rule, decision({ allowed: false, remaining: 0, retryAfterMs: 1 }), fresh(), new Map(), access);
    expect(reads.count).toBe(1);
  });
});
