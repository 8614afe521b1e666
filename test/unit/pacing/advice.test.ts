import { describe, expect, it } from 'vitest';
import { checkHttpOptions } from '../../../src/http/rate-limit-options.js';
import { applyOutcome, decideRequest, type HeaderAccess, RateLimitRule } from '../../../src/http/rate-limit-rule.js';
import { fixedWindow, gcra, memoryStore, rateLimiter } from '../../../src/index.js';
import { paceHint, parseFieldList, parsePolicies, parseStates, readAdvice } from '../../../src/adapters/fetch/pacing/advice.js';

// Fixtures shaped after the examples of draft-ietf-httpapi-ratelimit-headers-11 (sections 3 and 4
// and the appendix): one policy, several policies in one field, `qu`, `pk` and `w`.
describe('draft-11 fields', () => {
  it('one policy: q per w seconds', () => {
    expect(parsePolicies('"default";q=100;w=10')).toEqual([{ name: 'default', q: 100, w: 10, unit: 'requests', pk: undefined }]);
  });

  it('several policies in one field, the slowest sets the pace', () => {
    const policies = parsePolicies('"permin";q=50;w=60,"perhr";q=1000;w=3600');
    expect(policies.map((p) => [p.name, p.q, p.w])).toEqual([
      ['permin', 50, 60],
      ['perhr', 1000, 3600],
    ]);
    const hint = paceHint({ policies, states: [], legacy: undefined, retryAfterMs: undefined });
    expect(hint.ratePerSec).toBeCloseTo(1000 / 3600);
  });

  it('qu names the unit; pk is a byte sequence', () => {
    expect(parsePolicies('"peruser";q=65535;qu="content-bytes";w=10')[0]).toMatchObject({ q: 65535, unit: 'content-bytes', w: 10 });
    expect(parsePolicies('"peruser";q=100;w=60;pk=:cHJvamVjdDEyMw==:')[0]!.pk).toBe('cHJvamVjdDEyMw==');
    expect(parseStates('"default";r=50;t=30;pk=:cHJvamVjdDEyMw==:')).toEqual([{ name: 'default', r: 50, t: 30, pk: 'cHJvamVjdDEyMw==' }]);
  });

  it('RateLimit with r=0 blocks for t; r > 0 does not', () => {
    expect(paceHint({ policies: [], states: parseStates('"default";r=0;t=30'), legacy: undefined, retryAfterMs: undefined }).blockMs).toBe(30_000);
    expect(paceHint({ policies: [], states: parseStates('"default";r=50;t=30'), legacy: undefined, retryAfterMs: undefined }).blockMs).toBe(0);
  });

  it('several states: the exhausted one blocks', () => {
    const states = parseStates('"day";r=100;t=36000, "hour";r=0;t=600');
    expect(states).toHaveLength(2);
    expect(paceHint({ policies: [], states, legacy: undefined, retryAfterMs: undefined }).blockMs).toBe(600_000);
  });

  it('a member without q (or r) is ignored; a syntax error drops the field', () => {
    expect(parsePolicies('"a";w=10, "b";q=5;w=1')).toHaveLength(1);
    expect(parsePolicies('"a";q=5;w=1,')).toEqual([]);
    expect(parsePolicies('"a;q=5')).toEqual([]);
    expect(parsePolicies('"a";q=-1;w=1')).toEqual([]);
    expect(parseStates('')).toEqual([]);
    expect(parseFieldList('token;a;b=?1;c=1.5')).toEqual([{ value: 'token', params: new Map<string, unknown>([['a', true], ['b', true], ['c', 1.5]]) }]);
  });
});

// Every RateLimit-Policy and RateLimit field in the examples of the working group's editor's copy
// (github.com/ietf-wg-httpapi/ratelimit-headers, draft-ietf-httpapi-ratelimit-headers.md, commit
// 0669b82 of 2025-09-23, between drafts 10 and 11), read as a client must read them.
describe("the draft's own examples", () => {
  it('reads every RateLimit-Policy example: q and w, several policies, a token name, unknown parameters ignored', () => {
    const read = (field: string) => parsePolicies(field).map((p) => [p.name, p.q, p.w]);
    expect(read('"basic";q=100;w=60')).toEqual([['basic', 100, 60]]);
    expect(read('"dynamic";q=15;w=20')).toEqual([['dynamic', 15, 20]]);
    expect(read('"fixed";q=5000;w=3600;burst=0')).toEqual([['fixed', 5000, 3600]]);
    expect(read('"fixedwindow";q=100;w=60')).toEqual([['fixedwindow', 100, 60]]);
    expect(read('"hour";q=1000;w=3600, "day";q=5000;w=86400')).toEqual([
      ['hour', 1000, 3600],
      ['day', 5000, 86400],
    ]);
    expect(read('"sliding";q=100;w=60;burst=1000')).toEqual([['sliding', 100, 60]]);
    expect(read('"sliding";q=12;w=1')).toEqual([['sliding', 12, 1]]);
    expect(read('"somepolicy";q=10000;w=1000')).toEqual([['somepolicy', 10000, 1000]]);
    expect(read('quota;q=100;w=1')).toEqual([['quota', 100, 1]]);
    // No w: a quota without a window gives no rate to pace at.
    expect(read('quota;q=10')).toEqual([['quota', 10, undefined]]);
  });

  it('reads every RateLimit example: r and t, r=0 blocks for t, q on a state ignored, a state without r dropped', () => {
    const read = (field: string) => parseStates(field).map((s) => [s.name, s.r, s.t]);
    expect(read('"basic";r=20;t=56')).toEqual([['basic', 20, 56]]);
    expect(read('"dayLimit";r=100;t=36000')).toEqual([['dayLimit', 100, 36000]]);
    expect(read('"default";r=0;t=48')).toEqual([['default', 0, 48]]);
    expect(read('"fixedwindow";r=99;t=50')).toEqual([['fixedwindow', 99, 50]]);
    expect(read('"problemPolicy";r=0;t=10')).toEqual([['problemPolicy', 0, 10]]);
    expect(read('"sliding";q=12;r=6;t=1')).toEqual([['sliding', 6, 1]]);
    expect(read('"somepolicy";r=10000;t=10')).toEqual([['somepolicy', 10000, 10]]);
    expect(read('quota;t=1')).toEqual([]);
    const blocked = (field: string) => paceHint({ policies: [], states: parseStates(field), legacy: undefined, retryAfterMs: undefined }).blockMs;
    expect(blocked('"default";r=0;t=5')).toBe(5_000);
    expect(blocked('"dynamic";r=0;t=20')).toBe(20_000);
    expect(blocked('"dynamic";r=15;t=40')).toBe(0);
  });
});

