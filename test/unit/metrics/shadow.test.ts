// Shadow mode in the Prometheus metrics (issue 15 §3): what a shadow policy would have rejected is
// counted on the same metrics with mode="shadow"; an enforcing policy's series keep exactly the
// labels they had before shadow mode existed, so dashboards and recording rules keep matching.
import { describe, expect, it } from 'vitest';
import { circuitBreaker, consecutive, fixedWindow, loadShedder, ManualClock, rateLimit, rateLimiter } from '../../../src/index.js';
import { Boom, ignore, series, setup, valueOf } from './support.js';

describe('metrics of policies in shadow mode', () => {
  it('count a shadow limiter’s denials with mode="shadow", and an enforcing one’s as before, without a mode label', async () => {
    const { registry } = setup();
    const shadow = rateLimiter({ name: 'trial', mode: 'shadow', algorithm: fixedWindow({ limit: 1, windowMs: 60_000 }) });
    const enforce = rateLimiter({ name: 'api', algorithm: fixedWindow({ limit: 1, windowMs: 60_000 }) });
    for (let i = 0; i < 3; i++) {
      await rateLimit(shadow, { key: 'k' }).execute(() => 'ran');
      await rateLimit(enforce, { key: 'k' }).execute(() => 'ran').catch(ignore);
    }
    const name = 'bulwark_ratelimit_decisions_total';
    const base = { kind: 'rate-limiter', store: 'memory' };
    expect(await valueOf(registry, name, { ...base, policy: 'trial', decision: 'allowed', mode: 'shadow' })).toBe(1);
    expect(await valueOf(registry, name, { ...base, policy: 'trial', decision: 'denied', mode: 'shadow' })).toBe(2);
    expect(await valueOf(registry, name, { ...base, policy: 'api', decision: 'allowed' })).toBe(1);
    expect(await valueOf(registry, name, { ...base, policy: 'api', decision: 'denied' })).toBe(2);
    const labelSets = (await series(registry, name)).filter((s) => s.labels.policy === 'api').map((s) => Object.keys(s.labels).sort());
    expect(labelSets).toEqual([
      ['decision', 'kind', 'policy', 'store'],
      ['decision', 'kind', 'policy', 'store'],
    ]);
  });

  it('count a shadow breaker’s would-be rejections and transitions with mode="shadow", and show its state with it', async () => {
    const clock = new ManualClock(0);
    const breaker = circuitBreaker({ name: 'ledger', mode: 'shadow', breaker: consecutive(1), halfOpenAfterMs: 1_000, clock });
    const { registry } = setup({ circuitBreakers: [breaker] });
    await breaker.execute(() => Promise.reject(new Boom('down'))).catch(ignore);
    await breaker.execute(() => 'ran');
    expect(await valueOf(registry, 'bulwark_circuit_rejections_total', { policy: 'ledger', state: 'open', mode: 'shadow' })).toBe(1);
    expect(
      await valueOf(registry, 'bulwark_circuit_transitions_total', { policy: 'ledger', from: 'closed', to: 'open', reason: 'failures', mode: 'shadow' }),
    ).toBe(1);
    expect(await valueOf(registry, 'bulwark_circuit_state', { policy: 'ledger', state: 'open', mode: 'shadow' })).toBe(1);
    // Switched to enforce: the state series lose the label at the next scrape.
    breaker.mode = 'enforce';
    expect(await valueOf(registry, 'bulwark_circuit_state', { policy: 'ledger', state: 'open' })).toBe(1);
    expect(await valueOf(registry, 'bulwark_circuit_state', { policy: 'ledger', state: 'open', mode: 'shadow' })).toBeUndefined();
    await breaker.execute(() => 'ran').catch(ignore);
    expect(await valueOf(registry, 'bulwark_circuit_rejections_total', { policy: 'ledger', state: 'open' })).toBe(1);
  });

  it('show a shadow breaker not given to read with mode="shadow", from what it publishes', async () => {
    const { registry } = setup();
    const breaker = circuitBreaker({ name: 'unlisted', mode: 'shadow', breaker: consecutive(1) });
    await breaker.execute(() => Promise.reject(new Boom('down'))).catch(ignore);
    expect(await valueOf(registry, 'bulwark_circuit_state', { policy: 'unlisted', state: 'open', mode: 'shadow' })).toBe(1);
    breaker.mode = 'enforce';
    await breaker.execute(() => 'refused').catch(ignore); // its rejection says mode "enforce"
    expect(await valueOf(registry, 'bulwark_circuit_state', { policy: 'unlisted', state: 'open' })).toBe(1);
  });

  it('count what a shadow shedder would have shed with mode="shadow"', async () => {
    const { registry } = setup();
    const shedder = loadShedder({ maxEventLoopDelayMs: 100, sampler: () => ({ eventLoopDelayMs: 300 }), mode: 'shadow' });
    try {
      shedder.update();
      expect(shedder.reject()).toBe(false);
      shedder.mode = 'enforce';
      expect(shedder.reject()).toBe(true);
    } finally {
      shedder.dispose();
    }
    expect(await valueOf(registry, 'bulwark_shedding_rejections_total', { reason: 'eventLoopDelay', mode: 'shadow' })).toBe(1);
    expect(await valueOf(registry, 'bulwark_shedding_rejections_total', { reason: 'eventLoopDelay' })).toBe(1);
  });
});
