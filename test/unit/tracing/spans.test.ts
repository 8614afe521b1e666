// A span per policy execution, when asked: nesting, attributes, status and errors, through a
// real NodeSDK.
import { context, ROOT_CONTEXT, SpanKind, SpanStatusCode, trace } from '@opentelemetry/api';
import { afterEach, describe, expect, it } from 'vitest';
import {
  circuitBreaker,
  constant,
  fallback,
  hedge,
  ManualClock,
  pipeline,
  retry,
  timeout,
  TimeoutError,
} from '../../../src/index.js';
import { attributeNames as A, BulwarkInstrumentation, type BulwarkInstrumentationConfig, eventNames as E } from '../../../src/tracing/index.js';
import type { Context } from '../../../src/core/context.js';
import { callFunction, PolicyBase, type PolicyFunction, runSymbol } from '../../../src/core/policy.js';
import { capture, deferred, flush } from '../../support/helpers.js';
import { everyAttribute, type Harness, outline, startSdk, withSpan } from './support.js';

class InventoryDown extends Error {
  override name = 'InventoryDown';
}
const secret = 'select * from users where email = alice@example.com';

let h: Harness | undefined;
afterEach(async () => {
  await h?.stop();
  h = undefined;
});

function start(config: BulwarkInstrumentationConfig): Harness {
  h = startSdk([new BulwarkInstrumentation(config)]);
  return h;
}

