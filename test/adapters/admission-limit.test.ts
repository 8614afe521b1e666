// The admission adapters (issue 15 §1–2) in real Express 4/5 and Fastify 4/5 servers: a request
// turned away gets 503 + Retry-After problem+json naming the reason; a permit is released once,
// when the response finishes or the client goes (in flight back to 0), with the outcome its answer
// earns; bulwark's own routes are never shed; with a full limit a critical request gets in while
// sheddable ones are turned away; a callback that throws gets a problem answer and onError.
import { subscribe, unsubscribe } from 'node:diagnostics_channel';
import express from 'express';
import fastify, { type FastifyReply, type FastifyRequest } from 'fastify';
import fastify4 from 'fastify4';
import { afterEach, describe, expect, it } from 'vitest';
import { admissionMiddleware, healthMiddleware } from '../../src/adapters/express.js';
import { admissionPlugin, healthPlugin } from '../../src/adapters/fastify.js';
import { DEADLINE_HEADER, PRIORITY_HEADER } from '../../src/http/propagation.js';
import {
  type AdmissionController,
  admissionController,
  type AdmissionDecisionEvent,
  channelNames,
  currentAdmissionScope,
  health,
  type PermitOutcome,
} from '../../src/index.js';
import { abortRequest, close, delay, send, type Answer } from './support/inbound-http.js';

// Express 4 ships no types of its own under its alias: use Express 5's for both.
const express4Name: string = 'express4';
const express4 = ((await import(express4Name)) as { default: typeof express }).default;

// Compile-time: callbacks written for each framework's own request type are accepted.
export function typeChecks(controller: AdmissionController): void {
  express().use(admissionMiddleware({ controller, priority: (req: express.Request) => (req.path === '/checkout' ? 'critical' : 'sheddable') }));
  express().use(admissionMiddleware({ limit: 10, tenant: (req) => req.get('x-tenant') ?? 'anonymous', trustProxy: 'uniquelocal' }));
  express().use(admissionMiddleware(controller));
  void fastify().register(admissionPlugin, { controller, skip: (req: FastifyRequest) => req.routeOptions.url === '/admin' });
  void fastify4().register(admissionPlugin, { limit: 10, priority: (_req, propagated) => propagated ?? 1 });
}

interface App {
  readonly port: number;
  /** Opens the gate the `/work?gate=NAME` handler waits at. */
  open(gate: string): void;
  /** Requests that reached a handler, by path and query. */
  readonly handled: string[];
}

const stops: (() => Promise<void>)[] = [];
const gates = new Map<string, () => void>();
afterEach(async () => {
  for (const open of gates.values()) open();
  gates.clear();
  for (const stop of stops.splice(0)) await stop();
});

/** Waits (at most 2 s) until `condition` holds. */
async function until(condition: () => boolean): Promise<void> {
  for (let i = 0; i < 200 && !condition(); i++) await delay(10);
  expect(condition()).toBe(true);
}

/** The route handlers both frameworks run: wait at a gate, or answer a given status; each tells its scope. */
async function work(query: { gate?: string; status?: string }, handled: string[], url: string): Promise<{ status: number; body: unknown }> {
  handled.push(url);
  const scope = currentAdmissionScope() ?? null;
  if (query.gate !== undefined) await new Promise<void>((resolve) => gates.set(query.gate!, resolve));
  return { status: Number(query.status ?? 200), body: { scope } };
}

async function expressApp(make: typeof express, options: unknown): Promise<App> {
  const handled: string[] = [];
  const app = make();
  app.use(admissionMiddleware(options as never));
  app.use(healthMiddleware(health()));
  app.get('/metrics', (_req, res) => void res.send('# metrics'));
  app.get('/work', (req, res, next) => {
    work(req.query as never, handled, req.originalUrl).then(({ status, body }) => void res.status(status).json(body), next);
  });
  const server = app.listen(0, '127.0.0.1');
  await new Promise((resolve) => server.once('listening', resolve));
  stops.push(() => close(server));
  return { port: (server.address() as { port: number }).port, open: (g) => gates.get(g)?.(), handled };
}

async function fastifyApp(make: () => ReturnType<typeof fastify>, options: unknown): Promise<App> {
  const handled: string[] = [];
  const app = make();
  await app.register(admissionPlugin, options as never);
  await app.register(healthPlugin, { health: health() });
  app.get('/metrics', async () => '# metrics');
  app.get('/work', async (req: FastifyRequest, reply: FastifyReply) => {
    const { status, body } = await work(req.query as never, handled, req.url);
    return reply.code(status).send(body);
  });
  await app.listen({ port: 0, host: '127.0.0.1' });
  stops.push(() => app.close());
  return { port: (app.server.address() as { port: number }).port, open: (g) => gates.get(g)?.(), handled };
}

