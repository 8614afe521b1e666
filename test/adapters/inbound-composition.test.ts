// The rate-limit adapters next to the rest of a service (DESIGN §4.9, RELIABILITY C1–C4): probes
// are never limited, stacked limiters all show and the denial names its policy, the same limiter
// met twice charges once, and a store outage is a 503, not a used-up quota. Real Express 4/5 and
// Fastify 4/5 servers on 127.0.0.1, port 0.
import { createServer, type Server } from 'node:http';
import { createRequire } from 'node:module';
import express5 from 'express';
import fastify5 from 'fastify';
import fastify4 from 'fastify4';
import { Registry } from 'prom-client';
import { afterEach, describe, expect, it } from 'vitest';
import { healthMiddleware, rateLimitMiddleware } from '../../src/adapters/express.js';
import { healthPlugin, loadSheddingPlugin, rateLimitPlugin } from '../../src/adapters/fastify.js';
import { compoundLimit, type Decider, fixedWindow, health, type LimiterDecision, loadShedder, memoryStore, quota, rateLimiter } from '../../src/index.js';
import { metricsHandler, metricsRoute } from '../../src/metrics/index.js';
import { close, listen, send } from './support/inbound-http.js';

const express4 = createRequire(import.meta.url)('express4') as typeof express5;

const servers: Server[] = [];
const apps: { close(): Promise<unknown> }[] = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => close(s)));
  await Promise.all(apps.splice(0).map((a) => a.close()));
});

function windowLimiter(limit: number, name: string) {
  return rateLimiter({ name, algorithm: fixedWindow({ limit, windowMs: 60_000 }) });
}

/** A limiter whose store is down and fails closed (contract C-b). */
function outage(name: string, retryAfterMs: number): Decider {
  return {
    kind: 'quota',
    name,
    consume: async (): Promise<LimiterDecision> => ({ allowed: false, limit: 1_000, remaining: 0, resetMs: retryAfterMs, retryAfterMs, store: 'fail-closed' }),
  };
}

/** A per-minute limit and a daily quota of 3 charged all or nothing (compoundLimit), on one memory store. */
function perMinuteAndDaily() {
  const store = memoryStore();
  return compoundLimit(
    [rateLimiter({ name: 'per-min', algorithm: fixedWindow({ limit: 5, windowMs: 60_000 }), store }), quota({ name: 'daily', limit: 3, period: 'day', store })],
    { name: 'both' },
  );
}

/**
 * Four requests through a compound limit: each answer shows one item per limit (not one for the
 * compound), and the fourth is denied by the daily quota, named in the problem body.
 */
async function expectCompoundItems(port: number): Promise<void> {
  const answers = [];
  for (let i = 0; i < 4; i++) answers.push(await send(port, '/'));
  expect(answers.map((a) => a.status)).toEqual([200, 200, 200, 429]);
  expect(answers[0]!.headers['ratelimit-policy']).toBe('"per-min";q=5;w=60, "daily";q=3;w=86400');
  expect(answers[0]!.headers['ratelimit']).toMatch(/^"per-min";r=4;t=\d+, "daily";r=2;t=\d+$/);
  expect(answers[2]!.headers['ratelimit']).toMatch(/^"per-min";r=2;t=\d+, "daily";r=0;t=\d+$/);
  const denied = answers[3]!;
  expect(JSON.parse(denied.body)).toMatchObject({ type: 'urn:bulwark:problem:quota-exceeded', status: 429, policy: 'daily', 'violated-policies': ['daily'] });
  expect(denied.headers['ratelimit']).toMatch(/^"per-min";r=\d+;t=\d+, "daily";r=0;t=(\d+)$/);
  expect(denied.headers['ratelimit']).toContain(`"daily";r=0;t=${denied.headers['retry-after']}`);
}

/** bulwark's probe routes and its metrics handler (metricsHandler, metricsRoute) at /metrics. */
const probes = ['/livez', '/readyz', '/readyz?verbose', '/readyz/db', '/startupz', '/healthz', '/metrics'];

/** A health with one readiness check, so /readyz/db is a per-check probe route that answers 200. */
const probed = () => health({ checks: [{ name: 'db', check: async () => {} }] });

