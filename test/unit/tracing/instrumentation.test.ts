// Enabling and disabling: through NodeSDK as OpenTelemetry users do, explicitly, and with
// enableTracing(); one recorder per process; options validated like every other bulwark option.
import { readFileSync } from 'node:fs';
import { context, diag, DiagLogLevel, trace } from '@opentelemetry/api';
import { node } from '@opentelemetry/sdk-node';
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor } from '@opentelemetry/sdk-trace-base';
import { afterEach, describe, expect, it } from 'vitest';
import { constant, retry, timeout } from '../../../src/index.js';
import { setExecuteScope } from '../../../src/core/diagnostics.js';
import {
  BulwarkInstrumentation,
  enableTracing,
  eventNames as E,
  instrumentationName,
  policyKinds,
  VERSION,
} from '../../../src/tracing/index.js';
import { capture } from '../../support/helpers.js';
import { type Harness, resetOtel, startSdk, subscriptions, withSpan } from './support.js';

const nothing = { channels: [], scope: false, sendScope: false };
/** The channels events come from (not store errors, health checks or shutdown: no span of a caller's). */
const eventChannels = [
  'bulwark:circuit:state',
  'bulwark:circuit:rejected',
  'bulwark:retry:attempt',
  'bulwark:retry:give-up',
  'bulwark:timeout:expired',
  'bulwark:bulkhead:rejected',
  'bulwark:fallback:used',
  'bulwark:hedge:attempt',
  'bulwark:ratelimit:decision',
  'bulwark:shedding:rejected',
  'bulwark:fetch:failover',
  'bulwark:fetch:pacing',
  'bulwark:admission:rejected',
  'bulwark:chaos:injected',
  'bulwark:throttle:rejected',
  'bulwark:ratelimit:compound',
  'bulwark:ratelimit:settle',
];

let h: Harness | undefined;
const cleanups: (() => void)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0)) cleanup();
  await h?.stop();
  h = undefined;
  expect(subscriptions(), 'a test left bulwark/otel subscribed').toEqual(nothing);
});

/** Fails a call through a retry inside a caller span; returns the events the caller's span got. */
async function retryEventsSeen(harness: Harness): Promise<string[]> {
  harness.exporter.reset();
  await withSpan(harness.tracer, 'caller', () =>
    capture(retry({ maxAttempts: 2, backoff: constant(0) }).execute(() => Promise.reject(new Error('x')))),
  );
  return harness.span('caller').events.map((e) => e.name);
}

describe('with NodeSDK', () => {
  it('subscribes to nothing until the SDK starts it', () => {
    const instrumentation = new BulwarkInstrumentation({ spans: true });
    cleanups.push(() => instrumentation.disable());
    expect(subscriptions()).toEqual(nothing);
    expect(instrumentation.getConfig().enabled).toBe(false);
    h = startSdk([instrumentation]);
    expect(instrumentation.isEnabled()).toBe(true);
    expect(subscriptions()).toEqual({ channels: [...eventChannels, 'tracing:bulwark:execute:error'], scope: true, sendScope: true });
  });

  it('records once started, and nothing after disable()', async () => {
    const instrumentation = new BulwarkInstrumentation();
    h = startSdk([instrumentation]);
    expect(await retryEventsSeen(h)).toEqual([E.retryScheduled, E.retryGaveUp]);
    instrumentation.disable();
    expect(subscriptions()).toEqual(nothing);
    expect(instrumentation.getConfig().enabled).toBe(false);
    expect(await retryEventsSeen(h)).toEqual([]);
    instrumentation.enable();
    expect(await retryEventsSeen(h)).toEqual([E.retryScheduled, E.retryGaveUp]);
  });

  it('records nothing for calls made before the SDK started it', async () => {
    const instrumentation = new BulwarkInstrumentation();
    const exporter = new InMemorySpanExporter();
    const provider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] });
    const span = provider.getTracer('t').startSpan('before');
    await context.with(trace.setSpan(context.active(), span), () =>
      capture(retry({ maxAttempts: 2, backoff: constant(0) }).execute(() => Promise.reject(new Error('x')))),
    );
    span.end();
    expect(exporter.getFinishedSpans()[0]!.events).toEqual([]);
    h = startSdk([instrumentation]);
    expect(await retryEventsSeen(h)).toHaveLength(2);
  });

  it('keeps recording after sdk.shutdown(), as NodeSDK does not disable instrumentations', async () => {
    const instrumentation = new BulwarkInstrumentation();
    cleanups.push(() => instrumentation.disable());
    const harness = startSdk([instrumentation]);
    await harness.sdk.shutdown();
    expect(instrumentation.isEnabled()).toBe(true);
    instrumentation.disable();
    expect(subscriptions()).toEqual(nothing);
    resetOtel();
  });

  it('subscribes at construction with enabled: true, as OpenTelemetry instrumentations do by default', () => {
    const instrumentation = new BulwarkInstrumentation({ enabled: true });
    cleanups.push(() => instrumentation.disable());
    expect(instrumentation.isEnabled()).toBe(true);
    expect(subscriptions().channels).toEqual(eventChannels);
    h = startSdk([instrumentation]); // the SDK sees it enabled and leaves it so
    expect(instrumentation.isEnabled()).toBe(true);
  });

  it('reports its scope name and the package version', async () => {
    const pkg = JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')) as { version: string };
    const instrumentation = new BulwarkInstrumentation({ spans: true });
    expect(instrumentation.instrumentationName).toBe('bulwark/otel');
    expect(instrumentation.instrumentationVersion).toBe(pkg.version);
    expect(VERSION).toBe(pkg.version);
    h = startSdk([instrumentation]);
    await retry({ maxAttempts: 1 }).execute(() => 'ok');
    expect(h.spans()[0]!.instrumentationScope).toMatchObject({ name: instrumentationName, version: pkg.version });
  });
});