const frameworks: [string, (options: unknown) => Promise<App>][] = [
  ['Express 4', (o) => expressApp(express4, o)],
  ['Express 5', (o) => expressApp(express, o)],
  ['Fastify 4', (o) => fastifyApp(() => fastify4({ forceCloseConnections: true }) as unknown as ReturnType<typeof fastify>, o)],
  ['Fastify 5', (o) => fastifyApp(() => fastify({ forceCloseConnections: true }), o)],
];

/** A request that is answered later: its answer, once it comes. */
function pending(port: number, path: string, headers?: Record<string, string>): Promise<Answer> {
  return send(port, path, headers === undefined ? {} : { headers });
}

/**
 * A stand-in controller that admits everything and records how each permit ended, to see the
 * outcome the adapter gives (a real controller's limit would hide it).
 */
function recordingController(): { controller: AdmissionController; outcomes: PermitOutcome[] } {
  const outcomes: PermitOutcome[] = [];
  const stub = {
    name: 'recording',
    mode: 'enforce',
    maxQueue: 0,
    snapshot: () => ({ name: 'recording', mode: 'enforce', limit: 100, inFlight: 0, queued: 0 }),
    acquire: () => ({ startMs: 0, wouldReject: undefined, release: (outcome: PermitOutcome) => outcomes.push(outcome) }),
  };
  return { controller: stub as unknown as AdmissionController, outcomes };
}

