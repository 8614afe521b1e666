import type { Server } from 'node:http';
import { Agent } from 'node:http';
import express from 'express';
import { afterEach, describe, expect, it } from 'vitest';
import { healthMiddleware } from '../../src/adapters/express.js';
import { gracefulShutdown, health } from '../../src/index.js';
import { close, get, secretError, secretFragments } from './health-support.js';

// Express 4 ships no types of its own under its alias: use Express 5's for both.
const express4Name: string = 'express4';
const express4 = ((await import(express4Name)) as { default: typeof express }).default;

let server: Server | undefined;
afterEach(async () => {
  if (server) await close(server);
  server = undefined;
});

describe.each([
  ['Express 4', express4],
  ['Express 5', express],
])('healthMiddleware on %s', (_name, makeApp) => {
  it('serves the probes, passes other requests on, and keeps errors out of verbose bodies', async () => {
    const h = health({ checks: [{ name: 'db', check: () => Promise.reject(secretError()) }, { name: 'ok', probes: ['live'], check: () => true }] });
    const app = makeApp();
    app.use(healthMiddleware(h, { prefix: '/ops', verbose: 'query' }));
    app.get('/hello', (_req, res) => void res.send('hi'));
    server = app.listen(0, '127.0.0.1');
    const port = await new Promise<number>((resolve) => server!.once('listening', () => resolve((server!.address() as { port: number }).port)));
    const live = await get(port, '/ops/livez');
    expect(live.status).toBe(200);
    expect(live.headers['cache-control']).toBe('no-store');
    expect(JSON.parse(live.body)).toEqual({ status: 'pass' });
    const ready = await get(port, '/ops/readyz?verbose');
    expect(ready.status).toBe(503);
    expect(JSON.parse(ready.body).checks.db).toEqual({ status: 'fail', failure: 'threw', durationMs: expect.any(Number) });
    for (const fragment of secretFragments) expect(ready.body).not.toContain(fragment);
    expect((await get(port, '/ops/readyz', { method: 'HEAD' })).body).toBe('');
    expect((await get(port, '/hello')).body).toBe('hi');
    expect((await get(port, '/livez')).status).toBe(404);
    // One check by name, and a 404 problem rather than the app for a name the probe lacks.
    expect((await get(port, '/ops/livez/ok')).status).toBe(200);
    expect((await get(port, '/ops/readyz/db')).status).toBe(503);
    const unknown = await get(port, '/ops/readyz/nope');
    expect(unknown.status).toBe(404);
    expect(unknown.headers['content-type']).toBe('application/problem+json');
  });

  it('works mounted under a path', async () => {
    const app = makeApp();
    app.use('/internal', healthMiddleware(health()));
    server = app.listen(0, '127.0.0.1');
    const port = await new Promise<number>((resolve) => server!.once('listening', () => resolve((server!.address() as { port: number }).port)));
    expect((await get(port, '/internal/healthz')).status).toBe(200);
  });

  it('shuts down gracefully: readiness fails during the drain, an in-flight request finishes, keep-alive is closed', async () => {
    const h = health();
    const app = makeApp();
    app.use(healthMiddleware(h));
    app.get('/slow', (_req, res) => void setTimeout(() => res.send('done'), 300));
    app.get('/fast', (_req, res) => void res.send('ok'));
    server = app.listen(0, '127.0.0.1');
    const port = await new Promise<number>((resolve) => server!.once('listening', () => resolve((server!.address() as { port: number }).port)));
    const stopper = gracefulShutdown(server, { health: h, signals: [], exit: false, drainDelayMs: 150, closeTimeoutMs: 2000 });
    const agent = new Agent({ keepAlive: true, maxSockets: 2 });
    try {
      expect((await get(port, '/fast', { agent })).headers.connection).toBe('keep-alive');
      const slow = get(port, '/slow', { agent });
      await new Promise((r) => setTimeout(r, 50));
      const done = stopper.shutdown();
      const ready = await get(port, '/readyz');
      expect(ready.status).toBe(503);
      const during = await get(port, '/fast', { agent });
      expect(during.body).toBe('ok');
      expect(during.headers.connection).toBe('close');
      const result = await done;
      expect(result).toMatchObject({ forced: false, exitCode: 0 });
      const finished = await slow;
      expect(finished.body).toBe('done');
      expect(finished.headers.connection).toBe('close');
      expect(server.listening).toBe(false);
      await expect(get(port, '/fast')).rejects.toMatchObject({ code: 'ECONNREFUSED' });
    } finally {
      agent.destroy();
    }
  });
});
