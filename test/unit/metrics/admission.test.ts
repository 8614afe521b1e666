// The admission metrics: the limit, permits in flight and queued per controller, and rejections by
// reason, mode and class, from the real controllers and policies.
import { describe, expect, it } from 'vitest';
import { adaptiveConcurrency, admissionController, aimd, bulkhead, ManualClock, type Permit } from '../../../src/index.js';
import { deferred } from '../../support/helpers.js';
import { ignore, series, setup, valueOf } from './support.js';

describe('admission metrics', () => {
  it('counts rejections by policy, reason, mode and class', async () => {
    const { registry, registration } = setup();
    const c = admissionController({ name: 'api', limit: 1 });
    const held = c.tryAcquire({ priority: 3 }) as Permit;
    c.tryAcquire({ priority: 3 });
    c.tryAcquire({ priority: 3 });
    c.mode = 'shadow';
    (c.tryAcquire({ priority: 1 }) as Permit).release('success');
    held.release('success');
    const count = (labels: Record<string, string>) => valueOf(registry, 'bulwark_admission_rejections_total', labels);
    expect(await count({ policy: 'api', reason: 'limit', mode: 'enforce', priority: 'critical' })).toBe(2);
    // A critical request was just refused: a lower class would be refused for priority.
    expect(await count({ policy: 'api', reason: 'priority', mode: 'shadow', priority: 'best-effort' })).toBe(1);
    registration.dispose();
  });

  it('reads limit, in flight and queued of the observed controllers at scrape time', async () => {
    const policy = adaptiveConcurrency({ name: 'db', limit: 4, maxQueue: 2 });
    const { registry, registration } = setup({ admission: [policy] });
    const gate = deferred();
    const calls = [1, 2, 3, 4, 5].map(() => policy.execute(() => gate.promise));
    expect(await valueOf(registry, 'bulwark_admission_limit', { policy: 'db' })).toBe(4);
    expect(await valueOf(registry, 'bulwark_admission_in_flight', { policy: 'db' })).toBe(4);
    expect(await valueOf(registry, 'bulwark_admission_queued', { policy: 'db' })).toBe(1);
    gate.resolve();
    await Promise.all(calls);
    expect(await valueOf(registry, 'bulwark_admission_in_flight', { policy: 'db' })).toBe(0);
    registration.dispose();
  });

  it('follows limit changes on the channel for controllers it was not given', async () => {
    const { registry, registration } = setup();
    const clock = new ManualClock();
    const c = admissionController({ name: 'grow', limit: aimd({ initialLimit: 2, windowMs: 10, minSamples: 1 }), clock });
    const permits = [c.tryAcquire(), c.tryAcquire()] as Permit[];
    await clock.advance(20);
    for (const p of permits) p.release('success');
    expect(c.limit).toBe(4);
    expect(await valueOf(registry, 'bulwark_admission_limit', { policy: 'grow' })).toBe(4);
    expect(await series(registry, 'bulwark_admission_in_flight')).toEqual([]);
    registration.dispose();
  });

  it('refuses an admission option that is not an iterable of controllers', () => {
    expect(() => setup({ admission: 5 as never })).toThrow(/registerMetrics: option "admission" must be an iterable/);
    expect(() => setup({ admission: [{}] as never })).toThrow(/option "admission" must hold objects with snapshot\(\), got an object at index 0/);
  });

  it('labels shadow-mode bulkhead would-rejections with mode="shadow"', async () => {
    const { registry, registration } = setup();
    const pool = bulkhead({ name: 'pool', maxConcurrent: 1, mode: 'shadow' });
    const gate = deferred();
    const first = pool.execute(() => gate.promise);
    await pool.execute(() => 1).catch(ignore);
    gate.resolve();
    await first;
    expect(await valueOf(registry, 'bulwark_bulkhead_rejections_total', { policy: 'pool', mode: 'shadow' })).toBe(1);
    registration.dispose();
  });
});
