// Compound limits on a real Redis (issue 16 §5), shortened: concurrent callers in 2 processes
// charge several limits in one script call, all or nothing — the stored counters always agree
// (0 cases where one limit was charged and another denied) and none passes its limit; a limit
// changed at run time is seen by another process within 1 s. The worker processes import the
// BUILT package (fixtures/compound-worker.mjs): run `npm run build` first when running this file.
import { spawn } from 'node:child_process';
import path from 'node:path';
import type { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fixedWindow, gcra, slidingWindow } from '../../../src/ratelimit/algorithms/index.js';
import { quota } from '../../../src/ratelimit/quota/quota.js';
import { compoundLimit } from '../../../src/ratelimit/compound.js';
import { rateLimiter } from '../../../src/ratelimit/rate-limiter.js';
import { redisStore } from '../../../src/ratelimit/redis/redis-store.js';
import { type RedisServer, startRedis } from '../support/redis.js';
import { clearOfWindowEdge, connectReady, eventually } from './support.js';

const WORKER = path.join(import.meta.dirname, 'fixtures', 'compound-worker.mjs');
const cleanup: (() => Promise<void>)[] = [];
let server: RedisServer;
let client: Redis;

beforeAll(async () => {
  server = await startRedis();
  cleanup.push(() => server.stop());
  client = await connectReady(server.port, cleanup);
});
afterAll(async () => {
  for (const step of cleanup.splice(0).reverse()) await step();
});

/** Runs the worker to its end; resolves with its last output line, parsed. */
function run(args: readonly string[]): Promise<Record<string, number>> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [WORKER, String(server.port), ...args], { stdio: ['ignore', 'pipe', 'inherit'] });
    cleanup.push(async () => void child.kill('SIGKILL'));
    let out = '';
    child.stdout.on('data', (chunk: Buffer) => (out += chunk.toString()));
    child.once('exit', (code) => {
      if (code !== 0) reject(new Error(`the worker exited with ${code}: ${out}`));
      else resolve(JSON.parse(out.trim().split('\n').pop()!) as Record<string, number>);
    });
  });
}

describe('compoundLimit on Redis', () => {
  it('runs GCRA, a sliding window and a calendar quota in one call, charging none on a denial', async () => {
    const store = redisStore(client, { timeoutMs: 2_000 });
    const burst = rateLimiter({ name: 'g', algorithm: gcra({ limit: 5, periodMs: 3_600_000 }), store });
    const sliding = rateLimiter({ name: 's', algorithm: slidingWindow({ limit: 4, windowMs: 3_600_000 }), store });
    const daily = quota({ name: 'q', limit: 3, period: 'day', store });
    const all = compoundLimit([burst, sliding, daily]);
    for (let i = 0; i < 3; i++) expect(await all.consume('x')).toMatchObject({ allowed: true, store: 'redis' });
    const denied = await all.consume('x');
    expect(denied).toMatchObject({ allowed: false, deniedBy: 'q', store: 'redis' });
    expect(denied.retryAfterMs).toBeGreaterThan(0);
    const after = await all.peek('x');
    expect(after.parts.map((p) => p.decision.remaining)).toEqual([1, 0, 0]);
  });

  it('gives back the units of a call Redis admitted after its caller had timed out and been told no (GCRA, sliding window, calendar quota, fixed window)', async () => {
    const store = redisStore(client, { timeoutMs: 50, onStoreError: 'fail-closed' });
    const burst = rateLimiter({ name: 'lg', algorithm: gcra({ limit: 5, periodMs: 3_600_000 }), store });
    const sliding = rateLimiter({ name: 'ls', algorithm: slidingWindow({ limit: 8, windowMs: 3_600_000 }), store });
    const daily = quota({ name: 'lq', limit: 9, period: 'day', store });
    const fixed = rateLimiter({ name: 'lf', algorithm: fixedWindow({ limit: 7, windowMs: 3_600_000 }), store });
    const all = compoundLimit([burst, sliding, daily, fixed]);
    expect(await all.consume('late', 2)).toMatchObject({ allowed: true, store: 'redis' });
    // The next call reaches Redis, which admits it, but its answer is held past the timeout.
    const scripted = client as unknown as Record<string, (...args: unknown[]) => Promise<unknown>>;
    const command = Object.keys(scripted).find((k) => /^bulwarkCompound\d+$/.test(k))!;
    const real = scripted[command]!;
    let held: Promise<unknown> | undefined;
    scripted[command] = (...args: unknown[]) => (held = real.apply(client, args).then(async (reply) => (await new Promise((r) => setTimeout(r, 150)), reply)));
    try {
      expect(await all.consume('late', 2)).toMatchObject({ allowed: false, store: 'fail-closed' });
      await held;
    } finally {
      scripted[command] = real;
    }
    // Given back: what remains is what the first call left, every limit (each peek takes one more).
    await eventually('the units to be given back', async () => {
      const now = await all.peek('late');
      return JSON.stringify(now.parts.map((p) => p.decision.remaining)) === JSON.stringify([5 - 2 - 1, 8 - 2 - 1, 9 - 2 - 1, 7 - 2 - 1]);
    }, 2_000);
  });
});

