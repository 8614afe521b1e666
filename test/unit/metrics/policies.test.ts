// The outbound policies' metrics: executions and their durations from the `bulwark:execute`
// tracing channel, and each policy's own event counter, driven by the real policies.
import { describe, expect, it } from 'vitest';
import {
  adaptiveConcurrency,
  ConcurrencyLimitedError,
  BulkheadRejectedError,
  bulkhead,
  circuitBreaker,
  consecutive,
  constant,
  fallback,
  fixedWindow,
  hedge,
  ManualClock,
  pipeline,
  quota,
  rateLimit,
  rateLimiter,
  retry,
  timeout,
} from '../../../src/index.js';
import { executeChannel } from '../../../src/core/diagnostics.js';
import { deferred, flush } from '../../support/helpers.js';
import { Boom, ignore, setup, valueOf } from './support.js';

describe('executions and durations', () => {
  it('count each settled execution by kind, policy and outcome, and time it in seconds', async () => {
    const { registry } = setup();
    const breaker = circuitBreaker({ name: 'payments' });
    await breaker.execute(() => 'ok');
    await breaker.execute(() => 'ok');
    await breaker.execute(() => Promise.reject(new Boom('down'))).catch(ignore);
    await breaker.execute(async () => {
      await new Promise((resolve) => setTimeout(resolve, 30));
    });
    const success = { kind: 'circuit-breaker', policy: 'payments', outcome: 'success' };
    expect(await valueOf(registry, 'bulwark_executions_total', success)).toBe(3);
    expect(await valueOf(registry, 'bulwark_executions_total', { ...success, outcome: 'error' })).toBe(1);
    const h = 'bulwark_execution_duration_seconds';
    expect(await valueOf(registry, h, success, `${h}_count`)).toBe(3);
    expect(await valueOf(registry, h, { ...success, outcome: 'error' }, `${h}_count`)).toBe(1);
    const sum = (await valueOf(registry, h, success, `${h}_sum`))!;
    expect(sum).toBeGreaterThanOrEqual(0.025); // the 30 ms call, in seconds
    expect(sum).toBeLessThan(5);
    expect(await valueOf(registry, h, { ...success, le: '0.001' }, `${h}_bucket`)).toBeGreaterThanOrEqual(1);
    expect(await valueOf(registry, h, { ...success, le: '+Inf' }, `${h}_bucket`)).toBe(3);
  });

  it('counts a rejection with a hostile value as an error, without throwing out of the channel subscriber', async () => {
    // A revoked Proxy throws on any property read; a subscriber that read one would throw, and
    // Node turns a throw in a subscriber into the process's uncaught exception.
    const { proxy, revoke } = Proxy.revocable({}, {});
    revoke();
    const throwingName = new Error('x');
    Object.defineProperty(throwingName, 'name', {
      get() {
        throw new Error('no name for you');
      },
    });
    const { registry } = setup();
    const t = timeout(1_000, { name: 'hostile' });
    await expect(t.execute(() => Promise.reject(proxy))).rejects.toBe(proxy);
    await expect(t.execute(() => Promise.reject(throwingName))).rejects.toBe(throwingName);
    await new Promise((resolve) => setImmediate(resolve)); // where a rethrown subscriber error would surface
    expect(await valueOf(registry, 'bulwark_executions_total', { kind: 'timeout', policy: 'hostile', outcome: 'error' })).toBe(2);
  });

  it('uses the given duration buckets', async () => {
    const { registry } = setup({ durationBuckets: [0.5, 2] });
    await timeout(1_000, { name: 't' }).execute(() => 1);
    const h = 'bulwark_execution_duration_seconds';
    const labels = { kind: 'timeout', policy: 't', outcome: 'success' };
    expect(await valueOf(registry, h, { ...labels, le: '0.5' }, `${h}_bucket`)).toBe(1);
    expect(await valueOf(registry, h, { ...labels, le: '2' }, `${h}_bucket`)).toBe(1);
    expect(await valueOf(registry, h, { ...labels, le: '0.1' }, `${h}_bucket`)).toBeUndefined();
  });

  it('counts a synchronous throw of the function as an error', async () => {
    const { registry } = setup();
    await retry({ name: 'r', maxAttempts: 1 })
      .execute(() => {
        throw new Boom('sync');
      })
      .catch(ignore);
    expect(await valueOf(registry, 'bulwark_executions_total', { kind: 'retry', policy: 'r', outcome: 'error' })).toBe(1);
  });

  it('counts an execution whose policy throws synchronously (no async events follow) as an error', async () => {
    const { registry } = setup();
    // bulwark's own policies always return a promise; a traced foreign one may throw at once.
    expect(() =>
      executeChannel.tracePromise(() => {
        throw new Boom('sync');
      }, { kind: 'opossum', policy: 'legacy' }),
    ).toThrow('sync');
    const labels = { kind: 'opossum', policy: 'legacy', outcome: 'error' };
    expect(await valueOf(registry, 'bulwark_executions_total', labels)).toBe(1);
    const h = 'bulwark_execution_duration_seconds';
    expect(await valueOf(registry, h, labels, `${h}_count`)).toBe(1);
  });

  it('gives each layer of a pipeline its own series, and the pipeline one of its own', async () => {
    const { registry } = setup();
    const clock = new ManualClock();
    const p = pipeline(
      fallback('cached', { name: 'fb' }),
      retry({ name: 'r', maxAttempts: 2, backoff: constant(0), clock }),
      timeout(1_000, { name: 't', clock }),
    );
    expect(await p.execute(() => Promise.reject(new Boom('down')))).toBe('cached');
    const count = (labels: Record<string, string>) => valueOf(registry, 'bulwark_executions_total', labels);
    expect(await count({ kind: 'pipeline', policy: 'pipeline', outcome: 'success' })).toBe(1);
    expect(await count({ kind: 'fallback', policy: 'fb', outcome: 'success' })).toBe(1);
    expect(await count({ kind: 'retry', policy: 'r', outcome: 'error' })).toBe(1);
    expect(await count({ kind: 'timeout', policy: 't', outcome: 'error' })).toBe(2); // once per attempt
    expect(await valueOf(registry, 'bulwark_retries_total', { policy: 'r' })).toBe(1);
    expect(await valueOf(registry, 'bulwark_retry_give_ups_total', { policy: 'r', reason: 'attempts' })).toBe(1);
    expect(await valueOf(registry, 'bulwark_fallbacks_total', { policy: 'fb' })).toBe(1);
  });

  it.each([
    ['circuit_open', 'circuit-breaker'],
    ['circuit_isolated', 'circuit-breaker'],
    ['timeout', 'timeout'],
    ['bulkhead_rejected', 'bulkhead'],
    ['concurrency_limited', 'adaptive-concurrency'],
    ['rate_limited', 'rate-limit'],
    ['quota_exceeded', 'rate-limit'],
    ['aborted', 'retry'],
  ] as const)('labels a bulwark rejection by its class: %s', async (outcome, kind) => {
    const { registry } = setup();
    const clock = new ManualClock();
    const name = `p-${outcome}`;
    switch (outcome) {
      case 'circuit_open': {
        const b = circuitBreaker({ name, breaker: consecutive(1) });
        await b.execute(() => Promise.reject(new Boom('x'))).catch(ignore);
        await b.execute(() => 1).catch(ignore);
        break;
      }
      case 'circuit_isolated': {
        const b = circuitBreaker({ name });
        const hold = b.isolate();
        await b.execute(() => 1).catch(ignore);
        hold.dispose();
        break;
      }
      case 'timeout': {
        const call = timeout(10, { name, clock })
          .execute(() => new Promise(() => {}))
          .catch(ignore);
        await clock.advance(10);
        await call;
        break;
      }
      case 'bulkhead_rejected': {
        const b = bulkhead({ name, maxConcurrent: 1, maxQueue: 0 });
        const gate = deferred();
        const first = b.execute(() => gate.promise);
        await expect(b.execute(() => 1)).rejects.toBeInstanceOf(BulkheadRejectedError);
        gate.resolve();
        await first;
        break;
      }
      case 'concurrency_limited': {
        const a = adaptiveConcurrency({ name, limit: 1 });
        const gate = deferred();
        const first = a.execute(() => gate.promise);
        await expect(a.execute(() => 1)).rejects.toBeInstanceOf(ConcurrencyLimitedError);
        gate.resolve();
        await first;
        break;
      }
      case 'rate_limited': {
        const limiter = rateLimiter({ name: 'rl', algorithm: fixedWindow({ limit: 1, windowMs: 60_000 }) });
        const p = rateLimit(limiter, { key: 'k', name });
        await p.execute(() => 1);
        await p.execute(() => 1).catch(ignore);
        break;
      }
      case 'quota_exceeded': {
        const q = quota({ name: 'q', limit: 1, period: 'day', timeZone: 'UTC' });
        const p = rateLimit(q, { key: 'k', name });
        await p.execute(() => 1);
        await p.execute(() => 1).catch(ignore);
        break;
      }
      case 'aborted': {
        const controller = new AbortController();
        const r = retry({ name, maxAttempts: 3, backoff: constant(1_000), clock });
        const call = r.execute(() => Promise.reject(new Boom('x')), { signal: controller.signal });
        await flush();
        controller.abort(Object.assign(new Error('stop'), { name: 'AbortError' }));
        await call.catch(ignore);
        await flush(); // the caller is answered at once; the retry itself settles right after
        break;
      }
    }
    expect(await valueOf(registry, 'bulwark_executions_total', { kind, policy: name, outcome })).toBe(1);
  });
});

