// Inbound propagation (issue 15 §2) in real Express 4/5 and Fastify 4/5 servers: a trusted peer's
// class and deadline become the handler's admission scope (also after a body that arrives late),
// an untrusted peer's are ignored (spoofed headers from loopback when only 10/8 is trusted), a
// malformed value is ignored rather than a 500, and a request whose deadline has passed gets a 504
// problem answer and never reaches the handler.
import { subscribe, unsubscribe } from 'node:diagnostics_channel';
import { request as httpRequest } from 'node:http';
import express from 'express';
import fastify from 'fastify';
import fastify4 from 'fastify4';
import { afterEach, describe, expect, it } from 'vitest';
import { propagationMiddleware } from '../../src/adapters/express.js';
import { propagationPlugin } from '../../src/adapters/fastify.js';
import { DEADLINE_HEADER, PRIORITY_HEADER } from '../../src/http/propagation.js';
import { type AdmissionDecisionEvent, type AdmissionScope, channelNames, currentAdmissionScope } from '../../src/index.js';
import { close, delay, send } from './support/inbound-http.js';

// Express 4 ships no types of its own under its alias: use Express 5's for both.
const express4Name: string = 'express4';
const express4 = ((await import(express4Name)) as { default: typeof express }).default;

interface Running {
  readonly port: number;
  /** How many times a route handler ran. */
  readonly handled: () => number;
  close(): Promise<void>;
}

const running: Running[] = [];
afterEach(async () => {
  for (const r of running.splice(0)) await r.close();
});

/** What the handler saw: its admission scope (null for none). */
const scopeSeen = (): AdmissionScope | null => currentAdmissionScope() ?? null;

async function expressApp(make: typeof express, options: unknown): Promise<Running> {
  let handled = 0;
  const app = make();
  app.use(propagationMiddleware(options as never));
  app.use(make.json());
  app.get('/scope', (_req, res) => void (handled++, res.json(scopeSeen())));
  app.post('/scope', (req, res) => void (handled++, res.json({ body: req.body as unknown, scope: scopeSeen() })));
  const server = app.listen(0, '127.0.0.1');
  await new Promise((resolve) => server.once('listening', resolve));
  const r = { port: (server.address() as { port: number }).port, handled: () => handled, close: () => close(server) };
  running.push(r);
  return r;
}

async function fastifyApp(make: () => ReturnType<typeof fastify>, options: unknown): Promise<Running> {
  let handled = 0;
  const app = make();
  await app.register(propagationPlugin, options as never);
  // Async handlers: the scope must survive Fastify's promise handling as well.
  app.get('/scope', async () => (handled++, scopeSeen()));
  app.post('/scope', async (req: { body: unknown }) => (handled++, { body: req.body, scope: scopeSeen() }));
  await app.listen({ port: 0, host: '127.0.0.1' });
  const r = { port: (app.server.address() as { port: number }).port, handled: () => handled, close: () => app.close() };
  running.push(r);
  return r;
}

/** A POST whose JSON body arrives in two parts, 30 ms apart: the handler runs from a later socket event. */
function slowPost(port: number, headers: Record<string, string>): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(
      { host: '127.0.0.1', port, path: '/scope', method: 'POST', agent: false, headers: { 'content-type': 'application/json', connection: 'close', ...headers } },
      (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (body += c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      },
    );
    req.on('error', reject);
    req.write('{"item":');
    void delay(30).then(() => req.end('42}'));
  });
}

const frameworks: [string, (options: unknown) => Promise<Running>][] = [
  ['Express 4', (o) => expressApp(express4, o)],
  ['Express 5', (o) => expressApp(express, o)],
  ['Fastify 4', (o) => fastifyApp(() => fastify4() as unknown as ReturnType<typeof fastify>, o)],
  ['Fastify 5', (o) => fastifyApp(() => fastify(), o)],
];

