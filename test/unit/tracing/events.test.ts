// Span events on the caller's active span, through a real NodeSDK: one test per kind of event,
// each checking the documented attribute names and that no key or error message leaks.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  adaptiveConcurrency,
  bulkhead,
  circuitBreaker,
  consecutive,
  constant,
  fallback,
  faultInjection,
  fixedWindow,
  gcra,
  hedge,
  loadShedder,
  ManualClock,
  pipeline,
  quota,
  rateLimit,
  rateLimiter,
  retry,
  timeout,
} from '../../../src/index.js';
import { createFetch } from '../../../src/adapters/fetch.js';
import { attributeNames as A, BulwarkInstrumentation, eventNames as E } from '../../../src/tracing/index.js';
import { capture, deferred } from '../../support/helpers.js';
import { eventsOf, everyAttribute, type Harness, startSdk, withSpan } from './support.js';

/** An error class of the test's own, whose message stands in for user data. */
class PaymentDeclined extends Error {
  override name = 'PaymentDeclined';
}
const secret = 'card 4111-1111-1111-1111 of alice@example.com';

let h: Harness;
let instrumentation: BulwarkInstrumentation;

beforeEach(() => {
  instrumentation = new BulwarkInstrumentation();
  h = startSdk([instrumentation]);
});

afterEach(async () => {
  await h.stop();
});

