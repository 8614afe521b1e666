// inspect(), recordPolicies() and inspectHandler() (issue 17 §1): every kind of policy listed
// with its state; rates and the last 20 events only while a recording is held; nothing
// subscribed once the last recording goes; and never a key, an address, a tenant, an error
// message or a connection string in the output.
import diagnosticsChannel from 'node:diagnostics_channel';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Redis } from 'ioredis';
import { afterEach, describe, expect, it } from 'vitest';
import {
  admissionController,
  bulkhead,
  channelNames,
  circuitBreaker,
  consecutive,
  constant,
  fixedWindow,
  gcra,
  health,
  inspect,
  inspectHandler,
  loadShedder,
  quota,
  rateLimiter,
  recordPolicies,
  retry,
  retryBudget,
  type Disposable,
  type PolicyViewBase,
} from '../../../src/index.js';
import { redisStore } from '../../../src/ratelimit/redis/index.js';

const held: Disposable[] = [];
afterEach(() => {
  for (const d of held.splice(0)) d.dispose();
});

const find = (kind: string, name: string): PolicyViewBase | undefined => inspect().policies.find((p) => p.kind === kind && p.name === name);
const fail = (message: string) => () => Promise.reject(new Error(message));

describe('inspect()', () => {
  it('lists every kind of policy by name with its state, and no rates or events while nobody records', async () => {
    const breaker = circuitBreaker({ name: 'list-breaker', breaker: consecutive(1), halfOpenAfterMs: 5_000 });
    const retrying = retry({ name: 'list-retry', budget: retryBudget({ ratio: 0.5 }) });
    const pool = bulkhead({ name: 'list-bulkhead', maxConcurrent: 3, maxQueue: 2 });
    const admission = admissionController({ name: 'list-admission', limit: 7 });
    const limiter = rateLimiter({ name: 'list-limiter', algorithm: gcra({ limit: 10, periodMs: 1_000 }) });
    const monthly = quota({ name: 'list-quota', limit: 100, period: 'month' });
    const shedder = loadShedder({ sampler: () => ({ eventLoopDelayMs: 12 }), maxEventLoopDelayMs: 50 });
    held.push(shedder);
    const checks = health({ checks: [{ name: 'list-db', check: () => true }] });
    await expect(breaker.execute(fail('boom'))).rejects.toThrow('boom');
    const permit = admission.tryAcquire();
    shedder.update();
    await checks.readiness();

    expect(find('circuit-breaker', 'list-breaker')).toMatchObject({ state: { state: 'open', opens: 1 }, events: [] });
    expect((find('circuit-breaker', 'list-breaker')!.state.halfOpenInMs as number) > 4_000).toBe(true);
    expect(find('circuit-breaker', 'list-breaker')!.rates).toBeUndefined();
    expect(find('retry', 'list-retry')).toMatchObject({ state: { maxAttempts: 3, budget: { ratio: 0.5, available: 100 } } });
    expect(find('bulkhead', 'list-bulkhead')).toMatchObject({ state: { inFlight: 0, queued: 0, limit: 3, maxQueue: 2 } });
    expect(find('admission-controller', 'list-admission')).toMatchObject({ state: { inFlight: 1, limit: 7, adaptive: false } });
    expect(find('rate-limiter', 'list-limiter')).toMatchObject({ state: { algorithm: 'gcra', mode: 'enforce' } });
    expect(find('quota', 'list-quota')).toMatchObject({ state: { limit: 100, period: 'month' } });
    const shed = inspect().policies.filter((p) => p.kind === 'load-shedder');
    expect(shed.some((p) => (p.state.signals as { eventLoopDelayMs: unknown }).eventLoopDelayMs !== undefined)).toBe(true);
    expect(shed.map((p) => p.state.signals)).toContainEqual(expect.objectContaining({ eventLoopDelayMs: { value: 12, threshold: 50 } }));
    const checkLists = inspect().policies.filter((p) => p.kind === 'health').map((p) => p.state.checks);
    expect(checkLists).toContainEqual([expect.objectContaining({ name: 'list-db', status: 'pass', critical: true })]);
    expect(inspect().recordingSince).toBeUndefined();
    if ('release' in permit) permit.release('success');
    void [retrying, pool, limiter, monthly];
  });

  it('records rates and keeps the last 20 events per policy while a recording is held', async () => {
    held.push(recordPolicies());
    const breaker = circuitBreaker({ name: 'rec-breaker', breaker: consecutive(3), halfOpenAfterMs: 5_000 });
    const limiter = rateLimiter({ name: 'rec-limiter', algorithm: fixedWindow({ limit: 2, windowMs: 60_000 }) });
    const retrying = retry({ name: 'rec-retry', maxAttempts: 30, backoff: constant(0) });
    await breaker.execute(() => 1);
    for (let i = 0; i < 3; i++) await expect(breaker.execute(fail('x'))).rejects.toThrow('x');
    await expect(breaker.execute(() => 1)).rejects.toThrow(/open/i);
    for (let i = 0; i < 4; i++) await limiter.consume('k');
    await expect(retrying.execute(fail('again'))).rejects.toThrow('again');

    const b = find('circuit-breaker', 'rec-breaker')!;
    expect(b.rates).toMatchObject({ failed: 0.75, slow: 0 });
    expect(b.rates!.perSecond).toBeGreaterThan(0);
    expect(b.rates!.rejectedPerSecond).toBeGreaterThan(0);
    expect(b.events).toEqual([expect.objectContaining({ type: 'state', detail: { from: 'closed', to: 'open', reason: 'failures', mode: 'enforce' } })]);
    const l = find('rate-limiter', 'rec-limiter')!;
    expect(l.rates).toMatchObject({ denied: 0.5 });
    expect(l.state.store).toBe('memory');
    expect(l.events.map((e) => e.type)).toEqual(['denied', 'denied']);
    const r = find('retry', 'rec-retry')!;
    expect(r.events).toHaveLength(20);
    expect(r.events.at(-1)).toMatchObject({ type: 'give-up', detail: { attempts: 30, reason: 'attempts' } });
    expect(inspect().recordingSince).toBeTypeOf('number');
  });

  it('leaves no channel subscribed and forgets what it recorded once the last recording is disposed', async () => {
    const names = [channelNames.circuitState, channelNames.rateLimitDecision, channelNames.healthCheck, channelNames.retryAttempt];
    const before = names.map((n) => diagnosticsChannel.channel(n).hasSubscribers);
    const one = recordPolicies();
    const two = recordPolicies();
    const limiter = rateLimiter({ name: 'gone-limiter', algorithm: fixedWindow({ limit: 1, windowMs: 60_000 }) });
    await limiter.consume('k');
    await limiter.consume('k');
    one.dispose();
    one.dispose();
    expect(find('rate-limiter', 'gone-limiter')!.events).toHaveLength(1);
    two.dispose();
    expect(names.map((n) => diagnosticsChannel.channel(n).hasSubscribers)).toEqual(before);
    expect(diagnosticsChannel.tracingChannel(channelNames.execute).start.hasSubscribers).toBe(false);
    held.push(recordPolicies());
    expect(find('rate-limiter', 'gone-limiter')).toMatchObject({ events: [], rates: { perSecond: 0 } });
  });
});

