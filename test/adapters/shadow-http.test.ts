// Shadow mode through the HTTP adapters (issue 15 §3), on real Express and Fastify servers on
// 127.0.0.1, port 0: a request a shadow limiter or shedder would have turned away reaches its
// handler, with the same headers the 429 or 503 would have carried; only the status differs.
import { createServer, type Server } from 'node:http';
import { createRequire } from 'node:module';
import express5 from 'express';
import fastify5 from 'fastify';
import fastify4 from 'fastify4';
import { afterEach, describe, expect, it } from 'vitest';
import { loadSheddingMiddleware, rateLimitMiddleware } from '../../src/adapters/express.js';
import { loadSheddingPlugin, rateLimitPlugin } from '../../src/adapters/fastify.js';
import { createFetch } from '../../src/adapters/fetch.js';
import {
  channelNames,
  fixedWindow,
  loadShedder,
  type LoadSample,
  type LoadShedder,
  RateLimitedError,
  rateLimiter,
  type SheddingRejectedMessage,
} from '../../src/index.js';
import { messagesDuring, seeded } from '../support/shadow.js';
import { type Answer, close, type FastifyAppLike as FastifyLike, listen, send } from './support/inbound-http.js';

const express4 = createRequire(import.meta.url)('express4') as typeof express5;

const stops: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  await Promise.all(stops.splice(0).map((stop) => stop()));
});

/** What a test mounts: rate limits (with their adapter options) or a shedder, before a route `GET /` answering "handled". */
interface Mount {
  readonly limits?: readonly { readonly limiter: ReturnType<typeof rateLimiter>; readonly options?: object }[];
  readonly shedder?: LoadShedder;
}

type Framework = (mount: Mount) => Promise<number>;

function expressServer(express: typeof express5): Framework {
  return async ({ limits = [], shedder }) => {
    const app = express();
    if (shedder !== undefined) app.use(loadSheddingMiddleware(shedder));
    for (const { limiter, options } of limits) app.use(rateLimitMiddleware(limiter, options));
    app.get('/', (_req, res) => void res.send('handled'));
    const server: Server = createServer(app);
    stops.push(() => close(server));
    return listen(server);
  };
}

function fastifyServer(fastify: (options?: object) => FastifyLike): Framework {
  return async ({ limits = [], shedder }) => {
    const app = fastify();
    stops.push(() => app.close());
    if (shedder !== undefined) await app.register(loadSheddingPlugin, shedder);
    if (limits.length > 0) {
      const [first, ...rest] = limits;
      await app.register(rateLimitPlugin, { limiter: first!.limiter, global: false, ...first!.options });
      const rules = [true, ...rest.map(({ limiter, options }) => ({ limiter, ...options }))];
      app.get('/', { config: { rateLimit: rules } }, async () => 'handled');
    } else {
      app.get('/', async () => 'handled');
    }
    await app.listen({ port: 0, host: '127.0.0.1' });
    return (app.server.address() as { port: number }).port;
  };
}

// The seconds a header counts down (X-RateLimit-Reset, epoch seconds of Date.now() + resetMs;
// RateLimit's t; Retry-After) may round to the next second between the two servers' answers,
// which are sent a few ms apart: compared within a second, apart from the rest.
const rateLimitHeaders = ['ratelimit-policy', 'ratelimit', 'x-ratelimit-limit', 'x-ratelimit-remaining'];

function picked(answer: Answer, names: readonly string[]): Record<string, unknown> {
  return Object.fromEntries(names.map((name) => [name, name === 'ratelimit' ? String(answer.headers[name] ?? '').replace(/;t=\d+/g, ';t=…') : answer.headers[name]]));
}

