// Trace context through bulwark/fetch to a real loopback server, with OpenTelemetry's undici
// instrumentation registered in a real NodeSDK: every outbound attempt — retried, or hedged from
// the policy's shared timer — is a client span under the caller's span (or under bulwark's
// execution span when spans are on), and the server receives a traceparent of the same trace.
//
// Regression (issue 12): retried requests made client spans that could not be told apart from
// the first; the semantic conventions put `http.request.resend_count` (1, 2, ...) on the client
// span of the second and later requests. The undici instrumentation makes those spans, so bulwark
// hands it the ordinal through its startSpanHook (`resendCountAttributes`). And a call whose
// attempts all fail marks each failed bulwark span ERROR with error.type, with no `exception`
// event (span events for errors are deprecated since semconv 1.40).
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { SpanKind, SpanStatusCode } from '@opentelemetry/api';
import { UndiciInstrumentation } from '@opentelemetry/instrumentation-undici';
import type { ReadableSpan } from '@opentelemetry/sdk-trace-base';
import { afterEach, describe, expect, it } from 'vitest';
import { createFetch } from '../../../src/adapters/fetch.js';
import { constant } from '../../../src/index.js';
import {
  attributeNames as A,
  BulwarkInstrumentation,
  type BulwarkInstrumentationConfig,
  resendCountAttributes,
} from '../../../src/tracing/index.js';
import { type Harness, startSdk, withSpan } from '../../unit/tracing/support.js';

interface Received {
  readonly path: string;
  readonly traceparent: string | undefined;
}

let server: Server | undefined;
let h: Harness | undefined;
afterEach(async () => {
  await h?.stop();
  h = undefined;
  if (server !== undefined) {
    const s = server;
    server = undefined;
    s.closeAllConnections();
    await new Promise<void>((resolve) => s.close(() => resolve()));
  }
});

/**
 * A loopback server: `/flaky` answers 503 the first time and 200 after, `/twice` the first two
 * times; `/down` always answers 503; `/slow-first` holds its first request open (until the
 * client gives up on it) and answers the next ones at once; anything else answers 200 at once.
 * Records each request's path and traceparent header.
 */
