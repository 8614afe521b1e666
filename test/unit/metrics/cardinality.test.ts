// Regression (issue 12): Prometheus series grew without bound with the number of policies: 300
// fetch origins (with maxOrigins: 20) left thousands of series that were never dropped. Every
// label now has a hard cap on its distinct values (`maxLabelValues`), past which the value is
// `"_other"`.
import type { Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { createFetch } from '../../../src/adapters/fetch.js';
import { circuitBreaker, consecutive, health, ManualClock, retry } from '../../../src/index.js';
import { OVERFLOW_LABEL_VALUE } from '../../../src/metrics/index.js';
import { Boom, ignore, setup, valueOf } from './support.js';

/** Every series in the registry, and the distinct values each label name took. */
async function census(registry: Registry): Promise<{ series: number; values: Map<string, Set<string>> }> {
  let series = 0;
  const values = new Map<string, Set<string>>();
  for (const metric of await registry.getMetricsAsJSON()) {
    for (const s of metric.values) {
      series++;
      for (const [k, v] of Object.entries(s.labels)) {
        if (k === 'le') continue;
        if (!values.has(k)) values.set(k, new Set());
        values.get(k)!.add(String(v));
      }
    }
  }
  return { series, values };
}

describe('the cap on label values', () => {
  it('keeps series bounded with 300 fetch origins and 300 named breakers, retry policies and health checks', async () => {
    const { registry } = setup({ maxLabelValues: 50 });
    const clock = new ManualClock();
    const f = createFetch({
      name: 'api',
      maxOrigins: 20,
      retry: false,
      circuitBreaker: { breaker: consecutive(1) },
      fetch: () => Promise.reject(new TypeError('fetch failed')),
      clock,
    });
    const checks = [];
    for (let i = 0; i < 300; i++) {
      await f(`http://origin-${i}.test/`).catch(ignore);
      const b = circuitBreaker({ name: `breaker-${i}`, breaker: consecutive(1), clock });
      await b.execute(() => Promise.reject(new Boom('down'))).catch(ignore);
      await b.execute(() => 1).catch(ignore);
      await retry({ name: `retry-${i}`, maxAttempts: 1 }).execute(() => i);
      checks.push({ name: `check-${i}`, check: () => ({ status: 'pass' as const }) });
    }
    await health({ checks }).readiness();

    const { series, values } = await census(registry);
    // 50 kept values and "_other" at most, for every label.
    for (const [name, set] of values) expect(set.size, name).toBeLessThanOrEqual(51);
    expect(values.get('policy')).toContain(OVERFLOW_LABEL_VALUE);
    expect(values.get('check')).toContain(OVERFLOW_LABEL_VALUE);
    // Before the cap: several thousand series (each of the ~900 policies has its executions and a
    // 15-bucket histogram). With it, a bound set by the cap, not by the traffic.
    expect(series).toBeLessThan(2_500);
  });

  it('counts every event past the cap under "_other", and keeps counting the first values under their own names', async () => {
    const { registry } = setup({ maxLabelValues: 2 });
    for (const name of ['a', 'b', 'c', 'd', 'a']) await retry({ name, maxAttempts: 1 }).execute(() => 1);
    const ok = (policy: string) => ({ kind: 'retry', policy, outcome: 'success' });
    expect(await valueOf(registry, 'bulwark_executions_total', ok('a'))).toBe(2);
    expect(await valueOf(registry, 'bulwark_executions_total', ok('b'))).toBe(1);
    expect(await valueOf(registry, 'bulwark_executions_total', ok('_other'))).toBe(2);
    expect(await valueOf(registry, 'bulwark_executions_total', ok('c'))).toBeUndefined();
  });

  it('shows breakers past the cap in the state gauge as "_other"', async () => {
    const breakers = [circuitBreaker({ name: 'x' }), circuitBreaker({ name: 'y' })];
    const { registry } = setup({ maxLabelValues: 1, circuitBreakers: breakers });
    const state = (policy: string, s: string) => valueOf(registry, 'bulwark_circuit_state', { policy, state: s });
    // Values are kept in the order they are first seen: the first scrape sees x, then y.
    expect(await state('x', 'closed')).toBe(1);
    expect(await state('_other', 'closed')).toBe(1);
    breakers[1]!.isolate();
    expect(await state('x', 'closed')).toBe(1);
    expect(await state('_other', 'isolated')).toBe(1);
    expect(await state('y', 'isolated')).toBeUndefined();
  });
});
