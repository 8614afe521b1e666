// Real Express 4 and 5 servers on 127.0.0.1, port 0, with the rate-limit and load-shedding middleware.
import { Agent, createServer, request as httpRequest, type IncomingMessage, type Server } from 'node:http';
import { createRequire } from 'node:module';
import express5 from 'express';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { loadSheddingMiddleware, rateLimitMiddleware } from '../../src/adapters/express.js';
import {
  type Decider,
  fixedWindow,
  gcra,
  type LimiterDecision,
  loadShedder,
  type LoadSample,
  quota,
  rateLimiter,
} from '../../src/index.js';
import { abortRequest, close, delay, listen, send } from './support/inbound-http.js';

const express4 = createRequire(import.meta.url)('express4') as typeof express5;

type App = ReturnType<typeof express5>;

const servers: Server[] = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => close(s)));
});

async function serve(app: App): Promise<number> {
  const server = createServer(app);
  servers.push(server);
  return listen(server);
}

function windowLimiter(limit: number, name = 'api') {
  return rateLimiter({ name, algorithm: fixedWindow({ limit, windowMs: 60_000 }) });
}

/** A decider that answers after `ms`, to let clients leave before the decision. */
function slowDecider(ms: number, allowed: boolean): Decider {
  return {
    kind: 'rate-limiter',
    name: 'slow',
    consume: async (): Promise<LimiterDecision> => {
      await delay(ms);
      return { allowed, limit: 1, remaining: 0, resetMs: 1_000, retryAfterMs: allowed ? 0 : 1_000, store: 'memory' };
    },
  };
}

const ok = (_req: unknown, res: { send(body: string): void }): void => res.send('ok');

