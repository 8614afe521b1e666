// Rate limits, quotas, store errors, load shedding, health checks and fetch failovers as metrics,
// driven by the real limiters, stores, shedder, health and fetch client.
import { describe, expect, it } from 'vitest';
import { createFetch } from '../../../src/adapters/fetch.js';
import { constant, fixedWindow, health, loadShedder, quota, rateLimiter } from '../../../src/index.js';
import { redisStore } from '../../../src/ratelimit/redis/index.js';
import { flush } from '../../support/helpers.js';
import { FakeClient } from '../ratelimit/redis/fake-client.js';
import { series, setup, valueOf } from './support.js';

const SECRET_KEY = 'user-7f3a9c@example.org';

describe('rate limits and quotas', () => {
  it('count decisions by kind, limiter, decision and store', async () => {
    const { registry } = setup();
    const limiter = rateLimiter({ name: 'api', algorithm: fixedWindow({ limit: 2, windowMs: 60_000 }) });
    for (let i = 0; i < 3; i++) await limiter.consume('k');
    const q = quota({ name: 'monthly', limit: 1, period: 'month', timeZone: 'UTC' });
    await q.consume('k');
    await q.consume('k');
    const d = (labels: Record<string, string>) => valueOf(registry, 'bulwark_ratelimit_decisions_total', labels);
    expect(await d({ kind: 'rate-limiter', policy: 'api', decision: 'allowed', store: 'memory' })).toBe(2);
    expect(await d({ kind: 'rate-limiter', policy: 'api', decision: 'denied', store: 'memory' })).toBe(1);
    expect(await d({ kind: 'quota', policy: 'monthly', decision: 'allowed', store: 'memory' })).toBe(1);
    expect(await d({ kind: 'quota', policy: 'monthly', decision: 'denied', store: 'memory' })).toBe(1);
  });

  it('never puts a key in a label', async () => {
    const { registry } = setup();
    const limiter = rateLimiter({ name: 'per-user', algorithm: fixedWindow({ limit: 1, windowMs: 60_000 }) });
    await limiter.consume(SECRET_KEY);
    await limiter.consume(SECRET_KEY);
    await quota({ name: 'daily', limit: 1, period: 'day', timeZone: 'UTC' }).consume(SECRET_KEY);
    const text = await registry.metrics();
    expect(text).toContain('policy="per-user"');
    expect(text).toContain('policy="daily"');
    expect(text).not.toContain('7f3a9c');
    expect(text).not.toContain('example.org');
  });

  it('counts operations hit by a store error, and decisions taken by the fallback under its own store label', async () => {
    const { registry } = setup();
    const client = new FakeClient();
    const limiter = rateLimiter({ name: 'api', algorithm: fixedWindow({ limit: 10, windowMs: 60_000 }), store: redisStore(client) });
    const decisions = Promise.all([limiter.consume(SECRET_KEY), limiter.consume('b')]);
    await flush();
    client.last().reject(new Error(`Connection to 10.0.0.9:6379 lost while handling ${SECRET_KEY}`));
    expect((await decisions).map((x) => x.store)).toEqual(['local', 'local']);
    // One failed round trip that carried both decisions: two operations fell back.
    expect(await valueOf(registry, 'bulwark_ratelimit_store_errors_total', { store: 'redis', fallback: 'local' })).toBe(2);
    expect(
      await valueOf(registry, 'bulwark_ratelimit_decisions_total', { kind: 'rate-limiter', policy: 'api', decision: 'allowed', store: 'local' }),
    ).toBe(2);
    const text = await registry.metrics();
    expect(text).not.toContain('10.0.0.9');
    expect(text).not.toContain('7f3a9c');
  });
});

describe('load shedding', () => {
  it('counts rejections by the measure over its threshold', async () => {
    const { registry } = setup();
    let delay = 0;
    const shedder = loadShedder({ maxEventLoopDelayMs: 100, sampler: () => ({ eventLoopDelayMs: delay }) });
    try {
      shedder.reject(); // not under pressure: nothing is published
      delay = 500;
      shedder.update();
      shedder.reject();
      shedder.reject();
      expect(await valueOf(registry, 'bulwark_shedding_rejections_total', { reason: 'eventLoopDelay' })).toBe(2);
      expect(await series(registry, 'bulwark_shedding_rejections_total')).toHaveLength(1);
    } finally {
      shedder.dispose();
    }
  });
});

describe('health checks', () => {
  it('show the latest status of each check (1 for it, 0 for the others), whether it is critical, and its duration', async () => {
    const { registry } = setup();
    let dbUp = true;
    const h = health({
      checks: [
        { name: 'db', check: () => dbUp },
        { name: 'cache', critical: false, check: () => ({ status: 'warn' }) },
      ],
    });
    await h.readiness();
    const status = (check: string, critical: string, s: string) =>
      valueOf(registry, 'bulwark_health_check_status', { check, critical, status: s });
    expect(await status('db', 'true', 'pass')).toBe(1);
    expect(await status('db', 'true', 'fail')).toBe(0);
    expect(await status('cache', 'false', 'warn')).toBe(1);
    expect(await status('cache', 'false', 'pass')).toBe(0);
    dbUp = false;
    await h.readiness();
    expect(await status('db', 'true', 'pass')).toBe(0);
    expect(await status('db', 'true', 'fail')).toBe(1);
    const duration = await valueOf(registry, 'bulwark_health_check_duration_seconds', { check: 'db' });
    expect(duration).toBeGreaterThanOrEqual(0);
    expect(duration).toBeLessThan(1);
  });
});

describe('fetch failovers', () => {
  it('count failovers by client and reason, without the origins', async () => {
    const { registry } = setup();
    const f = createFetch({
      name: 'quotes',
      endpoints: ['http://primary.internal:8080', 'http://standby.internal:8080'],
      retry: { maxAttempts: 2, backoff: constant(0) },
      fetch: (input) =>
        Promise.resolve(new Response('x', { status: String(input instanceof Request ? input.url : input).includes('primary') ? 503 : 200 })),
    });
    expect((await f('/quote')).status).toBe(200);
    expect(await valueOf(registry, 'bulwark_fetch_failovers_total', { policy: 'quotes', reason: 'failure' })).toBe(1);
    const text = (await registry.metrics()).split('\n').filter((l) => l.startsWith('bulwark_fetch_failovers_total'));
    expect(text.join('\n')).not.toContain('internal');
  });
});
