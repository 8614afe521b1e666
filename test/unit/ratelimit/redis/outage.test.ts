// A Redis outage as the limiters and the rateLimit policy see it (issue 11): per-limiter and
// per-quota onStoreError, the short retry hint of a fail-closed denial, the policy's own error
// for it, and one failure per stall in the breaker around Redis. Against a fake client; the
// same against a real, frozen redis-server is in test/integration/redis/stall.test.ts.
import { setTimeout as sleep } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';
import {
  BulwarkError,
  isBulwarkError,
  QuotaExceededError,
  RateLimitedError,
  RateLimitStoreUnavailableError,
} from '../../../../src/core/errors.js';
import { fixedWindow } from '../../../../src/ratelimit/algorithms/index.js';
import { quota } from '../../../../src/ratelimit/quota/quota.js';
import { rateLimit } from '../../../../src/ratelimit/rate-limit-policy.js';
import { rateLimiter } from '../../../../src/ratelimit/rate-limiter.js';
import { MAX_OUTAGE_RETRY_MS, redisStore } from '../../../../src/ratelimit/redis/redis-store.js';
import { flush } from '../../../support/helpers.js';
import { admitAll, FakeClient } from './fake-client.js';

const window = () => fixedWindow({ limit: 10, windowMs: 60_000 });

describe('onStoreError per limiter and per quota', () => {
  it("a limiter's own mode overrides the store's, and a limiter without one follows the store", async () => {
    const client = new FakeClient();
    client.status = 'reconnecting';
    const store = redisStore(client, { onStoreError: 'fail-open' });
    const closed = rateLimiter({ name: 'closed', algorithm: window(), store, onStoreError: 'fail-closed' });
    const local = rateLimiter({ name: 'local', algorithm: window(), store, onStoreError: 'local' });
    const plain = rateLimiter({ name: 'plain', algorithm: window(), store });
    expect(await closed.consume('k')).toMatchObject({ allowed: false, store: 'fail-closed' });
    expect(await local.consume('k')).toMatchObject({ allowed: true, store: 'local', remaining: 9 });
    expect(await plain.consume('k')).toMatchObject({ allowed: true, store: 'fail-open' });
    expect(await closed.peek('k')).toMatchObject({ allowed: false, store: 'fail-closed' });
  });

  it("a quota's own mode overrides the quota default (fail-closed) and the store's setting", async () => {
    const client = new FakeClient();
    client.status = 'reconnecting';
    const store = redisStore(client, { onStoreError: 'fail-closed' });
    const open = quota({ name: 'open', limit: 100, period: 'month', store, onStoreError: 'fail-open' });
    const strict = quota({ name: 'strict', limit: 100, period: 'month', store: redisStore(client), onStoreError: 'fail-closed' });
    const byDefault = quota({ name: 'default', limit: 100, period: 'month', store: redisStore(client) });
    expect(await open.consume('t', 5)).toMatchObject({ allowed: true, store: 'fail-open' });
    expect(await strict.consume('t', 5)).toMatchObject({ allowed: false, store: 'fail-closed' });
    expect(await byDefault.consume('t', 5)).toMatchObject({ allowed: false, store: 'fail-closed' });
  });

  it('two limiters sharing one algorithm object each follow their own mode when a batch times out', async () => {
    const client = new FakeClient();
    const store = redisStore(client, { timeoutMs: 15 });
    const algorithm = window();
    const open = rateLimiter({ name: 'open', algorithm, store, onStoreError: 'fail-open' });
    const closed = rateLimiter({ name: 'closed', algorithm, store, onStoreError: 'fail-closed' });
    const [a, b] = await Promise.all([open.consume('k'), closed.consume('k')]);
    expect(a).toMatchObject({ allowed: true, store: 'fail-open' });
    expect(b).toMatchObject({ allowed: false, store: 'fail-closed' });
    // Different modes travel in different calls, so each batch settles in its own mode.
    expect(client.calls).toHaveLength(2);
  });

  it('refuses a mode it does not know when called directly, naming it', () => {
    const store = redisStore(new FakeClient());
    expect(() => store.consume('k', window(), 1, undefined, 'deny' as never)).toThrow(/"onStoreError" must be one of .*got "deny"/);
  });
});