/** Every probe answers 200 with no rate-limit header. */
async function expectProbesUntouched(port: number): Promise<void> {
  for (const path of probes) {
    const a = await send(port, path);
    expect(a.status, path).toBe(200);
    expect(a.headers['ratelimit'], path).toBeUndefined();
  }
}

/** With a limit of 2 on /api: probes take nothing from the bucket, and still answer once it is used up. */
async function probesOutliveTheBucket(port: number): Promise<void> {
  await expectProbesUntouched(port);
  expect((await send(port, '/api')).status).toBe(200);
  expect((await send(port, '/api')).status).toBe(200);
  expect((await send(port, '/api')).status).toBe(429);
  await expectProbesUntouched(port);
}

describe.each([
  ['Express 4', express4],
  ['Express 5', express5],
])('%s', (_name, express) => {
  async function serve(app: ReturnType<typeof express5>): Promise<number> {
    const server = createServer(app);
    servers.push(server);
    return listen(server);
  }

  it.each(['limiter first', 'health routes first'])(
    'C1 regression: probes and the metrics handler answer 200 and are not charged once anonymous traffic has used up the shared bucket (%s)',
    async (order) => {
      const app = express();
      const limit = rateLimitMiddleware(windowLimiter(2, 'api'));
      const probesMw = healthMiddleware(probed());
      const metrics = metricsHandler(new Registry());
      if (order === 'limiter first') app.use(limit, probesMw).get('/metrics', metrics);
      else app.use(probesMw).get('/metrics', metrics).use(limit);
      app.get('/api', (_req, res) => void res.send('ok'));
      await probesOutliveTheBucket(await serve(app));
    },
  );

  // A middleware under a mount path sees req.url without it: /api/metrics must not pass for
  // bulwark's /metrics, nor /api/livez for the probe.
  it('a limiter mounted under a path judges the URL the client sent, so /api/metrics is limited', async () => {
    const app = express();
    app.use('/api', rateLimitMiddleware(windowLimiter(1, 'mounted')));
    app.get('/api/metrics', (_req, res) => void res.send('business figures'));
    app.use(healthMiddleware(health()));
    const port = await serve(app);
    expect((await send(port, '/api/metrics')).status).toBe(200);
    expect((await send(port, '/api/metrics')).status).toBe(429);
    expect((await send(port, '/api/livez')).status).toBe(429);
    expect((await send(port, '/livez')).status).toBe(200);
  });

  it('exemptProbes: false limits the probes too; skip exempts other routes', async () => {
    const app = express();
    app.use(rateLimitMiddleware(windowLimiter(1, 'all'), { exemptProbes: false, skip: (req) => req.path.startsWith('/internal/') }));
    app.use(healthMiddleware(health()));
    app.get('/internal/ping', (_req, res) => void res.send('pong'));
    const port = await serve(app);
    expect((await send(port, '/livez')).status).toBe(200);
    expect((await send(port, '/livez')).status).toBe(429);
    expect((await send(port, '/internal/ping')).status).toBe(200);
    expect((await send(port, '/internal/ping')).status).toBe(200);
  });

  it('C2 regression: a per-key limiter and a per-tenant quota both show in the headers (the second used to overwrite the first) and the denial names its policy', async () => {
    const perKey = windowLimiter(3, 'per-key');
    const tenants = quota({ name: 'tenant', limit: 2, period: 'day' });
    const app = express();
    app.use(rateLimitMiddleware(perKey));
    app.use(rateLimitMiddleware(tenants, { key: (req) => req.get('x-tenant') ?? 'anonymous' }));
    app.get('/', (_req, res) => void res.send('ok'));
    const port = await serve(app);
    const acme = { headers: { 'x-tenant': 'acme' } };
    const first = await send(port, '/', acme);
    expect(first.status).toBe(200);
    expect(first.headers['ratelimit-policy']).toBe('"per-key";q=3;w=60, "tenant";q=2;w=86400');
    expect(first.headers['ratelimit']).toMatch(/^"per-key";r=2;t=\d+, "tenant";r=1;t=\d+$/);
    expect((await send(port, '/', acme)).status).toBe(200);
    const byQuota = await send(port, '/', acme);
    expect(byQuota.status).toBe(429);
    expect(JSON.parse(byQuota.body)).toMatchObject({ type: 'urn:bulwark:problem:quota-exceeded', policy: 'tenant' });
    expect(byQuota.headers['ratelimit']).toMatch(/^"per-key";r=0;t=\d+, "tenant";r=0;t=\d+$/);
    const byLimiter = await send(port, '/', { headers: { 'x-tenant': 'globex' } });
    expect(byLimiter.status).toBe(429);
    expect(JSON.parse(byLimiter.body)).toMatchObject({ type: 'urn:bulwark:problem:rate-limited', policy: 'per-key' });
    // Denied by the first limiter: the quota after it was never charged.
    expect(await tenants.peek('globex')).toMatchObject({ allowed: true, remaining: 1 });
  });

  it('C4: the same limiter mounted on the app and on a router charges a request once', async () => {
    const limiter = windowLimiter(3, 'twice');
    const app = express();
    const router = express.Router();
    app.use(rateLimitMiddleware(limiter));
    router.use(rateLimitMiddleware(limiter));
    router.get('/x', (_req, res) => void res.send('ok'));
    app.use('/r', router);
    const port = await serve(app);
    const answers = [];
    for (let i = 0; i < 4; i++) answers.push(await send(port, '/r/x'));
    expect(answers.map((a) => a.status)).toEqual([200, 200, 200, 429]);
    expect(answers[0]!.headers['ratelimit']).toMatch(/^"twice";r=2;t=\d+$/);
  });

  it('C4: the same limiter met again on one request with another cost is refused with a clear error, never silently charged the first cost only', async () => {
    const limiter = windowLimiter(20, 'api');
    const errors: unknown[] = [];
    const onError = (error: unknown) => void errors.push(error);
    const app = express();
    app.use(rateLimitMiddleware(limiter, { onError }));
    // Meant as "a search costs 5 units of the same budget": it used to be skipped, charging 1.
    app.get('/search', rateLimitMiddleware(limiter, { cost: 5, onError }), (_req, res) => void res.send('results'));
    app.get('/', (_req, res) => void res.send('ok'));
    const port = await serve(app);
    const a = await send(port, '/search');
    expect(a.status).toBe(500);
    expect(JSON.parse(a.body)).toMatchObject({ type: 'urn:bulwark:problem:rate-limit-check-failed' });
    expect(errors).toHaveLength(1);
    expect(String((errors[0] as Error).message)).toMatch(/limiter "api" met twice on one request for the same key, with cost 1 and then 5/);
    // The same cost met twice (one middleware mounted twice) is still charged once, without an error.
    expect((await send(port, '/')).headers['ratelimit']).toMatch(/^"api";r=18;t=\d+$/);
    expect(errors).toHaveLength(1);
  });

  it('C4: a limiter charged on its own and again inside a compound limit on one request is refused with a clear error, never charged twice', async () => {
    const store = memoryStore();
    const perMin = rateLimiter({ name: 'per-min', algorithm: fixedWindow({ limit: 5, windowMs: 60_000 }), store });
    const both = compoundLimit([perMin, quota({ name: 'daily', limit: 3, period: 'day', store })], { name: 'both' });
    const errors: unknown[] = [];
    const app = express();
    app.use(rateLimitMiddleware(perMin));
    app.use(rateLimitMiddleware(both, { onError: (error) => void errors.push(error) }));
    app.get('/', (_req, res) => void res.send('ok'));
    const a = await send(await serve(app), '/');
    expect(a.status).toBe(500);
    expect(String((errors[0] as Error | undefined)?.message)).toMatch(/limiter "per-min" is charged on this request on its own and again inside compound limit "both"/);
    // per-min took one unit (its own rule), not two.
    expect(await perMin.peek('127.0.0.1')).toMatchObject({ remaining: 3 });
  });

  it('two stacked limiters of one name are refused with a clear error (their items could not be told apart); one limiter under two keys is not', async () => {
    const errors: unknown[] = [];
    const onError = (error: unknown) => void errors.push(error);
    const app = express();
    app.use(rateLimitMiddleware(windowLimiter(5, 'api'), { onError }));
    app.use(rateLimitMiddleware(quota({ name: 'api', limit: 100, period: 'day' }), { key: (req) => req.get('x-tenant') ?? 'anonymous', onError }));
    app.get('/', (_req, res) => void res.send('ok'));
    const a = await send(await serve(app), '/');
    expect(a.status).toBe(500);
    expect(String((errors[0] as Error | undefined)?.message)).toMatch(/two limiters named "api" decide on this request; give them distinct names so the headers tell them apart/);

    const perKey = windowLimiter(5, 'shared');
    const twoKeys = express();
    twoKeys.use(rateLimitMiddleware(perKey, { onError }));
    twoKeys.use(rateLimitMiddleware(perKey, { key: () => 'everyone', onError }));
    twoKeys.get('/', (_req, res) => void res.send('ok'));
    const b = await send(await serve(twoKeys), '/');
    expect(b.status).toBe(200);
    expect(b.headers['ratelimit']).toMatch(/^"shared";r=4;t=\d+, "shared";r=4;t=\d+$/);
    expect(errors).toHaveLength(1);
  });

  it('C3: a denial by a store that failed closed is 503 store-unavailable with Retry-After, never a used-up quota', async () => {
    const app = express();
    app.use(rateLimitMiddleware(windowLimiter(10, 'per-key')));
    app.use(rateLimitMiddleware(outage('monthly', 2_500), { headers: 'draft+legacy' }));
    app.get('/', (_req, res) => void res.send('ok'));
    const port = await serve(app);
    const a = await send(port, '/');
    expect(a.status).toBe(503);
    expect(a.headers['content-type']).toBe('application/problem+json');
    expect(a.headers['retry-after']).toBe('3');
    expect(JSON.parse(a.body)).toMatchObject({ type: 'urn:bulwark:problem:store-unavailable', status: 503, policy: 'monthly' });
    expect(a.body).not.toMatch(/quota|used up/i);
    // The per-key limiter's item stays; nothing claims the quota's units are gone.
    expect(a.headers['ratelimit']).toMatch(/^"per-key";r=9;t=\d+$/);
    expect(a.headers['x-ratelimit-remaining']).toBeUndefined();
  });
  it('C2: a compound limit (all or nothing) shows one item per limit, and its denial names the limit that denied', async () => {
    const app = express();
    app.use(rateLimitMiddleware(perMinuteAndDaily()));
    app.get('/', (_req, res) => void res.send('ok'));
    await expectCompoundItems(await serve(app));
  });
});

