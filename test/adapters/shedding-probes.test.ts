// Load shedding never turns away bulwark's own routes (health probes, /metrics) in real Express 4/5
// and Fastify 4/5 servers, whichever is registered first. Regression: shedding answered /livez
// with 503 in both frameworks, so an overloaded pod was restarted instead of recovering.
import type { IncomingMessage, Server } from 'node:http';
import express from 'express';
import fastify, { type FastifyRequest } from 'fastify';
import fastify4 from 'fastify4';
import { Registry } from 'prom-client';
import { afterEach, describe, expect, it } from 'vitest';
import { healthMiddleware, loadSheddingMiddleware } from '../../src/adapters/express.js';
import { healthPlugin, loadSheddingPlugin } from '../../src/adapters/fastify.js';
import { health, loadShedder, type LoadSample, type LoadShedder } from '../../src/index.js';
import { metricsHandler, metricsRoute } from '../../src/metrics/index.js';
import { close, send } from './support/inbound-http.js';

// Express 4 ships no types of its own under its alias: use Express 5's for both.
const express4Name: string = 'express4';
const express4 = ((await import(express4Name)) as { default: typeof express }).default;

type FastifyApp = ReturnType<typeof fastify>;

// Compile-time: `skip` written for each framework's own request type is accepted.
export function typeChecks(shedder: LoadShedder): void {
  express().use(loadSheddingMiddleware({ shedder, skip: (req: express.Request) => req.path === '/admin' }));
  express().use(loadSheddingMiddleware({ maxEventLoopDelayMs: 200, exemptProbes: false }));
  void fastify().register(loadSheddingPlugin, { shedder, skip: (req: FastifyRequest) => req.routeOptions.url === '/admin' });
  void fastify4().register(loadSheddingPlugin, { maxEventLoopDelayMs: 200, skip: (req) => req.url === '/admin' });
}

const PROBES = ['/livez', '/readyz', '/startupz', '/healthz', '/readyz/db', '/ops/readyz', '/ops/livez?verbose', '/metrics'];
const OTHERS = ['/', '/api/orders', '/readyzz', '/admin'];

let server: Server | undefined;
let app: FastifyApp | undefined;
const shedders: LoadShedder[] = [];
afterEach(async () => {
  if (server) await close(server);
  await app?.close();
  for (const s of shedders.splice(0)) s.dispose();
  server = undefined;
  app = undefined;
});

/** A shedder under pressure (an injected sample over its threshold) until `relieve()`. */
function overloaded(): { shedder: LoadShedder; relieve: () => void } {
  let sample: LoadSample = { eventLoopDelayMs: 500 };
  const shedder = loadShedder({ maxEventLoopDelayMs: 100, sampler: () => sample });
  shedders.push(shedder);
  expect(shedder.update()).toBe('eventLoopDelay');
  return {
    shedder,
    relieve: () => {
      sample = { eventLoopDelayMs: 0 };
      shedder.update();
    },
  };
}

const checks = [{ name: 'db', check: () => true }];

/** Under pressure: every probe path 200, every other path 503 with Retry-After and a problem body; once relieved, all 200. */
async function expectOnlyProbesThrough({ port, relieve }: { port: number; relieve: () => void }): Promise<void> {
  for (const path of PROBES) expect((await send(port, path)).status, path).toBe(200);
  for (const path of OTHERS) {
    const shed = await send(port, path);
    expect(shed.status, path).toBe(503);
    expect(shed.headers['retry-after'], path).toBe('10');
    expect(shed.headers['content-type'], path).toMatch(/^application\/problem\+json/);
  }
  relieve();
  for (const path of OTHERS) expect((await send(port, path)).status, path).toBe(200);
}

describe.each([
  ['Express 4', express4],
  ['Express 5', express],
])('loadSheddingMiddleware on %s', (_name, makeApp) => {
  async function serve(order: 'shedding first' | 'health first', options: Record<string, unknown> = {}): Promise<{ port: number; relieve: () => void }> {
    const { shedder, relieve } = overloaded();
    const a = makeApp();
    const shed = loadSheddingMiddleware({ shedder, ...options } as never);
    const probes = [healthMiddleware(health({ checks })), healthMiddleware(health(), { prefix: '/ops' })];
    if (order === 'shedding first') a.use(shed, ...probes);
    else a.use(...probes, shed);
    a.get('/metrics', metricsHandler(new Registry())); // bulwark's own metrics handler
    a.use((_req, res) => void res.send('app'));
    a.use((error: Error, _req: express.Request, res: express.Response, _next: express.NextFunction) => {
      res.status(500).send(`error: ${error.message}`);
    });
    server = a.listen(0, '127.0.0.1');
    await new Promise((resolve) => server!.once('listening', resolve));
    return { port: (server.address() as { port: number }).port, relieve };
  }

  it.each(['shedding first', 'health first'] as const)('under pressure, with %s: probes and /metrics answer 200, every other route 503', async (order) => {
    await expectOnlyProbesThrough(await serve(order));
  });

  it('sheds the probes too with exemptProbes: false (when the shedding comes first)', async () => {
    const { port } = await serve('shedding first', { exemptProbes: false });
    expect((await send(port, '/livez')).status).toBe(503);
    expect((await send(port, '/metrics')).status).toBe(503);
  });

  it('lets through what skip returns true for, and only that', async () => {
    const seen: string[] = [];
    const { port } = await serve('shedding first', { skip: (req: IncomingMessage) => (seen.push(req.url!), req.url === '/admin') });
    expect((await send(port, '/admin')).status).toBe(200);
    expect((await send(port, '/api/orders')).status).toBe(503);
    expect((await send(port, '/livez')).status).toBe(200);
    // Probes are let through before skip is asked.
    expect(seen).toEqual(['/admin', '/api/orders']);
  });

  // Regression (issue 11 §4): a throwing skip went to next(err), and Express's default error
  // handler answered an HTML page with the stack trace.
  it('answers a skip that throws, or a non-boolean answer, with 500 problem+json and tells onError, naming the option', async () => {
    const errors: unknown[] = [];
    const { port } = await serve('shedding first', {
      skip: (req: IncomingMessage) => {
        if (req.url === '/throws') throw new Error('skip broke');
        return 'yes' as unknown as boolean;
      },
      onError: (error: unknown) => errors.push(error),
    });
    for (const path of ['/throws', '/other']) {
      const a = await send(port, path);
      expect(a.status).toBe(500);
      expect(a.headers['content-type']).toBe('application/problem+json');
      expect(JSON.parse(a.body)).toMatchObject({ type: 'urn:bulwark:problem:shedding-check-failed', status: 500 });
      expect(a.body).not.toContain('skip broke');
    }
    expect(errors.map((e) => (e as Error).message)).toEqual(['skip broke', expect.stringContaining('option "skip" must return a boolean, got "yes"')]);
  });
});

