// bulwark/fetch and the sockets it leaves on a real node:http server (issue 12 §1): attempts that
// time out, calls the caller aborts mid-body, and retried responses whose bodies nobody reads. A
// socket still open after the calls settle is held by the client: a leak until GC, or for ever.
// The figures of benchmarks/RESULTS.md ("Sockets after timeouts and aborts") come from here.
import { afterEach, describe, expect, it } from 'vitest';
import { createFetch, RetryAfterError } from '../../src/adapters/fetch.js';
import { constant, TimeoutError } from '../../src/index.js';
import { capture, rejection } from '../support/helpers.js';
import { type CountingServer, loopbackServers } from './support/fetch-servers.js';

const { serveCounting, closeAll } = loopbackServers();
afterEach(closeAll);

/** Calls made at once in each scenario: the keep-alive pool may keep one idle socket per call. */
const concurrency = 10;
/** A failed body larger than the socket buffers, so the server cannot finish it unless it is read. */
const bigBody = Buffer.alloc(4 * 1024 * 1024, 'x');

/**
 * Waits at most 500 ms (polling every 10 ms) until `srv` has no busy socket and at most `idle`
 * sockets that carried a request; returns what is left then.
 */
async function settled(srv: CountingServer, idle: number): Promise<{ busy: number; carrying: number }> {
  const deadline = performance.now() + 500;
  while (performance.now() < deadline && (srv.busy() > 0 || srv.carrying() > idle)) {
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  return { busy: srv.busy(), carrying: srv.carrying() };
}

/**
 * Every socket open, spares included, is bounded by undici's pool, not by the attempts made: after
 * an aborted request undici connects again, leaving one idle connection per client of its pool
 * (they carry nothing and close at the keep-alive timeout), and a call that retries while its last
 * connection closes may take a second client. One socket per attempt would be a leak.
 */
const poolBound = 2 * concurrency;

function all<T>(call: () => Promise<T>): Promise<T[]> {
  return Promise.all(Array.from({ length: concurrency }, call));
}

describe('sockets after timed-out attempts', () => {
  it('50 attempts that time out against a server that never answers leave no socket carrying a request', async () => {
    const srv = await serveCounting(() => {}); // never answers
    const f = createFetch({ attemptTimeoutMs: 40, circuitBreaker: false, retry: { maxAttempts: 5, backoff: constant(1) } });
    let retries = 0;
    f.onRetry(() => retries++);
    const errors = await all(() => rejection(capture(f(`${srv.url}/hang`))));
    expect(errors.every((e) => e instanceof TimeoutError)).toBe(true);
    expect(retries + concurrency).toBe(50); // attempts in all
    expect(await settled(srv, 0)).toEqual({ busy: 0, carrying: 0 });
    expect(srv.open()).toBeLessThanOrEqual(poolBound);
  });

  it('attempts that time out against a slow server (its answer comes after the timeout) close their sockets', async () => {
    const srv = await serveCounting((_req, res) => {
      const t = setTimeout(() => res.writeHead(200).end(bigBody), 150);
      res.once('close', () => clearTimeout(t));
    });
    const f = createFetch({ attemptTimeoutMs: 40, circuitBreaker: false, retry: { maxAttempts: 5, backoff: constant(1) } });
    const errors = await all(() => rejection(capture(f(`${srv.url}/slow`))));
    expect(errors.every((e) => e instanceof TimeoutError)).toBe(true);
    // 150 ms after the last timeout the server answers nobody: no socket may still be waiting for it.
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(await settled(srv, 0)).toEqual({ busy: 0, carrying: 0 });
    expect(srv.open()).toBeLessThanOrEqual(poolBound);
  });
});

describe('sockets after the caller aborts mid-body', () => {
  it("the caller's abort while the body streams closes every socket", async () => {
    const srv = await serveCounting((_req, res) => {
      res.writeHead(200);
      res.write('x'.repeat(16 * 1024)); // and never ends
    });
    const f = createFetch({ attemptTimeoutMs: 1_000 });
    await all(async () => {
      const controller = new AbortController();
      const res = await f(`${srv.url}/stream`, { signal: controller.signal });
      const reader = res.body!.getReader();
      await reader.read();
      controller.abort(new Error('enough'));
      // Bounded: a body the abort does not reach would wait for the next chunk for ever.
      const stuck = new Promise((_, reject) => setTimeout(() => reject(new Error('the body kept streaming')), 1_000).unref());
      await expect(Promise.race([reader.read(), stuck])).rejects.toThrow('enough');
    });
    expect(await settled(srv, 0)).toEqual({ busy: 0, carrying: 0 });
    expect(srv.open()).toBeLessThanOrEqual(poolBound);
  });
});

describe('sockets of retried responses', () => {
  it('bodies of retried 503s are cancelled: no socket is left holding an unread body', async () => {
    let requests = 0;
    const srv = await serveCounting((_req, res) => {
      requests++;
      res.writeHead(503).end(bigBody);
    });
    const f = createFetch({ circuitBreaker: false, retry: { maxAttempts: 5, backoff: constant(1) } });
    await all(async () => {
      const res = await f(`${srv.url}/down`);
      expect(res.status).toBe(503);
      // The last answer is the caller's: cancelled here, not read, as reading 40 MB would let a
      // garbage collection free the leaked sockets too and hide a leak.
      await res.body!.cancel();
    });
    expect(requests).toBe(50);
    expect(await settled(srv, 0)).toEqual({ busy: 0, carrying: 0 });
    expect(srv.open()).toBeLessThanOrEqual(poolBound);
  });

  it('the last failed response stays readable; read in full, its socket may idle in the pool', async () => {
    let requests = 0;
    const srv = await serveCounting((_req, res) => void res.writeHead(503).end(`attempt ${++requests}`));
    const f = createFetch({ circuitBreaker: false, retry: { maxAttempts: 3, backoff: constant(1) } });
    const res = await f(`${srv.url}/down`);
    expect(await res.text()).toBe('attempt 3');
    const left = await settled(srv, 1);
    expect(left.busy).toBe(0);
    expect(left.carrying).toBeLessThanOrEqual(1);
  });

  it('and on the failover path, between two endpoints that both fail', async () => {
    const handler = (_req: unknown, res: { writeHead(s: number): { end(b: Buffer): void } }): void => res.writeHead(503).end(bigBody);
    const a = await serveCounting(handler);
    const b = await serveCounting(handler);
    const f = createFetch({ endpoints: [a.url, b.url], circuitBreaker: false, retry: { maxAttempts: 4, backoff: constant(1) } });
    await all(async () => {
      const res = await f('/down');
      expect(res.status).toBe(503);
      await res.body!.cancel(); // the caller drops the last answer: its socket goes too
    });
    expect(await settled(a, 0)).toEqual({ busy: 0, carrying: 0 });
    expect(await settled(b, 0)).toEqual({ busy: 0, carrying: 0 });
  });

  it('the body of a 503 whose Retry-After ends the call (RetryAfterError) is cancelled', async () => {
    const srv = await serveCounting((_req, res) => void res.writeHead(503, { 'retry-after': '120' }).end(bigBody));
    const f = createFetch({ retry: { maxAttempts: 3, maxDelayMs: 1_000 } });
    const error = await rejection(capture(f(`${srv.url}/busy`)));
    expect(error).toBeInstanceOf(RetryAfterError);
    expect(await settled(srv, 0)).toEqual({ busy: 0, carrying: 0 });
  });

  it('the slow loser of a hedge race is aborted with its socket', async () => {
    let requests = 0;
    const srv = await serveCounting((_req, res) => {
      if (++requests % 2 === 1) {
        const t = setTimeout(() => res.writeHead(200).end(bigBody), 300);
        res.once('close', () => clearTimeout(t));
        return;
      }
      res.writeHead(200).end('fast');
    });
    const f = createFetch({ hedge: { delayMs: 30 }, retry: false });
    for (let i = 0; i < 5; i++) expect(await (await f(`${srv.url}/`)).text()).toBe('fast');
    expect((await settled(srv, 1)).busy).toBe(0);
  });
});
