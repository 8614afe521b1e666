// Issue 15 §2 across services, from public entry points only: service A calls B with bulwark/fetch
// (`propagate: true`), B calls C the same way. The caller's class and deadline travel A → B → C from
// async context, B reads them only because A is a trusted peer, a deadline that passes stops the
// chain where it stands (A's call ends on time, B's call to C is never sent), and a request that
// arrives with no time left is refused. Express A → Fastify B and Fastify A → Express B.
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import express from 'express';
import fastify from 'fastify';
import { afterEach, describe, expect, it } from 'vitest';
import { admissionMiddleware, propagationMiddleware } from '../../src/adapters/express.js';
import { admissionPlugin, propagationPlugin } from '../../src/adapters/fastify.js';
import {
  createFetch,
  DEADLINE_HEADER,
  DeadlineExceededError,
  PRIORITY_HEADER,
  type ResilientFetch,
  RetryAfterError,
} from '../../src/adapters/fetch.js';
import { type AdmissionController, admissionController, currentAdmissionScope, type PriorityClass, withAdmissionScope } from '../../src/index.js';
import { close, delay, send } from '../adapters/support/inbound-http.js';

type Framework = 'express' | 'fastify';

/** A service: its base URL, and how to stop it. */
interface Service {
  readonly url: string;
  close(): Promise<void>;
}

const stops: (() => Promise<void>)[] = [];
/** Gates B's handler waits at (`?gate=NAME`), opened by the test. */
const gates = new Map<string, () => void>();
afterEach(async () => {
  for (const open of gates.values()) open();
  gates.clear();
  for (const stop of stops.splice(0).reverse()) await stop();
});

