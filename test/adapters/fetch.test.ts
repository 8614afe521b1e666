// bulwark/fetch against real node:http servers on 127.0.0.1 and Node's own fetch (undici):
// rows F10 (a server that never answers), F11 (a POST whose server commits then drops the
// connection) and F12 (Retry-After in its forms), failover between endpoints, and that every
// response given up releases its connection.
import { subscribe, unsubscribe } from 'node:diagnostics_channel';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { createFetch, type FailoverEvent } from '../../src/adapters/fetch.js';
import { channelNames, constant, consecutive, gcra, rateLimiter, TimeoutError } from '../../src/index.js';
import { abortListeners, capture, rejection } from '../support/helpers.js';

interface TestServer {
  readonly url: string;
  readonly server: Server;
  /**
   * Sockets that carried a request and are still open. (undici may open a spare connection after
   * an abort, which carries nothing and idles out after its keep-alive timeout: not counted.)
   */
  readonly open: Set<Socket>;
  close(): Promise<void>;
}

const servers: TestServer[] = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => s.close()));
});

async function serve(handler: (req: IncomingMessage, res: ServerResponse) => void): Promise<TestServer> {
  const server = createServer(handler);
  const open = new Set<Socket>();
  server.on('request', (req: IncomingMessage) => {
    const socket = req.socket;
    if (open.has(socket) || socket.destroyed) return;
    open.add(socket);
    socket.once('close', () => open.delete(socket));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  const s: TestServer = {
    url: `http://127.0.0.1:${port}`,
    server,
    open,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
  servers.push(s);
  return s;
}

/** Waits (at most 2 s, polling every 10 ms) until `check` holds; returns whether it did. */
async function eventually(check: () => boolean): Promise<boolean> {
  for (let i = 0; i < 200; i++) {
    if (check()) return true;
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  return check();
}

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    let text = '';
    req.setEncoding('utf8');
    req.on('data', (chunk: string) => (text += chunk));
    req.on('end', () => resolve(text));
    req.on('error', reject);
  });
}

describe('F10: a downstream that never answers', () => {
  it('rejects at the attempt timeout with TimeoutError, and the server is left with no open socket', async () => {
    const srv = await serve(() => {}); // never answers
    const f = createFetch({ attemptTimeoutMs: 150, retry: false });
    const started = performance.now();
    const error = await rejection(capture(f(`${srv.url}/hang`)));
    const took = performance.now() - started;
    expect(error).toBeInstanceOf(TimeoutError);
    expect(took).toBeGreaterThanOrEqual(145);
    expect(took).toBeLessThan(150 + 250); // overshoot bound on a loaded machine
    expect(await eventually(() => srv.open.size === 0)).toBe(true);
  });

  it('50 concurrent requests all reject near the timeout (overshoot p99) and leave no socket open', async () => {
    const srv = await serve(() => {});
    const f = createFetch({ attemptTimeoutMs: 100, retry: false });
    const overshoots = await Promise.all(
      Array.from({ length: 50 }, async () => {
        const started = performance.now();
        const error = await rejection(capture(f(`${srv.url}/hang`)));
        expect(error).toBeInstanceOf(TimeoutError);
        return performance.now() - started - 100;
      }),
    );
    overshoots.sort((a, b) => a - b);
    const p99 = overshoots[Math.ceil(overshoots.length * 0.99) - 1]!;
    expect(overshoots[0]!).toBeGreaterThanOrEqual(-2); // never early (timer granularity aside)
    expect(p99).toBeLessThan(250);
    expect(await eventually(() => srv.open.size === 0)).toBe(true);
  });

  it('with retries, rejects at the overall timeout and every attempt’s socket is closed', async () => {
    let requests = 0;
    const srv = await serve(() => void requests++);
    const f = createFetch({ attemptTimeoutMs: 60, timeoutMs: 200, retry: { maxAttempts: 10, backoff: constant(5) } });
    const started = performance.now();
    const error = (await rejection(capture(f(`${srv.url}/hang`)))) as TimeoutError;
    expect(error).toBeInstanceOf(TimeoutError);
    expect(error.timeoutMs).toBe(200);
    expect(performance.now() - started).toBeLessThan(200 + 250);
    expect(requests).toBeGreaterThanOrEqual(2);
    expect(await eventually(() => srv.open.size === 0)).toBe(true);
  });

  it("rejects with the caller's reason when the caller aborts, releasing the socket and the caller's signal", async () => {
    const srv = await serve(() => {});
    const f = createFetch({ attemptTimeoutMs: 5_000 });
    const controller = new AbortController();
    const call = capture(f(`${srv.url}/hang`, { signal: controller.signal }));
    expect(await eventually(() => srv.open.size === 1)).toBe(true);
    const reason = new Error('client went away');
    controller.abort(reason);
    expect(await rejection(call)).toBe(reason);
    expect(abortListeners(controller.signal)).toBe(0);
    expect(await eventually(() => srv.open.size === 0)).toBe(true);
  });

  it("an abort without a reason rejects with an AbortError", async () => {
    const srv = await serve(() => {});
    const f = createFetch();
    const controller = new AbortController();
    const call = capture(f(`${srv.url}/hang`, { signal: controller.signal }));
    expect(await eventually(() => srv.open.size === 1)).toBe(true);
    controller.abort();
    expect((await rejection(call)) as DOMException).toMatchObject({ name: 'AbortError' });
    expect(abortListeners(controller.signal)).toBe(0);
    expect(await eventually(() => srv.open.size === 0)).toBe(true);
  });

  it("the caller's signal still aborts the body after the response arrived, as with fetch", async () => {
    const srv = await serve((_req, res) => {
      res.writeHead(200);
      res.write('first chunk'); // and never ends
    });
    const f = createFetch();
    const controller = new AbortController();
    const res = await f(`${srv.url}/stream`, { signal: controller.signal });
    const reader = res.body!.getReader();
    await reader.read();
    controller.abort(new Error('enough'));
    await expect(reader.read()).rejects.toThrow('enough');
    expect(await eventually(() => srv.open.size === 0)).toBe(true);
  });
});

describe('F11: a POST whose server commits, then drops the connection', () => {
  /** A server that commits each new order, dropping the connection after the first commit. */
  async function ordersServer(): Promise<{ srv: TestServer; requests: () => number; commits: () => number; duplicates: () => number }> {
    let requests = 0;
    const committed = new Map<string, number>();
    let anonymous = 0;
    const srv = await serve(async (req, res) => {
      requests++;
      const body = await readBody(req);
      const key = req.headers['idempotency-key'];
      if (typeof key === 'string' && committed.has(key)) {
        res.writeHead(200).end('already committed'); // the key makes the replay harmless
        return;
      }
      if (typeof key === 'string') committed.set(key, (committed.get(key) ?? 0) + 1);
      else anonymous++;
      if (requests === 1) {
        req.socket.destroy(); // committed, then the connection drops before the answer
        return;
      }
      res.writeHead(201).end(`created ${body}`);
    });
    const keyed = (): number => [...committed.values()].reduce((a, b) => a + b, 0);
    return {
      srv,
      requests: () => requests,
      commits: () => keyed() + anonymous,
      duplicates: () => [...committed.values()].reduce((a, n) => a + n - 1, 0) + Math.max(0, anonymous - 1),
    };
  }

  it('is not retried without an idempotency key: the call rejects, one commit', async () => {
    const o = await ordersServer();
    const f = createFetch({ retry: { maxAttempts: 3, backoff: constant(1) } });
    const error = await rejection(capture(f(`${o.srv.url}/orders`, { method: 'POST', body: 'book' })));
    expect(error).toBeInstanceOf(TypeError); // fetch failed: the connection dropped
    expect(o.requests()).toBe(1);
    expect(o.commits()).toBe(1);
    expect(o.duplicates()).toBe(0);
  });

  it('is retried with an Idempotency-Key, and the server commits once', async () => {
    const o = await ordersServer();
    const f = createFetch({ retry: { maxAttempts: 3, backoff: constant(1) } });
    const res = await f(`${o.srv.url}/orders`, { method: 'POST', body: 'book', headers: { 'Idempotency-Key': 'order-1' } });
    expect(res.status).toBe(200);
    expect(await res.text()).toBe('already committed');
    expect(o.requests()).toBe(2);
    expect(o.duplicates()).toBe(0);
  });

  it('is never retried with a streamed body, even with an Idempotency-Key', async () => {
    const o = await ordersServer();
    const f = createFetch({ retry: { maxAttempts: 3, backoff: constant(1) } });
    const body = new ReadableStream<Uint8Array>({
      start(c) {
        c.enqueue(new TextEncoder().encode('book'));
        c.close();
      },
    });
    const init = { method: 'POST', body, headers: { 'Idempotency-Key': 'order-2' }, duplex: 'half' } as RequestInit;
    await expect(f(`${o.srv.url}/orders`, init)).rejects.toThrow(TypeError);
    expect(o.requests()).toBe(1);
    expect(o.duplicates()).toBe(0);
  });

  it('a POST refused by a dead primary goes to the standby: it never left, so nothing is duplicated', async () => {
    const dead = await serve(() => {});
    const deadUrl = dead.url;
    await dead.close();
    servers.splice(servers.indexOf(dead), 1);
    let commits = 0;
    const standby = await serve(async (req, res) => {
      await readBody(req);
      commits++;
      res.writeHead(201).end();
    });
    const f = createFetch({ endpoints: [deadUrl, standby.url], retry: { backoff: constant(1) } });
    expect((await f('/orders', { method: 'POST', body: 'x' })).status).toBe(201);
    expect(commits).toBe(1);
  });
});

describe('F12: Retry-After from a real server', () => {
  /** Answers 503 with `headers` once, then 200; returns the gap between the two requests. */
  async function gapAfter(headers: () => Record<string, string>, maxDelayMs: number): Promise<number> {
    const arrivals: number[] = [];
    const srv = await serve((_req, res) => {
      arrivals.push(performance.now());
      if (arrivals.length === 1) res.writeHead(503, headers()).end('busy');
      else res.writeHead(200).end('ok');
    });
    const f = createFetch({ retry: { maxAttempts: 2, backoff: constant(20), maxDelayMs } });
    const res = await f(`${srv.url}/`);
    expect(res.status).toBe(200);
    return arrivals[1]! - arrivals[0]!;
  }

  it('waits the seconds asked for', async () => {
    const gap = await gapAfter(() => ({ 'retry-after': '1' }), 5_000);
    expect(gap).toBeGreaterThanOrEqual(990);
    expect(gap).toBeLessThan(1_400);
  });

  it('waits until the HTTP date asked for (against the server’s Date header)', async () => {
    const gap = await gapAfter(() => {
      const now = Date.now();
      // Both dates are whole seconds; 2 s after the server's own Date.
      const serverDate = new Date(Math.floor(now / 1000) * 1000);
      return { date: serverDate.toUTCString(), 'retry-after': new Date(serverDate.getTime() + 1_000).toUTCString() };
    }, 5_000);
    expect(gap).toBeGreaterThanOrEqual(990);
    expect(gap).toBeLessThan(1_400);
  });

  it('ignores garbage and uses the backoff', async () => {
    const gap = await gapAfter(() => ({ 'retry-after': 'in a while' }), 5_000);
    expect(gap).toBeLessThan(500);
  });

  it('a huge value is read as the longest pause: the call ends with RetryAfterError rather than retrying at maxDelayMs', async () => {
    let arrivals = 0;
    const srv = await serve((_req, res) => {
      arrivals++;
      res.writeHead(503, { 'retry-after': '999999999999' }).end('busy');
    });
    const f = createFetch({ retry: { maxAttempts: 2, backoff: constant(20), maxDelayMs: 300 } });
    const error = await rejection(capture(f(`${srv.url}/`)));
    expect(error).toMatchObject({ name: 'RetryAfterError', retryAfterMs: 2 ** 31 - 1 });
    expect(arrivals).toBe(1);
  });

  it('takes t of the IETF RateLimit header', async () => {
    const gap = await gapAfter(() => ({ ratelimit: '"default";r=0;t=1' }), 5_000);
    expect(gap).toBeGreaterThanOrEqual(990);
    expect(gap).toBeLessThan(1_400);
  });
});

describe('connections of responses given up', () => {
  it('cancels the body of a retried 503 (even an endless one) so its socket is freed', async () => {
    let requests = 0;
    let firstClosed = false;
    const srv = await serve((req, res) => {
      if (++requests === 1) {
        req.socket.once('close', () => (firstClosed = true));
        res.writeHead(503);
        res.write('x'.repeat(64 * 1024)); // a body that never ends
        return;
      }
      res.writeHead(200).end('ok');
    });
    const f = createFetch({ retry: { backoff: constant(1) } });
    const res = await f(`${srv.url}/`);
    expect(await res.text()).toBe('ok');
    expect(await eventually(() => firstClosed)).toBe(true);
  });

  it('resolves with the last failed response, readable, once attempts run out', async () => {
    let requests = 0;
    const srv = await serve((_req, res) => {
      requests++;
      res.writeHead(503).end(`attempt ${requests}`);
    });
    const f = createFetch({ retry: { maxAttempts: 3, backoff: constant(1) } });
    const res = await f(`${srv.url}/`);
    expect(res.status).toBe(503);
    expect(await res.text()).toBe('attempt 3');
    expect(await eventually(() => srv.open.size <= 1)).toBe(true);
  });
});

describe('failover between real endpoints', () => {
  it('moves to the standby while the primary is down, and back once its breaker half-opens and a probe succeeds', async () => {
    let primaryUp = false;
    const hits = { primary: 0, standby: 0 };
    const primary = await serve((_req, res) => {
      hits.primary++;
      res.writeHead(primaryUp ? 200 : 500).end('primary');
    });
    const standby = await serve((_req, res) => {
      hits.standby++;
      res.writeHead(200).end('standby');
    });
    const f = createFetch({
      endpoints: [primary.url, standby.url],
      retry: { maxAttempts: 2, backoff: constant(1) },
      circuitBreaker: { breaker: consecutive(2), halfOpenAfterMs: 200 },
    });
    const events: FailoverEvent[] = [];
    const onMessage = (m: unknown): void => void events.push(m as FailoverEvent);
    subscribe(channelNames.fetchFailover, onMessage);
    try {
      expect(await (await f('/a')).text()).toBe('standby');
      expect(await (await f('/a')).text()).toBe('standby');
      expect(f.circuitBreaker(primary.url)?.state).toBe('open');
      const before = hits.primary;
      expect(await (await f('/a')).text()).toBe('standby');
      expect(hits.primary).toBe(before); // ejected
      primaryUp = true;
      await new Promise((resolve) => setTimeout(resolve, 220));
      expect(await (await f('/a')).text()).toBe('primary');
      expect(f.circuitBreaker(primary.url)?.state).toBe('closed');
      expect(events.map((e) => e.reason)).toEqual(['failure', 'failure', 'circuit-open']);
      expect(events[0]).toEqual({ policy: 'fetch', from: primary.url, to: standby.url, reason: 'failure' });
    } finally {
      unsubscribe(channelNames.fetchFailover, onMessage);
    }
  });
});

describe('hedging and rate limits', () => {
  it('hedges a slow GET; the loser is aborted and its socket closed', async () => {
    let requests = 0;
    let loserClosed = false;
    const srv = await serve((_req, res) => {
      if (++requests === 1) {
        const t = setTimeout(() => res.end('slow'), 2_000);
        res.on('close', () => {
          clearTimeout(t);
          loserClosed = true;
        });
        return;
      }
      res.end('fast');
    });
    const f = createFetch({ hedge: { delayMs: 50 } });
    expect(await (await f(`${srv.url}/`)).text()).toBe('fast');
    expect(await eventually(() => loserClosed)).toBe(true);
  });

  it('does not hedge a POST', async () => {
    let requests = 0;
    const srv = await serve((_req, res) => {
      requests++;
      setTimeout(() => res.end('done'), 100);
    });
    const f = createFetch({ hedge: { delayMs: 10 } });
    await (await f(`${srv.url}/`, { method: 'POST', body: 'x' })).text();
    expect(requests).toBe(1);
  });

  it('takes a unit per attempt from a limiter keyed by origin, waiting when denied', async () => {
    const arrivals: number[] = [];
    const srv = await serve((_req, res) => {
      arrivals.push(performance.now());
      res.end('ok');
    });
    const limiter = rateLimiter({ name: 'upstream', algorithm: gcra({ limit: 1, periodMs: 200 }) });
    const f = createFetch({ rateLimit: { limiter }, retry: { maxAttempts: 3, backoff: constant(1), maxDelayMs: 1_000 } });
    await (await f(`${srv.url}/`)).text();
    await (await f(`${srv.url}/`)).text(); // denied at first, retried after retryAfterMs
    expect(arrivals).toHaveLength(2);
    expect(arrivals[1]! - arrivals[0]!).toBeGreaterThanOrEqual(150);
  });
});

// Attempts started together (the same millisecond, so the same deadline on the attempt timeout's
// queue) must not share what aborts them: undici follows an attempt's signal into the response
// body for as long as the body lives, so a signal shared by calls with the same deadline (one
// AbortController per deadline bucket, say) would let one call's timeout or caller end another's
// response (issue 14 §4, RESULTS.md). Pinned here against such a change.
describe('attempts started together are aborted alone', () => {
  it("one call's attempt timeout leaves another call's body, still streaming, readable", async () => {
    const srv = await serve((req, res) => {
      if (req.url !== '/stream') return; // /hang: never answers
      res.writeHead(200);
      res.write('first');
      setTimeout(() => res.end('second'), 700); // after the other call's attempt timed out
    });
    // 300 ms: room for the streaming call's headers on a loaded machine, well before its end.
    const f = createFetch({ attemptTimeoutMs: 300, retry: false, circuitBreaker: false });
    const streaming = f(`${srv.url}/stream`);
    const hanging = capture(f(`${srv.url}/hang`));
    const res = await streaming;
    expect(await rejection(hanging)).toBeInstanceOf(TimeoutError);
    expect(await res.text()).toBe('firstsecond');
  });

  it("one caller's abort ends its own call only, not another started in the same millisecond", async () => {
    const srv = await serve((_req, res) => {
      setTimeout(() => res.end('ok'), 100);
    });
    const f = createFetch({ attemptTimeoutMs: 5_000, retry: false, circuitBreaker: false });
    const first = new AbortController();
    const second = new AbortController();
    const aborted = capture(f(`${srv.url}/a`, { signal: first.signal }));
    const kept = f(`${srv.url}/b`, { signal: second.signal });
    const reason = new Error('first caller went away');
    first.abort(reason);
    expect(await rejection(aborted)).toBe(reason);
    const res = await kept;
    expect(res.status).toBe(200);
    expect(await res.text()).toBe('ok');
  });
});
