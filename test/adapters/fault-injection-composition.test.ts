// Fault injection next to the rest of a service (DESIGN §4.9): with every request injected —
// a 503, or the harshest fault, a dropped connection — the health probes (standard and prefixed)
// and /metrics still answer 200, whether the chaos is registered before the health routes or
// after them, in Express 5 and Fastify 5; and a rate limit in front still counts the requests the
// chaos then fails. A chaos experiment must not get a pod restarted or its metrics lost.
import type { Server } from 'node:http';
import express from 'express';
import fastify from 'fastify';
import { afterEach, describe, expect, it } from 'vitest';
import { faultInjectionMiddleware, healthMiddleware, rateLimitMiddleware } from '../../src/adapters/express.js';
import { faultInjectionPlugin, healthPlugin } from '../../src/adapters/fastify.js';
import { fixedWindow, health, rateLimiter } from '../../src/index.js';
import { close, send } from './support/inbound-http.js';

const PROBES = ['/livez', '/readyz', '/startupz', '/healthz', '/ops/readyz', '/metrics'];
const checks = [{ name: 'db', check: () => true }];
const faults = [
  ['a 503', { rate: 1, status: 503 }],
  ['a dropped connection', { rate: 1, abort: true }],
] as const;
type Order = 'chaos first' | 'health first';

let server: Server | undefined;
let app: ReturnType<typeof fastify> | undefined;
afterEach(async () => {
  if (server) await close(server);
  await app?.close();
  server = app = undefined;
});

async function expressService(order: Order, options: object): Promise<number> {
  const a = express();
  const chaos = faultInjectionMiddleware(options as never);
  const probes = [healthMiddleware(health({ checks })), healthMiddleware(health(), { prefix: '/ops' })];
  if (order === 'chaos first') a.use(chaos, ...probes);
  else a.use(...probes, chaos);
  a.get('/metrics', (_req, res) => void res.send('# metrics'));
  a.get('/api', (_req, res) => void res.send('api'));
  server = a.listen(0, '127.0.0.1');
  await new Promise((resolve) => server!.once('listening', resolve));
  return (server.address() as { port: number }).port;
}

async function fastifyService(order: Order, options: object): Promise<number> {
  const a = fastify();
  app = a;
  const registerHealth = async (): Promise<void> => {
    await a.register(healthPlugin, { health: health({ checks }) });
    await a.register(healthPlugin, { health: health(), prefix: '/ops' });
  };
  if (order === 'health first') await registerHealth();
  await a.register(faultInjectionPlugin, options as never);
  if (order === 'chaos first') await registerHealth();
  a.get('/metrics', async () => '# metrics');
  a.get('/api', async () => 'api');
  await a.listen({ port: 0, host: '127.0.0.1' });
  return (a.server.address() as { port: number }).port;
}

describe.each([
  ['Express 5', expressService],
  ['Fastify 5', fastifyService],
])('fault injection in a %s service', (_name, start) => {
  describe.each(faults)('every request gets %s', (_fault, options) => {
    it.each(['chaos first', 'health first'] as const)('(%s): every probe and /metrics answers 200, /api gets the fault', async (order) => {
      const port = await start(order, options);
      for (const path of PROBES) expect((await send(port, path)).status, path).toBe(200);
      if ('status' in options) expect((await send(port, '/api')).status).toBe(503);
      else await expect(send(port, '/api')).rejects.toMatchObject({ code: expect.stringMatching(/^(ECONNRESET|EPIPE)$/) });
    });
  });
});

describe('fault injection behind a rate limit (Express 5)', () => {
  it('the limit still counts the requests the chaos then fails, and its 429s come first', async () => {
    const limiter = rateLimiter({ name: 'api', algorithm: fixedWindow({ limit: 3, windowMs: 60_000 }) });
    const a = express();
    a.use(rateLimitMiddleware(limiter), faultInjectionMiddleware({ rate: 1, status: 503 }));
    a.get('/api', (_req, res) => void res.send('api'));
    server = a.listen(0, '127.0.0.1');
    await new Promise((resolve) => server!.once('listening', resolve));
    const port = (server.address() as { port: number }).port;
    const statuses = [];
    for (let i = 0; i < 5; i++) statuses.push((await send(port, '/api')).status);
    expect(statuses).toEqual([503, 503, 503, 429, 429]);
  });
});