/** The seconds in a's and b's countdown headers differ by at most one. */
function expectSecondsWithinOne(a: Answer, b: Answer): void {
  const seconds = (x: Answer) => [
    Number(x.headers['x-ratelimit-reset']),
    ...[...String(x.headers['ratelimit'] ?? '').matchAll(/;t=(\d+)/g)].map((m) => Number(m[1])),
    ...(x.headers['retry-after'] === undefined ? [] : [Number(x.headers['retry-after'])]),
  ];
  const [sa, sb] = [seconds(a), seconds(b)];
  expect(sa.length, JSON.stringify([a.headers, b.headers])).toBe(sb.length);
  sa.forEach((s, i) => expect(Math.abs(s - sb[i]!), JSON.stringify([a.headers, b.headers])).toBeLessThanOrEqual(1));
}

/** Sends `count` requests in a row to `GET /`; the answers in order. */
async function sendMany(port: number, count: number): Promise<Answer[]> {
  const answers: Answer[] = [];
  for (let i = 0; i < count; i++) answers.push(await send(port, '/'));
  return answers;
}

function windowLimiter(mode: 'enforce' | 'shadow', limit = 2, name = 'api') {
  return rateLimiter({ name, mode, algorithm: fixedWindow({ limit, windowMs: 3_600_000 }) });
}

/** A shedder whose sample the test sets; `sustainedSamples: 2`, so its counters matter. */
function scriptedShedder(mode: 'enforce' | 'shadow') {
  let sample: LoadSample = { eventLoopDelayMs: 0 };
  const shedder = loadShedder({ maxEventLoopDelayMs: 100, sustainedSamples: 2, retryAfterSeconds: 7, sampler: () => sample, mode });
  stops.push(async () => shedder.dispose());
  return {
    shedder,
    sample: (eventLoopDelayMs: number) => {
      sample = { eventLoopDelayMs };
      shedder.update();
    },
  };
}

const shedMessagesDuring = (run: () => Promise<void>) => messagesDuring<SheddingRejectedMessage>(channelNames.sheddingRejected, run);