describe('one recorder per process', () => {
  it('records each event once when a second instrumentation is enabled, and warns', async () => {
    const warnings: string[] = [];
    const first = new BulwarkInstrumentation();
    const second = new BulwarkInstrumentation();
    h = startSdk([first, second]);
    diag.setLogger({ warn: (m: string) => warnings.push(m), error: () => {}, info: () => {}, debug: () => {}, verbose: () => {} }, {
      logLevel: DiagLogLevel.WARN,
      suppressOverrideMessage: true,
    });
    second.enable();
    expect(first.isEnabled()).toBe(true);
    expect(second.isEnabled()).toBe(false);
    expect(warnings.join('\n')).toMatch(/already enabled/);
    expect(await retryEventsSeen(h)).toEqual([E.retryScheduled, E.retryGaveUp]);
    // Once the first lets go, the second can take over.
    first.disable();
    second.enable();
    expect(second.isEnabled()).toBe(true);
    expect(await retryEventsSeen(h)).toEqual([E.retryScheduled, E.retryGaveUp]);
  });

  it('defers to a recorder registered by another copy of bulwark', async () => {
    const registry = globalThis as unknown as Record<symbol, unknown>;
    const key = Symbol.for('bulwark.otel.active');
    registry[key] = { fromAnotherCopy: true };
    cleanups.push(() => delete registry[key]);
    const instrumentation = new BulwarkInstrumentation();
    h = startSdk([instrumentation]);
    expect(instrumentation.isEnabled()).toBe(false);
    expect(subscriptions()).toEqual(nothing);
    expect(() => enableTracing()).toThrow(/already enabled/);
  });

  it('makes enableTracing() throw while another recorder is enabled', () => {
    const tracing = enableTracing();
    cleanups.push(() => tracing.dispose());
    expect(() => enableTracing()).toThrow('enableTracing: bulwark tracing is already enabled in this process');
    const instrumentation = new BulwarkInstrumentation();
    instrumentation.enable();
    expect(instrumentation.isEnabled()).toBe(false);
  });

  it('puts back an execute scope it found installed, on dispose', () => {
    const foreign = <T>(_m: unknown, run: () => Promise<T>): Promise<T> => run();
    setExecuteScope(foreign);
    cleanups.push(() => setExecuteScope(undefined));
    const tracing = enableTracing({ spans: true });
    expect(subscriptions().scope).toBe(true);
    tracing.dispose();
    expect(setExecuteScope(undefined)).toBe(foreign);
  });
});

describe('enableTracing', () => {
  it('sends spans to an explicit tracer provider, children of the active span', async () => {
    h = startSdk([]); // the global SDK: context manager and the caller's span
    const exporter = new InMemorySpanExporter();
    const processor = new SimpleSpanProcessor(exporter);
    const provider = new BasicTracerProvider({ spanProcessors: [processor] });
    const tracing = enableTracing({ tracerProvider: provider, spans: ['retry'] });
    cleanups.push(() => tracing.dispose());
    await withSpan(h.tracer, 'caller', () => retry({ maxAttempts: 1 }).execute(() => 'ok'));
    const [ours] = exporter.getFinishedSpans();
    expect(ours?.name).toBe('bulwark retry');
    expect(ours?.parentSpanContext?.spanId).toBe(h.span('caller').spanContext().spanId);
    expect(h.spans().map((s) => s.name)).toEqual(['caller']);
    await processor.forceFlush();
  });

  it('works with a registered NodeTracerProvider and stops when disposed, once however often it is disposed', async () => {
    const exporter = new InMemorySpanExporter();
    const processor = new SimpleSpanProcessor(exporter);
    const provider = new node.NodeTracerProvider({ spanProcessors: [processor] });
    provider.register();
    cleanups.push(resetOtel);
    const tracer = provider.getTracer('test');
    const tracing = enableTracing({ tracerProvider: provider, spans: true });
    await withSpan(tracer, 'caller', () => timeout(1_000).execute(() => 'ok'));
    expect(exporter.getFinishedSpans().map((s) => s.name)).toEqual(['bulwark timeout', 'caller']);
    tracing[Symbol.dispose]();
    tracing.dispose(); // again: nothing happens
    expect(subscriptions()).toEqual(nothing);
    exporter.reset();
    await withSpan(tracer, 'caller', () => timeout(1_000).execute(() => 'ok'));
    expect(exporter.getFinishedSpans().map((s) => s.name)).toEqual(['caller']);
    await processor.forceFlush();
    await provider.shutdown();
  });

  it('validates its options, naming the option and the value', () => {
    expect(() => enableTracing({ span: true } as never)).toThrow(
      'enableTracing: unknown option "span" (known options: tracerProvider, spans, events, recordErrorMessages)',
    );
    expect(() => enableTracing({ tracerProvider: {} as never })).toThrow(
      'enableTracing: option "tracerProvider" must be a TracerProvider (with getTracer()), got an object',
    );
    expect(() => enableTracing({ spans: 'all' as never })).toThrow(
      'enableTracing: option "spans" must be a boolean or an array of policy kinds, got "all"',
    );
    expect(() => enableTracing({ enabled: true } as never)).toThrow(/unknown option "enabled"/);
    expect(subscriptions()).toEqual(nothing);
  });
});

