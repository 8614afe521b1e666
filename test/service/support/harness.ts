// What the service scenarios share: the flaky upstream (a loopback server), one-shot requests, a
// reader for the rate-limit header lists and problem bodies, and a way to start either framework's
// service with a fresh Redis key prefix and a captured error log.
import { randomUUID } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, afterEach, beforeAll } from 'vitest';
import { send, type Answer } from '../../adapters/support/inbound-http.js';
import { startRedis, type RedisServer } from '../../integration/support/redis.js';
import { startExpressService, type RunningService } from './express-service.js';
import { startFastifyService } from './fastify-service.js';
import type { ServiceOptions } from './parts.js';

export type { RunningService } from './express-service.js';
export type { Answer } from '../../adapters/support/inbound-http.js';

/** Both frameworks, for `describe.each`. */
export const frameworks = ['express', 'fastify'] as const;
export type Framework = (typeof frameworks)[number];

/** A service, its error log, and how to stop it. */
export interface Started {
  readonly service: RunningService;
  /** Lines the service wrote to its error log so far. */
  readonly errorLog: string[];
}

/** Starts `framework`'s service with a fresh key prefix and a captured error log. */
export async function startService(
  framework: Framework,
  options: Omit<ServiceOptions, 'prefix' | 'log'> & { readonly prefix?: string },
): Promise<Started> {
  const errorLog: string[] = [];
  const full: ServiceOptions = { prefix: `svc-${randomUUID().slice(0, 8)}:`, ...options, log: (line) => errorLog.push(line) };
  const service = framework === 'express' ? await startExpressService(full) : await startFastifyService(full);
  return { service, errorLog };
}

/** The upstream the service calls: `/items` answers, `?fail` fails with 503, and every 4th request fails once. */
export interface Upstream {
  readonly url: string;
  readonly requests: number;
  close(): Promise<void>;
}

export async function startUpstream(): Promise<Upstream> {
  let requests = 0;
  const server: Server = createServer((req, res) => {
    requests++;
    req.resume();
    if ((req.url ?? '').includes('fail') || requests % 4 === 0) {
      res.writeHead(503, { 'content-type': 'text/plain' }).end('busy');
      return;
    }
    res.writeHead(200, { 'content-type': 'application/json' }).end('{"items":[1,2,3]}');
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    get requests() {
      return requests;
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

/** GET `path` on 127.0.0.1:`port` on a fresh connection; rejects only on a network error. */
export function get(port: number, path: string, headers: Record<string, string> = {}): Promise<Answer> {
  return send(port, path, { headers });
}

/** One item of a structured-field list (`"name";r=5;t=60`): its name and parameters. */
export interface ListItem {
  readonly name: string;
  readonly params: Record<string, number>;
}

/**
 * Reads a `RateLimit` or `RateLimit-Policy` field: a structured-field list, items separated by
 * ", " (or arriving as repeated header lines, which Node joins the same way).
 */
export function listItems(value: string | string[] | undefined): ListItem[] {
  if (value === undefined) return [];
  const text = Array.isArray(value) ? value.join(', ') : value;
  return text
    .split(/,\s*/)
    .filter((item) => item.length > 0)
    .map((item) => {
      const [name = '', ...params] = item.split(';');
      const parsed: Record<string, number> = {};
      for (const p of params) {
        const [k, v] = p.split('=');
        if (k !== undefined && v !== undefined) parsed[k.trim()] = Number(v);
      }
      return { name: name.trim().replace(/^"|"$/g, ''), params: parsed };
    });
}

/** The item named `name` in a rate-limit field, or undefined. */
export function item(value: string | string[] | undefined, name: string): ListItem | undefined {
  return listItems(value).find((i) => i.name === name);
}

/** The parsed problem body of an answer (throws, with the body, if it is not problem+json). */
export function problemOf(answer: Answer): Record<string, unknown> {
  const type = String(answer.headers['content-type'] ?? '');
  if (!type.startsWith('application/problem+json')) {
    throw new Error(`expected application/problem+json, got ${type || 'no content-type'} (${answer.status}): ${answer.body.slice(0, 300)}`);
  }
  return JSON.parse(answer.body) as Record<string, unknown>;
}

/** The probe routes (with a per-check sub-path) and /metrics, which must answer 200 whatever traffic does. */
export const probePaths = ['/livez', '/readyz', '/startupz', '/healthz', '/readyz/redis', '/metrics'] as const;

/** Asks every probe once, at the same time; returns the answers that were not 200 (path and status). */
export async function probeFailures(port: number): Promise<string[]> {
  const answers = await Promise.all(probePaths.map(async (path) => [path, await get(port, path)] as const));
  return answers.filter(([, a]) => a.status !== 200).map(([path, a]) => `${path} ${a.status} ${a.body.slice(0, 120)}`);
}

/** Waits `ms`. */
export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** What {@link useRedisAndUpstream} starts for a test file. */
export interface Shared {
  readonly redis: RedisServer;
  readonly upstream: Upstream;
  /** Registers a service to close after the current test. */
  track(started: Started): Started;
  /** Registers a step to run after the current test (in reverse order). */
  later(step: () => Promise<unknown>): void;
}

/**
 * Starts one redis-server and one upstream for the test file (stopped after it), and closes the
 * services and runs the steps each test registered after that test.
 */
export function useRedisAndUpstream(): Shared {
  let redis: RedisServer | undefined;
  let upstream: Upstream | undefined;
  const steps: (() => Promise<unknown>)[] = [];
  beforeAll(async () => {
    [redis, upstream] = await Promise.all([startRedis(), startUpstream()]);
  });
  afterEach(async () => {
    for (const step of steps.splice(0).reverse()) await step();
  });
  afterAll(async () => {
    await upstream?.close();
    await redis?.stop();
  });
  return {
    get redis() {
      if (!redis) throw new Error('useRedisAndUpstream: redis is only there inside tests');
      return redis;
    },
    get upstream() {
      if (!upstream) throw new Error('useRedisAndUpstream: the upstream is only there inside tests');
      return upstream;
    },
    track(started) {
      steps.push(() => started.service.close());
      return started;
    },
    later(step) {
      steps.push(step);
    },
  };
}
