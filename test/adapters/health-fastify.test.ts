import { Agent } from 'node:http';
import fastify, { type FastifyInstance } from 'fastify';
import fastify4 from 'fastify4';
import { afterEach, describe, expect, it } from 'vitest';
import { healthPlugin } from '../../src/adapters/fastify.js';
import { gracefulShutdown, health } from '../../src/index.js';
import { get, secretError, secretFragments } from './health-support.js';

type App = ReturnType<typeof fastify>;

// Compile-time: the plugin fits both majors' register() typings.
export function typeChecks(): void {
  void fastify4().register(healthPlugin, { health: health(), prefix: '/ops' });
  void fastify().register(healthPlugin, { health: health(), verbose: 'never' });
}
let app: App | undefined;
afterEach(async () => {
  await app?.close();
  app = undefined;
});

async function start(a: App): Promise<number> {
  app = a;
  await a.listen({ port: 0, host: '127.0.0.1' });
  return (a.server.address() as { port: number }).port;
}

describe.each([
  ['Fastify 4', () => fastify4() as unknown as App],
  ['Fastify 5', () => fastify()],
])('healthPlugin on %s', (_name, makeApp) => {
  it('serves the probes with 200/503, no-store and JSON, and keeps errors out of verbose bodies', async () => {
    const a = makeApp();
    const h = health({ checks: [{ name: 'db', check: () => Promise.reject(secretError()) }, { name: 'up', probes: ['live'], check: () => true }] });
    await a.register(healthPlugin, { health: h, verbose: 'query' });
    const port = await start(a);
    const live = await get(port, '/livez');
    expect(live.status).toBe(200);
    expect(live.headers['cache-control']).toBe('no-store');
    expect(live.headers['content-type']).toBe('application/json; charset=utf-8');
    expect(JSON.parse(live.body)).toEqual({ status: 'pass' });
    expect((await get(port, '/readyz')).body).toBe('{"status":"fail"}');
    const verbose = await get(port, '/readyz?verbose');
    expect(verbose.status).toBe(503);
    expect(JSON.parse(verbose.body).checks.db).toEqual({ status: 'fail', failure: 'threw', durationMs: expect.any(Number) });
    for (const fragment of secretFragments) expect(verbose.body).not.toContain(fragment);
    const head = await get(port, '/healthz', { method: 'HEAD' });
    expect(head.status).toBe(503);
    expect(head.body).toBe('');
    expect((await get(port, '/startupz')).status).toBe(200);
  });

  it('answers /readyz/<check> for that one check, and 404 JSON for a name the probe does not have (regression: they were left to the app)', async () => {
    const a = makeApp();
    const h = health({ checks: [{ name: 'db', check: () => true }, { name: 'cache', critical: false, check: () => false }, { name: 'up', probes: ['live'], check: () => true }] });
    await a.register(healthPlugin, { health: h, prefix: '/ops' });
    const port = await start(a);
    expect((await get(port, '/ops/readyz')).status).toBe(200);
    expect(await get(port, '/ops/readyz/db')).toMatchObject({ status: 200, body: '{"status":"pass"}' });
    expect((await get(port, '/ops/readyz/cache')).status).toBe(503);
    expect((await get(port, '/ops/livez/up')).status).toBe(200);
    expect((await get(port, '/ops/healthz/cache', { method: 'HEAD' })).status).toBe(503);
    expect((await get(port, '/ops/readyz/db?verbose')).body).toBe('{"status":"pass"}'); // verbose is opt-in
    for (const path of ['/ops/readyz/nope', '/ops/livez/db', '/ops/startupz/db']) {
      const answer = await get(port, path);
      expect(answer.status, path).toBe(404);
      expect(answer.headers['content-type'], path).toMatch(/^application\/problem\+json/);
      expect(JSON.parse(answer.body), path).toMatchObject({ status: 404, title: 'Not Found' });
    }
  });

  it('is not encapsulated: routes registered from a child context land at its own prefix', async () => {
    const a = makeApp();
    await a.register(async (child: FastifyInstance) => {
      await child.register(healthPlugin, { health: health(), prefix: '/ops', verbose: 'always' });
    });
    const port = await start(a);
    expect(JSON.parse((await get(port, '/ops/readyz')).body)).toEqual({ status: 'pass', checks: {} });
    expect((await get(port, '/readyz')).status).toBe(404);
  });

  it('rejects bad options at registration', async () => {
    const a = makeApp();
    app = a;
    await expect(a.register(healthPlugin, { health: health(), verbose: 'yes' as never })).rejects.toThrow(/"verbose"/);
  });

  it('shuts a Fastify instance down gracefully: readiness fails first, the in-flight request finishes, onClose runs', async () => {
    const a = makeApp();
    const h = health();
    await a.register(healthPlugin, { health: h });
    a.get('/slow', async () => {
      await new Promise((r) => setTimeout(r, 300));
      return 'done';
    });
    a.get('/fast', async () => 'ok');
    const closed: string[] = [];
    a.addHook('onClose', async () => void closed.push('onClose'));
    const port = await start(a);
    const stopper = gracefulShutdown(a, { health: h, signals: [], exit: false, drainDelayMs: 150, closeTimeoutMs: 2000 });
    const agent = new Agent({ keepAlive: true, maxSockets: 2 });
    try {
      const slow = get(port, '/slow', { agent });
      await new Promise((r) => setTimeout(r, 50));
      const done = stopper.shutdown();
      expect((await get(port, '/readyz')).status).toBe(503);
      const during = await get(port, '/fast', { agent });
      expect(during.body).toBe('ok');
      expect(during.headers.connection).toBe('close');
      const result = await done;
      expect(result).toMatchObject({ forced: false, exitCode: 0 });
      expect((await slow).body).toBe('done');
      expect(closed).toEqual(['onClose']);
      await expect(get(port, '/fast')).rejects.toMatchObject({ code: 'ECONNREFUSED' });
    } finally {
      agent.destroy();
      app = undefined;
    }
  });

  it('a request that outlasts closeTimeoutMs is cut, and the onClose hooks still run before the shutdown hooks', async () => {
    const a = makeApp();
    a.get('/hang', () => new Promise(() => {}));
    const order: string[] = [];
    a.addHook('onClose', async () => {
      await new Promise((r) => setTimeout(r, 50));
      order.push('onClose');
    });
    const port = await start(a);
    const hang = get(port, '/hang').then(
      () => 'answered',
      (error: NodeJS.ErrnoException) => error.code,
    );
    await new Promise((r) => setTimeout(r, 50));
    const stopper = gracefulShutdown(a, {
      signals: [],
      exit: false,
      drainDelayMs: 0,
      closeTimeoutMs: 200,
      hooks: [function after() { order.push('hook'); }],
    });
    const result = await stopper.shutdown();
    app = undefined;
    expect(result).toMatchObject({ forced: true, exitCode: 1 });
    expect(await hang).toBe('ECONNRESET');
    expect(order).toEqual(['onClose', 'hook']);
  });
});

describe('healthPlugin with a lenient router', () => {
  it.each([
    ['Fastify 4', () => fastify4({ ignoreTrailingSlash: true, caseSensitive: false }) as unknown as App],
    ['Fastify 5', () => fastify({ routerOptions: { ignoreTrailingSlash: true, caseSensitive: false } })],
  ])('%s: ?verbose is honoured on every path the router sends to a probe', async (_name, makeApp) => {
    const a = makeApp();
    await a.register(healthPlugin, { health: health({ checks: [{ name: 'db', check: () => true }] }), verbose: 'query' });
    const port = await start(a);
    for (const path of ['/readyz?verbose', '/readyz/?verbose', '/READYZ?verbose']) {
      const answer = await get(port, path);
      expect(answer.status, path).toBe(200);
      expect(JSON.parse(answer.body), path).toEqual({ status: 'pass', checks: { db: { status: 'pass', durationMs: expect.any(Number) } } });
    }
    expect((await get(port, '/readyz/')).body).toBe('{"status":"pass"}');
    expect((await get(port, '/READYZ/db/')).status).toBe(200);
  });
});
