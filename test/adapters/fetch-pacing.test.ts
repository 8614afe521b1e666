// bulwark/fetch's `pacing` option (issue 16 §1) against a loopback upstream that enforces a
// GCRA per key with bulwark's own limiter and headers: the advertised rate is learned from the
// first response and later calls arrive within it; a slot beyond `maxWaitMs` fails fast; a
// `RateLimit` member with r=0 blocks; with no header at all, AIMD on 429s.
import { afterEach, describe, expect, it } from 'vitest';
import { createFetch } from '../../src/adapters/fetch.js';
import { RateLimitedError } from '../../src/index.js';
import { limitedUpstream, type LimitedUpstream } from '../support/limited-upstream.js';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';

const upstreams: LimitedUpstream[] = [];
afterEach(async () => {
  await Promise.all(upstreams.splice(0).map((u) => u.close()));
});

async function upstream(options: Parameters<typeof limitedUpstream>[0]): Promise<LimitedUpstream> {
  const u = await limitedUpstream(options);
  upstreams.push(u);
  return u;
}

const settle = <T>(p: Promise<T>): Promise<T | unknown> => p.catch((error: unknown) => error);

describe('pacing to an advertised rate', () => {
  it('learns 25/s from the first answer (q=25;w=1): 40 concurrent calls then get no 429', async () => {
    const u = await upstream({ limit: 25 });
    const f = createFetch({ retry: false, pacing: { maxWaitMs: 5_000 } });
    expect((await f(`${u.url}/a`)).status).toBe(200);
    const answers = await Promise.all(Array.from({ length: 40 }, () => f(`${u.url}/a`)));
    expect(answers.map((r) => r.status).filter((s) => s !== 200)).toEqual([]);
    const arrivals = u.log.slice(1).map((e) => e.at);
    // Paced, not a burst: 40 slots at 24.5/s take about 1.6 s.
    expect(arrivals[arrivals.length - 1]! - arrivals[0]!).toBeGreaterThan(1_400);
  });

  it('without pacing the same calls meet 429s (the baseline)', async () => {
    const u = await upstream({ limit: 25 });
    const f = createFetch({ retry: false });
    await f(`${u.url}/a`);
    // Twice as many as above, so the baseline shows even when a busy machine spreads them out.
    const answers = await Promise.all(Array.from({ length: 80 }, () => f(`${u.url}/a`)));
    expect(answers.filter((r) => r.status === 429).length).toBeGreaterThan(20);
  });

  it('a slot beyond maxWaitMs fails fast with RateLimitedError, not retried, nothing sent', async () => {
    const u = await upstream({ limit: 10 });
    const f = createFetch({ pacing: { maxWaitMs: 250 } });
    await f(`${u.url}/a`);
    const started = performance.now();
    const results = await Promise.all(Array.from({ length: 10 }, () => settle(f(`${u.url}/a`))));
    const refused = results.filter((r) => r instanceof RateLimitedError) as RateLimitedError[];
    const sent = results.filter((r) => r instanceof Response) as Response[];
    expect(sent.every((r) => r.status === 200)).toBe(true);
    expect(sent.length).toBeGreaterThanOrEqual(2);
    expect(sent.length).toBeLessThanOrEqual(4);
    expect(refused.length).toBe(10 - sent.length);
    expect(refused[0]!.retryAfterMs).toBeGreaterThan(250);
    expect(u.log).toHaveLength(1 + sent.length);
    expect(performance.now() - started).toBeLessThan(1_000);
  });

  it('keys partition an origin: each API key is paced on its own', async () => {
    const u = await upstream({ limit: 10 });
    const f = createFetch({ retry: false, pacing: { maxWaitMs: 3_000, key: (_url, headers) => headers.get('x-api-key') ?? '' } });
    const call = (key: string) => f(`${u.url}/a`, { headers: { 'x-api-key': key } });
    await Promise.all([call('a'), call('b')]);
    const answers = await Promise.all(['a', 'b'].flatMap((k) => Array.from({ length: 15 }, () => call(k))));
    expect(answers.filter((r) => r.status !== 200)).toEqual([]);
    // Each key at about 10/s, side by side: 15 calls each in about 1.5 s, not 30 in 3 s.
    const last = u.log[u.log.length - 1]!.at - u.log[2]!.at;
    expect(last).toBeGreaterThan(1_300);
    expect(last).toBeLessThan(2_200);
  });
});