describe.each([
  ['Fastify 4', () => fastify4() as unknown as FastifyApp],
  ['Fastify 5', () => fastify()],
])('loadSheddingPlugin on %s', (_name, makeApp) => {
  async function serve(order: 'shedding first' | 'health first', options: Record<string, unknown> = {}): Promise<{ port: number; relieve: () => void }> {
    const { shedder, relieve } = overloaded();
    const a = makeApp();
    app = a;
    const registerHealth = async (): Promise<void> => {
      await a.register(healthPlugin, { health: health({ checks }) });
      await a.register(healthPlugin, { health: health(), prefix: '/ops' });
    };
    if (order === 'health first') await registerHealth();
    await a.register(loadSheddingPlugin, { shedder, ...options } as never);
    if (order === 'shedding first') await registerHealth();
    a.get('/metrics', metricsRoute(new Registry())); // bulwark's own metrics route
    a.get('/*', async () => 'app');
    await a.listen({ port: 0, host: '127.0.0.1' });
    return { port: (a.server.address() as { port: number }).port, relieve };
  }

  it.each(['shedding first', 'health first'] as const)('under pressure, with %s: probes and /metrics answer 200, every other route 503', async (order) => {
    await expectOnlyProbesThrough(await serve(order));
  });

  it('sheds the probes too with exemptProbes: false', async () => {
    const { port } = await serve('shedding first', { exemptProbes: false });
    expect((await send(port, '/livez')).status).toBe(503);
    expect((await send(port, '/metrics')).status).toBe(503);
  });

  it('lets through what skip returns true for, and only that; a skip that throws gets a 500 problem, told to onError', async () => {
    const errors: unknown[] = [];
    const { port } = await serve('shedding first', {
      skip: (req: FastifyRequest) => {
        if (req.url === '/throws') throw new Error('skip broke');
        return req.url === '/admin';
      },
      onError: (error: unknown) => errors.push(error),
    });
    expect((await send(port, '/admin')).status).toBe(200);
    expect((await send(port, '/api/orders')).status).toBe(503);
    expect((await send(port, '/readyz')).status).toBe(200);
    const failed = await send(port, '/throws');
    expect(failed.status).toBe(500);
    expect(failed.headers['content-type']).toMatch(/^application\/problem\+json/);
    expect(JSON.parse(failed.body)).toMatchObject({ type: 'urn:bulwark:problem:shedding-check-failed' });
    expect(failed.body).not.toContain('skip broke');
    expect(errors.map((e) => (e as Error).message)).toEqual(['skip broke']);
  });

  it('refuses bad adapter options at registration, naming them', async () => {
    const a = makeApp();
    app = a;
    const { shedder } = overloaded();
    await expect(a.register(loadSheddingPlugin, { shedder, skip: 'no' } as never)).rejects.toThrow(/option "skip" must be a function.*"no"/);
    const b = makeApp();
    await expect(b.register(loadSheddingPlugin, { shedder, exemptProbes: null } as never)).rejects.toThrow(/option "exemptProbes" must be a boolean, got null/);
    await b.close();
  });
});

describe('load-shedding options', () => {
  it('are validated once, naming the option and the value', () => {
    const { shedder } = overloaded();
    expect(() => loadSheddingMiddleware({ shedder, exemptProbes: 'yes' } as never)).toThrow(/option "exemptProbes" must be a boolean, got "yes"/);
    expect(() => loadSheddingMiddleware({ shedder, skip: 1 } as never)).toThrow(/option "skip" must be a function returning a boolean, got 1/);
    expect(() => loadSheddingMiddleware({ shedder: {} } as never)).toThrow(/option "shedder" must be a load shedder/);
    expect(() => loadSheddingMiddleware({ shedder, maxEventLoopDelayMs: 5 } as never)).toThrow(/either \{ shedder \} or shedder options/);
    expect(() => loadSheddingMiddleware({ maxEventLoopDelayMs: 5, skipp: () => true } as never)).toThrow(/unknown option "skipp"/);
    expect(() => loadSheddingMiddleware(null as never)).toThrow(/got null/);
    const own = loadSheddingMiddleware({ maxEventLoopDelayMs: 5, exemptProbes: true, skip: () => false });
    own.shedder.dispose();
  });
});