describe('span events on the active span', () => {
  it('records each retry with the attempt, the delay and the cause class, then the give-up', async () => {
    const policy = retry({ name: 'payments', maxAttempts: 3, backoff: constant(1) });
    const outcome = await withSpan(h.tracer, 'caller', () =>
      capture(policy.execute(() => Promise.reject(new PaymentDeclined(secret)))),
    );
    expect(outcome.ok).toBe(false);
    expect(eventsOf(h.span('caller'))).toEqual([
      [E.retryScheduled, { [A.policyName]: 'payments', [A.retryAttempt]: 1, [A.retryDelayMs]: 1, [A.errorType]: 'PaymentDeclined' }],
      [E.retryScheduled, { [A.policyName]: 'payments', [A.retryAttempt]: 2, [A.retryDelayMs]: 1, [A.errorType]: 'PaymentDeclined' }],
      [
        E.retryGaveUp,
        { [A.policyName]: 'payments', [A.retryAttempt]: 3, [A.retryGiveUpReason]: 'attempts', [A.errorType]: 'PaymentDeclined' },
      ],
    ]);
    expect(everyAttribute(h.spans())).not.toContain('4111');
  });

  it('names the class of an error without its own name by its constructor', async () => {
    class LedgerUnavailable extends Error {}
    const policy = retry({ maxAttempts: 2, backoff: constant(0) });
    await withSpan(h.tracer, 'caller', () => capture(policy.execute(() => Promise.reject(new LedgerUnavailable(secret)))));
    expect(h.span('caller').events[0]!.attributes).toMatchObject({ [A.errorType]: 'LedgerUnavailable' });
  });

  it('records a breaker opening and then turning a call away', async () => {
    const breaker = circuitBreaker({ name: 'ledger', breaker: consecutive(1) });
    await withSpan(h.tracer, 'caller', async () => {
      await capture(breaker.execute(() => Promise.reject(new PaymentDeclined(secret))));
      await capture(breaker.execute(() => 'never runs'));
    });
    expect(eventsOf(h.span('caller'))).toEqual([
      [
        E.circuitStateChanged,
        { [A.policyName]: 'ledger', [A.circuitPreviousState]: 'closed', [A.circuitState]: 'open', [A.circuitReason]: 'failures', [A.mode]: 'enforce' },
      ],
      [E.circuitRejected, { [A.policyName]: 'ledger', [A.circuitState]: 'open', [A.mode]: 'enforce' }],
    ]);
  });

  it('records rate-limit and quota decisions with the store that decided, never the key', async () => {
    const limiter = rateLimiter({ name: 'partner', algorithm: gcra({ limit: 1, periodMs: 60_000 }) });
    const monthly = quota({ name: 'monthly', limit: 5, period: 'month' });
    const key = 'tenant-7f3a9c-secret-key';
    await withSpan(h.tracer, 'caller', async () => {
      await rateLimit(limiter, { key }).execute(() => 'ok');
      await capture(rateLimit(limiter, { key }).execute(() => 'denied'));
      await monthly.consume(key, { cost: 2 });
    });
    const events = eventsOf(h.span('caller'));
    expect(events.map(([name]) => name)).toEqual([E.rateLimitDecided, E.rateLimitDecided, E.rateLimitDecided]);
    expect(events[0]![1]).toMatchObject({
      [A.policyName]: 'partner',
      [A.rateLimitKind]: 'rate-limiter',
      [A.rateLimitAllowed]: true,
      [A.rateLimitLimit]: 1,
      [A.rateLimitRemaining]: 0,
      [A.rateLimitRetryAfterMs]: 0,
      [A.rateLimitStore]: 'memory',
      [A.mode]: 'enforce',
    });
    expect(events[0]![1][A.rateLimitResetMs]).toEqual(expect.any(Number));
    expect(events[1]![1]).toMatchObject({ [A.rateLimitAllowed]: false, [A.rateLimitRemaining]: 0 });
    expect(events[1]![1][A.rateLimitRetryAfterMs]).toBeGreaterThan(0);
    expect(events[2]![1]).toMatchObject({
      [A.policyName]: 'monthly',
      [A.rateLimitKind]: 'quota',
      [A.rateLimitAllowed]: true,
      [A.rateLimitLimit]: 5,
      [A.rateLimitRemaining]: 3,
      [A.rateLimitStore]: 'memory',
    });
    expect(everyAttribute(h.spans())).not.toContain('7f3a9c');
  });

  it('records a timeout on the span of the call that timed out', async () => {
    const clock = new ManualClock();
    const policy = timeout(100, { name: 'quote', clock });
    await withSpan(h.tracer, 'caller', async () => {
      const call = capture(policy.execute(({ signal }) => new Promise((_, reject) => signal.addEventListener('abort', () => reject(signal.reason)))));
      await clock.advance(100);
      await call;
    });
    expect(eventsOf(h.span('caller'))).toEqual([[E.timeoutExpired, { [A.policyName]: 'quote', [A.timeoutLimitMs]: 100 }]]);
  });

  it('records a bulkhead rejection with the calls running and waiting', async () => {
    const pool = bulkhead({ name: 'reports', maxConcurrent: 1 });
    const gate = deferred();
    const first = pool.execute(() => gate.promise);
    await withSpan(h.tracer, 'caller', () => capture(pool.execute(() => 'rejected')));
    gate.resolve();
    await first;
    expect(eventsOf(h.span('caller'))).toEqual([
      [E.bulkheadRejected, { [A.policyName]: 'reports', [A.bulkheadActive]: 1, [A.bulkheadQueued]: 0 }],
    ]);
  });

  it('records an injected fault with its kind and latency on the span of the call', async () => {
    const clock = new ManualClock();
    const chaos = faultInjection({ name: 'chaos', rate: 1, latencyMs: 20, fault: () => new PaymentDeclined(secret), clock });
    await withSpan(h.tracer, 'caller', async () => {
      const call = capture(chaos.execute(() => 'real'));
      await clock.advance(20);
      await call;
    });
    expect(eventsOf(h.span('caller'))).toEqual([[E.faultInjected, { [A.policyName]: 'chaos', [A.faultKind]: 'fault', [A.faultLatencyMs]: 20 }]]);
  });

  it('records an admission rejection with its reason, mode, class, limit and in flight', async () => {
    const policy = adaptiveConcurrency({ name: 'db', limit: 1, priority: 'sheddable' });
    const gate = deferred();
    const first = policy.execute(() => gate.promise);
    await withSpan(h.tracer, 'caller', async () => {
      await capture(policy.execute(() => 'rejected'));
      policy.mode = 'shadow';
      await policy.execute(() => 'ran');
    });
    gate.resolve();
    await first;
    const attributes = (mode: string) => ({
      [A.policyName]: 'db',
      [A.admissionReason]: 'limit',
      [A.admissionMode]: mode,
      [A.admissionPriority]: 'sheddable',
      [A.admissionLimit]: 1,
      [A.admissionInFlight]: 1,
    });
    expect(eventsOf(h.span('caller'))).toEqual([
      [E.admissionRejected, attributes('enforce')],
      [E.admissionRejected, attributes('shadow')],
    ]);
  });

  it('records each hedge with its attempt number and trigger', async () => {
    const clock = new ManualClock();
    const policy = hedge({ name: 'replicas', delayMs: 50, maxHedges: 2, clock });
    const slow = deferred<string>();
    let calls = 0;
    await withSpan(h.tracer, 'caller', async () => {
      const call = policy.execute(() => (++calls === 1 ? slow.promise : Promise.reject(new PaymentDeclined(secret))));
      await clock.advance(50);
      slow.resolve('first');
      await call;
    });
    expect(eventsOf(h.span('caller'))).toEqual([
      [E.hedgeStarted, { [A.policyName]: 'replicas', [A.hedgeAttempt]: 2, [A.hedgeTrigger]: 'delay' }],
      [E.hedgeStarted, { [A.policyName]: 'replicas', [A.hedgeAttempt]: 3, [A.hedgeTrigger]: 'failure' }],
    ]);
  });

  it('records a fallback with the class of the error it replaced', async () => {
    const policy = fallback('cached', { name: 'prices' });
    await withSpan(h.tracer, 'caller', () => policy.execute(() => Promise.reject(new PaymentDeclined(secret))));
    expect(eventsOf(h.span('caller'))).toEqual([[E.fallbackUsed, { [A.policyName]: 'prices', [A.errorType]: 'PaymentDeclined' }]]);
  });

  it('records a fetch failover with both origins and the reason', async () => {
    const fakeFetch: typeof fetch = async (input) => {
      const url = String(input instanceof Request ? input.url : input);
      if (url.startsWith('http://primary.test')) throw new TypeError('fetch failed', { cause: new Error('ECONNREFUSED') });
      return new Response('ok');
    };
    const f = createFetch({
      name: 'prices',
      endpoints: ['http://primary.test', 'http://standby.test'],
      retry: { maxAttempts: 2, backoff: constant(0) },
      attemptTimeoutMs: false,
      fetch: fakeFetch,
    });
    const response = await withSpan(h.tracer, 'caller', () => f('/v1/prices?customer=alice'));
    expect(await response.text()).toBe('ok');
    const failovers = eventsOf(h.span('caller')).filter(([name]) => name === E.fetchFailedOver);
    expect(failovers).toEqual([
      [
        E.fetchFailedOver,
        {
          [A.policyName]: 'prices',
          [A.fetchFromOrigin]: 'http://primary.test',
          [A.fetchToOrigin]: 'http://standby.test',
          [A.fetchFailoverReason]: 'failure',
        },
      ],
    ]);
    expect(everyAttribute(h.spans())).not.toContain('alice');
  });

  it('records fetch pacing: the rate learned from the answer, then the refusal beyond maxWaitMs', async () => {
    const f = createFetch({
      name: 'quotes',
      retry: false,
      circuitBreaker: false,
      pacing: { maxWaitMs: 0 },
      fetch: () => Promise.resolve(new Response('ok', { headers: { 'ratelimit-policy': '"p";q=1;w=1' } })),
    });
    await withSpan(h.tracer, 'caller', async () => {
      await f('http://quotes.test/?customer=alice');
      await f('http://quotes.test/?customer=alice'); // the first slot at the learned rate
      await f('http://quotes.test/?customer=alice').catch(() => {});
    });
    const events = eventsOf(h.span('caller')).filter(([name]) => name === E.fetchPaced);
    expect(events).toEqual([
      [E.fetchPaced, { [A.policyName]: 'quotes', [A.pacingDecision]: 'learned', [A.pacingWaitMs]: 0, [A.pacingRate]: 0.98, [A.pacingShared]: false }],
      [E.fetchPaced, { [A.policyName]: 'quotes', [A.pacingDecision]: 'rejected', [A.pacingWaitMs]: expect.any(Number), [A.pacingRate]: 0.98, [A.pacingShared]: false }],
    ]);
    expect(everyAttribute(h.spans())).not.toContain('alice');
  });

  it('records a load-shedding rejection with what was measured', async () => {
    const shedder = loadShedder({ maxEventLoopDelayMs: 100, sampler: () => ({ eventLoopDelayMs: 250 }) });
    try {
      shedder.update();
      await withSpan(h.tracer, 'server', async () => shedder.reject());
    } finally {
      shedder.dispose();
    }
    expect(eventsOf(h.span('server'))).toEqual([
      [E.sheddingRejected, { [A.sheddingReason]: 'eventLoopDelay', [A.sheddingValue]: 250, [A.sheddingThreshold]: 100, [A.mode]: 'enforce' }],
    ]);
  });

  it('makes no spans of its own unless asked', async () => {
    const policy = pipeline(retry({ maxAttempts: 2, backoff: constant(0) }), timeout(1_000));
    await withSpan(h.tracer, 'caller', () => capture(policy.execute(() => Promise.reject(new Error('x')))));
    expect(h.spans().map((s) => s.name)).toEqual(['caller']);
  });
});

