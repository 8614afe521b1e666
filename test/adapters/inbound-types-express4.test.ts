// Compile-time checks (run by `tsc`) against Express 4's own typings (@types/express 4, installed
// as `@types/express4`, so `import ... from 'express4'` reads them): the middleware fits an
// Express 4 app, and key/cost/skip/onError callbacks see Express 4's request, annotated or not
// (`req.get()`, `req.ip`). inbound-types.test.ts does the same against Express 5's typings.
import express4 from 'express4';
import { expect, it } from 'vitest';
import { healthMiddleware, loadSheddingMiddleware, rateLimitMiddleware } from '../../src/adapters/express.js';
import { fixedWindow, health, quota, rateLimiter } from '../../src/index.js';

function typeChecks(): void {
  const perClient = rateLimiter({ name: 'per-client', algorithm: fixedWindow({ limit: 10, windowMs: 1_000 }) });
  const tenantQuota = quota({ name: 'tenant', limit: 1_000, period: 'day' });
  const app = express4();
  app.use(healthMiddleware(health()));
  app.use(loadSheddingMiddleware({ maxEventLoopDelayMs: 30 }));
  app.use(rateLimitMiddleware(perClient));
  // Annotated with Express 4's own Request.
  app.get(
    '/api/orders',
    rateLimitMiddleware(tenantQuota, {
      key: (req: express4.Request) => req.get('x-tenant') ?? req.ip ?? 'anonymous',
      cost: (req: express4.Request) => (req.query.bulk === '1' ? 10 : 1),
      skip: (req: express4.Request) => req.path.startsWith('/internal/'),
    }),
    (_req: express4.Request, res: express4.Response) => {
      res.send('ok');
    },
  );
  // Unannotated: the callbacks still see the request members every Express has.
  app.use(
    rateLimitMiddleware(perClient, {
      key: (req) => req.get('x-api-key') ?? req.ip ?? 'anonymous',
      cost: async (req) => (req.path === '/bulk' ? Number(req.query.n ?? 1) : 1),
      skip: (req) => req.originalUrl.startsWith('/internal/') || req.header('x-internal') === 'yes',
      onError: (error, req) => console.warn(req.path, error),
    }),
  );
  const router = express4.Router();
  router.use(rateLimitMiddleware(perClient, { key: (req: express4.Request) => req.ip ?? 'anonymous' }));
  app.use('/v1', router);
  // @ts-expect-error: a key must be a string (or a promise of one).
  rateLimitMiddleware(perClient, { key: (req: express4.Request) => req.ip?.length });
}

it('type-checks against Express 4 typings (see tsc)', () => {
  expect(typeof typeChecks).toBe('function');
});
