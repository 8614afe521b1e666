// bulwark/fetch and a server's own pause (issue 12 §2), against real node:http servers on
// 127.0.0.1 and Node's fetch: a Retry-After longer than the retry's cap ends the call instead of
// being cut short, and a pause one call was asked for holds for every call to that origin.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { afterEach, describe, expect, it } from 'vitest';
import { createFetch, RetryAfterError } from '../../src/adapters/fetch.js';
import { constant } from '../../src/index.js';
import { capture, rejection } from '../support/helpers.js';
import { close, delay as pause, listen } from './support/inbound-http.js';

interface Counting {
  readonly url: string;
  /** When each request arrived (performance.now()). */
  readonly arrivals: number[];
}

const servers: Server[] = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map(close));
});

/** A server that records when each request arrives and answers with `handler`. */
async function counting(handler: (n: number, req: IncomingMessage, res: ServerResponse) => void): Promise<Counting> {
  const arrivals: number[] = [];
  const server = createServer((req, res) => {
    arrivals.push(performance.now());
    handler(arrivals.length, req, res);
  });
  servers.push(server);
  return { url: `http://127.0.0.1:${await listen(server)}`, arrivals };
}


describe('Retry-After longer than maxDelayMs', () => {
  it('Regression (issue 12): rejects at once with RetryAfterError instead of retrying at the cap', async () => {
    // Before the fix, `Retry-After: 5` under a 300 ms cap was retried at 0.3 s, twice.
    const srv = await counting((_n, _req, res) => res.writeHead(503, { 'retry-after': '5' }).end('busy'));
    const f = createFetch({ retry: { maxAttempts: 3, backoff: constant(10), maxDelayMs: 300 } });
    const error = await rejection(capture(f(`${srv.url}/prices`)));
    expect(error).toBeInstanceOf(RetryAfterError);
    expect(error).toMatchObject({ code: 'ERR_BULWARK_RETRY_AFTER', origin: srv.url, retryAfterMs: 5_000, status: 503 });
    await pause(800); // past two 300 ms retries of the old behaviour
    expect(srv.arrivals).toHaveLength(1);
  });

  it('still waits a Retry-After within the cap, and no earlier', async () => {
    const srv = await counting((n, _req, res) => (n === 1 ? res.writeHead(429, { 'retry-after': '1' }).end() : res.writeHead(200).end('ok')));
    const f = createFetch({ retry: { maxAttempts: 3, backoff: constant(10), maxDelayMs: 2_000 } });
    expect((await f(`${srv.url}/`)).status).toBe(200);
    expect(srv.arrivals).toHaveLength(2);
    expect(srv.arrivals[1]! - srv.arrivals[0]!).toBeGreaterThanOrEqual(990);
  });

  it('a request that is not retried (a POST without a key) still resolves with the response, as fetch does', async () => {
    const srv = await counting((_n, _req, res) => res.writeHead(503, { 'retry-after': '5' }).end('busy'));
    const f = createFetch({ retry: { maxAttempts: 3, backoff: constant(10), maxDelayMs: 300 } });
    const res = await f(`${srv.url}/orders`, { method: 'POST', body: 'x' });
    expect(res.status).toBe(503);
    expect(await res.text()).toBe('busy');
    expect(srv.arrivals).toHaveLength(1);
  });
});

describe('a pause is shared by every call to the origin', () => {
  /** 503 with `Retry-After: 2` to the first request, 200 to the others. */
  const busyOnce = (n: number, _req: IncomingMessage, res: ServerResponse): void => {
    if (n === 1) res.writeHead(503, { 'retry-after': '2' }).end('busy');
    else res.writeHead(200).end('ok');
  };

  it('Regression (issue 12): other calls fail fast with RetryAfterError; no request arrives inside the 2 s asked for', async () => {
    // Before the fix, 5 requests from other calls arrived inside the 2 s the server asked for.
    const srv = await counting(busyOnce);
    const f = createFetch({ retry: { maxAttempts: 3, backoff: constant(10), maxDelayMs: 5_000 } });
    const first = capture(f(`${srv.url}/a`)); // it got the 503: it waits its 2 s, then retries
    for (let i = 0; i < 200 && srv.arrivals.length === 0; i++) await pause(5);
    await pause(50); // the 503 has reached the client
    const others: unknown[] = [];
    for (let i = 0; i < 5; i++) {
      others.push(await rejection(capture(f(`${srv.url}/b${i}`))));
      await pause(100);
    }
    for (const error of others) {
      expect(error).toBeInstanceOf(RetryAfterError);
      const e = error as RetryAfterError;
      expect(e.origin).toBe(srv.url);
      expect(e.status).toBeUndefined(); // asked of another call
      expect(e.retryAfterMs).toBeGreaterThan(0);
      expect(e.retryAfterMs).toBeLessThanOrEqual(2_000);
    }
    const res = ((await first) as { ok: true; value: Response }).value;
    expect(res.status).toBe(200);
    expect(srv.arrivals).toHaveLength(2); // the 503, then the first call's own retry
    expect(srv.arrivals[1]! - srv.arrivals[0]!).toBeGreaterThanOrEqual(1_998);
    expect((await f(`${srv.url}/c`)).status).toBe(200); // the pause is over
  });

  it("with serverBackoff: 'wait', the other calls wait the pause out and then succeed", async () => {
    const srv = await counting(busyOnce);
    const f = createFetch({ serverBackoff: 'wait', retry: { maxAttempts: 3, backoff: constant(10), maxDelayMs: 5_000 } });
    const first = capture(f(`${srv.url}/a`));
    for (let i = 0; i < 200 && srv.arrivals.length === 0; i++) await pause(5);
    await pause(50);
    const others = [0, 1, 2, 3, 4].map((i) => f(`${srv.url}/b${i}`));
    const statuses = await Promise.all(others.map(async (p) => (await p).status));
    expect(statuses).toEqual([200, 200, 200, 200, 200]);
    expect(((await first) as { ok: true; value: Response }).value.status).toBe(200);
    expect(srv.arrivals).toHaveLength(7);
    for (const at of srv.arrivals.slice(1)) expect(at - srv.arrivals[0]!).toBeGreaterThanOrEqual(1_998);
  });

  it("with serverBackoff: 'wait', a pause longer than maxDelayMs is waited in full, not cut at the cap", async () => {
    const srv = await counting((n, _req, res) => (n === 1 ? res.writeHead(503, { 'retry-after': '1' }).end() : res.writeHead(200).end('ok')));
    const f = createFetch({ serverBackoff: 'wait', retry: { maxAttempts: 3, backoff: constant(10), maxDelayMs: 300 } });
    expect((await f(`${srv.url}/`)).status).toBe(200);
    expect(srv.arrivals).toHaveLength(2);
    expect(srv.arrivals[1]! - srv.arrivals[0]!).toBeGreaterThanOrEqual(998);
  });
});