/** C: the leaf. Records the propagation headers of every request it gets. */
async function startLeaf(): Promise<Service & { readonly seen: IncomingHttpHeaders[] }> {
  const seen: IncomingHttpHeaders[] = [];
  const server: Server = createServer((req, res) => {
    seen.push(req.headers);
    req.resume();
    res.writeHead(200, { 'content-type': 'application/json' }).end('{"ok":true}');
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const service = { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, seen, close: () => close(server) };
  stops.push(service.close);
  return service;
}

/**
 * A route handler both frameworks run: works `ms` ms, then calls the next service. Answers what
 * it saw, or 504 when its own caller's deadline passed before its call could be sent.
 */
async function handle(next: ResilientFetch, path: string, workMs: number, gate?: string): Promise<{ status: number; body: unknown }> {
  const scope = currentAdmissionScope() ?? null;
  if (workMs > 0) await delay(workMs);
  if (gate !== undefined) await new Promise<void>((resolve) => gates.set(gate, resolve));
  try {
    const answer = await next(path);
    return { status: answer.status, body: { scope, downstream: (await answer.json()) as unknown } };
  } catch (error) {
    if (error instanceof DeadlineExceededError) return { status: 504, body: { scope, error: error.code } };
    // The next service asked for a pause (503 + Retry-After): the fetch keeps to it without calling.
    if (error instanceof RetryAfterError) return { status: 503, body: { scope, error: error.code } };
    throw error;
  }
}

/**
 * B: trusts its loopback peers (A) for propagation, calls C with `propagate: true`. With a
 * controller, B also sheds by the class its callers send (admission adapter), else it only reads
 * them (propagation adapter). `finished` counts the requests it finished handling, so a test can
 * wait for work still running before it ends.
 */
async function startMiddle(framework: Framework, leaf: string, controller?: AdmissionController): Promise<Service & { readonly finished: () => number }> {
  const toLeaf = createFetch({ endpoints: [leaf], propagate: true, retry: false });
  let finished = 0;
  const run = async (query: { ms?: string; gate?: string }): Promise<{ status: number; body: unknown }> => {
    try {
      return await handle(toLeaf, '/leaf', Number(query.ms ?? 0), query.gate);
    } finally {
      finished++;
    }
  };
  const trustProxy = 'loopback';
  let service: Service;
  if (framework === 'express') {
    const app = express();
    app.use(controller === undefined ? propagationMiddleware({ trustProxy }) : admissionMiddleware({ controller, trustProxy }));
    app.get('/work', (req, res, next) => {
      run(req.query as never).then(({ status, body }) => void res.status(status).json(body), next);
    });
    const server = app.listen(0, '127.0.0.1');
    await new Promise((resolve) => server.once('listening', resolve));
    service = { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, close: () => close(server) };
  } else {
    // Every connection closed with the app: A's aborted call can leave B a keep-alive socket to wait on.
    const app = fastify({ forceCloseConnections: true });
    if (controller === undefined) await app.register(propagationPlugin, { trustProxy });
    else await app.register(admissionPlugin, { controller, trustProxy });
    app.get('/work', async (req, reply) => {
      const { status, body } = await run(req.query as never);
      return reply.code(status).send(body);
    });
    await app.listen({ port: 0, host: '127.0.0.1' });
    service = { url: `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`, close: () => app.close() };
  }
  stops.push(service.close);
  return { ...service, finished: () => finished };
}

/**
 * A: the caller. Its handler gives each request a class and a time budget of its own (as a user's
 * code would, with withAdmissionScope) and calls B with `propagate: true`.
 */
async function startCaller(framework: Framework, middle: string): Promise<Service> {
  const toMiddle = createFetch({ endpoints: [middle], propagate: true, retry: false });
  const run = (query: Record<string, unknown>): Promise<{ status: number; body: unknown }> =>
    withAdmissionScope({ priority: query.class as PriorityClass, deadline: Date.now() + Number(query.budgetMs) }, () =>
      handle(toMiddle, `/work?ms=${Number(query.workMs ?? 0)}${query.gate === undefined ? '' : `&gate=${String(query.gate)}`}`, 0),
    );
  let service: Service;
  if (framework === 'express') {
    const app = express();
    app.get('/a', (req, res, next) => {
      run(req.query).then(({ status, body }) => void res.status(status).json(body), next);
    });
    const server = app.listen(0, '127.0.0.1');
    await new Promise((resolve) => server.once('listening', resolve));
    service = { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, close: () => close(server) };
  } else {
    // Every connection closed with the app: A's aborted call can leave B a keep-alive socket to wait on.
    const app = fastify({ forceCloseConnections: true });
    app.get('/a', async (req, reply) => {
      const { status, body } = await run(req.query as Record<string, unknown>);
      return reply.code(status).send(body);
    });
    await app.listen({ port: 0, host: '127.0.0.1' });
    service = { url: `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`, close: () => app.close() };
  }
  stops.push(service.close);
  return service;
}

const portOf = (url: string): number => Number(new URL(url).port);

describe.each([
  ['express', 'fastify'],
  ['fastify', 'express'],
] as const)('propagation from a %s service A through a %s service B to C', (aFramework, bFramework) => {
  async function chain(controller?: AdmissionController) {
    const leaf = await startLeaf();
    const middle = await startMiddle(bFramework, leaf.url, controller);
    const caller = await startCaller(aFramework, middle.url);
    return { leaf, middle, caller };
  }

  it("carries A's class and its shrinking deadline to B's handler and on to C", async () => {
    const { leaf, caller } = await chain();
    const answer = await send(portOf(caller.url), '/a?class=best-effort&budgetMs=3000');
    expect(answer.status).toBe(200);
    const body = JSON.parse(answer.body) as { downstream: { scope: { priority: string; deadline: number } } };
    expect(body.downstream.scope.priority).toBe('best-effort');
    expect(body.downstream.scope.deadline).toBeLessThanOrEqual(Date.now() + 3_000);
    expect(leaf.seen).toHaveLength(1);
    expect(leaf.seen[0]![PRIORITY_HEADER]).toBe('best-effort');
    const left = Number(leaf.seen[0]![DEADLINE_HEADER]);
    expect(left).toBeGreaterThan(2_000);
    expect(left).toBeLessThanOrEqual(3_000);
  });

  it("ends A's call at its deadline, and B never sends the call its caller no longer waits for", async () => {
    const { leaf, middle, caller } = await chain();
    const started = Date.now();
    const answer = await send(portOf(caller.url), '/a?class=critical&budgetMs=150&workMs=400');
    const tookMs = Date.now() - started;
    // A's own call to B ended at A's deadline, not when B finished its 400 ms of work.
    expect(answer.status).toBe(504);
    expect(JSON.parse(answer.body)).toMatchObject({ error: 'ERR_BULWARK_DEADLINE_EXCEEDED' });
    expect(tookMs).toBeLessThan(380);
    // B finishes its work later and finds the deadline passed: nothing reaches C.
    for (let i = 0; i < 100 && middle.finished() === 0; i++) await delay(10);
    expect(middle.finished()).toBe(1);
    expect(leaf.seen).toHaveLength(0);
  });

  it('refuses a request from its trusted peer that arrives with no time left, before any work', async () => {
    const { leaf, middle } = await chain();
    const expired = await send(portOf(middle.url), '/work', { headers: { [PRIORITY_HEADER]: 'critical', [DEADLINE_HEADER]: '0' } });
    expect(expired.status).toBe(504);
    expect(JSON.parse(expired.body)).toMatchObject({ type: 'urn:bulwark:problem:deadline-exceeded' });
    expect(leaf.seen).toHaveLength(0);
    expect(middle.finished()).toBe(0);
  });

  it("sheds by A's class: at B's full limit, A's critical request gets in and its sheddable ones are turned away", async () => {
    const controller = admissionController({ name: 'b', limit: 1, maxQueue: 1 });
    const { leaf, caller } = await chain(controller);
    const port = portOf(caller.url);
    const ask = (cls: PriorityClass, gate?: string) => send(port, `/a?class=${cls}&budgetMs=5000${gate === undefined ? '' : `&gate=${gate}`}`);
    // B's slot is held by critical work (a slot held by sheddable work would be lent to a critical request at once).
    const busy = ask('critical', 'busy');
    for (let i = 0; i < 200 && controller.inFlight < 1; i++) await delay(10);
    const queued = ask('sheddable');
    for (let i = 0; i < 200 && controller.queued < 1; i++) await delay(10);
    const critical = ask('critical');
    // B turns the queued sheddable request away to make room for the critical one…
    const shed = await queued;
    expect(shed.status).toBe(503);
    // …and the next sheddable one is turned away too: A's fetch keeps to the pause B asked for
    // (Retry-After) and does not even call.
    const next = await ask('sheddable');
    expect(next.status).toBe(503);
    expect(JSON.parse(next.body)).toMatchObject({ error: 'ERR_BULWARK_RETRY_AFTER' });
    gates.get('busy')!();
    const served = await critical;
    expect(served.status).toBe(200);
    expect(JSON.parse(served.body)).toMatchObject({ downstream: { scope: { priority: 'critical' } } });
    expect((await busy).status).toBe(200);
    // The pause B asked of A's sheddable calls does not hold A's critical ones back.
    expect((await ask('critical')).status).toBe(200);
    // C saw the critical calls only, each with its class.
    expect(leaf.seen.map((h) => h[PRIORITY_HEADER]).sort()).toEqual(['critical', 'critical', 'critical']);
  });
});
