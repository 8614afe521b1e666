// redisCheck against a real redis-server: PING passes, a frozen server (SIGSTOP) is cut at the
// check's timeout without piling up PINGs, a dead server fails without a command being queued, and
// a RedisStore's status is read. Probe bodies never show the server's address.
import { Redis } from 'ioredis';
import { afterEach, describe, expect, it } from 'vitest';
import { health } from '../../../src/health/health.js';
import { respond } from '../../../src/health/routes.js';
import { redisCheck } from '../../../src/health/redis-check.js';
import { redisStore } from '../../../src/ratelimit/redis/redis-store.js';
import { disconnectClient, startRedis, type RedisServer } from '../support/redis.js';
import { eventually } from './support.js';

const cleanup: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const step of cleanup.splice(0).reverse()) await step();
});

async function server(): Promise<RedisServer> {
  const s = await startRedis();
  cleanup.push(() => s.stop());
  return s;
}

async function connect(port: number): Promise<Redis> {
  const client = new Redis({
    host: '127.0.0.1',
    port,
    enableOfflineQueue: false,
    maxRetriesPerRequest: 1,
    retryStrategy: (times) => Math.min(times * 50, 500),
  });
  client.on('error', () => {});
  cleanup.push(() => disconnectClient(client));
  if (client.status !== 'ready') await new Promise((resolve) => client.once('ready', resolve));
  return client;
}

describe('redisCheck on a real server', () => {
  it('passes with PONG, and fails a frozen server at its timeout without piling up PINGs', async () => {
    const s = await server();
    const client = await connect(s.port);
    const h = health({ checks: [redisCheck(client, { timeoutMs: 200 })] });
    const ok = await h.readiness();
    expect(ok.status).toBe('pass');
    expect(ok.checks.redis!.details).toEqual({ latencyMs: expect.any(Number) });

    s.kill('SIGSTOP');
    try {
      const started = performance.now();
      const frozen = await h.readiness();
      expect(performance.now() - started).toBeLessThan(1000);
      expect(frozen.checks.redis).toMatchObject({ status: 'fail', failure: 'timed-out' });
      expect((await h.readiness()).checks.redis!.failure).toBe('still-running');
      const body = (await respond(h, 'ready', true)).body;
      expect(body).not.toContain(String(s.port));
      expect(body).not.toContain('127.0.0.1');
    } finally {
      s.kill('SIGCONT');
    }
    // The PING that was cut gets its answer; the next probe runs a fresh one and passes.
    await eventually('the check to pass again', async () => (await h.readiness()).status === 'pass');
  });

  it('fails without sending PING once the connection is lost, reads a store status, and recovers', async () => {
    const s = await server();
    const client = await connect(s.port);
    const store = redisStore(client, { timeoutMs: 100 });
    const h = health({ checks: [redisCheck(client), redisCheck(store, { name: 'store' })] });
    expect((await h.readiness()).status).toBe('pass');
    s.kill('SIGKILL');
    await s.exited();
    await eventually('both checks to fail', async () => {
      const r = await h.readiness();
      return r.checks.redis!.status === 'fail' && r.checks.store!.status === 'fail';
    });
    const r = await h.readiness();
    expect(r.checks.redis!.details!.clientStatus).not.toBe('ready');
    expect(r.checks.redis!.failure).toBe('reported-fail');
    expect(r.checks.store).toMatchObject({ status: 'fail', details: { storeStatus: 'degraded' } });
    // Back up: both recover by themselves (and the client can then be closed cleanly).
    await s.restart();
    await eventually('both checks to pass again', async () => (await h.readiness()).status === 'pass');
  });
});