interface FastifyLike {
  register(plugin: unknown, options?: unknown): PromiseLike<unknown>;
  get(path: string, ...rest: unknown[]): unknown;
  listen(options: { port: number; host: string }): Promise<string>;
  close(): Promise<unknown>;
  server: { address(): unknown };
}

describe.each([
  ['Fastify 4', fastify4 as unknown as () => FastifyLike],
  ['Fastify 5', fastify5 as unknown as () => FastifyLike],
])('%s', (_name, fastify) => {
  function make(): FastifyLike {
    const app = fastify();
    apps.push(app);
    return app;
  }
  async function start(app: FastifyLike): Promise<number> {
    await app.listen({ port: 0, host: '127.0.0.1' });
    return (app.server.address() as { port: number }).port;
  }

  it.each(['plugin first', 'health routes first'])(
    'C1 regression: with a global rateLimitPlugin, probes and the metrics route answer 200 (not 429) and are not charged once the shared bucket is used up (%s)',
    async (order) => {
      const app = make();
      const ownRoutes = async (): Promise<void> => {
        await app.register(healthPlugin, { health: probed() });
        app.get('/metrics', metricsRoute(new Registry()));
      };
      if (order === 'plugin first') {
        await app.register(rateLimitPlugin, { limiter: windowLimiter(2, 'api') });
        await ownRoutes();
      } else {
        await ownRoutes();
        await app.register(rateLimitPlugin, { limiter: windowLimiter(2, 'api') });
      }
      app.get('/api', async () => 'ok');
      await probesOutliveTheBucket(await start(app));
    },
  );

  it.each(['plugins first', 'health routes first'])(
    'C1 regression: health routes registered in a child context with a Fastify prefix are exempt too (%s; they were limited and shed)',
    async (order) => {
      const app = make();
      const shedder = loadShedder({ maxEventLoopDelayMs: 100, sampler: () => ({ eventLoopDelayMs: overloaded ? 500 : 0 }) });
      let overloaded = false;
      const guards = async (): Promise<void> => {
        await app.register(loadSheddingPlugin, { shedder });
        await app.register(rateLimitPlugin, { limiter: windowLimiter(2, 'api') });
      };
      // A prefix of this test's own: the list of exempt paths is shared by the whole process.
      const child = async (): Promise<void> => {
        await app.register(async (scope: FastifyLike) => void (await scope.register(healthPlugin, { health: probed() })), { prefix: '/scoped' });
      };
      if (order === 'plugins first') await guards();
      await child();
      if (order !== 'plugins first') await guards();
      app.get('/api', async () => 'ok');
      try {
        const port = await start(app);
        const scoped = ['/scoped/livez', '/scoped/readyz', '/scoped/readyz/db', '/scoped/healthz?verbose'];
        for (let i = 0; i < 2; i++) expect((await send(port, '/api')).status).toBe(200);
        expect((await send(port, '/api')).status).toBe(429);
        for (const path of scoped) {
          const a = await send(port, path);
          expect([a.status, a.headers['ratelimit']], path).toEqual([200, undefined]);
        }
        overloaded = true;
        shedder.update();
        for (const path of scoped) expect((await send(port, path)).status, path).toBe(200);
        expect((await send(port, '/api')).status).toBe(503);
      } finally {
        shedder.dispose();
      }
    },
  );

  it('exemptProbes: false limits the probes too', async () => {
    const app = make();
    await app.register(rateLimitPlugin, { limiter: windowLimiter(1, 'all'), exemptProbes: false });
    await app.register(healthPlugin, { health: health() });
    const port = await start(app);
    expect((await send(port, '/livez')).status).toBe(200);
    expect((await send(port, '/livez')).status).toBe(429);
  });

  it('C2: a route list adds a tenant quota to the global limiter; both show, the denial names its policy', async () => {
    const tenants = quota({ name: 'tenant', limit: 1, period: 'day' });
    const app = make();
    await app.register(rateLimitPlugin, { limiter: windowLimiter(5, 'per-key') });
    const tenantOf = (request: { headers: Record<string, unknown> }) => String(request.headers['x-tenant'] ?? 'anonymous');
    app.get('/exports', { config: { rateLimit: [true, { limiter: tenants, key: tenantOf, cost: 1 }] } }, async () => 'queued');
    app.get('/plain', async () => 'ok');
    const port = await start(app);
    const first = await send(port, '/exports', { headers: { 'x-tenant': 'acme' } });
    expect(first.status).toBe(200);
    expect(first.headers['ratelimit-policy']).toBe('"per-key";q=5;w=60, "tenant";q=1;w=86400');
    expect(first.headers['ratelimit']).toMatch(/^"per-key";r=4;t=\d+, "tenant";r=0;t=\d+$/);
    const denied = await send(port, '/exports', { headers: { 'x-tenant': 'acme' } });
    expect(denied.status).toBe(429);
    expect(JSON.parse(denied.body)).toMatchObject({ type: 'urn:bulwark:problem:quota-exceeded', policy: 'tenant' });
    expect(denied.headers['ratelimit']).toMatch(/^"per-key";r=3;t=\d+, "tenant";r=0;t=\d+$/);
    const plain = await send(port, '/plain');
    expect(plain.headers['ratelimit-policy']).toBe('"per-key";q=5;w=60');
  });

  it('C2: two registrations (a global limiter and a global quota) compose, and the same limiter registered twice charges once', async () => {
    const perKey = windowLimiter(3, 'per-key');
    const app = make();
    await app.register(rateLimitPlugin, { limiter: perKey });
    await app.register(rateLimitPlugin, { limiter: quota({ name: 'daily', limit: 10, period: 'day' }) });
    await app.register(rateLimitPlugin, { limiter: perKey });
    app.get('/', async () => 'ok');
    const port = await start(app);
    const answers = [];
    for (let i = 0; i < 4; i++) answers.push(await send(port, '/'));
    expect(answers.map((a) => a.status)).toEqual([200, 200, 200, 429]);
    expect(answers[0]!.headers['ratelimit']).toMatch(/^"per-key";r=2;t=\d+, "daily";r=9;t=\d+$/);
    expect(JSON.parse(answers[3]!.body)).toMatchObject({ policy: 'per-key' });
  });

  it('C4: the same limiter twice in one route list, or two limiters of one name, fail at startup', async () => {
    const limiter = windowLimiter(3, 'dup');
    const app = make();
    await app.register(rateLimitPlugin, { limiter });
    expect(() => app.get('/a', { config: { rateLimit: [true, { limiter, cost: 2 }] } }, async () => 'ok')).toThrow(
      /entries 0 and 1 use the same limiter "dup"; one request would be charged once, not twice/,
    );
    expect(() => app.get('/b', { config: { rateLimit: [true, { limiter: windowLimiter(3, 'dup') }] } }, async () => 'ok')).toThrow(
      /same name "dup"/,
    );
    expect(() => app.get('/c', { config: { rateLimit: [false] } }, async () => 'ok')).toThrow(/entry 0: must be false, true, an object/);
  });

  it('C4: the same limiter registered twice with two costs, or two limiters of one name registered globally, fail at startup', async () => {
    const limiter = windowLimiter(10, 'api');
    const costly = make();
    await costly.register(rateLimitPlugin, { limiter });
    await expect(costly.register(rateLimitPlugin, { limiter, cost: 2 })).rejects.toThrow(
      /limiter "api" is registered twice on this instance with different costs; one request would be charged once, at one of them: register it once/,
    );
    const named = make();
    await named.register(rateLimitPlugin, { limiter: windowLimiter(3, 'dup') });
    await expect(named.register(rateLimitPlugin, { limiter: windowLimiter(3, 'dup') })).rejects.toThrow(
      /two limiters named "dup" are registered on this instance; give them distinct names so the headers tell them apart/,
    );
  });

  it('two limiters of one name registered globally in a parent and a child context are refused at startup', async () => {
    const app = make();
    await app.register(rateLimitPlugin, { limiter: windowLimiter(5, 'api') });
    const child = app.register(async (scope: FastifyLike) => {
      await scope.register(rateLimitPlugin, { limiter: windowLimiter(7, 'api') });
      scope.get('/child', async () => 'ok');
    });
    await expect(Promise.resolve(child).then(() => app.listen({ port: 0, host: '127.0.0.1' }))).rejects.toThrow(/two limiters named "api" are registered on this instance/);
  });

  it('C4: a route list naming a limiter on its own and inside a compound limit fails at startup', async () => {
    const store = memoryStore();
    const perMin = rateLimiter({ name: 'per-min', algorithm: fixedWindow({ limit: 5, windowMs: 60_000 }), store });
    const both = compoundLimit([perMin, quota({ name: 'daily', limit: 3, period: 'day', store })], { name: 'both' });
    const app = make();
    await app.register(rateLimitPlugin, { limiter: perMin });
    expect(() => app.get('/a', { config: { rateLimit: [true, { limiter: both }] } }, async () => 'ok')).toThrow(
      /entries 0 and 1 both charge limiter "per-min" \(entry 1 inside compound limit "both"\)/,
    );
  });

  it('C3: a denial by a store that failed closed is 503 store-unavailable with Retry-After', async () => {
    const app = make();
    await app.register(rateLimitPlugin, { limiter: outage('monthly', 400) });
    app.get('/', async () => 'ok');
    const port = await start(app);
    const a = await send(port, '/');
    expect(a.status).toBe(503);
    expect(a.headers['retry-after']).toBe('1');
    expect(JSON.parse(a.body)).toMatchObject({ type: 'urn:bulwark:problem:store-unavailable', policy: 'monthly' });
    expect(a.headers['ratelimit']).toBeUndefined();
  });

  it('C2: a compound limit (all or nothing) shows one item per limit, and its denial names the limit that denied', async () => {
    const app = make();
    await app.register(rateLimitPlugin, { limiter: perMinuteAndDaily() });
    app.get('/', async () => 'ok');
    await expectCompoundItems(await start(app));
  });
});