describe('what inspect() never shows', () => {
  it('has no key, address, tenant, error message or connection string in its JSON, with every kind of policy driven', async () => {
    const secrets = ['user:alice@example.com', '203.0.113.77', 'hunter2pass', 'postgres://admin', 'acme-tenant', 's3cretRedis', 'db.internal'];
    held.push(recordPolicies());
    const error = 'connect to postgres://admin:hunter2pass@db.internal:5432/app failed';
    const client = new Redis('redis://:s3cretRedis@127.0.0.1:1/0', { lazyConnect: true, enableOfflineQueue: false, maxRetriesPerRequest: 0 });
    try {
      const store = redisStore(client, { timeoutMs: 20 });
      const remote = rateLimiter({ name: 'secret-remote', algorithm: gcra({ limit: 1, periodMs: 60_000 }), store, onStoreError: 'local' });
      const local = rateLimiter({ name: 'secret-local', algorithm: fixedWindow({ limit: 1, windowMs: 60_000 }) });
      const monthly = quota({ name: 'secret-quota', limit: 1, period: 'month' });
      for (const key of ['user:alice@example.com', '203.0.113.77']) {
        await remote.consume(key);
        await local.consume(key);
        await local.consume(key);
        await monthly.consume(`acme-tenant:${key}`, 1);
        await monthly.consume(`acme-tenant:${key}`, 1);
      }
      const breaker = circuitBreaker({ name: 'secret-breaker', breaker: consecutive(1) });
      await expect(breaker.execute(fail(error))).rejects.toThrow(error);
      const retrying = retry({ name: 'secret-retry', maxAttempts: 2, backoff: constant(0), budget: retryBudget() });
      await expect(retrying.execute(fail(error))).rejects.toThrow(error);
      const pool = bulkhead({ name: 'secret-bulkhead', maxConcurrent: 1 });
      const slow = pool.execute(() => new Promise((resolve) => setTimeout(resolve, 5)));
      await expect(pool.execute(() => 1)).rejects.toThrow();
      await slow;
      const admission = admissionController({ name: 'secret-admission', limit: 1 });
      const first = admission.tryAcquire({ tenant: 'acme-tenant' });
      expect(admission.tryAcquire({ tenant: 'acme-tenant' })).toMatchObject({ reason: 'limit' });
      if ('release' in first) first.release('success');
      const checks = health({ checks: [{ name: 'secret-db', check: fail(error) }] });
      await checks.readiness();
      const shedder = loadShedder({ sampler: () => ({ eventLoopDelayMs: 99 }), maxEventLoopDelayMs: 1 });
      held.push(shedder);
      shedder.update();
      shedder.reject();

      const json = JSON.stringify(inspect());
      for (const name of ['secret-remote', 'secret-local', 'secret-quota', 'secret-breaker', 'secret-retry', 'secret-bulkhead', 'secret-admission', 'secret-db']) {
        expect(json).toContain(name);
      }
      expect(find('rate-limiter', 'secret-remote')!.state.store).toBe('local');
      for (const secret of secrets) expect(json, secret).not.toContain(secret);
    } finally {
      client.disconnect();
    }
  });
});

describe('inspectHandler()', () => {
  let server: Server | undefined;
  afterEach(() => new Promise<void>((resolve) => (server === undefined ? resolve() : server.close(() => resolve()))));

  it('answers GET with the JSON of inspect(), not cached, and other methods with 405', async () => {
    circuitBreaker({ name: 'served-breaker' });
    const handle = inspectHandler();
    server = createServer(handle).listen(0, '127.0.0.1');
    await new Promise((resolve) => server!.once('listening', resolve));
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/`;
    const res = await fetch(url);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^application\/json/);
    expect(res.headers.get('cache-control')).toBe('no-store');
    const body = (await res.json()) as { policies: PolicyViewBase[] };
    expect(body.policies.some((p) => p.name === 'served-breaker' && p.state.state === 'closed')).toBe(true);
    const post = await fetch(url, { method: 'POST' });
    expect(post.status).toBe(405);
    expect(post.headers.get('allow')).toBe('GET, HEAD');
    await post.text();
  });
});