describe.each(frameworks)('propagation on %s', (_name, start) => {
  it("runs the handler in a trusted peer's scope: its class, and its deadline from the ms left", async () => {
    const app = await start({ trustProxy: 'loopback' });
    const before = Date.now();
    const answer = await send(app.port, '/scope', { headers: { [PRIORITY_HEADER]: 'critical', [DEADLINE_HEADER]: '5000' } });
    expect(answer.status).toBe(200);
    const scope = JSON.parse(answer.body) as AdmissionScope;
    expect(scope.priority).toBe('critical');
    expect(scope.deadline).toBeGreaterThanOrEqual(before + 5_000);
    expect(scope.deadline).toBeLessThanOrEqual(Date.now() + 5_000);
  });

  it('keeps the scope for a handler that runs after a body that arrived late', async () => {
    const app = await start({ trustProxy: 1 });
    const answer = await slowPost(app.port, { [PRIORITY_HEADER]: 'sheddable' });
    expect(answer.status).toBe(200);
    expect(JSON.parse(answer.body)).toEqual({ body: { item: 42 }, scope: { priority: 'sheddable' } });
  });

  it("ignores an untrusted peer's headers: spoofed from loopback when only 10/8 is trusted, X-Forwarded-For or not", async () => {
    const app = await start({ trustProxy: ['10.0.0.0/8'] });
    const spoofed = { [PRIORITY_HEADER]: 'critical', [DEADLINE_HEADER]: '0', 'x-forwarded-for': '10.1.1.1' };
    const answer = await send(app.port, '/scope', { headers: spoofed });
    // Not refused either: a deadline from an untrusted peer means nothing.
    expect(answer.status).toBe(200);
    expect(JSON.parse(answer.body)).toBeNull();
  });

  it.each([
    [{ [PRIORITY_HEADER]: 'URGENT' }],
    [{ [DEADLINE_HEADER]: '-5' }],
    [{ [DEADLINE_HEADER]: '1e9' }],
    [{ [DEADLINE_HEADER]: '99999999999999999999' }],
    [{ [PRIORITY_HEADER]: 'critical, sheddable', [DEADLINE_HEADER]: 'soon' }],
  ])('ignores malformed values %j: 200 without a scope, never a 500', async (headers) => {
    const app = await start({ trustProxy: 'loopback' });
    const answer = await send(app.port, '/scope', { headers });
    expect(answer.status).toBe(200);
    expect(JSON.parse(answer.body)).toBeNull();
  });

  it("answers a request whose deadline has passed with 504 problem+json, never runs the handler, and counts it as a 'deadline' rejection", async () => {
    const events: AdmissionDecisionEvent[] = [];
    const listener = (m: unknown): void => void events.push(m as AdmissionDecisionEvent);
    subscribe(channelNames.admissionRejected, listener);
    const app = await start({ trustProxy: 'loopback', name: 'edge' });
    const answer = await send(app.port, '/scope', { headers: { [PRIORITY_HEADER]: 'critical', [DEADLINE_HEADER]: '0' } }).finally(() =>
      unsubscribe(channelNames.admissionRejected, listener),
    );
    expect(events).toEqual([{ policy: 'edge', mode: 'enforce', reason: 'deadline', priority: 3, limit: 0, inFlight: 0, queued: 0 }]);
    expect(answer.status).toBe(504);
    expect(answer.headers['content-type']).toMatch(/^application\/problem\+json/);
    expect(answer.headers['retry-after']).toBeUndefined();
    expect(JSON.parse(answer.body)).toMatchObject({ type: 'urn:bulwark:problem:deadline-exceeded', status: 504 });
    expect(app.handled()).toBe(0);
    // The next request, with time left, is handled as usual.
    expect((await send(app.port, '/scope', { headers: { [DEADLINE_HEADER]: '1000' } })).status).toBe(200);
  });
});

describe('propagation options', () => {
  it('are required and validated once, naming the option and the value', () => {
    expect(() => propagationMiddleware(undefined as never)).toThrow(/propagationMiddleware: the argument must be \{ trustProxy \}/);
    expect(() => propagationMiddleware({} as never)).toThrow(/option "trustProxy" must name the peers.*got undefined/);
    expect(() => propagationMiddleware({ trustProxy: false })).toThrow(/option "trustProxy" must name the peers.*got false/);
    expect(() => propagationMiddleware({ trustProxy: true } as never)).toThrow(/true would let any client/);
    expect(() => propagationMiddleware({ trustProxy: 1, priority: 'x' } as never)).toThrow(/propagationMiddleware.*priority/);
    expect(() => propagationMiddleware({ trustProxy: 1, name: '' })).toThrow(/propagationMiddleware: option "name"/);
  });

  it('refuses bad options at registration in Fastify', async () => {
    const app = fastify();
    await expect(app.register(propagationPlugin, { trustProxy: 0 })).rejects.toThrow(/propagationPlugin: option "trustProxy" must name the peers/);
    await app.close();
  });
});
