// Inbound fault injection in real Express 4/5 and Fastify 4/5 servers on loopback: an injected
// status with a problem body, latency that ends when the client leaves, a dropped connection, the
// run-time switch, bulwark's own routes exempt, and faults asked for by header from trusted peers only.
import type { Server } from 'node:http';
import express from 'express';
import fastify, { type FastifyRequest } from 'fastify';
import fastify4 from 'fastify4';
import { afterEach, describe, expect, it } from 'vitest';
import { faultInjectionMiddleware, httpFaultInjector, PROBLEM_TYPES, type HttpFaultInjectionOptions, type HttpFaultInjector } from '../../src/adapters/express.js';
import { faultInjectionPlugin } from '../../src/adapters/fastify.js';
import { refedTrackedTimers } from '../support/timer-tracker.js';
import { abortRequest, close, delay, send } from './support/inbound-http.js';

// Express 4 ships no types of its own under its alias: use Express 5's for both.
const express4Name: string = 'express4';
const express4 = ((await import(express4Name)) as { default: typeof express }).default;

type FastifyApp = ReturnType<typeof fastify>;
type Options = HttpFaultInjectionOptions<never>;

// Compile-time: `when` written for each framework's own request type is accepted, in options and in an injector.
export function typeChecks(): void {
  express().use(faultInjectionMiddleware({ rate: 0.1, status: 503, when: (req: express.Request) => req.path === '/api' }));
  express().use(faultInjectionMiddleware(httpFaultInjector({ rate: 0.1, latencyMs: 5, when: (req: express.Request) => req.path === '/api' })));
  void fastify().register(faultInjectionPlugin, { rate: 0.1, abort: true, when: (req: FastifyRequest) => req.routeOptions.url === '/api' });
  void fastify().register(faultInjectionPlugin, { faults: httpFaultInjector({ rate: 0.1, status: 500, when: (req: FastifyRequest) => req.url === '/api' }) });
  void fastify4().register(faultInjectionPlugin, { faults: httpFaultInjector({ rate: 0.1, status: 500 }) });
}

/** A server with the fault injection in front of `/work` and `/metrics` (one of bulwark's own paths). */
interface Served {
  readonly port: number;
  /** Requests that reached a handler. */
  readonly handled: () => number;
}

let server: Server | undefined;
let app: FastifyApp | undefined;
afterEach(async () => {
  if (server) await close(server);
  await app?.close();
  server = undefined;
  app = undefined;
});

async function serveExpress(make: typeof express, faults: Options | HttpFaultInjector<never>): Promise<Served> {
  let handled = 0;
  const a = make();
  a.use(faultInjectionMiddleware(faults as never));
  a.get(['/work', '/metrics'], (_req, res) => {
    handled++;
    res.send('handled');
  });
  server = a.listen(0, '127.0.0.1');
  await new Promise((resolve) => server!.once('listening', resolve));
  return { port: (server.address() as { port: number }).port, handled: () => handled };
}

async function serveFastify(make: () => FastifyApp, faults: Options | HttpFaultInjector<never>): Promise<Served> {
  let handled = 0;
  const a = make();
  app = a;
  await a.register(faultInjectionPlugin, (typeof (faults as HttpFaultInjector).decide === 'function' ? { faults } : faults) as never);
  for (const path of ['/work', '/metrics']) {
    a.get(path, async () => {
      handled++;
      return 'handled';
    });
  }
  await a.listen({ port: 0, host: '127.0.0.1' });
  return { port: (a.server.address() as { port: number }).port, handled: () => handled };
}

const frameworks: [string, (faults: Options | HttpFaultInjector<never>) => Promise<Served>][] = [
  ['Express 4', (f) => serveExpress(express4, f)],
  ['Express 5', (f) => serveExpress(express, f)],
  ['Fastify 4', (f) => serveFastify(() => fastify4() as unknown as FastifyApp, f)],
  ['Fastify 5', (f) => serveFastify(() => fastify(), f)],
];

/** Timers made by the fault injection that still hold the process (none may be left). */
async function injectionTimers(): Promise<string[]> {
  await new Promise((resolve) => setImmediate(resolve));
  return refedTrackedTimers().filter((origin) => origin.includes('fault-injection'));
}

