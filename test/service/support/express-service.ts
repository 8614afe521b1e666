// The assembled Express service of test/service/ (rows C1–C5, G1 and the bad-input list of
// RELIABILITY.md), built as a user following the README would, from public entry points only:
// bulwark, bulwark/redis, bulwark/express, bulwark/fetch and bulwark/prometheus (the last three
// through ./parts.ts and here).
//
//   load shedding, the per-client limit (app-wide, keyed by client address behind a local proxy),
//   the health routes and /metrics — in either order — then /api routes with the per-tenant
//   quota, one of which calls the upstream, and graceful shutdown.
//
// No error handler answers for bulwark: an error the adapters pass on goes to a logging middleware
// (the service's error log, which tests count) and then to Express's own final handler, so a test
// sees exactly what bulwark leaves a user with.
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import express, { type NextFunction, type Request, type Response } from 'express';
import type { GracefulShutdown } from '../../../src/index.js';
import { healthMiddleware, loadSheddingMiddleware, rateLimitMiddleware } from '../../../src/adapters/express.js';
import { metricsHandler } from '../../../src/metrics/index.js';
import { buildParts, shutdownOf, type ServiceOptions, type ServiceParts } from './parts.js';

/** A running service. */
export interface RunningService extends ServiceParts {
  readonly framework: 'express' | 'fastify';
  readonly port: number;
  readonly server: Server;
  readonly shutdown: GracefulShutdown;
  /** Shuts down gracefully (no drain) and releases Redis, the shedder and the metrics. */
  close(): Promise<void>;
}

/** Starts the Express service on 127.0.0.1, port 0. */
export async function startExpressService(options: ServiceOptions): Promise<RunningService> {
  const parts = await buildParts(options);
  const { perClient, tenantQuota, shedder, registry } = parts;

  const app = express();
  app.disable('x-powered-by');

  const limits = (): void => {
    app.use(loadSheddingMiddleware(shedder));
    // Every request, keyed by the client address; a reverse proxy on this host sets X-Forwarded-For.
    app.use(rateLimitMiddleware(perClient, { trustProxy: 'loopback' }));
  };
  const probes = (): void => {
    app.use(healthMiddleware(parts.health));
    app.get('/metrics', metricsHandler(registry));
  };
  if ((options.order ?? 'limits-first') === 'limits-first') {
    limits();
    probes();
  } else {
    probes();
    limits();
  }

  app.get('/hello', (_req: Request, res: Response) => {
    res.type('text/plain').send('hello');
  });

  // The per-tenant quota on the routes that use the tenant's units; /reports reads its cost as a
  // JavaScript user might write it: the header, unconverted.
  const tenantOf = (req: IncomingMessage): string => parts.tenantOf(req.headers);
  const tenantUnits = rateLimitMiddleware(tenantQuota, { key: tenantOf, cost: (req) => parts.unitsOf(req.url ?? '/', req.headers) });
  const reportUnits = rateLimitMiddleware(tenantQuota, { key: tenantOf, cost: (req) => parts.rawUnitsOf(req.headers) });
  const api = express.Router();
  api.get('/items', tenantUnits, async (req: Request, res: Response) => {
    const answer = await parts.items(req.originalUrl, req.headers);
    res.status(answer.status).type(answer.status === 200 ? 'application/json' : 'application/problem+json').send(JSON.stringify(answer.body));
  });
  api.get('/reports', reportUnits, (_req: Request, res: Response) => {
    res.json({ report: 'ok' });
  });
  api.get('/work', tenantUnits, (req: Request, res: Response) => {
    const ms = Math.min(Number(req.query.ms ?? 0) || 0, 5_000);
    setTimeout(() => res.send(`ok ${ms}`), ms);
  });
  app.use('/api', api);

  // The service's error log: everything passed to next(err), then Express answers as it does.
  app.use((error: unknown, _req: Request, _res: Response, next: NextFunction) => {
    options.log(`error: ${error instanceof Error ? error.message : String(error)}`);
    next(error);
  });

  const server = createServer(app);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const port = (server.address() as AddressInfo).port;

  const shutdown = shutdownOf(server, parts, options);

  return {
    ...parts,
    framework: 'express',
    port,
    server,
    shutdown,
    async close() {
      await shutdown.shutdown();
      server.closeAllConnections();
    },
  };
}