describe('spans per policy execution', () => {
  it('nests retry, breaker and timeout spans under the caller, an attempt per breaker span', async () => {
    const { tracer, spans, diagnostics } = start({ spans: true });
    const policy = pipeline(retry({ name: 'payments', maxAttempts: 3, backoff: constant(1) }), circuitBreaker(), timeout(5_000));
    let calls = 0;
    const result = await withSpan(tracer, 'caller', () =>
      policy.execute(() =>
        // The function's own span must nest under the innermost policy's.
        tracer.startActiveSpan('work', (span) => {
          span.end();
          return ++calls === 1 ? Promise.reject(new InventoryDown(secret)) : 'paid';
        }),
      ),
    );
    expect(result).toBe('paid');
    expect(outline(spans())).toEqual([
      'caller',
      '  bulwark pipeline',
      '    bulwark retry payments',
      '      bulwark circuit-breaker !InventoryDown',
      '        bulwark timeout !InventoryDown',
      '          work',
      '      bulwark circuit-breaker',
      '        bulwark timeout',
      '          work',
    ]);
    // Ended exactly once each: a second end() is logged as a warning by the SDK.
    expect(diagnostics).toEqual([]);
    expect(new Set(spans().map((s) => s.spanContext().spanId)).size).toBe(spans().length);
  });

  it('gives each span kind INTERNAL and the policy kind and name, and the retry its events', async () => {
    const { tracer, span } = start({ spans: true });
    const policy = pipeline(retry({ name: 'payments', maxAttempts: 2, backoff: constant(1) }), timeout(5_000, { name: 'quote' }));
    let calls = 0;
    await withSpan(tracer, 'caller', () => policy.execute(() => (++calls === 1 ? Promise.reject(new InventoryDown(secret)) : 'ok')));
    const retrySpan = span('bulwark retry payments');
    expect(retrySpan.kind).toBe(SpanKind.INTERNAL);
    expect(retrySpan.attributes).toEqual({ [A.policyKind]: 'retry', [A.policyName]: 'payments' });
    expect(retrySpan.status.code).toBe(SpanStatusCode.UNSET);
    expect(retrySpan.events.map((e) => e.name)).toEqual([E.retryScheduled]);
    expect(retrySpan.instrumentationScope.name).toBe('bulwark/otel');
    expect(span('bulwark pipeline').attributes).toEqual({ [A.policyKind]: 'pipeline', [A.policyName]: 'pipeline' });
    // The caller's span gets nothing: the events went to the innermost active span.
    expect(span('caller').events).toEqual([]);
  });

  it('marks a failed execution ERROR with error.type, and adds no exception event', async () => {
    const { tracer, span, spans } = start({ spans: ['timeout'] });
    const clock = new ManualClock();
    const policy = timeout(100, { clock });
    await withSpan(tracer, 'caller', async () => {
      const call = capture(policy.execute(() => new Promise(() => {})));
      await clock.advance(100);
      expect((await call).ok).toBe(false);
    });
    const failed = span('bulwark timeout');
    expect(failed.status).toEqual({ code: SpanStatusCode.ERROR });
    expect(failed.attributes[A.errorType]).toBe('TimeoutError');
    // The timeout event lands on the timeout's own span, which is active inside it; no `exception`.
    expect(failed.events.map((e) => e.name)).toEqual([E.timeoutExpired]);
    expect(everyAttribute(spans())).not.toMatch(/timed out|after 100/i);
  });

  // Regression (issue 12): one exception landed as an `exception` event (with its stack, when
  // messages were on) on every nested span it passed through: pipeline, retry, breaker, timeout.
  // Since semconv 1.40 span events for errors are deprecated: each failed span carries status
  // ERROR and error.type, and no span carries an exception event.
  it('records one failure through nested spans as status and error.type on each failed span, never as exception events', async () => {
    const { tracer, spans } = start({ spans: true, recordErrorMessages: true });
    const policy = pipeline(retry({ name: 'payments', maxAttempts: 2, backoff: constant(0) }), circuitBreaker(), timeout(5_000));
    await withSpan(tracer, 'caller', () => capture(policy.execute(() => Promise.reject(new InventoryDown(secret)))));
    const bulwarkSpans = spans().filter((s) => s.name.startsWith('bulwark '));
    // pipeline, retry, and per attempt a breaker and a timeout span.
    expect(bulwarkSpans).toHaveLength(6);
    for (const s of bulwarkSpans) {
      expect(s.status, s.name).toEqual({ code: SpanStatusCode.ERROR, message: secret });
      expect(s.attributes[A.errorType], s.name).toBe('InventoryDown');
    }
    expect(spans().flatMap((s) => s.events.map((e) => e.name))).not.toContain('exception');
    expect(everyAttribute(spans())).not.toContain('spans.test'); // no stack trace anywhere
    // The caller's span is the caller's to mark: bulwark leaves it alone.
    expect(spans().find((s) => s.name === 'caller')!.status.code).toBe(SpanStatusCode.UNSET);
  });

  it('never records the error message or stack unless asked', async () => {
    const { tracer, spans } = start({ spans: true });
    await withSpan(tracer, 'caller', () => capture(retry({ maxAttempts: 1 }).execute(() => Promise.reject(new InventoryDown(secret)))));
    expect(everyAttribute(spans())).not.toContain('alice');
    expect(everyAttribute(spans())).not.toContain('spans.test');
  });

  it('records the message as the status description with recordErrorMessages, and no stack', async () => {
    const { tracer, span } = start({ spans: true, recordErrorMessages: true });
    await withSpan(tracer, 'caller', () => capture(retry({ maxAttempts: 1 }).execute(() => Promise.reject(new InventoryDown(secret)))));
    const failed = span('bulwark retry');
    expect(failed.status).toEqual({ code: SpanStatusCode.ERROR, message: secret });
    expect(failed.attributes[A.errorType]).toBe('InventoryDown');
    expect(failed.events.map((e) => e.name)).toEqual([E.retryGaveUp]);
  });

  it('traces only the kinds listed', async () => {
    const { tracer, spans } = start({ spans: ['retry', 'timeout'] });
    const policy = pipeline(fallback('cached'), retry({ maxAttempts: 1 }), circuitBreaker(), timeout(5_000));
    await withSpan(tracer, 'caller', () => policy.execute(() => 'ok'));
    expect(outline(spans())).toEqual(['caller', '  bulwark retry', '    bulwark timeout']);
  });

  it('ends a span OK when a fallback inside it replaced the error, and the inner span ERROR', async () => {
    const { tracer, spans } = start({ spans: true });
    const policy = pipeline(fallback('cached', { name: 'prices' }), timeout(5_000));
    const value = await withSpan(tracer, 'caller', () => policy.execute(() => Promise.reject(new InventoryDown(secret))));
    expect(value).toBe('cached');
    expect(outline(spans())).toEqual(['caller', '  bulwark pipeline', '    bulwark fallback prices', '      bulwark timeout !InventoryDown']);
  });

  it('nests hedged attempts under the hedge span, the delayed one too', async () => {
    const { tracer, spans } = start({ spans: true });
    const clock = new ManualClock();
    const policy = pipeline(hedge({ delayMs: 50, clock }), timeout(5_000));
    const slow = deferred<string>();
    let calls = 0;
    await withSpan(tracer, 'caller', async () => {
      const call = policy.execute(() => (++calls === 1 ? slow.promise : 'fast'));
      await clock.advance(50);
      expect(await call).toBe('fast');
    });
    // The losing attempt's span ends when its function settles (it ignored its signal).
    slow.resolve('late');
    await flush();
    expect(outline(spans())).toEqual([
      'caller',
      '  bulwark pipeline',
      '    bulwark hedge',
      '      bulwark timeout',
      '      bulwark timeout',
    ]);
  });

  it('starts a root span when no span is active, and follows a parent the sampler dropped', async () => {
    const { spans } = start({ spans: ['retry'] });
    await retry({ maxAttempts: 1 }).execute(() => 'ok');
    expect(outline(spans())).toEqual(['bulwark retry']);
    const dropped = trace.wrapSpanContext({ traceId: '0af7651916cd43dd8448eb211c80319c', spanId: 'b7ad6b7169203331', traceFlags: 0 });
    await context.with(trace.setSpan(ROOT_CONTEXT, dropped), () => retry({ maxAttempts: 1 }).execute(() => 'ok'));
    expect(spans().map((s) => s.name)).toEqual(['bulwark retry']);
  });

  it('traces a policy of any kind with spans: true, one not in policyKinds too', async () => {
    class Audited extends PolicyBase {
      readonly kind = 'audited';
      readonly name = 'audit';
      [runSymbol]<T>(fn: PolicyFunction<T>, context: Context): Promise<T> {
        return callFunction(fn, context);
      }
    }
    const { spans } = start({ spans: true });
    await new Audited().execute(() => 'ok');
    expect(spans().map((s) => [s.name, s.attributes[A.policyKind]])).toEqual([['bulwark audited audit', 'audited']]);
  });

  it('rejects with the policy error itself, not a wrapper', async () => {
    start({ spans: true });
    const outcome = await capture(timeout(1, { clock: new ManualClock() }).execute(() => Promise.reject(new InventoryDown(secret))));
    expect(outcome.ok === false && outcome.error).toBeInstanceOf(InventoryDown);
    expect(outcome.ok === false && outcome.error).not.toBeInstanceOf(TimeoutError);
  });
});
