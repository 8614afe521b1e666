// RELIABILITY.md row C5 for a whole service: user callbacks that throw — the quota's `key` and
// `cost`, a breaker's `handle` predicate, a fallback, a retry listener on bulwark/fetch — each in
// the assembled service running as its own process, which counts what reaches
// `uncaughtException` and `unhandledRejection`. The request that met the throwing callback gets an
// answer: for `key` and `cost`, a 5xx application/problem+json; for the others whatever the
// service makes of the failed call; never an HTML error page, never a stack trace or the error's
// message in the body. Figure: uncaught exceptions + unhandled rejections = 0.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startChild, useServiceProgram, type Child } from './support/child.js';
import { frameworks, get, problemOf, sleep, type Answer } from './support/harness.js';

const shared = useServiceProgram();

/** What the request met: path and headers. */
const cases = [
  { callback: 'key', path: '/api/items', headers: { 'x-throw': 'key' }, problem5xx: true },
  { callback: 'cost', path: '/api/items', headers: { 'x-throw': 'cost' }, problem5xx: true },
  { callback: 'handle', path: '/api/items?fail=1&throw=handle', headers: {}, problem5xx: false },
  { callback: 'fallback', path: '/api/items?fail=1&throw=fallback', headers: {}, problem5xx: true },
  { callback: 'listener', path: '/api/items?fail=1&throw=listener', headers: {}, problem5xx: false },
] as const;

/** Lines the child printed about uncaught exceptions and unhandled rejections, from index `from`. */
function faultLines(child: Child, from: number): string[] {
  return child.lines.slice(from).filter((l) => l.startsWith('uncaught ') || l.startsWith('unhandled '));
}

describe.each(frameworks)('C5 %s service: a user callback throws', (framework) => {
  let child: Child;
  beforeAll(async () => {
    // NODE_ENV unset, as on a developer's machine: Express's final handler then shows stacks.
    child = await startChild(shared.program, {
      SERVICE_FRAMEWORK: framework,
      REDIS_PORT: String(shared.redis.port),
      UPSTREAM_URL: shared.upstream.url,
      DRAIN_DELAY_MS: '0',
      NODE_ENV: undefined,
    });
  });
  afterAll(async () => {
    if (!child) return;
    child.proc.kill('SIGTERM');
    const exit = await child.exited;
    // Whatever the cases did, the process ended cleanly and saw no uncaught error in all.
    expect(child.lines.filter((l) => l.startsWith('faults '))).toEqual(['faults uncaught=0 unhandled=0']);
    expect(exit).toMatchObject({ code: 0, signal: null });
  });

  it.each(cases)('$callback: the request is answered without internals, and the process sees nothing uncaught', async ({ path, headers, problem5xx }) => {
    const from = child.lines.length;
    const answer: Answer = await get(child.port, path, { 'x-forwarded-for': '198.51.100.60', 'x-tenant': 'acme', ...headers });
    await sleep(50); // a rethrow on a later tick or microtask shows up by then
    expect(faultLines(child, from), 'uncaught exceptions and unhandled rejections').toEqual([]);
    expect(String(answer.headers['content-type'])).not.toMatch(/text\/html/);
    expect(answer.body).not.toMatch(/\n\s+at |<pre>|<html|\/srv\/secret|callback failed/);
    if (problem5xx) {
      expect(answer.status, answer.body.slice(0, 300)).toBeGreaterThanOrEqual(500);
      expect(answer.status).toBeLessThan(600);
      expect(problemOf(answer)).toMatchObject({ status: answer.status });
    } else {
      expect([200, 502, 503], answer.body.slice(0, 300)).toContain(answer.status);
    }
    // The service still serves.
    expect((await get(child.port, '/livez')).status).toBe(200);
  });
});
