// RELIABILITY.md row C1 (a whole service): while load shedding turns traffic away, and while one
// client has used up the app-wide limit, the probes (/livez, /readyz, /startupz, /healthz and the
// per-check /readyz/redis) and /metrics keep answering 200 from health state — with bulwark's
// shedding and limits registered before the health routes and after them, in Express and in
// Fastify. Figure: probe answers ≠ 200 = 0.
import { describe, expect, it } from 'vitest';
import type { LoadSample } from '../../src/index.js';
import { type Answer, frameworks, get, probeFailures, problemOf, startService, useRedisAndUpstream } from './support/harness.js';

const shared = useRedisAndUpstream();

const orders = ['limits-first', 'health-first'] as const;

describe.each(frameworks)('C1 %s service', (framework) => {
  it.each(orders)('overloaded and shedding (%s): every probe and /metrics answers 200 while /api is shed', async (order) => {
    let overloaded = false;
    const sampler = (): LoadSample => ({ eventLoopDelayMs: overloaded ? 1_000 : 0 });
    const started = shared.track(await startService(framework, { redisPort: shared.redis.port, upstreamUrl: shared.upstream.url, order, sampler }));
    const { service } = started;
    expect((await get(service.port, '/api/items')).status).toBe(200);

    overloaded = true;
    expect(service.shedder.update()).toBe('eventLoopDelay');
    const failures: string[] = [];
    const shed: Answer[] = [];
    for (let round = 0; round < 25; round++) {
      const [traffic, probes] = await Promise.all([
        Promise.all([get(service.port, '/api/items'), get(service.port, '/hello')]),
        probeFailures(service.port),
      ]);
      failures.push(...probes);
      shed.push(...traffic.filter((a) => a.status === 503));
    }
    expect(failures, 'probe answers other than 200').toEqual([]);
    expect(shed, 'requests shed').toHaveLength(50);
    expect(new Set(shed.map((a) => problemOf(a).type))).toEqual(new Set(['urn:bulwark:problem:overloaded']));
    expect(new Set(shed.map((a) => a.headers['retry-after']))).toEqual(new Set(['2']));
  });

  it.each(orders)('one client has used up the app-wide limit (%s): every probe and /metrics answers 200', async (order) => {
    const started = shared.track(await startService(framework, { redisPort: shared.redis.port, upstreamUrl: shared.upstream.url, order, perClientLimit: 10 }));
    const { service } = started;
    // Anonymous traffic from this host (no X-Forwarded-For) shares one bucket, as behind a NAT.
    const statuses: number[] = [];
    for (let i = 0; i < 15; i++) statuses.push((await get(service.port, '/hello')).status);
    expect(statuses.filter((s) => s === 429)).toHaveLength(5);

    const failures: string[] = [];
    for (let round = 0; round < 20; round++) failures.push(...(await probeFailures(service.port)));
    expect(failures, 'probe answers other than 200').toEqual([]);
    // The bucket is still empty: the probes were answered, not let through by a refilled bucket.
    expect((await get(service.port, '/hello')).status).toBe(429);
  });
});