describe.each(frameworks)('fault injection on %s', (_name, serve) => {
  it('answers an injected status with a problem body, and the handler never runs', async () => {
    const s = await serve({ rate: 1, status: 503 });
    const answer = await send(s.port, '/work');
    expect(answer.status).toBe(503);
    expect(answer.headers['content-type']).toMatch(/^application\/problem\+json/);
    expect(JSON.parse(answer.body)).toMatchObject({ type: PROBLEM_TYPES.faultInjected, status: 503, title: 'Service Unavailable' });
    expect(answer.headers['retry-after']).toBeUndefined();
    expect(s.handled()).toBe(0);
  });

  it('injects the requests that draw below the rate and lets the others through', async () => {
    const values = [0.1, 0.6, 0.49, 0.5];
    const s = await serve({ rate: 0.5, status: 500, random: () => values.shift()! });
    const statuses = [];
    for (let i = 0; i < 4; i++) statuses.push((await send(s.port, '/work')).status);
    expect(statuses).toEqual([500, 200, 500, 200]);
    expect(s.handled()).toBe(2);
  });

  it("never touches bulwark's own routes unless exemptProbes is false", async () => {
    const s = await serve({ rate: 1, status: 503 });
    expect((await send(s.port, '/metrics')).status).toBe(200);
    expect((await send(s.port, '/work')).status).toBe(503);
  });

  it('injects into probe routes too with exemptProbes: false', async () => {
    const s = await serve({ rate: 1, status: 503, exemptProbes: false });
    expect((await send(s.port, '/metrics')).status).toBe(503);
  });

  it('holds a request for the injected latency, then handles it', async () => {
    const s = await serve({ rate: 1, latencyMs: 120 });
    const started = performance.now();
    const answer = await send(s.port, '/work');
    expect(answer.status).toBe(200);
    expect(performance.now() - started).toBeGreaterThanOrEqual(110);
    expect(s.handled()).toBe(1);
  });

  it('ends injected latency at once when the client goes away: no handler runs, no timer is left', async () => {
    const s = await serve({ rate: 1, latencyMs: 60_000 });
    await abortRequest(s.port, '/work', 30);
    await delay(30);
    expect(await injectionTimers()).toEqual([]);
    expect(s.handled()).toBe(0);
  });

  it('drops the connection without an answer for abort: true', async () => {
    const s = await serve({ rate: 1, abort: true });
    await expect(send(s.port, '/work')).rejects.toMatchObject({ code: expect.stringMatching(/^(ECONNRESET|EPIPE)$/) });
    expect(s.handled()).toBe(0);
  });

  it('holds, then answers the status, for latency with a status', async () => {
    const s = await serve({ rate: 1, latencyMs: 60, status: 502 });
    const started = performance.now();
    expect((await send(s.port, '/work')).status).toBe(502);
    expect(performance.now() - started).toBeGreaterThanOrEqual(50);
  });

  it('switches on and off at run time through the injector', async () => {
    const faults = httpFaultInjector({ rate: 1, status: 503, enabled: false });
    const s = await serve(faults as never);
    expect((await send(s.port, '/work')).status).toBe(200);
    faults.enabled = true;
    expect((await send(s.port, '/work')).status).toBe(503);
    faults.enabled = false;
    expect((await send(s.port, '/work')).status).toBe(200);
  });

  it('answers 500 with a problem body, and reports to onError, when `when` throws', async () => {
    const errors: unknown[] = [];
    const thrown = new Error('predicate broke');
    const s = await serve({
      rate: 1,
      status: 503,
      when: () => {
        throw thrown;
      },
      onError: (error: unknown) => errors.push(error),
    } as Options);
    const answer = await send(s.port, '/work');
    expect(answer.status).toBe(500);
    expect(JSON.parse(answer.body)).toMatchObject({ type: 'urn:bulwark:problem:fault-injection-check-failed' });
    expect(errors).toEqual([thrown]);
  });

  it('injects only where `when` says so', async () => {
    const s = await serve({ rate: 1, status: 503, when: (req: { url?: string }) => req.url === '/work' } as Options);
    expect((await send(s.port, '/work')).status).toBe(503);
    expect((await send(s.port, '/work?x=1')).status).toBe(200);
  });

  it('injects a configured fault that a trusted peer asks for by header, even at rate 0', async () => {
    const s = await serve({ rate: 0, status: 503, latencyMs: 1, header: { trustProxy: 'loopback' } });
    expect((await send(s.port, '/work')).status).toBe(200);
    expect((await send(s.port, '/work', { headers: { 'x-bulwark-fault': 'status' } })).status).toBe(503);
    expect((await send(s.port, '/work', { headers: { 'X-Bulwark-Fault': 'latency' } })).status).toBe(200);
    // A kind it is not configured with is not injected.
    expect((await send(s.port, '/work', { headers: { 'x-bulwark-fault': 'abort' } })).status).toBe(200);
    expect(s.handled()).toBe(3);
  });

  it('ignores the header from a peer it does not trust, whatever X-Forwarded-For says', async () => {
    const s = await serve({ rate: 0, status: 503, header: { trustProxy: ['10.0.0.0/8'], name: 'x-chaos' } });
    const headers = { 'x-chaos': 'status', 'x-forwarded-for': '10.0.0.1' };
    expect((await send(s.port, '/work', { headers })).status).toBe(200);
  });
});

