import { describe, expect, it, vi } from 'vitest';
import { health, ManualClock } from '../../../src/index.js';
import { redisCheck } from '../../../src/ratelimit/redis/index.js';

describe('redisCheck', () => {
  it('passes when PING answers PONG, reporting latency only', async () => {
    const client = { status: 'ready', ping: vi.fn(async () => 'PONG') };
    const h = health({ checks: [redisCheck(client)] });
    const r = await h.readiness();
    expect(r.status).toBe('pass');
    expect(Object.keys(r.checks.redis!.details!)).toEqual(['latencyMs']);
    expect(client.ping).toHaveBeenCalledTimes(1);
  });

  it('fails without sending PING while the client is not ready (nothing queues in ioredis)', async () => {
    const client = { status: 'reconnecting', ping: vi.fn(async () => 'PONG') };
    const r = await health({ checks: [redisCheck(client, { name: 'cache' })] }).readiness();
    expect(r.checks.cache).toMatchObject({ status: 'fail', details: { clientStatus: 'reconnecting' } });
    expect(client.ping).not.toHaveBeenCalled();
  });

  it('cuts a PING that hangs at timeoutMs and does not send another while it hangs', async () => {
    const clock = new ManualClock();
    const client = { ping: vi.fn(() => new Promise<string>(() => {})) };
    const h = health({ clock, checks: [redisCheck(client, { timeoutMs: 250 })] });
    const p = h.readiness();
    await clock.advance(250);
    expect((await p).checks.redis!.failure).toBe('timed-out');
    expect((await h.readiness()).checks.redis!.failure).toBe('still-running');
    expect(client.ping).toHaveBeenCalledTimes(1);
  });

  it('fails on a PING error without exposing it, and on an unexpected reply', async () => {
    const err = Object.assign(new Error('connect ECONNREFUSED 10.1.2.3:6379'), { address: '10.1.2.3', port: 6379 });
    const bad = await health({ checks: [redisCheck({ ping: () => Promise.reject(err) })] }).readiness();
    expect(bad.checks.redis!.failure).toBe('threw');
    expect(JSON.stringify(bad)).not.toContain('10.1.2.3');
    const odd = await health({ checks: [redisCheck({ ping: async () => 'LOADING' })] }).readiness();
    expect(odd.checks.redis!.status).toBe('fail');
  });

  it("reads a store's status: 'degraded' fails, 'ready' passes", async () => {
    const store = { status: 'ready' as 'ready' | 'degraded' };
    const h = health({ checks: [redisCheck(store, { critical: true, probes: ['ready', 'live'], cacheMs: 0 })] });
    expect((await h.readiness()).status).toBe('pass');
    store.status = 'degraded';
    const r = await h.liveness();
    expect(r.checks.redis).toMatchObject({ status: 'fail', details: { storeStatus: 'degraded' } });
  });
});