describe.each(frameworks)('admission adapter on %s', (_name, start) => {
  it('turns a request away at the limit with 503, Retry-After and a problem body naming the reason and the controller', async () => {
    const controller = admissionController({ name: 'api', limit: 1 });
    const app = await start({ controller });
    const held = pending(app.port, '/work?gate=a');
    await until(() => controller.inFlight === 1);
    const refused = await send(app.port, '/work');
    expect(refused.status).toBe(503);
    expect(Number(refused.headers['retry-after'])).toBeGreaterThanOrEqual(1);
    expect(refused.headers['content-type']).toMatch(/^application\/problem\+json/);
    expect(JSON.parse(refused.body)).toMatchObject({ type: 'urn:bulwark:problem:admission-rejected', status: 503, policy: 'api', reason: 'limit' });
    expect(app.handled).toEqual(['/work?gate=a']);
    app.open('a');
    expect((await held).status).toBe(200);
  });

  it('releases the permit when the response finishes: in flight back to 0, the next request admitted', async () => {
    const controller = admissionController({ limit: 1 });
    const app = await start(controller);
    for (let i = 0; i < 3; i++) {
      const held = pending(app.port, `/work?gate=g${i}`);
      await until(() => controller.inFlight === 1);
      app.open(`g${i}`);
      expect((await held).status).toBe(200);
      await until(() => controller.inFlight === 0);
    }
  });

  it('releases each permit on a keep-alive connection too (the response closes, not the socket)', async () => {
    const controller = admissionController({ limit: 1 });
    const app = await start(controller);
    for (let i = 0; i < 5; i++) {
      const res = await fetch(`http://127.0.0.1:${app.port}/work`);
      expect(res.status).toBe(200);
      await res.text();
    }
    await until(() => controller.inFlight === 0);
  });

  it('releases the permit when the client goes before the answer, while the handler still runs', async () => {
    const controller = admissionController({ limit: 1 });
    const app = await start({ controller });
    await abortRequest(app.port, '/work?gate=gone', 30);
    await until(() => controller.inFlight === 0);
    expect(app.handled).toEqual(['/work?gate=gone']);
    expect((await send(app.port, '/work')).status).toBe(200);
  });

  it('lets a queued request go when its client leaves: the queue is empty again', async () => {
    const controller = admissionController({ limit: 1, maxQueue: 1 });
    const app = await start({ controller });
    const held = pending(app.port, '/work?gate=a');
    await until(() => controller.inFlight === 1);
    await abortRequest(app.port, '/work?queued', 0);
    await until(() => controller.queued === 0);
    app.open('a');
    expect((await held).status).toBe(200);
    await until(() => controller.inFlight === 0);
    expect(app.handled).toEqual(['/work?gate=a']);
  });

  it("ends each permit once with the outcome its answer earns: 503/504 and a client gone are 'dropped', other 5xx ignored", async () => {
    const { controller, outcomes } = recordingController();
    const app = await start({ controller });
    for (const status of [200, 404, 503, 504, 500]) expect((await send(app.port, `/work?status=${status}`)).status).toBe(status);
    await abortRequest(app.port, '/work?gate=gone', 30);
    await until(() => outcomes.length === 6);
    app.open('gone');
    await delay(20);
    expect(outcomes).toEqual(['success', 'success', 'dropped', 'dropped', 'ignore', 'dropped']);
  });

  it("never sheds bulwark's own routes: probes and /metrics answer at a full limit, holding no permit", async () => {
    const controller = admissionController({ limit: 1 });
    const app = await start({ controller });
    const held = pending(app.port, '/work?gate=a');
    await until(() => controller.inFlight === 1);
    for (const path of ['/livez', '/readyz', '/startupz', '/healthz', '/metrics']) expect((await send(app.port, path)).status, path).toBe(200);
    expect((await send(app.port, '/work')).status).toBe(503);
    app.open('a');
    await held;
  });

  it("a critical request at a limit full of critical work takes a waiting sheddable request's queue place (classes from a trusted peer's headers)", async () => {
    const controller = admissionController({ limit: 2, maxQueue: 1 });
    const app = await start({ controller, trustProxy: 'loopback' });
    const sheddable = { [PRIORITY_HEADER]: 'sheddable' };
    const critical = { [PRIORITY_HEADER]: 'critical' };
    // Critical work holds the slots (a slot held by a lower class would be lent to it at once).
    const held = [pending(app.port, '/work?gate=a', critical), pending(app.port, '/work?gate=b', critical)];
    await until(() => controller.inFlight === 2);
    // A sheddable request may wait in the queue while nothing better wants it…
    const waiting = pending(app.port, '/work?queued-sheddable', sheddable);
    await until(() => controller.queued === 1);
    // …until a critical one arrives: the sheddable one is turned away to make room.
    const queuedCritical = pending(app.port, '/work?critical', critical);
    const evicted = await waiting;
    expect(evicted.status).toBe(503);
    expect(JSON.parse(evicted.body)).toMatchObject({ reason: 'priority' });
    // Another sheddable one finds the queue taken by a more important request.
    expect((await send(app.port, '/work?late-sheddable', { headers: sheddable })).status).toBe(503);
    app.open('a');
    const admitted = await queuedCritical;
    expect(admitted.status).toBe(200);
    expect(JSON.parse(admitted.body)).toEqual({ scope: { priority: 'critical' } });
    app.open('b');
    await Promise.all(held);
    expect(app.handled).not.toContain('/work?queued-sheddable');
    expect(app.handled).not.toContain('/work?late-sheddable');
  });

  it('lends a slot a sheddable request holds to a critical one: admitted at once over the limit, never queued', async () => {
    const controller = admissionController({ limit: 1, maxQueue: 1, maxWaitMs: 50 });
    const app = await start({ controller, trustProxy: 'loopback' });
    const held = pending(app.port, '/work?gate=a', { [PRIORITY_HEADER]: 'sheddable' });
    await until(() => controller.inFlight === 1);
    const critical = await send(app.port, '/work', { headers: { [PRIORITY_HEADER]: 'critical' } });
    expect(critical.status).toBe(200);
    expect(controller.queued).toBe(0);
    // The lowest class sees the plain limit: it waits in the queue, and is turned away after maxWaitMs.
    const late = await send(app.port, '/work', { headers: { [PRIORITY_HEADER]: 'sheddable' } });
    expect(late.status).toBe(503);
    expect(JSON.parse(late.body)).toMatchObject({ reason: 'queueTimeout' });
    app.open('a');
    expect((await held).status).toBe(200);
  });

  it("asks priority with the propagated class, and runs the handler in the class it answers, with the peer's deadline", async () => {
    const seen: unknown[] = [];
    const app = await start({
      limit: 10,
      trustProxy: 'loopback',
      priority: (_req: unknown, propagated: string | undefined) => (seen.push(propagated), propagated === 'critical' ? 'degraded' : 'sheddable'),
      tenant: () => 'acme',
    });
    const answer = await send(app.port, '/work', { headers: { [PRIORITY_HEADER]: 'critical', [DEADLINE_HEADER]: '5000' } });
    expect(answer.status).toBe(200);
    const scope = (JSON.parse(answer.body) as { scope: { priority: string; deadline: number; tenant: string } }).scope;
    expect(scope).toMatchObject({ priority: 'degraded', tenant: 'acme' });
    expect(scope.deadline).toBeGreaterThan(Date.now());
    expect((await send(app.port, '/work')).status).toBe(200);
    expect(seen).toEqual(['critical', undefined]);
  });

  it("refuses a trusted peer's request whose deadline has passed with 504, counted as a 'deadline' rejection", async () => {
    const events: AdmissionDecisionEvent[] = [];
    const listener = (m: unknown): void => void events.push(m as AdmissionDecisionEvent);
    subscribe(channelNames.admissionRejected, listener);
    try {
      const controller = admissionController({ name: 'deadlines', limit: 10 });
      const app = await start({ controller, trustProxy: 'loopback' });
      const answer = await send(app.port, '/work', { headers: { [PRIORITY_HEADER]: 'best-effort', [DEADLINE_HEADER]: '0' } });
      expect(answer.status).toBe(504);
      expect(JSON.parse(answer.body)).toMatchObject({ type: 'urn:bulwark:problem:deadline-exceeded' });
      expect(app.handled).toEqual([]);
      expect(controller.inFlight).toBe(0);
      expect(events).toEqual([expect.objectContaining({ policy: 'deadlines', mode: 'enforce', reason: 'deadline', priority: 1 })]);
    } finally {
      unsubscribe(channelNames.admissionRejected, listener);
    }
  });

  it('answers a priority, tenant or skip that throws or answers nonsense with a 500 problem, told to onError', async () => {
    const errors: string[] = [];
    const app = await start({
      limit: 10,
      priority: (req: { url: string }) => {
        if (req.url.includes('throw')) throw new Error('priority broke');
        return req.url.includes('nonsense') ? ('urgent' as never) : 'degraded';
      },
      tenant: (req: { url: string }) => (req.url.includes('tenant') ? (42 as never) : 'acme'),
      skip: (req: { url: string }) => (req.url.includes('skip') ? ('yes' as never) : false),
      onError: (error: unknown) => errors.push((error as Error).message),
    });
    for (const path of ['/work?throw', '/work?nonsense', '/work?tenant', '/work?skip']) {
      const answer = await send(app.port, path);
      expect(answer.status, path).toBe(500);
      expect(answer.headers['content-type']).toMatch(/^application\/problem\+json/);
      expect(JSON.parse(answer.body)).toMatchObject({ type: 'urn:bulwark:problem:admission-check-failed', status: 500 });
      expect(answer.body).not.toContain('broke');
    }
    expect(errors).toEqual([
      'priority broke',
      expect.stringMatching(/the result of option "priority" must be one of .*got "urgent"/),
      expect.stringMatching(/option "tenant" must return a string, got 42/),
      expect.stringMatching(/option "skip" must return a boolean, got "yes"/),
    ]);
    expect(app.handled).toEqual([]);
    expect((await send(app.port, '/work')).status).toBe(200);
  });

  it('admits everything in shadow mode, and enforces again when switched back, keeping its state', async () => {
    const controller = admissionController({ limit: 1, mode: 'shadow' });
    const app = await start({ controller });
    expect((await send(app.port, '/work')).headers['retry-after']).toBeUndefined();
    const held = pending(app.port, '/work?gate=a');
    await until(() => controller.inFlight === 1);
    // Let through with the 503's Retry-After: the headers of enforcement, but for the status.
    const shadowed = await send(app.port, '/work');
    expect(shadowed.status).toBe(200);
    expect(shadowed.headers['retry-after']).toBe('1');
    controller.mode = 'enforce';
    const refused = await send(app.port, '/work');
    expect(refused.status).toBe(503);
    expect(refused.headers['retry-after']).toBe('1');
    app.open('a');
    await held;
    await until(() => controller.inFlight === 0);
  });
});