describe.each([
  ['Express 4', express4],
  ['Express 5', express5],
])('%s', (_name, express) => {
  it('answers allowed requests with RateLimit-Policy and RateLimit headers', async () => {
    const app = express();
    app.use(rateLimitMiddleware(windowLimiter(3)));
    app.get('/', ok);
    const port = await serve(app);
    const a = await send(port, '/');
    expect(a.status).toBe(200);
    expect(a.body).toBe('ok');
    expect(a.headers['ratelimit-policy']).toBe('"api";q=3;w=60');
    expect(a.headers['ratelimit']).toMatch(/^"api";r=2;t=\d+$/);
    expect(a.headers['x-ratelimit-limit']).toBeUndefined();
    expect(a.headers['retry-after']).toBeUndefined();
  });

  it('denies over the limit with 429, Retry-After and a problem+json body', async () => {
    const app = express();
    app.use(rateLimitMiddleware(windowLimiter(2)));
    app.get('/', ok);
    const port = await serve(app);
    await send(port, '/');
    await send(port, '/');
    const denied = await send(port, '/');
    expect(denied.status).toBe(429);
    expect(denied.headers['content-type']).toBe('application/problem+json');
    const retryAfter = Number(denied.headers['retry-after']);
    expect(Number.isInteger(retryAfter)).toBe(true);
    expect(retryAfter).toBeGreaterThan(0);
    expect(retryAfter).toBeLessThanOrEqual(60);
    expect(denied.headers['ratelimit']).toBe(`"api";r=0;t=${retryAfter}`);
    const body = JSON.parse(denied.body) as Record<string, unknown>;
    expect(Object.keys(body).sort()).toEqual(['detail', 'policy', 'status', 'title', 'type', 'violated-policies']);
    // draft-ietf-httpapi-ratelimit-headers-11 §5: the policies the request exceeded, by name.
    expect(body['violated-policies']).toEqual([body.policy]);
    expect(body).toMatchObject({ type: 'urn:bulwark:problem:rate-limited', title: 'Too Many Requests', status: 429, policy: 'api' });
    expect(Number(denied.headers['content-length'])).toBe(Buffer.byteLength(denied.body));
  });

  it("headers: 'draft+legacy' adds X-RateLimit-*; 'none' sends none but keeps Retry-After", async () => {
    const app = express();
    app.get('/legacy', rateLimitMiddleware(windowLimiter(5, 'legacy'), { headers: 'draft+legacy' }), ok);
    app.get('/none', rateLimitMiddleware(windowLimiter(1, 'none'), { headers: 'none' }), ok);
    const port = await serve(app);
    const legacy = await send(port, '/legacy');
    expect(legacy.headers['x-ratelimit-limit']).toBe('5');
    expect(legacy.headers['x-ratelimit-remaining']).toBe('4');
    // Epoch seconds, as GitHub and express-rate-limit send it (it used to be seconds from now).
    const reset = Number(legacy.headers['x-ratelimit-reset']);
    expect(reset).toBeGreaterThan(Date.now() / 1000);
    expect(reset).toBeLessThanOrEqual(Math.ceil(Date.now() / 1000) + 60);
    expect(legacy.headers['ratelimit-policy']).toBe('"legacy";q=5;w=60');
    const none = await send(port, '/none');
    expect(none.headers['ratelimit']).toBeUndefined();
    expect(none.headers['ratelimit-policy']).toBeUndefined();
    const denied = await send(port, '/none');
    expect(denied.status).toBe(429);
    expect(denied.headers['ratelimit']).toBeUndefined();
    expect(Number(denied.headers['retry-after'])).toBeGreaterThan(0);
  });

  it('applies per-route limits, cost and skip', async () => {
    const app = express();
    const search = windowLimiter(4, 'search');
    app.get('/search', rateLimitMiddleware(search, { cost: (req: IncomingMessage) => (req.url?.includes('deep') ? 3 : 1) }), ok);
    app.get('/fixed', rateLimitMiddleware(windowLimiter(4, 'fixed'), { cost: 2 }), ok);
    app.get(
      '/skip',
      rateLimitMiddleware(windowLimiter(1, 'skip'), { skip: async (req: IncomingMessage) => req.headers['x-internal'] === 'yes' }),
      ok,
    );
    const port = await serve(app);
    expect((await send(port, '/search?q=deep')).headers['ratelimit']).toMatch(/r=1;/);
    expect((await send(port, '/search?q=deep')).status).toBe(429);
    expect((await send(port, '/search')).status).toBe(200);
    expect((await send(port, '/fixed')).headers['ratelimit']).toMatch(/r=2;/);
    expect((await send(port, '/fixed')).status).toBe(200);
    expect((await send(port, '/fixed')).status).toBe(429);
    for (let i = 0; i < 3; i++) {
      const skipped = await send(port, '/skip', { headers: { 'x-internal': 'yes' } });
      expect(skipped.status).toBe(200);
      expect(skipped.headers['ratelimit']).toBeUndefined();
    }
    expect((await send(port, '/skip')).status).toBe(200);
    expect((await send(port, '/skip')).status).toBe(429);
  });

  it('keys by a custom key function, sync or async', async () => {
    const app = express();
    app.get('/sync', rateLimitMiddleware(windowLimiter(1, 'sync'), { key: (req: IncomingMessage) => String(req.headers['x-api-key']) }), ok);
    app.get('/async', rateLimitMiddleware(windowLimiter(1, 'async'), { key: async (req: IncomingMessage) => String(req.headers['x-api-key']) }), ok);
    const port = await serve(app);
    for (const path of ['/sync', '/async']) {
      expect((await send(port, path, { headers: { 'x-api-key': 'a' } })).status).toBe(200);
      expect((await send(port, path, { headers: { 'x-api-key': 'a' } })).status).toBe(429);
      expect((await send(port, path, { headers: { 'x-api-key': 'b' } })).status).toBe(200);
    }
  });

  it('regression: answers key-function errors and bad keys with its own 500 problem+json (not next(err) and Express\'s HTML page), reports them to onError, and keeps serving', async () => {
    const app = express();
    const seen: [unknown, string | undefined][] = [];
    const onError = (error: unknown, req: { path: string }) => void seen.push([error, req.path]);
    app.get('/throws', rateLimitMiddleware(windowLimiter(5, 'throws'), { onError, key: () => { throw new Error('secret internals'); } }), ok);
    app.get('/empty', rateLimitMiddleware(windowLimiter(5, 'empty'), { onError, key: () => '' }), ok);
    app.get('/number', rateLimitMiddleware(windowLimiter(5, 'number'), { onError, key: (() => 42) as never }), ok);
    app.get('/rejects', rateLimitMiddleware(windowLimiter(5, 'rejects'), { onError, key: () => Promise.reject(new Error('db down')) }), ok);
    app.get('/skip', rateLimitMiddleware(windowLimiter(5, 'skip'), { onError, skip: () => { throw new Error('skip broke'); } }), ok);
    // A truthy answer that is not `true` was read as "limit it" without a word (issue 11 §4).
    app.get('/skip-yes', rateLimitMiddleware(windowLimiter(5, 'skip-yes'), { onError, skip: (() => 'yes') as never }), ok);
    app.get('/ok', ok);
    let handlerCalls = 0;
    app.use((_err: unknown, _req: unknown, res: { status(n: number): { send(b: string): void } }, _next: unknown) => {
      handlerCalls++;
      res.status(500).send('handled');
    });
    const port = await serve(app);
    for (const path of ['/throws', '/empty', '/number', '/rejects', '/skip', '/skip-yes']) {
      const a = await send(port, path);
      expect(a.status, path).toBe(500);
      expect(a.headers['content-type']).toBe('application/problem+json');
      expect(JSON.parse(a.body)).toEqual({
        type: 'urn:bulwark:problem:rate-limit-check-failed',
        title: 'Internal Server Error',
        status: 500,
        detail: 'The request could not be checked against its rate limit.',
      });
      expect(a.body).not.toMatch(/secret|db down|<html|at /i);
    }
    expect((await send(port, '/ok')).status).toBe(200);
    expect(handlerCalls).toBe(0);
    expect(seen.map(([e, path]) => [(e as Error).message, path])).toEqual([
      ['secret internals', '/throws'],
      [expect.stringMatching(/rateLimitMiddleware: option "key" must return a non-empty string, got ""/), '/empty'],
      [expect.stringMatching(/option "key" must return a non-empty string, got 42/), '/number'],
      ['db down', '/rejects'],
      ['skip broke', '/skip'],
      [expect.stringMatching(/rateLimitMiddleware: option "skip" must return a boolean \(or a promise of one\), got "yes"/), '/skip-yes'],
    ]);
  });

  it('by default reports failed checks on console.error, at most one line per 10 s, and survives an onError that throws', async () => {
    const app = express();
    app.get('/default', rateLimitMiddleware(windowLimiter(5, 'd'), { key: () => { throw new Error('broken key'); } }), ok);
    app.get('/throwing', rateLimitMiddleware(windowLimiter(5, 't'), { key: () => { throw new Error('x'); }, onError: () => { throw new Error('reporter broke'); } }), ok);
    const port = await serve(app);
    const lines: unknown[][] = [];
    const spy = vi.spyOn(console, 'error').mockImplementation((...args: unknown[]) => void lines.push(args));
    try {
      for (let i = 0; i < 20; i++) expect((await send(port, '/default')).status).toBe(500);
      expect((await send(port, '/throwing')).status).toBe(500);
    } finally {
      spy.mockRestore();
    }
    expect(lines).toHaveLength(1);
    expect(String(lines[0]![0])).toMatch(/rateLimitMiddleware: a rate limit could not be checked/);
  });

  it('C-e: answers a bad cost (0, NaN, negative, fractional, a numeric string, over maxCost) with a 400 problem, logs nothing, charges nothing; an async cost works', async () => {
    const app = express();
    const limiter = windowLimiter(10, 'cost');
    const onError = vi.fn();
    app.get('/c', rateLimitMiddleware(limiter, { onError, cost: (req) => { const v = req.query.cost; return (typeof v === 'string' && v.startsWith('s') ? v.slice(1) : Number(v)) as number; } }), ok);
    app.get('/async', rateLimitMiddleware(windowLimiter(10, 'async'), { cost: async (req) => Number(req.get('x-cost')) }), ok);
    const port = await serve(app);
    const lines: unknown[][] = [];
    const spy = vi.spyOn(console, 'error').mockImplementation((...args: unknown[]) => void lines.push(args));
    try {
      for (const cost of ['0', 'NaN', '-1', '1.5', 's2', '11', '1e300']) {
        const a = await send(port, `/c?cost=${cost}`);
        expect(a.status, cost).toBe(400);
        expect(a.headers['content-type']).toBe('application/problem+json');
        expect(JSON.parse(a.body)).toMatchObject({ type: 'urn:bulwark:problem:bad-cost', status: 400, policy: 'cost' });
        expect(a.headers['ratelimit']).toBeUndefined();
      }
      expect((await send(port, '/c?cost=10')).status).toBe(200);
      expect((await send(port, '/c?cost=1')).status).toBe(429);
      const a = await send(port, '/async', { headers: { 'x-cost': '4' } });
      expect(a.headers['ratelimit']).toMatch(/^"async";r=6;/);
    } finally {
      spy.mockRestore();
    }
    expect(onError).not.toHaveBeenCalled();
    expect(lines).toEqual([]);
  });

  it('shows the draft\'s pk and qu when asked, and answers a partitionKey that throws as a failed check', async () => {
    const app = express();
    const reported: unknown[] = [];
    app.get('/pk', rateLimitMiddleware(windowLimiter(5, 'pk'), { key: (req) => req.get('x-tenant') ?? 'none', partitionKey: (key) => `t-${key}`, quotaUnit: 'requests' }), ok);
    app.get('/broken', rateLimitMiddleware(windowLimiter(5, 'broken'), { partitionKey: () => { throw new Error('no pk'); }, onError: (e) => void reported.push(e) }), ok);
    const port = await serve(app);
    const a = await send(port, '/pk', { headers: { 'x-tenant': 'acme' } });
    expect(a.headers['ratelimit-policy']).toBe(`"pk";q=5;w=60;qu="requests";pk=:${Buffer.from('t-acme').toString('base64')}:`);
    expect(a.headers['ratelimit']).toMatch(/^"pk";r=4;t=\d+;pk=:[A-Za-z0-9+/=]+:$/);
    const broken = await send(port, '/broken');
    expect(broken.status).toBe(500);
    expect(JSON.parse(broken.body)).toMatchObject({ type: 'urn:bulwark:problem:rate-limit-check-failed' });
    expect(reported.map((e) => (e as Error).message)).toEqual(['no pk']);
  });

  it('S1: without trusted proxies, rotating X-Forwarded-For keeps one bucket', async () => {
    const app = express();
    app.use(rateLimitMiddleware(windowLimiter(3)));
    app.get('/', ok);
    const port = await serve(app);
    const statuses: number[] = [];
    for (let i = 0; i < 6; i++) statuses.push((await send(port, '/', { headers: { 'x-forwarded-for': `198.51.100.${i}` } })).status);
    expect(statuses).toEqual([200, 200, 200, 429, 429, 429]);
  });

  it('with a trusted proxy, keys by X-Forwarded-For; S2: IPv6 within a /56 shares a bucket; mapped IPv4 and 6to4 are their IPv4', async () => {
    const app = express();
    app.use(rateLimitMiddleware(windowLimiter(1), { trustProxy: 'loopback' }));
    app.get('/', ok);
    const port = await serve(app);
    const from = async (xff: string): Promise<number> => (await send(port, '/', { headers: { 'x-forwarded-for': xff } })).status;
    expect(await from('198.51.100.1')).toBe(200);
    expect(await from('198.51.100.2')).toBe(200);
    expect(await from('198.51.100.1')).toBe(429);
    expect(await from('203.0.113.9, 198.51.100.3:4444')).toBe(200);
    expect(await from('2001:db8:1:2::1')).toBe(200);
    expect(await from('[2001:db8:1:2:ffff:eeee:dddd:cccc]:443')).toBe(429);
    expect(await from('2001:db8:1:3::1')).toBe(429); // the same /56
    expect(await from('2001:db8:1:100::1')).toBe(200);
    expect(await from('::ffff:192.0.2.77')).toBe(200);
    expect(await from('192.0.2.77')).toBe(429);
    expect(await from('2002:c000:24d:7::1')).toBe(429); // 6to4 carrying 192.0.2.77
    // Garbage from the client right of the proxy: keyed by the proxy itself (127.0.0.1).
    expect(await from('not-an-address')).toBe(200);
    expect(await from('also garbage')).toBe(429);
    // An 8 KB hop list: the nearest untrusted entry is the client.
    const long = `${Array.from({ length: 700 }, (_, i) => `198.18.${i % 250}.1`).join(', ')}, 192.0.2.200`;
    expect(long.length).toBeGreaterThan(8_000);
    expect(await from(long)).toBe(200);
    expect(await from('192.0.2.200')).toBe(429);
  });

  it('survives clients that abort while the decision is pending', async () => {
    const app = express();
    let handled = 0;
    app.get('/allow', rateLimitMiddleware(slowDecider(30, true)), (_req, res) => {
      handled++;
      res.send('ok');
    });
    app.get('/deny', rateLimitMiddleware(slowDecider(30, false)), ok);
    const port = await serve(app);
    await Promise.all([abortRequest(port, '/allow'), abortRequest(port, '/deny'), abortRequest(port, '/deny', 0)]);
    await delay(60);
    expect((await send(port, '/allow')).status).toBe(200);
    expect((await send(port, '/deny')).status).toBe(429);
    expect(handled).toBeGreaterThanOrEqual(1);
  });

  it('answers 500 problem+json when a custom limiter answers something that is not a decision, with no unhandled rejection', async () => {
    const app = express();
    const seen: unknown[] = [];
    const onError = (error: unknown) => void seen.push(error);
    const bad = (value: unknown): Decider => ({ kind: 'rate-limiter', name: 'bad', consume: () => Promise.resolve(value as LimiterDecision) });
    app.get('/null', rateLimitMiddleware(bad(null), { onError }), ok);
    app.get('/undefined', rateLimitMiddleware(bad(undefined), { onError }), ok);
    app.get('/keyed', rateLimitMiddleware(bad({}), { onError, key: () => 'k' }), ok);
    const port = await serve(app);
    for (const path of ['/null', '/undefined', '/keyed']) {
      const a = await send(port, path);
      expect(a.status, path).toBe(500);
      expect(JSON.parse(a.body)).toMatchObject({ type: 'urn:bulwark:problem:rate-limit-check-failed' });
      expect(a.headers['ratelimit'], path).toBeUndefined();
    }
    expect(seen.map((e) => (e as Error).message)).toEqual(Array(3).fill(expect.stringMatching(/consume must resolve to a decision/)));
  });

  it('waits for a custom limiter answering with a thenable that is not a native promise', async () => {
    const app = express();
    const thenable = { then: (resolve: (d: LimiterDecision) => void) => resolve({ allowed: true, limit: 4, remaining: 3, resetMs: 2_000, retryAfterMs: 0, store: 'x' }) };
    app.use(rateLimitMiddleware({ kind: 'rate-limiter', name: 'then', consume: () => thenable as unknown as Promise<LimiterDecision> }));
    app.get('/', ok);
    const port = await serve(app);
    const a = await send(port, '/');
    expect(a.status).toBe(200);
    expect(a.headers['ratelimit-policy']).toBe('"then";q=4');
    expect(a.headers['ratelimit']).toBe('"then";r=3;t=2');
  });

  it('keeps the connection when the limiter fails after another middleware already answered', async () => {
    const app = express();
    const seen: unknown[] = [];
    const reported: unknown[] = [];
    app.use((_req: unknown, res: { status(n: number): { send(b: string): void } }, next: () => void) => {
      setTimeout(() => res.status(503).send('too slow'), 5);
      next();
    });
    app.use(
      rateLimitMiddleware({
        kind: 'rate-limiter',
        name: 'late',
        consume: async () => {
          await delay(30);
          throw new Error('store down');
        },
      }, { onError: (error) => void reported.push(error) }),
    );
    app.get('/', ok);
    app.use((err: unknown, _req: unknown, _res: unknown, next: (e: unknown) => void) => {
      seen.push(err);
      next(err);
    });
    const server = createServer(app);
    servers.push(server);
    const port = await listen(server);
    let closed = 0;
    server.on('connection', (socket) => socket.on('close', () => closed++));
    const agent = new Agent({ keepAlive: true });
    try {
      const answer = await new Promise<number>((resolve, reject) => {
        httpRequest({ host: '127.0.0.1', port, path: '/', agent }, (res) => {
          res.resume();
          res.on('end', () => resolve(res.statusCode ?? 0));
        })
          .on('error', reject)
          .end();
      });
      expect(answer).toBe(503);
      await delay(60);
      expect(closed).toBe(0);
      expect(seen).toEqual([]);
      expect(reported.map((e) => (e as Error).message)).toEqual(['store down']);
    } finally {
      agent.destroy();
    }
  });

  it('does not run the route when a slow skip says yes after another middleware already answered', async () => {
    const app = express();
    let routed = 0;
    app.use((_req: unknown, res: { status(n: number): { send(b: string): void } }, next: () => void) => {
      setTimeout(() => res.status(503).send('too slow'), 5);
      next();
    });
    app.use(rateLimitMiddleware(windowLimiter(5), { skip: () => delay(30).then(() => true) }));
    app.get('/', (_req, res) => {
      routed++;
      res.send('ok');
    });
    const port = await serve(app);
    expect((await send(port, '/')).status).toBe(503);
    await delay(60);
    expect(routed).toBe(0);
  });

  it("legacy headers never carry Infinity, NaN or negative values", async () => {
    const app = express();
    const odd: Decider = {
      kind: 'rate-limiter',
      name: 'odd',
      consume: () => Promise.resolve({ allowed: true, limit: Infinity, remaining: Infinity, resetMs: Infinity, retryAfterMs: 0, store: 'x' }),
    };
    app.use(rateLimitMiddleware(odd, { headers: 'draft+legacy' }));
    app.get('/', ok);
    const port = await serve(app);
    const a = await send(port, '/');
    for (const name of ['x-ratelimit-limit', 'x-ratelimit-remaining', 'x-ratelimit-reset']) {
      expect(a.headers[name], name).toMatch(/^\d+$/);
    }
    expect(a.headers['ratelimit']).toMatch(/^"odd";r=\d+;t=\d+$/);
  });

  it('advertises a GCRA limiter by its bucket (q never below r) and a quota by its period; a quota denial is quota-exceeded', async () => {
    const app = express();
    app.get('/gcra', rateLimitMiddleware(rateLimiter({ name: 'g', algorithm: gcra({ limit: 10, periodMs: 1_000, burst: 2 }) })), ok);
    app.get('/quota', rateLimitMiddleware(quota({ name: 'daily', limit: 1, period: 'day' })), ok);
    const port = await serve(app);
    const g = await send(port, '/gcra');
    expect(g.headers['ratelimit-policy']).toBe('"g";q=2');
    expect(g.headers['ratelimit']).toMatch(/^"g";r=1;t=1$/);
    const q = await send(port, '/quota');
    expect(q.headers['ratelimit-policy']).toBe('"daily";q=1;w=86400');
    const denied = await send(port, '/quota');
    expect(denied.status).toBe(429);
    expect(JSON.parse(denied.body)).toMatchObject({ type: 'urn:bulwark:problem:quota-exceeded', title: 'Quota Exceeded', policy: 'daily' });
    expect(Number(denied.headers['retry-after'])).toBeGreaterThan(0);
  });

  it('sheds load with 503, Retry-After and a problem+json body while the shedder reports pressure', async () => {
    let sample: LoadSample = { eventLoopDelayMs: 5 };
    const shedder = loadShedder({ maxEventLoopDelayMs: 100, retryAfterSeconds: 7, sampler: () => sample });
    try {
      const app = express();
      app.use(loadSheddingMiddleware(shedder));
      app.get('/', ok);
      const port = await serve(app);
      expect((await send(port, '/')).status).toBe(200);
      sample = { eventLoopDelayMs: 250 };
      expect(shedder.update()).toBe('eventLoopDelay');
      const shed = await send(port, '/');
      expect(shed.status).toBe(503);
      expect(shed.headers['retry-after']).toBe('7');
      expect(shed.headers['content-type']).toBe('application/problem+json');
      expect(JSON.parse(shed.body)).toMatchObject({ type: 'urn:bulwark:problem:overloaded', title: 'Service Unavailable', status: 503 });
      sample = { eventLoopDelayMs: 1 };
      shedder.update();
      expect((await send(port, '/')).status).toBe(200);
    } finally {
      shedder.dispose();
    }
  });
});

