// Settles (issue 16 §3) and compound-limit decisions (§5) in telemetry: the Prometheus counters
// and the span events on the caller's span, through the real registration and a real NodeSDK.
import { afterEach, describe, expect, it } from 'vitest';
import { compoundLimit, fixedWindow, memoryStore, quota, rateLimiter } from '../../../src/index.js';
import { attributeNames as A, BulwarkInstrumentation, eventNames as E } from '../../../src/tracing/index.js';
import { setup, valueOf } from '../metrics/support.js';
import { eventsOf, type Harness, startSdk, withSpan } from '../tracing/support.js';

function limits() {
  const store = memoryStore();
  const perSecond = rateLimiter({ name: 'per-second', algorithm: fixedWindow({ limit: 1, windowMs: 60_000 }), store });
  const daily = quota({ name: 'daily', limit: 100, period: 'day', store });
  return { perSecond, daily, both: compoundLimit([perSecond, daily], { name: 'api' }) };
}

/** One reservation settled below its estimate, one cancelled (on a limiter and a quota). */
async function settleAndCancel(perSecond: ReturnType<typeof rateLimiter>, daily: ReturnType<typeof quota>): Promise<void> {
  await (await daily.reserve('t', 10)).settle(4);
  await (await perSecond.reserve('t', 1)).cancel();
}

describe('settle and compound limits: metrics', () => {
  it('counts settles by status and compound decisions by outcome and the limit that denied', async () => {
    const { registry } = setup();
    const { perSecond, daily, both } = limits();
    await settleAndCancel(perSecond, daily);
    await both.consume('t');
    await both.consume('t');
    expect(await valueOf(registry, 'bulwark_rate_limit_settles_total', { policy: 'daily', status: 'settled' })).toBe(1);
    expect(await valueOf(registry, 'bulwark_rate_limit_settles_total', { policy: 'per-second', status: 'cancelled' })).toBe(1);
    expect(await valueOf(registry, 'bulwark_rate_limit_compound_decisions_total', { policy: 'api', outcome: 'allowed', denied_by: '' })).toBe(1);
    expect(await valueOf(registry, 'bulwark_rate_limit_compound_decisions_total', { policy: 'api', outcome: 'denied', denied_by: 'per-second' })).toBe(1);
  });
});

describe('settle and compound limits: span events', () => {
  let h: Harness | undefined;
  afterEach(async () => {
    await h?.stop();
    h = undefined;
  });

  it('records each settle and each compound decision on the caller span', async () => {
    h = startSdk([new BulwarkInstrumentation()]);
    const { perSecond, daily, both } = limits();
    await withSpan(h.tracer, 'caller', async () => {
      await settleAndCancel(perSecond, daily);
      await both.consume('t');
      await both.consume('t');
    });
    const events = eventsOf(h.span('caller')).filter(([name]) => name !== E.rateLimitDecided);
    expect(events).toEqual([
      [E.reservationSettled, { [A.policyName]: 'daily', [A.settleStatus]: 'settled', [A.settleEstimate]: 10, [A.settleActual]: 4 }],
      [E.reservationSettled, { [A.policyName]: 'per-second', [A.settleStatus]: 'cancelled', [A.settleEstimate]: 1, [A.settleActual]: 0 }],
      [E.compoundDecided, { [A.policyName]: 'api', [A.compoundAllowed]: true }],
      [E.compoundDecided, { [A.policyName]: 'api', [A.compoundAllowed]: false, [A.compoundDeniedBy]: 'per-second' }],
    ]);
  });
});
