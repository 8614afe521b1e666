// Real Fastify 4 and 5 servers on 127.0.0.1, port 0, with the rate-limit and load-shedding plugins.
import fastify5 from 'fastify';
import fastify4 from 'fastify4';
import { afterEach, describe, expect, it } from 'vitest';
import { loadSheddingPlugin, rateLimitPlugin } from '../../src/adapters/fastify.js';
import { type Decider, fixedWindow, type LimiterDecision, loadShedder, type LoadSample, rateLimiter } from '../../src/index.js';
import { abortRequest, delay, send } from './support/inbound-http.js';

interface AppLike {
  register(plugin: unknown, options?: unknown): PromiseLike<unknown>;
  get(path: string, ...rest: unknown[]): unknown;
  listen(options: { port: number; host: string }): Promise<string>;
  close(): Promise<unknown>;
  server: { address(): unknown };
}

const apps: AppLike[] = [];
afterEach(async () => {
  await Promise.all(apps.splice(0).map((a) => a.close()));
});

function windowLimiter(limit: number, name = 'api') {
  return rateLimiter({ name, algorithm: fixedWindow({ limit, windowMs: 60_000 }) });
}

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

async function start(app: AppLike): Promise<number> {
  await app.listen({ port: 0, host: '127.0.0.1' });
  return (app.server.address() as { port: number }).port;
}

