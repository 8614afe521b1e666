// The assembled Fastify service of test/service/ (rows C1–C5, G1 and the bad-input list of
// RELIABILITY.md), built as a user following the README would, from public entry points only:
// bulwark, bulwark/redis, bulwark/fastify, bulwark/fetch and bulwark/prometheus.
//
//   the load-shedding plugin, the rate-limit plugin with the per-client limit on every route
//   (keyed by client address behind a local proxy), the health plugin and /metrics — in either
//   order — then /api routes that add the per-tenant quota in their own config, routes that call
//   the upstream, and graceful shutdown.
//
// Fastify's own logger, at level 'error', is the service's error log (tests count its lines).
import Fastify from 'fastify';
import { healthPlugin, loadSheddingPlugin, rateLimitPlugin } from '../../../src/adapters/fastify.js';
import { metricsRoute } from '../../../src/metrics/index.js';
import type { RunningService } from './express-service.js';
import { buildParts, shutdownOf, type ServiceOptions } from './parts.js';

/** Starts the Fastify service on 127.0.0.1, port 0. */
export async function startFastifyService(options: ServiceOptions): Promise<RunningService> {
  const parts = await buildParts(options);
  const { perClient, tenantQuota, shedder, registry } = parts;

  const app = Fastify({
    logger: { level: 'error', stream: { write: (line: string) => options.log(line.trimEnd()) } },
  });

  const limits = async (): Promise<void> => {
    await app.register(loadSheddingPlugin, { shedder });
    await app.register(rateLimitPlugin, { limiter: perClient, trustProxy: 'loopback' });
  };
  const probes = async (): Promise<void> => {
    await app.register(healthPlugin, { health: parts.health });
    app.get('/metrics', metricsRoute(registry));
  };
  if ((options.order ?? 'limits-first') === 'limits-first') {
    await limits();
    await probes();
  } else {
    await probes();
    await limits();
  }

  app.get('/hello', async () => 'hello');

  // The per-tenant quota, on the routes that use the tenant's units, after the global limit (`true`
  // in a route's list stands for the plugin's own rule; a rule alone would replace it).
  const tenantUnits = {
    limiter: tenantQuota,
    key: (request: { headers: import('node:http').IncomingHttpHeaders }) => parts.tenantOf(request.headers),
    cost: (request: { url: string; headers: import('node:http').IncomingHttpHeaders }) => parts.unitsOf(request.url, request.headers),
  };
  app.get('/api/items', { config: { rateLimit: [true, tenantUnits] } }, async (request, reply) => {
    const answer = await parts.items(request.url, request.headers);
    void reply.code(answer.status).type(answer.status === 200 ? 'application/json' : 'application/problem+json');
    return JSON.stringify(answer.body);
  });
  app.get(
    '/api/reports',
    {
      config: {
        // The quota's cost as a JavaScript user might write it: the header, unconverted.
        rateLimit: [true, { ...tenantUnits, cost: (request: { headers: import('node:http').IncomingHttpHeaders }) => parts.rawUnitsOf(request.headers) }],
      },
    },
    async () => ({ report: 'ok' }),
  );
  app.get('/api/work', { config: { rateLimit: [true, tenantUnits] } }, async (request) => {
    const ms = Math.min(Number((request.query as { ms?: string }).ms ?? 0) || 0, 5_000);
    await new Promise((resolve) => setTimeout(resolve, ms));
    return `ok ${ms}`;
  });

  await app.listen({ port: 0, host: '127.0.0.1' });
  const port = (app.server.address() as { port: number }).port;

  const shutdown = shutdownOf(app, parts, options);

  return {
    ...parts,
    framework: 'fastify',
    port,
    server: app.server,
    shutdown,
    async close() {
      await shutdown.shutdown();
      app.server.closeAllConnections();
    },
  };
}