describe('compoundLimit on Redis, 2 processes', () => {
  it('per user AND per tenant: the counters agree exactly and none passes its limit', async () => {
    await clearOfWindowEdge(3_600_000, 20_000);
    const results = await Promise.all([run(['users', '1500', '16', '24']), run(['users', '1500', '16', '24'])]);
    const admitted = results.reduce((sum, r) => sum + r.admitted!, 0);
    expect(results.map((r) => r.other)).toEqual([0, 0]); // every decision made by Redis
    expect(results.some((r) => (r['per-user'] ?? 0) > 0)).toBe(true); // both limits denied calls
    expect(results.some((r) => (r['per-tenant'] ?? 0) > 0)).toBe(true);

    const store = redisStore(client, { timeoutMs: 2_000 });
    const perUser = rateLimiter({ name: 'per-user', algorithm: fixedWindow({ limit: 10, windowMs: 3_600_000 }), store });
    const perTenant = rateLimiter({ name: 'per-tenant', algorithm: fixedWindow({ limit: 100, windowMs: 3_600_000 }), store });
    const both = compoundLimit([perUser, perTenant]);
    let usersTotal = 0;
    for (let u = 0; u < 24; u++) {
      const d = await both.peek([`u${u}`, 'tenant'], { tag: 'tenant' });
      const user = d.parts[0]!.decision;
      const used = 10 - (user.allowed ? user.remaining + 1 : user.remaining);
      expect(used).toBeLessThanOrEqual(10);
      usersTotal += used;
    }
    const tenant = (await both.peek(['u0', 'tenant'], { tag: 'tenant' })).parts[1]!.decision;
    const tenantUsed = 100 - (tenant.allowed ? tenant.remaining + 1 : tenant.remaining);
    // All or nothing: each admitted call took one unit of its user and one of the tenant, and a
    // denied call took none: the per-user counters sum to the tenant's counter, which is what
    // the processes saw admitted.
    expect(tenantUsed).toBe(100);
    expect(usersTotal).toBe(tenantUsed);
    expect(admitted).toBe(tenantUsed);
  }, 30_000);

  it('10/s AND 100/min: the per-minute counter holds exactly the admitted calls, at most 10 a second', async () => {
    await clearOfWindowEdge(60_000, 5_000);
    const started = Date.now();
    const results = await Promise.all([run(['rates', '2500', '8']), run(['rates', '2500', '8'])]);
    const elapsed = Date.now() - started;
    const admitted = results.reduce((sum, r) => sum + r.admitted!, 0);
    const store = redisStore(client, { timeoutMs: 2_000 });
    const perSecond = rateLimiter({ name: 'per-second', algorithm: fixedWindow({ limit: 10, windowMs: 1_000 }), store });
    const perMinute = rateLimiter({ name: 'per-minute', algorithm: fixedWindow({ limit: 100, windowMs: 60_000 }), store });
    const minute = (await compoundLimit([perSecond, perMinute]).peek('k')).parts[1]!.decision;
    expect(100 - (minute.allowed ? minute.remaining + 1 : minute.remaining)).toBe(admitted);
    expect(admitted).toBeGreaterThanOrEqual(10);
    expect(admitted).toBeLessThanOrEqual(10 * (Math.ceil(elapsed / 1_000) + 1));
  }, 30_000);

  it('a limit changed at run time is in force in another process within 1 s', async () => {
    const child = spawn(process.execPath, [WORKER, String(server.port), 'watch'], { stdio: ['ignore', 'pipe', 'inherit'] });
    cleanup.push(async () => void child.kill('SIGKILL'));
    let out = '';
    child.stdout.on('data', (chunk: Buffer) => (out += chunk.toString()));
    await eventually('the watcher to decide', () => out.includes('limit 1000 '), 10_000);
    const store = redisStore(client, { timeoutMs: 2_000 });
    const both = compoundLimit([
      rateLimiter({ name: 'w-second', algorithm: fixedWindow({ limit: 1_000, windowMs: 1_000 }), store }),
      rateLimiter({ name: 'w-day', algorithm: fixedWindow({ limit: 1_000_000, windowMs: 86_400_000 }), store }),
    ]);
    const changedAt = Date.now();
    await both.setLimit('tenant-w', 'w-second', fixedWindow({ limit: 3, windowMs: 1_000 }));
    await eventually('the watcher to see the new limit', () => out.includes('limit 3 '), 5_000);
    const seenAt = Number(/limit 3 (\d+)/.exec(out)![1]);
    expect(seenAt - changedAt).toBeLessThan(1_000);
    // And it is enforced here too: 3 a second.
    await clearOfWindowEdge(1_000, 300);
    child.kill('SIGKILL');
    const here = await Promise.all(Array.from({ length: 5 }, () => both.consume('tenant-w')));
    expect(here.filter((d) => d.allowed).length).toBeLessThanOrEqual(3);
    await both.clearLimit('tenant-w', 'w-second');
    expect((await both.consume('tenant-w')).limit).toBeGreaterThan(3);
  }, 30_000);
});
