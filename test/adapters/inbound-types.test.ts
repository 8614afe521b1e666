// Compile-time checks (run by `tsc`): the plugins and middleware fit Express 4/5 and Fastify 4/5
// typings, and framework-typed key functions are accepted. The runtime part only keeps vitest happy.
import express from 'express';
import fastify, { type FastifyRequest } from 'fastify';
import fastify4 from 'fastify4';
import { expect, it } from 'vitest';
import { loadSheddingMiddleware, rateLimitMiddleware } from '../../src/adapters/express.js';
import { loadSheddingPlugin, rateLimitPlugin } from '../../src/adapters/fastify.js';
import { gcra, loadShedder, rateLimiter } from '../../src/index.js';

function typeChecks(): void {
  const limiter = rateLimiter({ algorithm: gcra({ limit: 10, periodMs: 1_000 }) });
  const app = express();
  app.use(rateLimitMiddleware(limiter));
  app.get('/x', rateLimitMiddleware(limiter, { key: (req: express.Request) => String(req.query.k), cost: (req: express.Request) => (req.path === '/a' ? 2 : 1) }), (_req, res) => {
    res.send('ok');
  });
  app.use(loadSheddingMiddleware({ maxEventLoopDelayMs: 100 }));
  // Without annotations, key/cost/skip/onError see Express's request members (no @types/express
  // needed by bulwark's own .d.ts): req.get(), req.ip, req.path, req.query.
  app.use(
    rateLimitMiddleware(limiter, {
      key: (req) => req.get('x-tenant') ?? req.ip ?? 'anonymous',
      cost: async (req) => (req.path === '/bulk' ? Number(req.query.n ?? 1) : 1),
      skip: (req) => req.originalUrl.startsWith('/internal/') || req.header('x-internal') === 'yes',
      onError: (error, req) => console.warn(req.path, error),
      exemptProbes: true,
    }),
  );
  // @ts-expect-error: a key must be a string (or a promise of one).
  rateLimitMiddleware(limiter, { key: (req) => req.ip?.length });

  const f5 = fastify();
  void f5.register(rateLimitPlugin, { limiter, key: (req: FastifyRequest) => req.ip });
  void f5.register(loadSheddingPlugin, { maxEventLoopDelayMs: 100 });
  void f5.register(loadSheddingPlugin, { shedder: loadShedder({ maxEventLoopDelayMs: 100 }) });
  f5.get('/y', { config: { rateLimit: { cost: 2 } } }, async () => 'ok');
  f5.get('/z', { config: { rateLimit: false } }, async () => 'ok');
  f5.get('/list', { config: { rateLimit: [true, { limiter, key: (req: FastifyRequest) => req.ip, cost: async () => 2 }] } }, async () => 'ok');
  void f5.register(rateLimitPlugin, { limiter, key: (req) => req.ip, onError: (error, req) => req.log.error({ err: error }) });

  const f4 = fastify4();
  void f4.register(rateLimitPlugin, { limiter, global: false });
  void f4.register(loadSheddingPlugin, { maxEventLoopUtilization: 0.9 });
}

it('type-checks against the frameworks (see tsc)', () => {
  expect(typeof typeChecks).toBe('function');
});
