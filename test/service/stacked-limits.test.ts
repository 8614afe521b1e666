// RELIABILITY.md rows C2 and C4 (a whole service). C2: a per-client limit and a per-tenant quota
// on one request both decide, both show as items of `RateLimit-Policy` and `RateLimit`, and a
// denial's problem body names the policy that denied. C4: the same limiter mounted twice (Express:
// app-level and router-level; Fastify: the global plugin and a route's own config) charges once,
// or is refused at startup with a clear error. Figure: double charges = 0.
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import express from 'express';
import Fastify from 'fastify';
import { describe, expect, it } from 'vitest';
import { rateLimitMiddleware } from '../../src/adapters/express.js';
import { rateLimitPlugin } from '../../src/adapters/fastify.js';
import { buildParts, type ServiceParts } from './support/parts.js';
import { frameworks, get, item, listItems, problemOf, startService, useRedisAndUpstream, type Answer } from './support/harness.js';

const shared = useRedisAndUpstream();

describe.each(frameworks)('C2 %s service: a per-client limit and a per-tenant quota on one request', (framework) => {
  it('both decide and both appear in RateLimit-Policy and RateLimit', async () => {
    const started = shared.track(await startService(framework, { redisPort: shared.redis.port, upstreamUrl: shared.upstream.url, perClientLimit: 5, tenantUnits: 100 }));
    const client = { 'x-forwarded-for': '198.51.100.7', 'x-tenant': 'acme' };

    const first = await get(started.service.port, '/api/items?units=10', client);
    expect(first.status, first.body).toBe(200);
    expect(listItems(first.headers['ratelimit-policy']).map((i) => i.name).sort()).toEqual(['per-client', 'tenant-units']);
    expect(item(first.headers['ratelimit-policy'], 'per-client')?.params).toMatchObject({ q: 5, w: 3600 });
    expect(item(first.headers['ratelimit-policy'], 'tenant-units')?.params).toMatchObject({ q: 100 });
    expect(listItems(first.headers.ratelimit).map((i) => i.name).sort()).toEqual(['per-client', 'tenant-units']);
    expect(item(first.headers.ratelimit, 'per-client')?.params.r).toBe(4);
    expect(item(first.headers.ratelimit, 'tenant-units')?.params.r).toBe(90);
  });

  it('a denial by the quota names the quota, and still shows the per-client limit that allowed it', async () => {
    const started = shared.track(await startService(framework, { redisPort: shared.redis.port, upstreamUrl: shared.upstream.url, perClientLimit: 5, tenantUnits: 100 }));
    const client = { 'x-forwarded-for': '198.51.100.8', 'x-tenant': 'globex' };

    expect((await get(started.service.port, '/api/items?units=90', client)).status).toBe(200);
    const denied = await get(started.service.port, '/api/items?units=20', client);
    expect(denied.status, denied.body).toBe(429);
    expect(problemOf(denied)).toMatchObject({ status: 429, policy: 'tenant-units' });
    expect(Number(denied.headers['retry-after'])).toBeGreaterThan(0);
    expect(listItems(denied.headers.ratelimit).map((i) => i.name).sort()).toEqual(['per-client', 'tenant-units']);
    expect(item(denied.headers.ratelimit, 'tenant-units')?.params.r).toBe(10);
  });

  it('a denial by the per-client limit names the per-client limit', async () => {
    const started = shared.track(await startService(framework, { redisPort: shared.redis.port, upstreamUrl: shared.upstream.url, perClientLimit: 3, tenantUnits: 100 }));
    const client = { 'x-forwarded-for': '198.51.100.9', 'x-tenant': 'initech' };

    const answers: Answer[] = [];
    for (let i = 0; i < 4; i++) answers.push(await get(started.service.port, '/api/items', client));
    expect(answers.map((a) => a.status)).toEqual([200, 200, 200, 429]);
    const denied = answers[3]!;
    expect(problemOf(denied)).toMatchObject({ status: 429, policy: 'per-client' });
    expect(item(denied.headers.ratelimit, 'per-client')?.params.r).toBe(0);
  });
});

/** A fresh set of the service's parts on this test's Redis, released after the test. */
async function parts(perClientLimit: number): Promise<ServiceParts> {
  const p = await buildParts({
    redisPort: shared.redis.port,
    upstreamUrl: shared.upstream.url,
    prefix: `c4-${Math.random().toString(36).slice(2, 10)}:`,
    perClientLimit,
    log: () => {},
  });
  shared.later(() => p.release());
  return p;
}

/** The smallest remaining the per-client limit shows in a RateLimit field (one item, or one per mount). */
function perClientRemaining(answer: Answer): number {
  const rs = listItems(answer.headers.ratelimit).filter((i) => i.name === 'per-client').map((i) => i.params.r ?? NaN);
  expect(rs.length, `RateLimit: ${String(answer.headers.ratelimit)}`).toBeGreaterThan(0);
  return Math.min(...rs);
}

/** Three requests through both mounts of a limit of 10: the headers and the store show 3 units taken, not 6. */
async function expectChargedOnce(p: ServiceParts, port: number, path: string): Promise<void> {
  const before = (await p.perClient.peek('127.0.0.1')).remaining;
  const remaining: number[] = [];
  for (let i = 0; i < 3; i++) {
    const a = await get(port, path);
    expect(a.status, a.body).toBe(200);
    remaining.push(perClientRemaining(a));
  }
  const after = (await p.perClient.peek('127.0.0.1')).remaining;
  expect(remaining, 'remaining after each request').toEqual([9, 8, 7]);
  expect(before - after, 'units charged for 3 requests').toBe(3);
}

describe('C4: the same limiter mounted twice', () => {
  it('Express, app-level and router-level: each request is charged once, or the second mount is refused', async () => {
    const p = await parts(10);
    const app = express();
    app.use(rateLimitMiddleware(p.perClient));
    const router = express.Router();
    let refused: unknown;
    try {
      router.use(rateLimitMiddleware(p.perClient));
    } catch (error) {
      refused = error;
    }
    router.get('/x', (_req, res) => {
      res.send('x');
    });
    app.use('/r', router);
    if (refused !== undefined) {
      expect(refused).toBeInstanceOf(Error);
      expect((refused as Error).message).toMatch(/per-client/);
      return;
    }
    const server = createServer(app);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    shared.later(() => new Promise((resolve) => server.close(resolve)));
    await expectChargedOnce(p, (server.address() as AddressInfo).port, '/r/x');
  });

  it('Fastify, the global plugin and a route config naming the same limiter: charged once, or refused at startup', async () => {
    const p = await parts(10);
    const app = Fastify();
    shared.later(() => app.close());
    let refused: unknown;
    try {
      await app.register(rateLimitPlugin, { limiter: p.perClient });
      app.get('/x', { config: { rateLimit: { limiter: p.perClient } } }, async () => 'x');
      await app.listen({ port: 0, host: '127.0.0.1' });
    } catch (error) {
      refused = error;
    }
    if (refused !== undefined) {
      expect(refused).toBeInstanceOf(Error);
      expect((refused as Error).message).toMatch(/per-client/);
      return;
    }
    await expectChargedOnce(p, (app.server.address() as AddressInfo).port, '/x');
  });
});