describe.each([
  ['Express 4', expressServer(express4)],
  ['Express 5', expressServer(express5)],
  ['Fastify 4', fastifyServer(fastify4 as unknown as (options?: object) => FastifyLike)],
  ['Fastify 5', fastifyServer(fastify5 as unknown as (options?: object) => FastifyLike)],
])('%s', (_name, serve) => {
  it('a request a shadow limiter denies reaches the handler with the headers the 429 carries', async () => {
    const options = { headers: 'draft+legacy' };
    const enforcing = await serve({ limits: [{ limiter: windowLimiter('enforce'), options }] });
    const shadowing = await serve({ limits: [{ limiter: windowLimiter('shadow'), options }] });
    const enforced = await sendMany(enforcing, 3);
    const shadowed = await sendMany(shadowing, 3);
    expect(enforced.map((a) => a.status)).toEqual([200, 200, 429]);
    expect(shadowed.map((a) => a.status)).toEqual([200, 200, 200]);
    expect(shadowed[2]!.body).toBe('handled');
    expect(shadowed[2]!.headers['retry-after']).toMatch(/^\d+$/);
    for (let i = 0; i < 3; i++) {
      expect(picked(shadowed[i]!, rateLimitHeaders)).toEqual(picked(enforced[i]!, rateLimitHeaders));
      expectSecondsWithinOne(shadowed[i]!, enforced[i]!);
    }
  });

  it('a limiter switched to enforce at run time answers 429 from the counts it kept in shadow mode', async () => {
    const limiter = windowLimiter('shadow', 1);
    const port = await serve({ limits: [{ limiter }] });
    expect((await sendMany(port, 2)).map((a) => a.status)).toEqual([200, 200]);
    limiter.mode = 'enforce';
    expect((await send(port, '/')).status).toBe(429);
    limiter.mode = 'shadow';
    expect((await send(port, '/')).status).toBe(200);
  });

  it('a shadow limiter beside an enforcing one: both decide and show; only the enforcing denial answers 429', async () => {
    const shadow = windowLimiter('shadow', 1, 'trial');
    const enforce = windowLimiter('enforce', 2, 'api');
    const port = await serve({ limits: [{ limiter: shadow }, { limiter: enforce }] });
    const [first, second, third] = await sendMany(port, 3);
    expect(first!.status).toBe(200);
    expect(second!.status).toBe(200); // denied by "trial" in shadow mode, allowed by "api"
    expect(second!.headers['ratelimit']).toMatch(/^"trial";r=0;t=\d+, "api";r=0;t=\d+$/);
    expect(third!.status).toBe(429);
    expect(third!.body).toContain('"policy":"api"');
  });

  it('a request a shadow shedder would shed reaches the handler with the 503’s Retry-After, published with mode "shadow"', async () => {
    const { shedder, sample } = scriptedShedder('shadow');
    const port = await serve({ shedder });
    sample(250);
    sample(250);
    let answer: Answer | undefined;
    const seen = await shedMessagesDuring(async () => {
      answer = await send(port, '/');
    });
    expect(answer!.status).toBe(200);
    expect(answer!.body).toBe('handled');
    expect(answer!.headers['retry-after']).toBe('7');
    expect(seen).toEqual([{ reason: 'eventLoopDelay', value: 250, threshold: 100, mode: 'shadow' }]);
    shedder.mode = 'enforce';
    const shed = await send(port, '/');
    expect(shed.status).toBe(503);
    expect(shed.headers['retry-after']).toBe('7');
  });

  it('replaying the same load in both modes, the shadow shedder would shed exactly the requests the enforcing one sheds', async () => {
    const run = async (mode: 'enforce' | 'shadow') => {
      const { shedder, sample } = scriptedShedder(mode);
      const port = await serve({ shedder });
      const next = seeded(15);
      const statuses: number[] = [];
      const seen = await shedMessagesDuring(async () => {
        for (let i = 0; i < 120; i++) {
          if (i % 4 === 0) sample(next() < 0.5 ? 40 : 160);
          statuses.push((await send(port, '/')).status);
        }
      });
      return { shed: statuses.filter((s) => s === 503).length, ok: statuses.filter((s) => s === 200).length, seen };
    };
    const enforce = await run('enforce');
    const shadow = await run('shadow');
    expect(enforce.shed).toBeGreaterThan(10);
    expect(enforce.shed).toBeLessThan(110);
    expect(shadow.ok).toBe(120);
    expect(shadow.seen.every((m) => m.mode === 'shadow')).toBe(true);
    expect(shadow.seen.length).toBe(enforce.shed);
  });
});

describe('rate-limit adapters: a shadow limiter and a bad cost', () => {
  it('lets a request with a cost the limiter could never admit go on, uncharged (an enforcing one answers 400)', async () => {
    const serve = expressServer(express5);
    const enforcing = await serve({ limits: [{ limiter: windowLimiter('enforce', 5), options: { cost: () => Number.NaN } }] });
    const shadowing = await serve({ limits: [{ limiter: windowLimiter('shadow', 5), options: { cost: () => Number.NaN } }] });
    expect((await send(enforcing, '/')).status).toBe(400);
    const answer = await send(shadowing, '/');
    expect(answer.status).toBe(200);
    expect(answer.headers['ratelimit']).toBeUndefined();
  });
});

describe('bulwark/fetch with a limiter in shadow mode', () => {
  it('sends the request a shadow limiter denies; switched to enforce, refuses it without sending', async () => {
    let received = 0;
    const server = createServer((_req, res) => {
      received++;
      res.end('ok');
    });
    stops.push(() => close(server));
    const port = await listen(server);
    const limiter = windowLimiter('shadow', 1, 'upstream');
    const f = createFetch({ rateLimit: { limiter }, retry: false });
    for (let i = 0; i < 2; i++) expect(await (await f(`http://127.0.0.1:${port}/`)).text()).toBe('ok');
    expect(received).toBe(2);
    limiter.mode = 'enforce';
    await expect(f(`http://127.0.0.1:${port}/`)).rejects.toBeInstanceOf(RateLimitedError);
    expect(received).toBe(2);
  });
});
