import { Agent, createServer, type Server } from 'node:http';
import { afterEach, describe, expect, it } from 'vitest';
import { eventLoopDelayCheck, gracefulShutdown, health, healthHandler, type Health } from '../../src/index.js';
import { blockLoop, close, get, listen, secretError, secretFragments } from './health-support.js';

let server: Server | undefined;
let h: Health | undefined;
afterEach(async () => {
  if (server) await close(server);
  h?.dispose();
  server = undefined;
  h = undefined;
});

async function serve(hh: Health, options?: Parameters<typeof healthHandler>[1]): Promise<number> {
  h = hh;
  const handle = healthHandler(hh, options);
  server = createServer((req, res) => {
    if (handle(req, res)) return;
    res.statusCode = 404;
    res.end('app');
  });
  return listen(server);
}

describe('healthHandler (node:http)', () => {
  it('answers the four paths with 200, no-store and a minimal JSON body, and leaves others to the app', async () => {
    const port = await serve(health({ checks: [{ name: 'db', check: () => true, probes: ['live', 'ready', 'startup'] }] }));
    for (const path of ['/livez', '/readyz', '/startupz', '/healthz']) {
      const a = await get(port, path);
      expect(a.status, path).toBe(200);
      expect(a.headers['cache-control']).toBe('no-store');
      expect(a.headers['content-type']).toBe('application/json; charset=utf-8');
      expect(JSON.parse(a.body)).toEqual({ status: 'pass' });
    }
    expect((await get(port, '/other')).status).toBe(404);
    expect((await get(port, '/other')).body).toBe('app');
    expect((await get(port, '/readyz', { method: 'POST' })).body).toBe('app');
  });

  it('answers 503 when a critical check fails, and HEAD with headers only', async () => {
    const port = await serve(health({ checks: [{ name: 'db', check: () => false }] }));
    const a = await get(port, '/readyz');
    expect(a.status).toBe(503);
    expect(JSON.parse(a.body)).toEqual({ status: 'fail' });
    const head = await get(port, '/readyz', { method: 'HEAD' });
    expect(head.status).toBe(503);
    expect(head.body).toBe('');
    expect(head.headers['cache-control']).toBe('no-store');
    expect((await get(port, '/livez')).status).toBe(200);
  });

  it("with verbose: 'query', shows per-check results only with ?verbose, and never an error message, stack or address", async () => {
    const port = await serve(
      health({
        checks: [
          { name: 'db', check: () => Promise.reject(secretError()) },
          { name: 'queue', critical: false, check: () => ({ status: 'warn', details: { depth: 7, err: secretError() as never } }) },
        ],
      }),
      { verbose: 'query' },
    );
    const plain = await get(port, '/readyz');
    expect(plain.body).toBe('{"status":"fail"}');
    const verbose = await get(port, '/readyz?verbose');
    expect(verbose.status).toBe(503);
    const body = JSON.parse(verbose.body);
    expect(body).toEqual({
      status: 'fail',
      checks: {
        db: { status: 'fail', failure: 'threw', durationMs: expect.any(Number) },
        queue: { status: 'warn', critical: false, durationMs: expect.any(Number), details: { depth: 7 } },
      },
    });
    for (const fragment of secretFragments) {
      expect(verbose.body).not.toContain(fragment);
      expect((await get(port, '/healthz?verbose=1')).body).not.toContain(fragment);
    }
    expect((await get(port, '/readyz?verbose=false')).body).toBe('{"status":"fail"}');
  });

  it("honours prefix and verbose: 'always' / 'never'", async () => {
    const port = await serve(health({ checks: [{ name: 'db', check: () => true }] }), { prefix: '/ops', verbose: 'always' });
    expect((await get(port, '/readyz')).body).toBe('app');
    expect(JSON.parse((await get(port, '/ops/readyz')).body).checks.db.status).toBe('pass');
    await close(server!);
    const port2 = await serve(health({ checks: [{ name: 'db', check: () => true }] }), { verbose: 'never' });
    expect((await get(port2, '/readyz?verbose')).body).toBe('{"status":"pass"}');
  });

  it('keeps per-check details out by default: ?verbose needs verbose: query (regression: they were opt-out)', async () => {
    const port = await serve(health({ checks: [{ name: 'db', check: () => ({ status: 'pass', details: { pool: 'primary' } }) }] }));
    for (const path of ['/readyz?verbose', '/healthz?verbose=1', '/readyz/db?verbose']) {
      expect((await get(port, path)).body, path).toBe('{"status":"pass"}');
    }
  });

  it('answers /readyz/<check> (and /livez, /startupz, /healthz) for that one check, 404 JSON for an unknown one (regression: they fell through to the app)', async () => {
    const port = await serve(
      health({
        checks: [
          { name: 'db', check: () => true },
          { name: 'cache', critical: false, check: () => false },
          { name: 'loop', probes: ['live'], check: () => true },
          { name: 'a b/c', check: () => true },
        ],
      }),
      { verbose: 'query', prefix: '/ops' },
    );
    expect((await get(port, '/ops/readyz')).status).toBe(200); // cache is not critical
    const db = await get(port, '/ops/readyz/db?verbose');
    expect(db.status).toBe(200);
    expect(JSON.parse(db.body)).toEqual({ status: 'pass', checks: { db: { status: 'pass', durationMs: expect.any(Number) } } });
    // Asked for by name, a failing check fails its answer, critical or not.
    expect(await get(port, '/ops/readyz/cache')).toMatchObject({ status: 503, body: '{"status":"fail"}' });
    expect((await get(port, '/ops/healthz/cache')).status).toBe(503);
    expect((await get(port, '/ops/livez/loop')).status).toBe(200);
    expect((await get(port, '/ops/readyz/a%20b%2Fc')).status).toBe(200);
    expect((await get(port, '/ops/readyz/db', { method: 'HEAD' })).body).toBe('');
    expect((await get(port, '/ops/readyz/')).status).toBe(200); // a bare trailing slash is the probe
    for (const path of ['/ops/readyz/nope', '/ops/readyz/loop', '/ops/livez/db', '/ops/readyz/db/x', '/ops/readyz/%E0%A4%A']) {
      const a = await get(port, path);
      expect(a.status, path).toBe(404);
      expect(a.headers['content-type'], path).toBe('application/problem+json');
      expect(a.headers['cache-control'], path).toBe('no-store');
      expect(JSON.parse(a.body), path).toMatchObject({ status: 404, title: 'Not Found' });
      expect(a.body, path).not.toContain('nope');
    }
  });

  it('a per-check readiness answer fails while starting and while shutting down, as the probe does', async () => {
    const hh = health({ waitForStarted: true, checks: [{ name: 'db', check: () => true }] });
    const port = await serve(hh, { verbose: 'always' });
    expect(JSON.parse((await get(port, '/readyz/db')).body)).toMatchObject({ status: 'fail', state: 'starting' });
    hh.started();
    expect((await get(port, '/readyz/db')).status).toBe(200);
    hh.beginShutdown();
    expect(JSON.parse((await get(port, '/readyz/db')).body)).toMatchObject({ status: 'fail', state: 'shutting-down' });
    expect((await get(port, '/livez')).status).toBe(200);
  });

  it('answers startupz 503 until started, then readyz follows', async () => {
    const hh = health({ waitForStarted: true });
    const port = await serve(hh, { verbose: 'query' });
    expect((await get(port, '/startupz')).status).toBe(503);
    expect(JSON.parse((await get(port, '/readyz?verbose')).body)).toEqual({ status: 'fail', state: 'starting', checks: {} });
    expect((await get(port, '/livez')).status).toBe(200);
    hh.started();
    expect((await get(port, '/startupz')).status).toBe(200);
    expect((await get(port, '/readyz')).status).toBe(200);
  });

  it('runs a check once for many concurrent probe requests', async () => {
    let calls = 0;
    const port = await serve(
      health({ checks: [{ name: 'db', check: () => { calls++; return new Promise((r) => setTimeout(r, 100)); } }] }),
    );
    const answers = await Promise.all(Array.from({ length: 30 }, () => get(port, '/readyz')));
    expect(answers.every((a) => a.status === 200)).toBe(true);
    expect(calls).toBe(1);
  });

  it('cuts a hanging check at its timeout and answers 503 in time', async () => {
    const port = await serve(health({ checks: [{ name: 'hang', timeoutMs: 150, check: () => new Promise(() => {}) }] }), { verbose: 'query' });
    const started = performance.now();
    const a = await get(port, '/readyz?verbose');
    expect(performance.now() - started).toBeLessThan(1000);
    expect(a.status).toBe(503);
    expect(JSON.parse(a.body).checks.hang.failure).toBe('timed-out');
  });

  it('a shutdown set up after a request began still closes its keep-alive connection once it finishes', async () => {
    const hh = health();
    h = hh;
    const handle = healthHandler(hh);
    server = createServer((req, res) => {
      if (handle(req, res)) return;
      setTimeout(() => res.end('done'), 200);
    });
    const port = await listen(server);
    const agent = new Agent({ keepAlive: true });
    try {
      const slow = get(port, '/slow', { agent });
      await new Promise((r) => setTimeout(r, 50));
      const result = await gracefulShutdown(server, { health: hh, signals: [], exit: false, drainDelayMs: 0, closeTimeoutMs: 2000 }).shutdown();
      expect(result.forced).toBe(false);
      expect((await slow).body).toBe('done');
    } finally {
      agent.destroy();
    }
  });

  it('without a health given, the shutdown still fails the /readyz it serves during the drain (regression: the log said so, /readyz said 200)', async () => {
    const hh = health();
    const port = await serve(hh);
    const lines: string[] = [];
    const stopper = gracefulShutdown(server!, { signals: [], exit: false, drainDelayMs: 300, closeTimeoutMs: 1000, log: (l) => lines.push(l) });
    expect((await get(port, '/readyz')).status).toBe(200);
    const done = stopper.shutdown();
    const during = await get(port, '/readyz');
    expect(during.status).toBe(503);
    expect(during.headers.connection).toBe('close');
    expect((await get(port, '/livez')).status).toBe(200);
    expect(lines[0]).toMatch(/^shutdown: readiness failing \(/);
    expect((await done).exitCode).toBe(0);
  });

  it('F13: the event loop blocked for 2 s shows in the probes, then clears; other checks are unharmed', async () => {
    let dbCalls = 0;
    const port = await serve(
      health({
        checks: [
          eventLoopDelayCheck({ maxDelayMs: 1000, windowMs: 1500 }),
          { name: 'db', probes: ['ready'], check: () => { dbCalls++; } },
        ],
      }),
      { verbose: 'query' },
    );
    expect((await get(port, '/readyz')).status).toBe(200);
    // The probe requests are sent, then the loop blocks before the server can take them.
    const during = Promise.all([get(port, '/readyz?verbose'), get(port, '/livez?verbose')]);
    blockLoop(2000);
    const [ready, live] = await during;
    expect(ready.status).toBe(503);
    expect(live.status).toBe(503);
    const check = JSON.parse(ready.body).checks['event-loop'];
    expect(check.status).toBe('fail');
    expect(check.details.delayMs).toBeGreaterThanOrEqual(1000);
    expect(JSON.parse(ready.body).checks.db.status).toBe('pass');
    // Once the window has passed, the probes recover by themselves.
    await new Promise((r) => setTimeout(r, 1600));
    expect((await get(port, '/readyz')).status).toBe(200);
    expect((await get(port, '/livez')).status).toBe(200);
    expect(dbCalls).toBeGreaterThanOrEqual(3);
  }, 15_000);
});
