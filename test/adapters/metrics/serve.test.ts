// /metrics over real servers on loopback (node:http, Express 4 and 5, Fastify 4 and 5): the
// scraped text passes `promtool check metrics` with no lint problem, with the registry's content
// type; other methods get 405 and a failing collection a bare 500.
import { createServer, type Server } from 'node:http';
import { createRequire } from 'node:module';
import express5 from 'express';
import fastify5 from 'fastify';
import fastify4 from 'fastify4';
import { Gauge, type OpenMetricsContentType, Registry, type RegistryContentType } from 'prom-client';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { metricsHandler, metricsRoute, registerMetrics, type MetricsRegistration, type ObservedAdmission, type ObservedBreaker } from '../../../src/metrics/index.js';
import { close, listen, send } from '../support/inbound-http.js';
import { exerciseEverything, promtool } from './support.js';

const express4 = createRequire(import.meta.url)('express4') as typeof express5;
type FastifyApp = ReturnType<typeof fastify5>;

// Compile-time: the handlers fit each framework's own route typings.
export function typeChecks(registry: Registry): void {
  express5().get('/metrics', metricsHandler(registry));
  express5().use('/metrics', metricsHandler(registry));
  express4().get('/metrics', metricsHandler(registry));
  fastify5().get('/metrics', metricsRoute(registry));
  fastify4().get('/metrics', metricsRoute(registry));
  createServer(metricsHandler(registry));
}

/** A registry with bulwark's metrics, every one of them holding series. */
const registry = new Registry();
let registration: MetricsRegistration;
beforeAll(async () => {
  // The breaker is read at scrape time as well as followed on the channels.
  const breakers = new Set<ObservedBreaker>();
  const admission = new Set<ObservedAdmission>();
  registration = registerMetrics(registry, { circuitBreakers: breakers, admission });
  const exercised = await exerciseEverything();
  for (const b of exercised.breakers) breakers.add(b);
  for (const a of exercised.admission) admission.add(a);
  return () => registration.dispose();
});

const closers: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of closers.splice(0)) await c();
});

async function nodeServer(r: Registry<RegistryContentType>, options?: Parameters<typeof metricsHandler>[1]): Promise<number> {
  const handle = metricsHandler(r, options);
  const server: Server = createServer((req, res) => {
    if (req.url === '/metrics') return handle(req, res);
    res.statusCode = 404;
    res.end('app');
  });
  closers.push(() => close(server));
  return listen(server);
}

async function expressServer(make: typeof express5, r: Registry<RegistryContentType>): Promise<number> {
  const app = make();
  app.get('/metrics', metricsHandler(r));
  const server = createServer(app);
  closers.push(() => close(server));
  return listen(server);
}

async function fastifyServer(app: FastifyApp, r: Registry<RegistryContentType>, options?: Parameters<typeof metricsRoute>[1]): Promise<number> {
  app.get('/metrics', metricsRoute(r, options));
  closers.push(() => app.close());
  await app.listen({ port: 0, host: '127.0.0.1' });
  return (app.server.address() as { port: number }).port;
}

const servers: [string, (r: Registry<RegistryContentType>) => Promise<number>][] = [
  ['node:http', (r) => nodeServer(r)],
  ['Express 5', (r) => expressServer(express5, r)],
  ['Express 4', (r) => expressServer(express4, r)],
  ['Fastify 5', (r) => fastifyServer(fastify5(), r)],
  ['Fastify 4', (r) => fastifyServer(fastify4() as unknown as FastifyApp, r)],
];

