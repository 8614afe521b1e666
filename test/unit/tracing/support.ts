// A real NodeSDK per test, exporting to memory, and the clean-up that puts the OpenTelemetry
// globals back so the next test can register its own SDK.
import diagnosticsChannel from 'node:diagnostics_channel';
import {
  context,
  type DiagLogger,
  diag,
  DiagLogLevel,
  propagation,
  type Span,
  SpanStatusCode,
  trace,
  type Tracer,
} from '@opentelemetry/api';
import { NodeSDK, type NodeSDKConfiguration } from '@opentelemetry/sdk-node';
import { InMemorySpanExporter, type ReadableSpan, SimpleSpanProcessor } from '@opentelemetry/sdk-trace-base';
import { vi } from 'vitest';
import { channelNames } from '../../../src/index.js';
import { currentExecuteScope, currentSendScope } from '../../../src/core/diagnostics.js';

/** An SDK started with the given instrumentations, and what it exported. */
export interface Harness {
  readonly sdk: NodeSDK;
  readonly exporter: InMemorySpanExporter;
  /** A tracer of the test's own, for the caller's spans. */
  readonly tracer: Tracer;
  /** Warnings and errors OpenTelemetry logged through `diag` (ending a span twice is one). */
  readonly diagnostics: string[];
  /** Finished spans. */
  spans(): ReadableSpan[];
  /** The one finished span with this name. */
  span(name: string): ReadableSpan;
  /** Shuts the SDK down, disables the instrumentations and resets the OpenTelemetry globals. */
  stop(): Promise<void>;
}

/** What NodeSDK takes as instrumentations: typed so, so that tsc checks BulwarkInstrumentation fits. */
type Instrumentations = NonNullable<NodeSDKConfiguration['instrumentations']>;

/** Starts a NodeSDK (in-memory exporter, simple processor, nothing from the environment). */
export function startSdk(instrumentations: Instrumentations = []): Harness {
  const diagnostics: string[] = [];
  const record =
    (level: string) =>
    (message: string, ...args: unknown[]): void => {
      diagnostics.push(`${level}: ${message} ${args.map(String).join(' ')}`);
    };
  const logger: DiagLogger = {
    error: record('error'),
    warn: record('warn'),
    info: () => {},
    debug: () => {},
    verbose: () => {},
  };
  diag.setLogger(logger, { logLevel: DiagLogLevel.WARN, suppressOverrideMessage: true });
  // No log or metric exporters from the environment: they would start timers and network clients.
  vi.stubEnv('OTEL_LOGS_EXPORTER', 'none');
  vi.stubEnv('OTEL_METRICS_EXPORTER', 'none');
  const exporter = new InMemorySpanExporter();
  const processor = new SimpleSpanProcessor(exporter);
  const sdk = new NodeSDK({
    spanProcessors: [processor],
    instrumentations,
    autoDetectResources: false,
  });
  sdk.start();
  const tracer = trace.getTracer('test');
  return {
    sdk,
    exporter,
    tracer,
    diagnostics,
    spans: () => exporter.getFinishedSpans(),
    span(name) {
      const found = exporter.getFinishedSpans().filter((s) => s.name === name);
      if (found.length !== 1) throw new Error(`expected one span named ${name}, got ${found.length}`);
      return found[0]!;
    },
    async stop() {
      // The in-memory exporter answers on a timer, and shutting down does not wait for it.
      await processor.forceFlush();
      await sdk.shutdown();
      for (const i of instrumentations.flat()) i.disable();
      resetOtel();
    },
  };
}

/** Unregisters every OpenTelemetry global (provider, context manager, propagator, diag logger). */
export function resetOtel(): void {
  trace.disable();
  context.disable();
  propagation.disable();
  diag.disable();
  vi.unstubAllEnvs();
}

/** Runs `body` inside a new active span named `name`, ending it after; returns the span and result. */
export async function withSpan<T>(tracer: Tracer, name: string, body: (span: Span) => Promise<T>): Promise<T> {
  return tracer.startActiveSpan(name, async (span) => {
    try {
      return await body(span);
    } finally {
      span.end();
    }
  });
}

/** The span's events as `[name, attributes]` pairs, in order. */
export function eventsOf(span: ReadableSpan): [string, Record<string, unknown>][] {
  return span.events.map((e) => [e.name, { ...e.attributes }]);
}

/** Channels bulwark/otel may subscribe to, and the `error` sub-channel of the execute one. */
export const allChannels: string[] = [
  ...Object.entries(channelNames)
    .filter(([key]) => key !== 'execute')
    .map(([, name]) => name),
  'tracing:bulwark:execute:start',
  'tracing:bulwark:execute:end',
  'tracing:bulwark:execute:asyncStart',
  'tracing:bulwark:execute:asyncEnd',
  'tracing:bulwark:execute:error',
];

/** The channels with subscribers now, and whether an execute scope and a send scope are installed. */
export function subscriptions(): { channels: string[]; scope: boolean; sendScope: boolean } {
  return {
    channels: allChannels.filter((name) => diagnosticsChannel.hasSubscribers(name)),
    scope: currentExecuteScope() !== undefined,
    sendScope: currentSendScope() !== undefined,
  };
}

/** Every attribute value of every span and event, as one string to search for leaked data. */
export function everyAttribute(spans: readonly ReadableSpan[]): string {
  const values: unknown[] = [];
  for (const span of spans) {
    values.push(span.name, span.status.message, ...Object.values(span.attributes));
    for (const event of span.events) values.push(event.name, ...Object.values(event.attributes ?? {}));
  }
  return JSON.stringify(values);
}

/**
 * The spans as an indented outline, children under their parent in start order, each line the
 * span's name and, when it failed, ` !ErrorType`. Spans whose parent was not exported are roots.
 */
export function outline(spans: readonly ReadableSpan[]): string[] {
  const ids = new Set(spans.map((s) => s.spanContext().spanId));
  const byStart = [...spans].sort((a, b) => a.startTime[0] - b.startTime[0] || a.startTime[1] - b.startTime[1]);
  const lines: string[] = [];
  const visit = (parent: string | undefined, depth: number): void => {
    for (const span of byStart) {
      const p = span.parentSpanContext?.spanId;
      const isChild = parent === undefined ? p === undefined || !ids.has(p) : p === parent;
      if (!isChild) continue;
      const failed = span.status.code === SpanStatusCode.ERROR ? ` !${String(span.attributes['error.type'])}` : '';
      lines.push(`${'  '.repeat(depth)}${span.name}${failed}`);
      visit(span.spanContext().spanId, depth + 1);
    }
  };
  visit(undefined, 0);
  return lines;
}