describe('a fail-closed denial during an outage', () => {
  it("suggests a retry within a few seconds, never the quota period's reset", async () => {
    const client = new FakeClient();
    const store = redisStore(client, { timeoutMs: 20 });
    const monthly = quota({ name: 'monthly', limit: 100, period: 'month', store });
    const timedOut = await monthly.consume('t');
    expect(timedOut).toMatchObject({ allowed: false, store: 'fail-closed' });
    expect(timedOut.retryAfterMs).toBe(20); // Redis was slow: the next call tries it again
    expect(timedOut.resetMs).toBe(20);
    client.status = 'reconnecting';
    const down = await monthly.consume('t');
    expect(down).toMatchObject({ allowed: false, store: 'fail-closed', retryAfterMs: 1_000, resetMs: 1_000 });
  });

  it('caps the hint at MAX_OUTAGE_RETRY_MS even when the store leaves Redis alone for longer', async () => {
    const client = new FakeClient();
    const store = redisStore(client, { openAfterFailures: 1, openMs: 600_000 });
    const monthly = quota({ name: 'monthly', limit: 100, period: 'month', store });
    const first = monthly.consume('t');
    await flush();
    client.last().reject(new Error('Connection is closed.'));
    await first;
    expect(store.status).toBe('degraded');
    const d = await monthly.consume('t');
    expect(d).toMatchObject({ allowed: false, store: 'fail-closed', retryAfterMs: MAX_OUTAGE_RETRY_MS, resetMs: MAX_OUTAGE_RETRY_MS });
    expect(MAX_OUTAGE_RETRY_MS).toBeLessThanOrEqual(5_000);
  });

  it('makes the rateLimit policy reject with RateLimitStoreUnavailableError, not QuotaExceededError or RateLimitedError', async () => {
    const client = new FakeClient();
    client.status = 'reconnecting';
    const monthly = quota({ name: 'monthly', limit: 100, period: 'month', store: redisStore(client) });
    const perSecond = rateLimiter({ name: 'partner', algorithm: window(), store: redisStore(client), onStoreError: 'fail-closed' });
    for (const [decider, name] of [
      [monthly, 'monthly'],
      [perSecond, 'partner'],
    ] as const) {
      let ran = false;
      const error = await rateLimit(decider, { key: 'k' })
        .execute(() => {
          ran = true;
        })
        .catch((e: unknown) => e);
      expect(ran).toBe(false);
      expect(error).toBeInstanceOf(RateLimitStoreUnavailableError);
      expect(error).toBeInstanceOf(BulwarkError);
      expect(error).not.toBeInstanceOf(QuotaExceededError);
      expect(error).not.toBeInstanceOf(RateLimitedError);
      expect(isBulwarkError(error, 'ERR_BULWARK_RATE_LIMIT_STORE_UNAVAILABLE')).toBe(true);
      expect(error).toMatchObject({ name: 'RateLimitStoreUnavailableError', policy: name, retryAfterMs: 1_000 });
      expect((error as Error).message).not.toMatch(/exceeded/i);
    }
  });

  it('a real denial by Redis is still a QuotaExceededError', async () => {
    const client = new FakeClient();
    const monthly = quota({ name: 'monthly', limit: 100, period: 'month', store: redisStore(client) });
    const error = rateLimit(monthly, { key: 'k' })
      .execute(() => 1)
      .catch((e: unknown) => e);
    await flush();
    const call = client.last();
    call.resolve([Math.floor(Date.now() / 1000), 0, 0, -1, 86_400_000, 86_400_000]);
    expect(await error).toBeInstanceOf(QuotaExceededError);
  });
});

describe('one stall counts as one failure (RELIABILITY F16)', () => {
  it('batches in flight together that all time out open nothing, however many there are (regression: each counted, so a 120 ms stall denied everything for openMs)', async () => {
    const client = new FakeClient();
    const store = redisStore(client, { timeoutMs: 20, openAfterFailures: 2, openMs: 60_000, onStoreError: 'fail-closed' });
    const limiter = rateLimiter({ name: 'api', algorithm: window(), store });
    // Three batches in flight at once: the first goes at the end of its tick, the next two
    // while it is in flight.
    const inFlight = [limiter.consume('a')];
    await flush();
    inFlight.push(limiter.consume('b'));
    await flush();
    inFlight.push(limiter.consume('c'));
    await flush();
    expect(client.calls).toHaveLength(3);
    const decisions = await Promise.all(inFlight);
    expect(decisions.every((d) => d.store === 'fail-closed')).toBe(true);
    expect(store.status).toBe('ready');
    // Redis is back: the next decision goes to it.
    const next = limiter.consume('d');
    await flush();
    expect(client.calls).toHaveLength(4);
    client.last().resolve(admitAll(client.last()));
    expect(await next).toMatchObject({ store: 'redis' });
  });

  it('errors of batches in flight together count once too', async () => {
    const client = new FakeClient();
    const store = redisStore(client, { openAfterFailures: 2 });
    const limiter = rateLimiter({ name: 'api', algorithm: window(), store });
    const first = limiter.consume('a');
    await flush();
    const second = limiter.consume('b');
    await flush();
    const [a, b] = client.calls;
    a!.reject(new Error('Connection is closed.'));
    b!.reject(new Error('Connection is closed.'));
    await Promise.all([first, second]);
    expect(store.status).toBe('ready');
  });

  it('a stall that outlasts a batch sent after the first failure counts again, and openAfterFailures of those open the breaker', async () => {
    const client = new FakeClient();
    const store = redisStore(client, { timeoutMs: 15, openAfterFailures: 2, openMs: 60_000 });
    const limiter = rateLimiter({ name: 'api', algorithm: window(), store });
    await limiter.consume('a'); // times out: one failure
    expect(store.status).toBe('ready');
    await limiter.consume('b'); // sent after it, times out too: two
    expect(store.status).toBe('degraded');
    const calls = client.calls.length;
    expect(await limiter.consume('c')).toMatchObject({ store: 'local' });
    expect(client.calls).toHaveLength(calls);
  });

  it('a probe that times out while this process is blocked does not leave the store half-open for good (regression: no call went to Redis again)', async () => {
    const client = new FakeClient();
    const store = redisStore(client, { timeoutMs: 30, openAfterFailures: 1, openMs: 20 });
    const limiter = rateLimiter({ name: 'api', algorithm: window(), store });
    const first = limiter.consume('a');
    await flush();
    client.last().reject(new Error('down'));
    await first;
    await sleep(25);
    const probe = limiter.consume('b');
    await flush();
    const calls = client.calls.length;
    // A long synchronous task: the probe's deadline passes while its timer cannot run.
    const until = performance.now() + 80;
    while (performance.now() < until);
    expect(await probe).toMatchObject({ store: 'local' });
    const next = limiter.consume('c');
    await flush();
    expect(client.calls).toHaveLength(calls + 1);
    client.last().resolve(admitAll(client.last()));
    expect(await next).toMatchObject({ store: 'redis' });
    expect(store.status).toBe('ready');
  });
});