describe.each([
  ['Fastify 4', fastify4 as unknown as (options?: object) => AppLike],
  ['Fastify 5', fastify5 as unknown as (options?: object) => AppLike],
])('%s', (_name, fastify) => {
  function make(options?: object): AppLike {
    const app = fastify(options);
    apps.push(app);
    return app;
  }

  it('limits every route by default, with draft headers and a 429 problem body', async () => {
    const app = make();
    await app.register(rateLimitPlugin, { limiter: windowLimiter(2) });
    app.get('/', async () => 'ok');
    const port = await start(app);
    const first = await send(port, '/');
    expect(first.status).toBe(200);
    expect(first.headers['ratelimit-policy']).toBe('"api";q=2;w=60');
    expect(first.headers['ratelimit']).toMatch(/^"api";r=1;t=\d+$/);
    await send(port, '/');
    const denied = await send(port, '/');
    expect(denied.status).toBe(429);
    expect(denied.headers['content-type']).toMatch(/^application\/problem\+json/);
    const retryAfter = Number(denied.headers['retry-after']);
    expect(Number.isInteger(retryAfter) && retryAfter > 0 && retryAfter <= 60).toBe(true);
    const body = JSON.parse(denied.body) as Record<string, unknown>;
    expect(Object.keys(body).sort()).toEqual(['detail', 'policy', 'status', 'title', 'type', 'violated-policies']);
    // draft-ietf-httpapi-ratelimit-headers-11 §5: the policies the request exceeded, by name.
    expect(body['violated-policies']).toEqual([body.policy]);
    expect(body).toMatchObject({ type: 'urn:bulwark:problem:rate-limited', title: 'Too Many Requests', status: 429, policy: 'api' });
  });

  it('works when routes are declared before the plugin loads (no await on register)', async () => {
    const app = make();
    app.get('/early', async () => 'ok');
    void app.register(rateLimitPlugin, { limiter: windowLimiter(1) });
    app.get('/late', async () => 'ok');
    const port = await start(app);
    expect((await send(port, '/early')).status).toBe(200);
    expect((await send(port, '/late')).status).toBe(429);
  });

  it("reads a route's config without building request.routeOptions (a fresh object) per request", async () => {
    const app = make() as AppLike & { addHook(name: string, hook: (request: object, reply: unknown, done: () => void) => void): void };
    let reads = 0;
    // Runs before the plugin's hook (added first): counts every read of this request's routeOptions.
    app.addHook('onRequest', (request, _reply, done) => {
      let proto: object | null = request;
      let getter: (() => unknown) | undefined;
      while (proto !== null && getter === undefined) {
        getter = Object.getOwnPropertyDescriptor(proto, 'routeOptions')?.get;
        proto = Object.getPrototypeOf(proto) as object | null;
      }
      Object.defineProperty(request, 'routeOptions', {
        configurable: true,
        get() {
          reads++;
          return getter!.call(request);
        },
      });
      done();
    });
    await app.register(rateLimitPlugin, { limiter: windowLimiter(10) });
    app.get('/', { config: { rateLimit: { cost: 3 } } }, async () => 'ok');
    const port = await start(app);
    expect((await send(port, '/')).headers['ratelimit']).toMatch(/^"api";r=7;t=\d+$/);
    expect((await send(port, '/')).headers['ratelimit']).toMatch(/^"api";r=4;t=\d+$/);
    expect((await send(port, '/nope')).status).toBe(404);
    expect(reads).toBe(0);
  });

  it('limits not-found answers too', async () => {
    const app = make();
    await app.register(rateLimitPlugin, { limiter: windowLimiter(1) });
    const port = await start(app);
    expect((await send(port, '/nope')).status).toBe(404);
    expect((await send(port, '/nope')).status).toBe(429);
  });

  it('takes per-route config: false, own limiter, cost and skip', async () => {
    const app = make();
    await app.register(rateLimitPlugin, { limiter: windowLimiter(100), headers: 'draft+legacy' });
    app.get('/free', { config: { rateLimit: false } }, async () => 'ok');
    app.get('/own', { config: { rateLimit: { limiter: windowLimiter(1, 'own') } } }, async () => 'ok');
    app.get('/costly', { config: { rateLimit: { cost: 60 } } }, async () => 'ok');
    app.get(
      '/skip',
      { config: { rateLimit: { limiter: windowLimiter(1, 'skip'), skip: (req: { headers: Record<string, unknown> }) => req.headers['x-internal'] === 'yes' } } },
      async () => 'ok',
    );
    const port = await start(app);
    for (let i = 0; i < 3; i++) {
      const free = await send(port, '/free');
      expect(free.status).toBe(200);
      expect(free.headers['ratelimit']).toBeUndefined();
    }
    const own = await send(port, '/own');
    expect(own.headers['ratelimit-policy']).toBe('"own";q=1;w=60');
    expect(own.headers['x-ratelimit-limit']).toBe('1');
    expect((await send(port, '/own')).status).toBe(429);
    const costly = await send(port, '/costly');
    expect(costly.headers['x-ratelimit-remaining']).toBe('40');
    expect((await send(port, '/costly')).status).toBe(429);
    expect((await send(port, '/skip', { headers: { 'x-internal': 'yes' } })).status).toBe(200);
    expect((await send(port, '/skip', { headers: { 'x-internal': 'yes' } })).status).toBe(200);
    expect((await send(port, '/skip')).status).toBe(200);
    expect((await send(port, '/skip')).status).toBe(429);
  });

  it('global: false limits only routes that ask', async () => {
    const app = make();
    await app.register(rateLimitPlugin, { limiter: windowLimiter(1), global: false });
    app.get('/open', async () => 'ok');
    app.get('/limited', { config: { rateLimit: true } }, async () => 'ok');
    const port = await start(app);
    expect((await send(port, '/open')).status).toBe(200);
    expect((await send(port, '/open')).status).toBe(200);
    expect((await send(port, '/limited')).status).toBe(200);
    expect((await send(port, '/limited')).status).toBe(429);

    // No plugin limiter at all: routes bring their own; headers: 'none' still sends Retry-After.
    const bare = make();
    await bare.register(rateLimitPlugin, { global: false, headers: 'none' });
    bare.get('/own', { config: { rateLimit: { limiter: windowLimiter(1, 'own') } } }, async () => 'ok');
    bare.get('/open', async () => 'ok');
    expect(() => bare.get('/needs', { config: { rateLimit: true } }, async () => 'ok')).toThrow(/needs the plugin's "limiter"/);
    const p2 = await start(bare);
    const first = await send(p2, '/own');
    expect(first.status).toBe(200);
    expect(first.headers['ratelimit']).toBeUndefined();
    const denied = await send(p2, '/own');
    expect(denied.status).toBe(429);
    expect(denied.headers['ratelimit-policy']).toBeUndefined();
    expect(Number(denied.headers['retry-after'])).toBeGreaterThan(0);
    expect((await send(p2, '/open')).status).toBe(200);
  });

  it('answers 500 problem+json when the key function fails, logs the error, leaks nothing', async () => {
    const logs: string[] = [];
    const app = make({ logger: { level: 'error', stream: { write: (line: string) => logs.push(line) } } });
    await app.register(rateLimitPlugin, {
      limiter: windowLimiter(5),
      key: (req: { url: string }) => {
        if (req.url === '/throws') throw new Error('secret internals');
        if (req.url === '/empty') return '';
        return Promise.reject(new Error('db down'));
      },
    });
    app.get('/throws', async () => 'ok');
    app.get('/empty', async () => 'ok');
    app.get('/rejects', async () => 'ok');
    // A truthy skip answer that is not `true` was read as "limit it" without a word (issue 11 §4).
    app.get('/skip-yes', { config: { rateLimit: { skip: (() => 1) as never } } }, async () => 'ok');
    const port = await start(app);
    for (const path of ['/throws', '/empty', '/rejects', '/skip-yes']) {
      const a = await send(port, path);
      expect(a.status, path).toBe(500);
      expect(a.headers['content-type']).toMatch(/^application\/problem\+json/);
      expect(JSON.parse(a.body)).toEqual({
        type: 'urn:bulwark:problem:rate-limit-check-failed',
        title: 'Internal Server Error',
        status: 500,
        detail: 'The request could not be checked against its rate limit.',
      });
      expect(a.body).not.toMatch(/secret|db down|key/);
    }
    const text = logs.join('\n');
    expect(text).toMatch(/secret internals/);
    expect(text).toMatch(/option \\"key\\" must return a non-empty string/);
    expect(text).toMatch(/db down/);
    expect(text).toMatch(/rateLimitPlugin: option \\"skip\\" must return a boolean \(or a promise of one\), got 1/);
  });

  it('answers 500 when a custom limiter resolves to something that is not a decision, with no unhandled rejection', async () => {
    const logs: string[] = [];
    const app = make({ logger: { level: 'error', stream: { write: (line: string) => logs.push(line) } } });
    const bad = (value: unknown): Decider => ({ kind: 'rate-limiter', name: 'bad', consume: () => Promise.resolve(value as LimiterDecision) });
    await app.register(rateLimitPlugin, { limiter: bad(null) });
    app.get('/', async () => 'ok');
    app.get('/undefined', { config: { rateLimit: { limiter: bad(undefined) } } }, async () => 'ok');
    const port = await start(app);
    for (const path of ['/', '/undefined']) {
      const a = await send(port, path);
      expect(a.status, path).toBe(500);
      expect(JSON.parse(a.body)).toMatchObject({ type: 'urn:bulwark:problem:rate-limit-check-failed', status: 500 });
    }
    expect(logs.join('\n')).toMatch(/consume must resolve to a decision/);
  });

  it('legacy headers never carry Infinity, NaN or negative values', async () => {
    const app = make();
    const odd: Decider = {
      kind: 'rate-limiter',
      name: 'odd',
      consume: () => Promise.resolve({ allowed: true, limit: Infinity, remaining: Number.NaN, resetMs: Infinity, retryAfterMs: 0, store: 'x' }),
    };
    await app.register(rateLimitPlugin, { limiter: odd, headers: 'draft+legacy' });
    app.get('/', async () => 'ok');
    const port = await start(app);
    const a = await send(port, '/');
    for (const name of ['x-ratelimit-limit', 'x-ratelimit-remaining', 'x-ratelimit-reset']) {
      expect(a.headers[name], name).toMatch(/^\d+$/);
    }
  });

  it('keys by X-Forwarded-For only through trusted proxies (S1, S2: IPv6 by its /56, 6to4 and IPv4-mapped by their IPv4)', async () => {
    const app = make();
    await app.register(rateLimitPlugin, { limiter: windowLimiter(1, 'untrusted') });
    await app.register(async (child: AppLike) => {
      await child.register(rateLimitPlugin, { limiter: windowLimiter(1, 'trusted'), trustProxy: ['127.0.0.1'] });
      child.get('/trusted', async () => 'ok');
    });
    const port = await start(app);
    // The outer (untrusted) limit sees one client however X-Forwarded-For rotates.
    expect((await send(port, '/trusted', { headers: { 'x-forwarded-for': '198.51.100.1' } })).status).toBe(200);
    expect((await send(port, '/trusted', { headers: { 'x-forwarded-for': '198.51.100.2' } })).status).toBe(429);

    const trustedOnly = make();
    await trustedOnly.register(rateLimitPlugin, { limiter: windowLimiter(1), trustProxy: 'loopback' });
    trustedOnly.get('/', async () => 'ok');
    const p2 = await start(trustedOnly);
    const from = async (xff: string): Promise<number> => (await send(p2, '/', { headers: { 'x-forwarded-for': xff } })).status;
    expect(await from('198.51.100.1')).toBe(200);
    expect(await from('198.51.100.2')).toBe(200);
    expect(await from('198.51.100.1')).toBe(429);
    expect(await from('2001:db8:1:2::1')).toBe(200);
    expect(await from('2001:db8:1:2:aaaa::2')).toBe(429);
    expect(await from('2001:db8:1:3::1')).toBe(429); // another /64 of the same /56 (the default width)
    expect(await from('2001:db8:1:100::1')).toBe(200); // the next /56
    expect(await from('::ffff:192.0.2.7')).toBe(200);
    expect(await from('192.0.2.7:1234')).toBe(429);
    expect(await from('2002:c000:207:5::9')).toBe(429); // 6to4 carrying 192.0.2.7
  });

  it('survives clients that abort while the decision is pending', async () => {
    const app = make();
    await app.register(rateLimitPlugin, { limiter: slowDecider(30, true), global: false });
    app.get('/allow', { config: { rateLimit: true } }, async () => 'ok');
    app.get('/deny', { config: { rateLimit: { limiter: slowDecider(30, false) } } }, async () => 'ok');
    const port = await start(app);
    await Promise.all([abortRequest(port, '/allow'), abortRequest(port, '/deny'), abortRequest(port, '/deny', 0)]);
    await delay(60);
    expect((await send(port, '/allow')).status).toBe(200);
    expect((await send(port, '/deny')).status).toBe(429);
  });

  it('sheds load with 503 while the shedder reports pressure; disposes of a shedder it made', async () => {
    let sample: LoadSample = { eventLoopUtilization: 0.2 };
    const shedder = loadShedder({ maxEventLoopUtilization: 0.9, retryAfterSeconds: 3, sampler: () => sample });
    try {
      const app = make();
      await app.register(loadSheddingPlugin, { shedder });
      await app.register(loadSheddingPlugin, shedder);
      await app.register(loadSheddingPlugin, { maxHeapUsedRatio: 1, sampleIntervalMs: 50 });
      app.get('/', async () => 'ok');
      const port = await start(app);
      expect((await send(port, '/')).status).toBe(200);
      sample = { eventLoopUtilization: 0.99 };
      shedder.update();
      const shed = await send(port, '/');
      expect(shed.status).toBe(503);
      expect(shed.headers['retry-after']).toBe('3');
      expect(JSON.parse(shed.body)).toMatchObject({ type: 'urn:bulwark:problem:overloaded', title: 'Service Unavailable', status: 503 });
      sample = { eventLoopUtilization: 0.5 };
      shedder.update();
      expect((await send(port, '/')).status).toBe(200);
    } finally {
      shedder.dispose();
    }
  });

  it('C-e: answers a bad cost with a 400 problem and logs nothing; an async cost works; onError takes the place of request.log.error', async () => {
    const logs: string[] = [];
    const app = make({ logger: { level: 'error', stream: { write: (line: string) => logs.push(line) } } });
    const reported: unknown[] = [];
    await app.register(rateLimitPlugin, {
      limiter: windowLimiter(10, 'cost'),
      cost: (req: { headers: Record<string, unknown> }) => JSON.parse(String(req.headers['x-cost'])) as number,
      onError: (error: unknown, request: { url: string }) => void reported.push([(error as Error).message, request.url]),
    });
    app.get('/', async () => 'ok');
    app.get('/async', { config: { rateLimit: { cost: async () => 3 } } }, async () => 'ok');
    const port = await start(app);
    for (const cost of ['0', '-1', '1.5', '"2"', '11', 'null']) {
      const a = await send(port, '/', { headers: { 'x-cost': cost } });
      expect(a.status, cost).toBe(400);
      expect(a.headers['content-type']).toMatch(/^application\/problem\+json/);
      expect(JSON.parse(a.body)).toMatchObject({ type: 'urn:bulwark:problem:bad-cost', policy: 'cost' });
    }
    expect((await send(port, '/async')).headers['ratelimit']).toMatch(/^"cost";r=7;/);
    expect((await send(port, '/', { headers: { 'x-cost': 'not json' } })).status).toBe(500);
    expect(reported).toEqual([[expect.stringMatching(/JSON/), '/']]);
    expect(logs).toEqual([]);
  });

  it('rejects bad plugin and route options at startup', async () => {
    const app = make();
    await expect(app.register(rateLimitPlugin, { limiter: windowLimiter(1), headers: 'x' })).rejects.toThrow(/option "headers"/);
    const app2 = make();
    await expect(app2.register(rateLimitPlugin, {})).rejects.toThrow(/option "limiter"/);
    const app3 = make();
    await app3.register(rateLimitPlugin, { limiter: windowLimiter(1) });
    expect(() => app3.get('/', { config: { rateLimit: { cost: -1 } } }, async () => 'ok')).toThrow(/option "cost"/);
    expect(() => app3.get('/x', { config: { rateLimit: { limit: 5 } } }, async () => 'ok')).toThrow(/unknown option "limit"/);
    expect(() => app3.get('/y', { config: { rateLimit: { cost: 2 } } }, async () => 'ok')).toThrow(/option "cost" must not exceed what limiter "api" can ever admit \(1\)/);
    expect(() => app3.get('/z', { config: { rateLimit: { cost: null } } }, async () => 'ok')).toThrow(/option "cost" must be a number, got null/);
    const app4 = make();
    await expect(app4.register(rateLimitPlugin, { limiter: windowLimiter(1), onError: null })).rejects.toThrow(/option "onError".*null/);
  });
});

describe('Fastify 5 handlerTimeout', () => {
  it('does nothing more once Fastify has answered while the decision was pending (no second reply, no later hooks)', async () => {
    const logs: string[] = [];
    const app = fastify5({ handlerTimeout: 10, logger: { level: 'warn', stream: { write: (line: string) => logs.push(line) } } }) as unknown as AppLike & {
      addHook(name: string, hook: (request: unknown, reply: unknown, done: () => void) => void): void;
    };
    apps.push(app);
    let laterHooks = 0;
    await app.register(rateLimitPlugin, { limiter: slowDecider(40, true), global: false });
    app.addHook('onRequest', (_request, _reply, done) => {
      laterHooks++;
      done();
    });
    app.get('/allow', { config: { rateLimit: true } }, async () => 'ok');
    app.get('/deny', { config: { rateLimit: { limiter: slowDecider(40, false) } } }, async () => 'ok');
    app.get('/fail', { config: { rateLimit: { limiter: { kind: 'x', name: 'f', consume: () => delay(40).then(() => Promise.reject(new Error('store down'))) } } } }, async () => 'ok');
    const port = await start(app);
    for (const path of ['/allow', '/deny', '/fail']) {
      expect((await send(port, path)).status, path).toBe(503);
    }
    await delay(80);
    expect(laterHooks).toBe(0);
    expect(logs.join('\n')).not.toMatch(/already sent/i);
  });
});
