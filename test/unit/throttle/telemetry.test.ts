// Each adaptive-throttle decision that rejects (or, in shadow mode, would have) in telemetry: the
// Prometheus counter and the span event on the caller's span, through the real registration and
// a real NodeSDK.
import { afterEach, describe, expect, it } from 'vitest';
import { adaptiveThrottle, ManualClock } from '../../../src/index.js';
import { attributeNames as A, BulwarkInstrumentation, eventNames as E } from '../../../src/tracing/index.js';
import { capture } from '../../support/helpers.js';
import { setup, valueOf } from '../metrics/support.js';
import { eventsOf, type Harness, startSdk, withSpan } from '../tracing/support.js';

/** A throttle whose upstream refused one call, so the next call is rejected (it draws 0 against p = 1/2). */
async function refusedOnce(name: string, mode: 'enforce' | 'shadow'): Promise<ReturnType<typeof adaptiveThrottle>> {
  const throttle = adaptiveThrottle({ name, mode, minRequests: 0, random: () => 0, clock: new ManualClock() });
  await capture(throttle.execute(() => Promise.reject(new Error('503'))));
  return throttle;
}

describe('adaptiveThrottle: metrics', () => {
  it('counts local rejections by policy and mode, and the execution outcome "throttled"', async () => {
    const { registry } = setup();
    const enforcing = await refusedOnce('pricing', 'enforce');
    await capture(enforcing.execute(() => 'x'));
    await capture(enforcing.execute(() => 'x'));
    const shadow = await refusedOnce('pricing-shadow', 'shadow');
    await capture(shadow.execute(() => 'x'));
    expect(await valueOf(registry, 'bulwark_throttle_rejections_total', { policy: 'pricing', mode: 'enforce' })).toBe(2);
    expect(await valueOf(registry, 'bulwark_throttle_rejections_total', { policy: 'pricing-shadow', mode: 'shadow' })).toBe(1);
    expect(await valueOf(registry, 'bulwark_executions_total', { kind: 'adaptive-throttle', policy: 'pricing', outcome: 'throttled' })).toBe(2);
    expect(await valueOf(registry, 'bulwark_executions_total', { kind: 'adaptive-throttle', policy: 'pricing-shadow', outcome: 'success' })).toBe(1);
  });
});

describe('adaptiveThrottle: span events', () => {
  let h: Harness | undefined;
  afterEach(async () => {
    await h?.stop();
    h = undefined;
  });

  it('records a local rejection, and a shadow one, with the mode, the probability and the counts', async () => {
    h = startSdk([new BulwarkInstrumentation()]);
    const enforcing = await refusedOnce('pricing', 'enforce');
    const shadow = await refusedOnce('pricing-shadow', 'shadow');
    await withSpan(h.tracer, 'caller', async () => {
      await capture(enforcing.execute(() => 'x'));
      await capture(shadow.execute(() => 'x'));
    });
    const counts = { [A.throttleProbability]: 0.5, [A.throttleRequests]: 1, [A.throttleAccepts]: 0 };
    expect(eventsOf(h.span('caller'))).toEqual([
      [E.throttleRejected, { [A.policyName]: 'pricing', [A.mode]: 'enforce', ...counts }],
      [E.throttleRejected, { [A.policyName]: 'pricing-shadow', [A.mode]: 'shadow', ...counts }],
    ]);
  });
});