describe('a Retry-After with per-key pacing', () => {
  it("pauses the key that met it, not the origin's other keys", async () => {
    const arrivals: string[] = [];
    const server = createServer((req, res) => {
      const key = String(req.headers['x-api-key']);
      arrivals.push(key);
      if (key === 'a') res.writeHead(429, { 'retry-after': '5' }).end();
      else res.writeHead(200).end('ok');
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    upstreams.push({ url: '', log: [], close: () => new Promise((resolve) => server.close(() => resolve())) });
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/`;
    const f = createFetch({ retry: false, pacing: { maxWaitMs: 1_000, key: (_url, headers) => headers.get('x-api-key') ?? '' } });
    const call = (key: string) => f(url, { headers: { 'x-api-key': key } });
    expect((await call('a')).status).toBe(429);
    // Key a is paused for 5 s: refused here, nothing sent.
    const refused = await settle(call('a'));
    expect(refused).toBeInstanceOf(RateLimitedError);
    expect((refused as RateLimitedError).retryAfterMs).toBeGreaterThan(4_000);
    // Key b was never asked to wait. (Before, the pause was recorded on the origin too, and the
    // call failed fast with RetryAfterError.)
    expect((await call('b')).status).toBe(200);
    expect(arrivals).toEqual(['a', 'b']);
  });
});

describe('blocks and AIMD', () => {
  it('RateLimit r=0 with t on a 200 blocks the origin for t seconds', async () => {
    const arrivals: number[] = [];
    const server = createServer((_req, res) => {
      arrivals.push(performance.now());
      res.writeHead(200, arrivals.length <= 2 ? { ratelimit: '"x";r=0;t=1' } : {}).end('ok');
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    upstreams.push({ url: '', log: [], close: () => new Promise((resolve) => server.close(() => resolve())) });
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/`;
    const fast = createFetch({ pacing: { maxWaitMs: 100 } });
    await fast(url);
    const error = await settle(fast(url));
    expect(error).toBeInstanceOf(RateLimitedError);
    expect((error as RateLimitedError).retryAfterMs).toBeGreaterThan(800);
    expect(arrivals).toHaveLength(1);
    const patient = createFetch({ pacing: { maxWaitMs: 2_000 } });
    await patient(url);
    expect((await patient(url)).status).toBe(200);
    expect(arrivals).toHaveLength(3);
    expect(arrivals[2]! - arrivals[1]!).toBeGreaterThanOrEqual(950);
  });

  it('no header at all: AIMD on 429s brings the rate under the limit', async () => {
    const u = await upstream({ limit: 20, headers: 'bare' });
    const f = createFetch({ retry: false, pacing: { maxWaitMs: 10_000 } });
    // 120 calls offered at about 40/s for 3 s, twice the limit.
    const calls: Promise<unknown>[] = [];
    for (let i = 0; i < 120; i++) {
      calls.push(settle(f(`${u.url}/a`)));
      await new Promise((resolve) => setTimeout(resolve, 25));
    }
    await Promise.all(calls);
    const refused = u.log.filter((e) => e.status === 429).length;
    const seconds = (u.log.at(-1)!.at - u.log[0]!.at) / 1000;
    // Without pacing about half of them are refused (see the baseline above).
    expect(refused / u.log.length).toBeLessThan(0.15);
    // And the limit is still used: the 120 calls take well under 120 / 5 s.
    expect(120 / seconds).toBeGreaterThan(8);
  });
});