describe('configuration', () => {
  it('rejects unknown keys and bad values, naming the option and the value', () => {
    expect(() => new BulwarkInstrumentation({ spanz: true } as never)).toThrow(
      'BulwarkInstrumentation: unknown option "spanz" (known options: enabled, spans, events, recordErrorMessages)',
    );
    expect(() => new BulwarkInstrumentation({ spans: ['retry', 'circuit'] as never })).toThrow(
      `BulwarkInstrumentation: option "spans[1]" must be one of ${policyKinds.map((k) => `"${k}"`).join(', ')}, got "circuit"`,
    );
    expect(() => new BulwarkInstrumentation({ events: 1 as never })).toThrow(
      'BulwarkInstrumentation: option "events" must be a boolean, got 1',
    );
    expect(() => new BulwarkInstrumentation({ recordErrorMessages: 'yes' as never })).toThrow(
      'BulwarkInstrumentation: option "recordErrorMessages" must be a boolean, got "yes"',
    );
    expect(() => new BulwarkInstrumentation({ enabled: null as never })).toThrow(
      'BulwarkInstrumentation: option "enabled" must be a boolean, got null',
    );
    expect(() => new BulwarkInstrumentation([] as never)).toThrow('BulwarkInstrumentation: options must be an object, got an array');
    expect(() => new BulwarkInstrumentation().setTracerProvider(null as never)).toThrow(
      'BulwarkInstrumentation.setTracerProvider: the argument must be a TracerProvider (with getTracer()), got null',
    );
    expect(() => new BulwarkInstrumentation().setConfig({ spans: 2 } as never)).toThrow(
      'BulwarkInstrumentation.setConfig: option "spans" must be a boolean or an array of policy kinds, got 2',
    );
  });

  it('reports its configuration with the defaults applied, and round-trips it through setConfig', () => {
    const instrumentation = new BulwarkInstrumentation({ spans: ['retry'] });
    expect(instrumentation.getConfig()).toEqual({ enabled: false, spans: ['retry'], events: true, recordErrorMessages: false });
    expect(new BulwarkInstrumentation().getConfig()).toEqual({ enabled: false, spans: false, events: true, recordErrorMessages: false });
    instrumentation.setConfig(instrumentation.getConfig());
    expect(instrumentation.getConfig()).toEqual({ enabled: false, spans: ['retry'], events: true, recordErrorMessages: false });
    expect(subscriptions()).toEqual(nothing);
  });

  it('applies setConfig at once while enabled, and enables or disables with its enabled key', async () => {
    const instrumentation = new BulwarkInstrumentation();
    h = startSdk([instrumentation]);
    expect(subscriptions().scope).toBe(false);
    instrumentation.setConfig({ spans: ['retry'] });
    expect(subscriptions().scope).toBe(true);
    await retry({ maxAttempts: 1 }).execute(() => 'ok');
    expect(h.spans().map((s) => s.name)).toEqual(['bulwark retry']);
    instrumentation.setConfig({ spans: true, enabled: false });
    expect(subscriptions()).toEqual(nothing);
    instrumentation.setConfig({ enabled: true, events: false });
    expect(instrumentation.isEnabled()).toBe(true);
    // Neither spans nor events: nothing to listen to, only the resend ordinal for client spans.
    expect(subscriptions()).toEqual({ ...nothing, sendScope: true });
    expect(instrumentation.getConfig()).toEqual({ enabled: true, spans: false, events: false, recordErrorMessages: false });
  });

  it('sends spans to a tracer provider set while enabled', async () => {
    const instrumentation = new BulwarkInstrumentation({ spans: ['retry'] });
    h = startSdk([instrumentation]);
    const exporter = new InMemorySpanExporter();
    const processor = new SimpleSpanProcessor(exporter);
    instrumentation.setTracerProvider(new BasicTracerProvider({ spanProcessors: [processor] }));
    await retry({ maxAttempts: 1 }).execute(() => 'ok');
    expect(exporter.getFinishedSpans().map((s) => s.name)).toEqual(['bulwark retry']);
    expect(h.spans()).toEqual([]);
    await processor.forceFlush();
  });
});
