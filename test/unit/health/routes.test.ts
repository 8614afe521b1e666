import type { IncomingMessage, ServerResponse } from 'node:http';
import { describe, expect, it, vi } from 'vitest';
import { health, healthHandler } from '../../../src/index.js';
import { matchRoute, resolveRoutes, respond } from '../../../src/health/routes.js';
import { isServedPath } from '../../../src/health/served-paths.js';
import { flush } from '../../support/helpers.js';

function fakeRes() {
  const headers: Record<string, string> = {};
  const res = {
    statusCode: 0,
    headers,
    body: undefined as string | undefined,
    ended: false,
    setHeader: (k: string, v: string) => void (headers[k] = v),
    end: (b?: string) => {
      res.body = b;
      res.ended = true;
    },
  };
  return res;
}

describe('health routes', () => {
  const routes = resolveRoutes('test', { prefix: '/ops', verbose: 'query' });

  it.each([
    ['GET', '/ops/livez', 'live', false],
    ['GET', '/ops/livez/', 'live', false],
    ['HEAD', '/ops/readyz?verbose', 'ready', true],
    ['GET', '/ops/startupz?verbose=true', 'startup', true],
    ['GET', '/ops/healthz?verbose=0', 'summary', false],
    ['GET', '/ops/healthz?x=1&verbose', 'summary', true],
  ] as const)('%s %s is the %s probe (verbose: %s)', (method, url, route, verbose) => {
    expect(matchRoute(routes, method, url)).toEqual({ route, verbose });
  });

  it.each([
    ['/ops/readyz/db', 'ready', 'db'],
    ['/ops/livez/event-loop?verbose', 'live', 'event-loop'],
    ['/ops/healthz/a%20b', 'summary', 'a b'],
    ['/ops/readyz/db/x', 'ready', 'db/x'],
    ['/ops/readyz/%E0%A4%A', 'ready', '%E0%A4%A'],
  ] as const)('GET %s asks the %s probe about the check %j', (url, route, check) => {
    expect(matchRoute(routes, 'GET', url)).toMatchObject({ route, check });
  });

  it('makes verbose bodies opt-in: without the option, ?verbose changes nothing', () => {
    expect(matchRoute(resolveRoutes('test', undefined), 'GET', '/readyz?verbose')).toEqual({ route: 'ready', verbose: false });
  });

  it('registers the prefixed paths as served by bulwark when the routes are made', () => {
    expect(isServedPath('/routes-test/readyz/db')).toBe(false);
    resolveRoutes('test', { prefix: '/routes-test' });
    for (const p of ['/routes-test/livez', '/routes-test/readyz/db', '/routes-test/startupz', '/routes-test/healthz?verbose']) {
      expect(isServedPath(p), p).toBe(true);
    }
  });

  it.each([
    ['POST', '/ops/livez'],
    ['GET', '/livez'],
    ['GET', '/ops/livezz'],
    ['GET', '/ops/LIVEZ'],
    [undefined, '/ops/livez'],
    ['GET', undefined],
  ])('%s %s is not a health request', (method, url) => {
    expect(matchRoute(routes, method, url)).toBeUndefined();
  });

  it('renders 200/503 with no-store and JSON, verbose only when asked', async () => {
    const h = health({ checks: [{ name: 'db', check: () => false }] });
    const plain = await respond(h, 'ready', false);
    expect(plain).toEqual({
      statusCode: 503,
      headers: { 'content-type': 'application/json; charset=utf-8', 'cache-control': 'no-store' },
      body: '{"status":"fail"}',
    });
    expect(JSON.parse((await respond(h, 'ready', true)).body)).toEqual({
      status: 'fail',
      checks: { db: { status: 'fail', failure: 'returned-false', durationMs: 0 } },
    });
    expect((await respond(h, 'live', false)).statusCode).toBe(200);
    expect((await respond(h, 'ready', false, 'db')).statusCode).toBe(503);
    expect((await respond(h, 'ready', false, 'nope')).statusCode).toBe(404);
    expect((await respond(h, 'live', false, 'db')).statusCode).toBe(404);
  });

  it('healthHandler answers and returns true, or calls next and returns false', async () => {
    const handle = healthHandler(health());
    const next = vi.fn();
    const res = fakeRes();
    expect(handle({ method: 'GET', url: '/livez' } as IncomingMessage, res as unknown as ServerResponse, next)).toBe(true);
    await flush();
    expect(res).toMatchObject({ statusCode: 200, body: '{"status":"pass"}', ended: true });
    expect(res.headers['content-length']).toBe('17');
    expect(next).not.toHaveBeenCalled();
    const other = fakeRes();
    expect(handle({ method: 'GET', url: '/' } as IncomingMessage, other as unknown as ServerResponse, next)).toBe(false);
    expect(next).toHaveBeenCalledTimes(1);
    expect(other.ended).toBe(false);
    const head = fakeRes();
    handle({ method: 'HEAD', url: '/readyz' } as IncomingMessage, head as unknown as ServerResponse);
    await flush();
    expect(head).toMatchObject({ statusCode: 200, body: undefined, ended: true });
  });
});
