// The inbound adapters over the Redis store: two app instances (Express 5 and Fastify 5) share one
// limit, and when Redis goes away the answers follow the store's onStoreError without a crash: a
// store that fails closed is answered 503 store-unavailable (contract C-b), never a used-up limit.
import { createServer } from 'node:http';
import express from 'express';
import fastify from 'fastify';
import { Redis } from 'ioredis';
import { afterEach, describe, expect, it } from 'vitest';
import { rateLimitMiddleware } from '../../src/adapters/express.js';
import { rateLimitPlugin } from '../../src/adapters/fastify.js';
import { fixedWindow, quota, rateLimiter } from '../../src/index.js';
import { redisStore } from '../../src/ratelimit/redis/index.js';
import { disconnectClient, type RedisServer, startRedis } from '../integration/support/redis.js';
import { close, listen, send } from './support/inbound-http.js';

const cleanup: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const step of cleanup.splice(0).reverse()) await step();
});

/** A redis-server of the test's own and a client that reconnects within 0.5 s; both cleaned up after the test. */
async function redisWithClient(): Promise<{ redis: RedisServer; client: Redis }> {
  const redis = await startRedis();
  cleanup.push(() => redis.stop());
  const client = new Redis({ host: '127.0.0.1', port: redis.port, retryStrategy: (times) => Math.min(times * 50, 500) });
  client.on('error', () => {});
  cleanup.push(() => disconnectClient(client));
  await client.ping();
  return { redis, client };
}

describe('inbound adapters with the Redis store', () => {
  it('share one limit across an Express and a Fastify instance, and follow onStoreError while Redis is frozen', async () => {
    const { redis, client } = await redisWithClient();
    // Each instance builds its own store and limiter over the same Redis and name, as two processes would.
    const storeA = redisStore(client, { timeoutMs: 200, onStoreError: 'fail-closed' });
    const storeB = redisStore(client, { timeoutMs: 200, onStoreError: 'fail-closed' });
    const limiterA = rateLimiter({ name: 'shared', store: storeA, algorithm: fixedWindow({ limit: 3, windowMs: 60_000 }) });
    const limiterB = rateLimiter({ name: 'shared', store: storeB, algorithm: fixedWindow({ limit: 3, windowMs: 60_000 }) });

    const app = express();
    app.use(rateLimitMiddleware(limiterA));
    app.get('/', (_req, res) => {
      res.send('express');
    });
    const server = createServer(app);
    cleanup.push(() => close(server));
    const expressPort = await listen(server);

    const f = fastify();
    cleanup.push(() => f.close());
    await f.register(rateLimitPlugin, { limiter: limiterB });
    f.get('/', async () => 'fastify');
    await f.listen({ port: 0, host: '127.0.0.1' });
    const fastifyPort = (f.server.address() as { port: number }).port;

    const statuses: number[] = [];
    for (const port of [expressPort, fastifyPort, expressPort, fastifyPort]) statuses.push((await send(port, '/')).status);
    expect(statuses).toEqual([200, 200, 200, 429]);
    const last = await send(expressPort, '/');
    expect(last.status).toBe(429);
    expect(Number(last.headers['retry-after'])).toBeGreaterThan(0);

    redis.kill('SIGSTOP');
    try {
      // fail-closed: answered within the store timeout, as an outage (503), not as the client's
      // used-up limit (429); the servers keep running.
      const started = performance.now();
      const during = await Promise.all([send(expressPort, '/'), send(fastifyPort, '/')]);
      expect(during.map((a) => a.status)).toEqual([503, 503]);
      expect(performance.now() - started).toBeLessThan(2_000);
      for (const a of during) {
        expect(Number(a.headers['retry-after'])).toBeGreaterThanOrEqual(1);
        expect(JSON.parse(a.body)).toMatchObject({ type: 'urn:bulwark:problem:store-unavailable', status: 503, policy: 'shared' });
        expect(a.headers['ratelimit']).toBeUndefined();
      }
    } finally {
      redis.kill('SIGCONT');
    }
  });

  it('C3: a quota on Redis (failing closed by default) answers 503 store-unavailable, not 429, while Redis is frozen', async () => {
    const { redis, client } = await redisWithClient();
    const monthly = quota({ name: 'monthly', limit: 100, period: 'month', store: redisStore(client, { timeoutMs: 150 }) });
    const app = express();
    app.use(rateLimitMiddleware(monthly, { key: (req) => req.get('x-tenant') ?? 'anonymous', headers: 'draft+legacy' }));
    app.get('/', (_req, res) => {
      res.send('ok');
    });
    const server = createServer(app);
    cleanup.push(() => close(server));
    const port = await listen(server);
    const acme = { headers: { 'x-tenant': 'acme' } };
    expect((await send(port, '/', acme)).headers['ratelimit']).toMatch(/^"monthly";r=99;t=\d+$/);

    redis.kill('SIGSTOP');
    try {
      const during = await Promise.all([send(port, '/', acme), send(port, '/', acme)]);
      for (const a of during) {
        expect(a.status).toBe(503);
        expect(JSON.parse(a.body)).toMatchObject({ type: 'urn:bulwark:problem:store-unavailable', policy: 'monthly' });
        expect(Number(a.headers['retry-after'])).toBeGreaterThanOrEqual(1);
        expect(a.headers['ratelimit']).toBeUndefined();
        expect(a.headers['x-ratelimit-remaining']).toBeUndefined();
      }
    } finally {
      redis.kill('SIGCONT');
    }
  });
});