describe('policy events', () => {
  it('counts retries and give-ups by reason', async () => {
    const { registry } = setup();
    const clock = new ManualClock();
    const r = retry({ name: 'api', maxAttempts: 3, backoff: constant(5), clock, handle: (e) => !(e instanceof TypeError) });
    let calls = 0;
    const call = r.execute(() => (++calls < 3 ? Promise.reject(new Boom('flaky')) : 'ok'));
    await clock.advance(5);
    await clock.advance(5);
    expect(await call).toBe('ok');
    expect(await valueOf(registry, 'bulwark_retries_total', { policy: 'api' })).toBe(2);
    await r.execute(() => Promise.reject(new TypeError('not retryable'))).catch(ignore);
    expect(await valueOf(registry, 'bulwark_retry_give_ups_total', { policy: 'api', reason: 'unhandled' })).toBe(1);
    expect(await valueOf(registry, 'bulwark_retries_total', { policy: 'api' })).toBe(2);
  });

  it('counts timeouts', async () => {
    const { registry } = setup();
    const clock = new ManualClock();
    const t = timeout(100, { name: 'slow', clock });
    const call = t.execute(() => new Promise(() => {})).catch(ignore);
    await clock.advance(100);
    await call;
    expect(await valueOf(registry, 'bulwark_timeouts_total', { policy: 'slow' })).toBe(1);
  });

  it('counts bulkhead rejections', async () => {
    const { registry } = setup();
    const b = bulkhead({ name: 'pool', maxConcurrent: 1, maxQueue: 0 });
    const gate = deferred();
    const running = b.execute(() => gate.promise);
    await b.execute(() => 1).catch(ignore);
    await b.execute(() => 1).catch(ignore);
    gate.resolve();
    await running;
    expect(await valueOf(registry, 'bulwark_bulkhead_rejections_total', { policy: 'pool', mode: 'enforce' })).toBe(2);
  });

  it('counts fallbacks', async () => {
    const { registry } = setup();
    const f = fallback(0, { name: 'zero' });
    await f.execute(() => Promise.reject(new Boom('x')));
    await f.execute(() => 5);
    expect(await valueOf(registry, 'bulwark_fallbacks_total', { policy: 'zero' })).toBe(1);
  });

  it('counts hedges by trigger', async () => {
    const { registry } = setup();
    const clock = new ManualClock();
    const h = hedge({ name: 'search', delayMs: 50, maxHedges: 1, clock });
    const slow = deferred<string>();
    let n = 0;
    const call = h.execute(() => (++n === 1 ? slow.promise : Promise.resolve('fast')));
    await clock.advance(50);
    expect(await call).toBe('fast');
    slow.resolve('late');
    expect(await valueOf(registry, 'bulwark_hedges_total', { policy: 'search', trigger: 'delay' })).toBe(1);
  });

  it('counts circuit transitions with their reason, and rejections by state', async () => {
    const { registry } = setup();
    const clock = new ManualClock();
    const b = circuitBreaker({ name: 'db', breaker: consecutive(1), halfOpenAfterMs: 1_000, clock });
    await b.execute(() => Promise.reject(new Boom('x'))).catch(ignore);
    await b.execute(() => 1).catch(ignore);
    await b.execute(() => 1).catch(ignore);
    await clock.advance(1_000);
    await b.execute(() => 1);
    const t = (from: string, to: string, reason: string) =>
      valueOf(registry, 'bulwark_circuit_transitions_total', { policy: 'db', from, to, reason });
    expect(await t('closed', 'open', 'failures')).toBe(1);
    expect(await t('open', 'half-open', 'half-open-due')).toBe(1);
    expect(await t('half-open', 'closed', 'probes-succeeded')).toBe(1);
    expect(await valueOf(registry, 'bulwark_circuit_rejections_total', { policy: 'db', state: 'open' })).toBe(2);
  });
});