describe('error messages', () => {
  it('adds exception.message to events only with recordErrorMessages', async () => {
    instrumentation.setConfig({ recordErrorMessages: true });
    const policy = fallback('cached');
    await withSpan(h.tracer, 'caller', () => policy.execute(() => Promise.reject(new PaymentDeclined(secret))));
    expect(h.span('caller').events[0]!.attributes).toEqual({
      [A.policyName]: 'fallback',
      [A.errorType]: 'PaymentDeclined',
      [A.exceptionMessage]: secret,
    });
  });
});

describe('events option', () => {
  it('records no events with events: false', async () => {
    instrumentation.setConfig({ events: false });
    await withSpan(h.tracer, 'caller', () => fallback('cached').execute(() => Promise.reject(new Error('x'))));
    expect(h.span('caller').events).toEqual([]);
  });
});

// Shadow mode (issue 15 §3): a would-be rejection is the same event, with bulwark.mode "shadow".
describe('span events of policies in shadow mode', () => {
  it('record a shadow breaker’s transitions and would-be rejections with bulwark.mode "shadow"; the call runs', async () => {
    const breaker = circuitBreaker({ name: 'ledger', breaker: consecutive(1), mode: 'shadow' });
    let ran = false;
    await withSpan(h.tracer, 'caller', async () => {
      await capture(breaker.execute(() => Promise.reject(new Error('down'))));
      await breaker.execute(() => (ran = true));
    });
    expect(ran).toBe(true);
    expect(eventsOf(h.span('caller'))).toEqual([
      [
        E.circuitStateChanged,
        { [A.policyName]: 'ledger', [A.circuitPreviousState]: 'closed', [A.circuitState]: 'open', [A.circuitReason]: 'failures', [A.mode]: 'shadow' },
      ],
      [E.circuitRejected, { [A.policyName]: 'ledger', [A.circuitState]: 'open', [A.mode]: 'shadow' }],
    ]);
  });

  it('record a shadow limiter’s denial with bulwark.mode "shadow"', async () => {
    const limiter = rateLimiter({ name: 'trial', mode: 'shadow', algorithm: fixedWindow({ limit: 1, windowMs: 60_000 }) });
    await withSpan(h.tracer, 'caller', async () => {
      await rateLimit(limiter, { key: 'k' }).execute(() => 'ran');
      await rateLimit(limiter, { key: 'k' }).execute(() => 'ran');
    });
    const events = eventsOf(h.span('caller'));
    expect(events.map(([name, attributes]) => [name, attributes[A.rateLimitAllowed], attributes[A.mode]])).toEqual([
      [E.rateLimitDecided, true, 'shadow'],
      [E.rateLimitDecided, false, 'shadow'],
    ]);
  });
});