describe('legacy fields and Retry-After', () => {
  const now = Date.UTC(2026, 0, 1);
  it('X-RateLimit-Reset as epoch seconds or as a delta; remaining 0 blocks until reset', () => {
    const epoch = readAdvice(new Headers({ 'x-ratelimit-limit': '60', 'x-ratelimit-remaining': '0', 'x-ratelimit-reset': String(now / 1000 + 20) }), now);
    expect(epoch.legacy).toEqual({ limit: 60, remaining: 0, resetMs: 20_000 });
    expect(paceHint(epoch).blockMs).toBe(20_000);
    const delta = readAdvice(new Headers({ 'x-ratelimit-limit': '60', 'x-ratelimit-remaining': '30', 'x-ratelimit-reset': '15' }), now);
    expect(paceHint(delta).ratePerSec).toBe(2);
  });

  it('Retry-After as delta seconds or as an HTTP date (against the response Date)', () => {
    expect(readAdvice(new Headers({ 'retry-after': '5' }), now).retryAfterMs).toBe(5_000);
    const served = new Date(now - 60_000).toUTCString();
    const at = new Date(now - 60_000 + 7_000).toUTCString();
    expect(readAdvice(new Headers({ 'retry-after': at, date: served }), now).retryAfterMs).toBe(7_000);
    expect(paceHint(readAdvice(new Headers({ 'retry-after': 'soon' }), now)).advised).toBe(false);
  });
});

describe("round trip with bulwark's own writer", () => {
  type Map2 = Map<string, string>;
  const access: HeaderAccess<Map2> = { get: (h, n) => h.get(n), set: (h, n, v) => void h.set(n, v) };
  const request = () => ({ socket: { remoteAddress: '203.0.113.9' }, headers: {} });

  async function written(limiter: ReturnType<typeof rateLimiter>, times: number): Promise<Headers> {
    const { shared } = checkHttpOptions<unknown>('t', { headers: 'draft+legacy', partitionKey: (k: string) => `tenant:${k}` });
    const rule = new RateLimitRule('t', limiter, { key: () => 'acme' }, shared);
    let h: Map2 = new Map();
    for (let i = 0; i < times; i++) {
      const req = request();
      h = new Map();
      applyOutcome(rule, await decideRequest(rule, req, req), req, h, access);
    }
    return new Headers([...h]);
  }

  it('a GCRA limiter of 10/s, burst 20, reads back as 10 per second', async () => {
    const limiter = rateLimiter({ name: 'per-key', algorithm: gcra({ limit: 10, periodMs: 1_000, burst: 20 }), store: memoryStore() });
    const advice = readAdvice(await written(limiter, 1), Date.now());
    expect(advice.policies).toEqual([{ name: 'per-key', q: 20, w: 2, unit: 'requests', pk: Buffer.from('tenant:acme').toString('base64') }]);
    expect(advice.states[0]).toMatchObject({ name: 'per-key', r: 19 });
    expect(paceHint(advice).ratePerSec).toBe(10);
  });

  it('a used-up fixed window reads back as a block of its t, with the legacy trio agreeing', async () => {
    const limiter = rateLimiter({ name: 'win', algorithm: fixedWindow({ limit: 2, windowMs: 60_000 }), store: memoryStore() });
    const advice = readAdvice(await written(limiter, 3), Date.now());
    expect(advice.policies[0]).toMatchObject({ name: 'win', q: 2, w: 60 });
    expect(advice.states[0]!.r).toBe(0);
    expect(advice.legacy).toMatchObject({ limit: 2, remaining: 0 });
    const hint = paceHint(advice);
    expect(hint.blockMs).toBeGreaterThan(0);
    expect(hint.blockMs).toBeLessThanOrEqual(60_000);
    expect(hint.ratePerSec).toBeCloseTo(2 / 60);
  });
});