describe('rateLimitMiddleware options', () => {
  it('rejects bad options, naming them', () => {
    const limiter = windowLimiter(1);
    expect(() => rateLimitMiddleware({} as never)).toThrow(/rateLimitMiddleware: the first argument must be a rate limiter/);
    expect(() => rateLimitMiddleware(limiter, { headers: 'all' as never })).toThrow(/option "headers"/);
    expect(() => rateLimitMiddleware(limiter, { cost: 0 })).toThrow(RangeError);
    expect(() => rateLimitMiddleware(limiter, { cost: '2' as never })).toThrow(/option "cost"/);
    expect(() => rateLimitMiddleware(limiter, { key: 'ip' as never })).toThrow(/option "key"/);
    expect(() => rateLimitMiddleware(limiter, { skip: true as never })).toThrow(/option "skip"/);
    expect(() => rateLimitMiddleware(limiter, { trustProxy: true as never })).toThrow(/trustProxy/);
    expect(() => rateLimitMiddleware(limiter, { ipv6Subnet: 200 })).toThrow(/ipv6Subnet/);
    expect(() => rateLimitMiddleware(limiter, { windowMs: 1 } as never)).toThrow(/unknown option "windowMs"/);
    expect(() => rateLimitMiddleware(limiter, { cost: 2 })).toThrow(/option "cost" must not exceed what limiter "api" can ever admit \(1\), got 2/);
    for (const name of ['cost', 'key', 'skip', 'headers', 'trustProxy', 'exemptProbes', 'onError']) {
      expect(() => rateLimitMiddleware(limiter, { [name]: null } as never), name).toThrow(new RegExp(`option "${name}".*null`));
    }
  });
});
