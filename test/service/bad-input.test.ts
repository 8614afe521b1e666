// RELIABILITY.md "Bad input" list, as it reaches a whole service: a client that controls its cost
// sends 0, NaN, a numeric string ("5") or more than the whole quota, and clients send garbage and
// 8 KB X-Forwarded-For lists through the trusted local proxy. Each bad cost gets a 4xx
// problem+json answer (never a 500, never an HTML page or a stack trace) and takes nothing from
// the tenant's quota; the X-Forwarded-For cases are answered as any request is (keyed by the last
// address that can be believed, as the README says), never with a 5xx. Figure: error-log lines
// for all these requests ≤ 1 (a client must not be able to flood the log).
import { describe, expect, it } from 'vitest';
import { frameworks, get, item, problemOf, startService, useRedisAndUpstream, type Answer } from './support/harness.js';

const shared = useRedisAndUpstream();

const TENANT_UNITS = 1_000;
const tenant = { 'x-forwarded-for': '198.51.100.40', 'x-tenant': 'careless' };

/** The bad costs: path and headers. */
const badCosts: [string, string, Record<string, string>][] = [
  ['a cost of 0', '/api/items?units=0', tenant],
  ['a cost of NaN', '/api/items?units=NaN', tenant],
  ['a numeric string ("5") from an unconverted header', '/api/reports', { ...tenant, 'x-units': '5' }],
  ['a cost above the whole quota', `/api/items?units=${TENANT_UNITS + 1}`, tenant],
];

/** Up to 8 KB of whole hops, all loopback (trusted by the service), behind one client address. */
function longHops(): string {
  let list = '203.0.113.5';
  for (let i = 1; ; i++) {
    const next = `${list}, 127.0.${(i >> 8) & 255}.${(i & 255) || 1}`;
    if (next.length > 8 * 1024) return list;
    list = next;
  }
}

const badAddresses: [string, Record<string, string>][] = [
  ['garbage X-Forwarded-For', { 'x-forwarded-for': 'not-an-address, ,,;, 999.1.1.1, [::zz]', 'x-tenant': 'careless' }],
  ['an 8 KB X-Forwarded-For', { 'x-forwarded-for': longHops(), 'x-tenant': 'careless' }],
];

function expectSafeBody(answer: Answer): void {
  expect(String(answer.headers['content-type'])).not.toMatch(/text\/html/);
  expect(answer.body).not.toMatch(/\n\s+at |<pre>|<html|node_modules|\/src\//);
}

describe.each(frameworks)('bad input to the %s service', (framework) => {
  it('a bad cost gets a 4xx problem answer, takes nothing from the quota, and adds no error-log line per request', async () => {
    const started = shared.track(await startService(framework, { redisPort: shared.redis.port, upstreamUrl: shared.upstream.url, tenantUnits: TENANT_UNITS }));
    const { service, errorLog } = started;
    const logBefore = errorLog.length;

    const seen: string[] = [];
    for (const [what, path, headers] of badCosts) {
      for (let i = 0; i < 3; i++) {
        const a = await get(service.port, path, headers);
        seen.push(`${what}: ${a.status}`);
        expect(a.status, `${what}: ${a.body.slice(0, 200)}`).toBeGreaterThanOrEqual(400);
        expect(a.status, `${what}: ${a.body.slice(0, 200)}`).toBeLessThan(500);
        expectSafeBody(a);
        expect(problemOf(a)).toMatchObject({ status: a.status });
      }
    }
    expect(errorLog.length - logBefore, `error-log lines for ${seen.length} bad requests: ${errorLog.slice(logBefore, logBefore + 3).join(' | ')}`).toBeLessThanOrEqual(1);

    // Nothing was taken: the next good request finds the whole quota but its own unit.
    const good = await get(service.port, '/api/items', tenant);
    expect(good.status).toBe(200);
    expect(item(good.headers.ratelimit, 'tenant-units')?.params.r).toBe(TENANT_UNITS - 1);
  });

  it('garbage and 8 KB X-Forwarded-For lists are answered like any request, never with a 5xx or an error-log line', async () => {
    const started = shared.track(await startService(framework, { redisPort: shared.redis.port, upstreamUrl: shared.upstream.url, perClientLimit: 100 }));
    const { service, errorLog } = started;
    const logBefore = errorLog.length;

    for (const [what, headers] of badAddresses) {
      for (let i = 0; i < 3; i++) {
        const a = await get(service.port, '/hello', headers);
        expect(a.status, `${what}: ${a.body.slice(0, 200)}`).toBe(200);
        expectSafeBody(a);
        expect(item(a.headers.ratelimit, 'per-client'), `${what}: RateLimit ${String(a.headers.ratelimit)}`).toBeDefined();
      }
    }
    expect(errorLog.slice(logBefore), 'error-log lines').toEqual([]);
  });
});