describe('admission adapter options', () => {
  it('make a controller of their own (gradient2) when given none', () => {
    const middleware = admissionMiddleware();
    expect(middleware.controller.algorithm).toBeDefined();
    expect(middleware.controller.limit).toBeGreaterThan(0);
    expect(admissionMiddleware({ name: 'mine', limit: 7 }).controller.snapshot()).toMatchObject({ name: 'mine', limit: 7 });
  });

  it('are validated once, naming the option and the value', () => {
    expect(() => admissionMiddleware({ limit: 5, priority: 'critical' } as never)).toThrow(/admissionMiddleware: option "priority" must be a function, got "critical"/);
    expect(() => admissionMiddleware({ limit: 5, exemptProbes: 'yes' } as never)).toThrow(/option "exemptProbes" must be a boolean, got "yes"/);
    expect(() => admissionMiddleware({ limit: 5, trustProxy: true } as never)).toThrow(/true would let any client/);
    expect(() => admissionMiddleware({ controller: {} } as never)).toThrow(/option "controller" must be an admission controller/);
    expect(() => admissionMiddleware({ controller: admissionController(), limit: 3 } as never)).toThrow(/either \{ controller \} or admissionController options/);
    expect(() => admissionMiddleware({ limt: 3 } as never)).toThrow(/limt/);
    expect(() => admissionMiddleware(7 as never)).toThrow(/admissionMiddleware: the argument must be/);
  });

  it('refuses bad options at registration in Fastify', async () => {
    const app = fastify();
    await expect(app.register(admissionPlugin, { limit: 5, skip: 'no' } as never)).rejects.toThrow(/admissionPlugin: option "skip" must be a function/);
    await app.close();
  });
});