describe.each(servers)('/metrics on %s', (_name, serve) => {
  it('serves text that promtool checks with no problem, with every bulwark metric in it', async () => {
    const port = await serve(registry);
    const answer = await send(port, '/metrics');
    expect(answer.status).toBe(200);
    expect(answer.headers['content-type']).toBe(registry.contentType);
    expect(answer.headers['cache-control']).toBe('no-store');
    for (const name of registration.metricNames) {
      expect(answer.body, name).toMatch(new RegExp(`^${name}(_bucket|_sum|_count)?\\{`, 'm'));
    }
    const check = promtool(['check', 'metrics'], answer.body);
    expect(check.stdout + check.stderr).toBe('');
    expect(check.code).toBe(0);
  });

  it('answers HEAD with the headers and no body', async () => {
    const port = await serve(registry);
    const head = await send(port, '/metrics', { method: 'HEAD' });
    expect(head.status).toBe(200);
    expect(head.headers['content-type']).toBe(registry.contentType);
    expect(head.body).toBe('');
  });

  it('serves an OpenMetrics registry with its own content type', async () => {
    const open = new Registry<OpenMetricsContentType>();
    open.setContentType(Registry.OPENMETRICS_CONTENT_TYPE);
    const r = registerMetrics(open);
    closers.push(async () => r.dispose());
    const port = await serve(open);
    const answer = await send(port, '/metrics');
    expect(answer.headers['content-type']).toBe(Registry.OPENMETRICS_CONTENT_TYPE);
    expect(answer.body).toContain('# TYPE bulwark_executions counter');
    expect(answer.body.endsWith('# EOF\n')).toBe(true);
  });

  it('answers 500 without the error when the registry cannot be collected', async () => {
    const broken = new Registry();
    new Gauge({
      name: 'app_broken',
      help: 'a gauge whose collect fails',
      registers: [broken],
      collect() {
        throw new Error('password=hunter2 at 10.1.2.3:5432');
      },
    });
    const port = await serve(broken);
    const answer = await send(port, '/metrics');
    expect(answer.status).toBe(500);
    expect(answer.body).toBe('Metrics unavailable\n');
    expect(answer.headers['content-type']).toBe('text/plain; charset=utf-8');
    for (const fragment of ['hunter2', '10.1.2.3', 'Error', 'at ']) expect(answer.body).not.toContain(fragment);
  });
});

describe('metricsHandler on node:http', () => {
  it('answers other methods 405 with Allow: GET, HEAD', async () => {
    const port = await nodeServer(registry);
    const answer = await send(port, '/metrics', { method: 'POST' });
    expect(answer.status).toBe(405);
    expect(answer.headers.allow).toBe('GET, HEAD');
    expect(answer.body).toBe('Method Not Allowed\n');
  });

  it('hands a collection error to onError', async () => {
    const errors: unknown[] = [];
    const broken = new Registry();
    const cause = new Error('collect failed');
    new Gauge({
      name: 'app_broken',
      help: 'x',
      registers: [broken],
      collect() {
        throw cause;
      },
    });
    const port = await nodeServer(broken, { onError: (e) => errors.push(e) });
    expect((await send(port, '/metrics')).status).toBe(500);
    expect(errors).toEqual([cause]);
  });

  it('checks its arguments', () => {
    expect(() => metricsHandler(undefined as never)).toThrow('metricsHandler: the first argument must be a prom-client Registry, got undefined');
    expect(() => metricsHandler(registry, { onErr: () => {} } as never)).toThrow('metricsHandler: unknown option "onErr" (known options: onError)');
    expect(() => metricsHandler(registry, { onError: 'log' } as never)).toThrow('metricsHandler: option "onError" must be a function, got "log"');
  });
});

describe('metricsRoute on Fastify', () => {
  it('answers 405 when routed other methods, and hands a collection error to onError', async () => {
    const errors: unknown[] = [];
    const broken = new Registry();
    const cause = new Error('collect failed');
    new Gauge({
      name: 'app_broken',
      help: 'x',
      registers: [broken],
      collect() {
        throw cause;
      },
    });
    const app = fastify5();
    app.route({ method: ['GET', 'POST'], url: '/all', handler: metricsRoute(registry) });
    const port = await fastifyServer(app, broken, { onError: (e) => errors.push(e) });
    const post = await send(port, '/all', { method: 'POST' });
    expect(post.status).toBe(405);
    expect(post.headers.allow).toBe('GET, HEAD');
    expect((await send(port, '/all')).status).toBe(200);
    expect((await send(port, '/metrics')).status).toBe(500);
    expect(errors).toEqual([cause]);
  });

  it('checks its arguments', () => {
    expect(() => metricsRoute({} as never)).toThrow('metricsRoute: the first argument must be a prom-client Registry, got an object');
    expect(() => metricsRoute(registry, [] as never)).toThrow('metricsRoute: options must be an object, got an array');
  });
});