describe('httpFaultInjector options', () => {
  it.each([
    { label: 'no rate', options: { status: 503 }, fragment: '"rate" must be a number, got undefined' },
    { label: 'rate 0 without a header', options: { rate: 0, status: 503 }, fragment: '"rate"' },
    { label: 'no fault', options: { rate: 0.5 }, fragment: 'at least one of "status", "latencyMs" or "abort"' },
    { label: 'status and abort', options: { rate: 0.5, status: 503, abort: true }, fragment: '"status" and "abort" both end the request' },
    { label: 'a 2xx status', options: { rate: 0.5, status: 200 }, fragment: '"status" must be between 400 and 599, got 200' },
    { label: 'a status as a string', options: { rate: 0.5, status: '503' }, fragment: '"status" must be a number, got "503"' },
    { label: 'abort as a string', options: { rate: 0.5, abort: 'yes' }, fragment: '"abort" must be a boolean' },
    { label: 'header: true', options: { rate: 0.5, status: 503, header: true }, fragment: '"header"' },
    { label: 'a header with no trusted peers', options: { rate: 0.5, status: 503, header: {} }, fragment: '"header.trustProxy" must name the peers' },
    { label: 'a header trusting nobody', options: { rate: 0.5, status: 503, header: { trustProxy: false } }, fragment: '"header.trustProxy" must name the peers' },
    { label: 'a header trusting everyone by `true`', options: { rate: 0.5, status: 503, header: { trustProxy: true } }, fragment: 'true would let any client' },
    { label: 'a bad header name', options: { rate: 0.5, status: 503, header: { trustProxy: 1, name: 'x fault' } }, fragment: '"header.name" must be an HTTP header name' },
    { label: 'an unknown header key', options: { rate: 0.5, status: 503, header: { trustProxy: 1, values: [] } }, fragment: 'unknown option "values"' },
    { label: 'an unknown key', options: { rate: 0.5, status: 503, statusCode: 503 }, fragment: 'unknown option "statusCode"' },
  ])('rejects $label with an error naming it', ({ options, fragment }) => {
    expect(() => httpFaultInjector(options as never)).toThrow(fragment);
  });

  it('refuses a bad rate or enabled at run time, keeping the old one', () => {
    const faults = httpFaultInjector({ rate: 0.2, status: 503 });
    expect(() => {
      faults.rate = 0;
    }).toThrow(RangeError);
    expect(() => {
      faults.enabled = 1 as never;
    }).toThrow(TypeError);
    expect(faults).toMatchObject({ rate: 0.2, enabled: true });
    const headerOnly = httpFaultInjector({ rate: 0.2, status: 503, header: { trustProxy: 'loopback' } });
    headerOnly.rate = 0;
    expect(headerOnly.rate).toBe(0);
  });

  it('refuses a Fastify registration whose "faults" is not an injector', async () => {
    const a = fastify();
    await expect(a.register(faultInjectionPlugin, { faults: { rate: 1 } } as never)).rejects.toThrow('"faults" must be an httpFaultInjector()');
    await a.close();
  });
});
