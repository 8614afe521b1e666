// bulwark/fetch and redirects across origins (issue 12 §2, RELIABILITY C6), against two real
// node:http servers on 127.0.0.1 and Node's fetch: each origin is judged by its own answers.
import { afterEach, describe, expect, it } from 'vitest';
import { createFetch } from '../../src/adapters/fetch.js';
import { constant, consecutive } from '../../src/index.js';
import { capture, rejection } from '../support/helpers.js';
import { loopbackServers } from './support/fetch-servers.js';

const { serve, closeLast, closeAll } = loopbackServers();
afterEach(closeAll);

/** A: `/moved` redirects (302) to B's `/broken`, `/ok` answers 200. B: `/broken` answers 503, `/ok` 200. */
async function twoOrigins(): Promise<{ a: string; b: string; hits: { a: number; b: number } }> {
  const hits = { a: 0, b: 0 };
  const b = await serve((req, res) => {
    hits.b++;
    if (req.url === '/broken') res.writeHead(503).end('down');
    else res.writeHead(200).end('b ok');
  });
  const a = await serve((req, res) => {
    hits.a++;
    if (req.url === '/moved') res.writeHead(302, { location: `${b}/broken` }).end();
    else res.writeHead(200).end('a ok');
  });
  return { a, b, hits };
}

describe('a redirect from A to a failing B', () => {
  it("Regression (issue 12): counts against B's breaker, never A's; A's healthy routes stay open", async () => {
    // Before the fix, three 302s to a failing B opened A's breaker and /ok on A was refused.
    const o = await twoOrigins();
    const f = createFetch({ retry: false, circuitBreaker: { breaker: consecutive(2), halfOpenAfterMs: 60_000 } });
    for (let i = 0; i < 3; i++) {
      const res = await f(`${o.a}/moved`);
      expect(res.status).toBe(503);
      await res.arrayBuffer();
    }
    expect(f.circuitBreaker(o.a)?.state).toBe('closed');
    expect(f.circuitBreaker(o.b)?.state).toBe('open');
    const res = await f(`${o.a}/ok`);
    expect(await res.text()).toBe('a ok');
    await expect(f(`${o.b}/ok`)).rejects.toMatchObject({ name: 'BrokenCircuitError' }); // B itself is judged open
  });

  it("a Retry-After from B pauses B, not A", async () => {
    const hits = { b: 0 };
    const b = await serve((_req, res) => {
      hits.b++;
      res.writeHead(503, { 'retry-after': '30' }).end();
    });
    const a = await serve((req, res) => {
      if (req.url === '/moved') res.writeHead(302, { location: `${b}/busy` }).end();
      else res.writeHead(200).end('a ok');
    });
    const f = createFetch({ retry: false });
    expect((await f(`${a}/moved`)).status).toBe(503);
    expect(await (await f(`${a}/ok`)).text()).toBe('a ok');
    await expect(f(`${b}/busy`)).rejects.toMatchObject({ name: 'RetryAfterError', origin: b });
    expect(hits.b).toBe(1);
  });
});

describe('a redirect from A to a B that fails before answering (no response to read the origin from)', () => {
  /** B: a server stopped at once (its port refuses connections), or one that resets each connection. */
  async function bOrigin(how: 'refuses' | 'resets'): Promise<string> {
    if (how === 'resets') return serve((req) => req.socket.destroy());
    const b = await serve(() => {});
    await closeLast();
    return b;
  }

  for (const how of ['refuses', 'resets'] as const) {
    it(`Regression (issue 12): B that ${how} connections counts against B's breaker; A stays closed and serves`, async () => {
      // Before the fix, undici's TypeError('fetch failed') was A's failure: two redirects opened A.
      const b = await bOrigin(how);
      let hitsA = 0;
      const a = await serve((req, res) => {
        hitsA++;
        if (req.url === '/moved') res.writeHead(302, { location: `${b}/gone` }).end();
        else res.writeHead(200).end('a ok');
      });
      const f = createFetch({ retry: false, circuitBreaker: { breaker: consecutive(2), halfOpenAfterMs: 60_000 } });
      for (let i = 0; i < 3; i++) {
        const error = (await rejection(capture(f(`${a}/moved`)))) as TypeError;
        expect(error).toBeInstanceOf(TypeError); // fetch's own network error, unchanged for the caller
        expect(error.cause).toBeDefined();
      }
      expect(hitsA).toBe(3);
      expect(f.circuitBreaker(a)?.state).toBe('closed');
      expect(f.circuitBreaker(b)?.state).toBe('open');
      expect(await (await f(`${a}/ok`)).text()).toBe('a ok');
      await expect(f(`${b}/gone`)).rejects.toMatchObject({ name: 'BrokenCircuitError' });
    });
  }

  it("an attempt timeout while B keeps the redirected request waiting is B's, not A's", async () => {
    const b = await serve(() => {}); // never answers
    const a = await serve((req, res) => {
      if (req.url === '/moved') res.writeHead(302, { location: `${b}/hang` }).end();
      else res.writeHead(200).end('a ok');
    });
    const f = createFetch({ attemptTimeoutMs: 60, retry: false, circuitBreaker: { breaker: consecutive(2), halfOpenAfterMs: 60_000 } });
    for (let i = 0; i < 3; i++) {
      expect(await rejection(capture(f(`${a}/moved`)))).toMatchObject({ name: 'TimeoutError', timeoutMs: 60 });
    }
    expect(f.circuitBreaker(a)?.state).toBe('closed');
    expect(f.circuitBreaker(b)?.state).toBe('open');
    expect(await (await f(`${a}/ok`)).text()).toBe('a ok');
  });

  it('a POST that A redirected to a refusing B is not resent as if it never left: A got it', async () => {
    const b = await bOrigin('refuses');
    let posts = 0;
    const a = await serve((_req, res) => {
      posts++;
      res.writeHead(307, { location: `${b}/orders` }).end();
    });
    const f = createFetch({ circuitBreaker: false, retry: { maxAttempts: 3, backoff: constant(1) } });
    await rejection(capture(f(`${a}/orders`, { method: 'POST', body: 'x' })));
    expect(posts).toBe(1);
  });
});