async function serve(): Promise<{ url: string; received: Received[] }> {
  const received: Received[] = [];
  const seen = new Map<string, number>();
  const handler = (req: IncomingMessage, res: ServerResponse): void => {
    const path = req.url ?? '/';
    const header = req.headers.traceparent;
    received.push({ path, traceparent: Array.isArray(header) ? header[0] : header });
    const n = (seen.get(path) ?? 0) + 1;
    seen.set(path, n);
    if ((path === '/flaky' && n === 1) || (path === '/twice' && n <= 2) || path === '/down') {
      res.writeHead(503).end('busy');
    } else if (path === '/slow-first' && n === 1) {
      // Held open: the hedge must win.
    } else {
      res.writeHead(200).end(`ok ${path}`);
    }
  };
  server = createServer(handler);
  await new Promise<void>((resolve) => server!.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return { url: `http://127.0.0.1:${port}`, received };
}

function start(config: BulwarkInstrumentationConfig = {}, undici = new UndiciInstrumentation()): Harness {
  h = startSdk([new BulwarkInstrumentation(config), undici]);
  return h;
}

/** With the undici instrumentation given bulwark's resend ordinal as its startSpanHook. */
const startCounting = (config: BulwarkInstrumentationConfig = {}): Harness =>
  start(config, new UndiciInstrumentation({ startSpanHook: resendCountAttributes }));

const clientSpans = (spans: readonly ReadableSpan[]): ReadableSpan[] => spans.filter((s) => s.kind === SpanKind.CLIENT);
const parentOf = (span: ReadableSpan): string | undefined => span.parentSpanContext?.spanId;

/** The span ids from `span` up to the root, through the exported spans. */
function ancestry(span: ReadableSpan, spans: readonly ReadableSpan[]): string[] {
  const byId = new Map(spans.map((s) => [s.spanContext().spanId, s]));
  const chain: string[] = [];
  for (let id = parentOf(span); id !== undefined; id = parentOf(byId.get(id)!)) {
    chain.push(id);
    if (!byId.has(id)) break;
  }
  return chain;
}

/** Checks that the server saw, for each client span, a traceparent naming that span in the caller's trace. */
function expectPropagated(received: readonly Received[], clients: readonly ReadableSpan[], traceId: string): void {
  expect(received.map((r) => r.traceparent)).toEqual(
    expect.arrayContaining(clients.map((c) => `00-${traceId}-${c.spanContext().spanId}-01`)),
  );
  for (const r of received) expect(r.traceparent?.split('-')[1]).toBe(traceId);
}

describe('createFetch with the undici instrumentation', () => {
  it('makes each retried attempt a client span under the caller span, and sends its traceparent', async () => {
    const { url, received } = await serve();
    const harness = start();
    const f = createFetch({ retry: { maxAttempts: 3, backoff: constant(5) } });
    const res = await withSpan(harness.tracer, 'caller', () => f(`${url}/flaky`));
    expect(await res.text()).toBe('ok /flaky');
    const caller = harness.span('caller');
    const clients = clientSpans(harness.spans());
    expect(clients).toHaveLength(2);
    for (const client of clients) expect(parentOf(client)).toBe(caller.spanContext().spanId);
    expect(received).toHaveLength(2);
    expectPropagated(received, clients, caller.spanContext().traceId);
    // The retry event is on the caller's span too.
    expect(caller.events.map((e) => e.name)).toContain('bulwark.retry.scheduled');
  });

  it('makes a hedged attempt started from the shared timer a child of its own caller span', async () => {
    const { url, received } = await serve();
    const harness = start();
    const f = createFetch({ hedge: { delayMs: 200 }, retry: false });
    // An earlier call in another span arms the hedge policy's shared timer and finishes at once,
    // so the next call's hedge starts from that timer, armed in the other span's context.
    await withSpan(harness.tracer, 'earlier', async () => (await f(`${url}/fast`)).text());
    const res = await withSpan(harness.tracer, 'caller', () => f(`${url}/slow-first`));
    expect(await res.text()).toBe('ok /slow-first');
    const caller = harness.span('caller');
    const clients = clientSpans(harness.spans()).filter((s) => String(s.attributes['url.full']).endsWith('/slow-first'));
    expect(clients).toHaveLength(2);
    for (const client of clients) expect(parentOf(client)).toBe(caller.spanContext().spanId);
    expectPropagated(
      received.filter((r) => r.path === '/slow-first'),
      clients,
      caller.spanContext().traceId,
    );
    expect(caller.events.map((e) => e.name)).toContain('bulwark.hedge.started');
  });

  it('with spans on, parents each client span on a bulwark span that descends from the caller span', async () => {
    const { url, received } = await serve();
    const harness = start({ spans: true });
    const f = createFetch({ retry: { maxAttempts: 3, backoff: constant(5) }, hedge: { delayMs: 200 } });
    await withSpan(harness.tracer, 'earlier', async () => (await f(`${url}/fast`)).text());
    harness.exporter.reset();
    const res = await withSpan(harness.tracer, 'caller', () => f(`${url}/slow-first`));
    expect(await res.text()).toBe('ok /slow-first');
    const spans = harness.spans();
    const caller = harness.span('caller');
    const clients = clientSpans(spans);
    expect(clients).toHaveLength(2);
    for (const client of clients) {
      const parent = spans.find((s) => s.spanContext().spanId === parentOf(client));
      expect(parent?.name).toMatch(/^bulwark /);
      const chain = ancestry(client, spans);
      expect(chain).toContain(caller.spanContext().spanId);
      // Through the hedge's span: the delayed attempt too.
      expect(chain.map((id) => spans.find((s) => s.spanContext().spanId === id)?.name)).toContain('bulwark hedge fetch');
    }
    expectPropagated(
      received.filter((r) => r.path === '/slow-first'),
      clients,
      caller.spanContext().traceId,
    );
  });

  it('with spans for retries only, parents both attempts on the retry span, a child of the caller span', async () => {
    const { url } = await serve();
    const harness = start({ spans: ['retry'] });
    const f = createFetch({ retry: { maxAttempts: 3, backoff: constant(5) } });
    await withSpan(harness.tracer, 'caller', async () => (await f(`${url}/flaky`)).text());
    const retrySpan = harness.span('bulwark retry fetch');
    expect(parentOf(retrySpan)).toBe(harness.span('caller').spanContext().spanId);
    const clients = clientSpans(harness.spans());
    expect(clients.map(parentOf)).toEqual([retrySpan.spanContext().spanId, retrySpan.spanContext().spanId]);
    expect(retrySpan.events.map((e) => e.name)).toEqual(['bulwark.retry.scheduled']);
  });
});

describe('http.request.resend_count on the client spans of bulwark/fetch', () => {
  /** The client spans' resend counts, in the order their requests started. */
  const resendCounts = (spans: readonly ReadableSpan[]): unknown[] =>
    clientSpans(spans)
      .sort((a, b) => a.startTime[0] - b.startTime[0] || a.startTime[1] - b.startTime[1])
      .map((s) => s.attributes[A.httpRequestResendCount]);

  it.each([
    ['events only', {}],
    ['spans on', { spans: true }],
  ] as const)('is absent on the first request and 1, 2 on the retries (%s)', async (_label, config) => {
    const { url } = await serve();
    const harness = startCounting(config);
    const f = createFetch({ retry: { maxAttempts: 3, backoff: constant(0) } });
    const res = await withSpan(harness.tracer, 'caller', () => f(`${url}/twice`));
    expect(await res.text()).toBe('ok /twice');
    expect(resendCounts(harness.spans())).toEqual([undefined, 1, 2]);
  });

  it('counts each call on its own: a new call starts again without the attribute', async () => {
    const { url } = await serve();
    const harness = startCounting();
    const f = createFetch({ retry: { maxAttempts: 2, backoff: constant(0) } });
    await withSpan(harness.tracer, 'caller', async () => (await f(`${url}/down`)).text());
    await withSpan(harness.tracer, 'caller', async () => (await f(`${url}/ok`)).text());
    expect(resendCounts(harness.spans())).toEqual([undefined, 1, undefined]);
  });

  it('marks each failed attempt span ERROR with error.type, with no exception event on any span', async () => {
    const { url } = await serve();
    const harness = startCounting({ spans: true });
    const f = createFetch({ retry: { maxAttempts: 2, backoff: constant(0) } });
    const res = await withSpan(harness.tracer, 'caller', () => f(`${url}/down`));
    // Attempts ran out on a failed status: the call resolves with the last response, as fetch does.
    expect(res.status).toBe(503);
    await res.text();
    const breakers = harness.spans().filter((s) => s.name.startsWith('bulwark circuit-breaker'));
    expect(breakers).toHaveLength(2);
    for (const b of breakers) {
      expect(b.status).toEqual({ code: SpanStatusCode.ERROR });
      expect(b.attributes[A.errorType]).toBe('HttpStatusError');
    }
    expect(harness.spans().flatMap((s) => s.events.map((e) => e.name))).not.toContain('exception');
  });
});
