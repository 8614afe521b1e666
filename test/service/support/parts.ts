// The framework-independent half of the assembled service (test/service/), written as a user
// following the README would: an ioredis client with the options the README asks for, a Redis
// store, a per-client rate limit and a per-tenant daily quota on it, a load shedder, health
// checks, a resilient fetch to an upstream behind a breaker and a fallback, and Prometheus
// metrics in the service's own registry. Only public entry points are imported: bulwark
// (src/index.ts), bulwark/redis, bulwark/fetch and bulwark/prometheus.
//
// The user callbacks (key, cost, breaker `handle`, fallback, retry listener) throw on demand, when
// the request names them (`x-throw: key`, `?throw=handle`, ...), for row C5; otherwise they behave.
import type { IncomingHttpHeaders } from 'node:http';
import { Redis } from 'ioredis';
import { Registry } from 'prom-client';
import {
  circuitBreaker,
  gracefulShutdown,
  type GracefulShutdown,
  type ShutdownTarget,
  consecutive,
  constant,
  fallback,
  fixedWindow,
  health,
  loadShedder,
  pipeline,
  quota,
  rateLimiter,
  type Health,
  type LoadSample,
  type LoadShedder,
  type Policy,
  type Quota,
  type RateLimiter,
} from '../../../src/index.js';
import { createFetch, type ResilientFetch } from '../../../src/adapters/fetch.js';
import { registerMetrics, type MetricsRegistration } from '../../../src/metrics/index.js';
import { redisCheck, redisStore, type RedisStore } from '../../../src/ratelimit/redis/index.js';

/** How the service is put together; every field has a default that suits most scenarios. */
export interface ServiceOptions {
  /** The redis-server the limits live on (127.0.0.1). */
  readonly redisPort: number;
  /** Base URL of the upstream the service calls through bulwark/fetch. */
  readonly upstreamUrl: string;
  /** Where bulwark's shedding and limits go relative to the health and metrics routes. @default 'limits-first' */
  readonly order?: 'limits-first' | 'health-first';
  /** Requests per client per hour (the app-wide limit, keyed by client address). @default 1000 */
  readonly perClientLimit?: number;
  /** Units per tenant per day (the quota on /api). @default 100000 */
  readonly tenantUnits?: number;
  /** Replaces the shedder's measurements (a test reports pressure through it). @default no pressure */
  readonly sampler?: () => LoadSample;
  /** Key prefix in Redis, distinct per service so tests on one server do not share counters. */
  readonly prefix: string;
  /** The service's error log: one call per line. */
  readonly log: (line: string) => void;
  /** For the child-process scenarios: shut down on SIGTERM, with this drain, then exit. */
  readonly signals?: { readonly drainDelayMs: number };
  /** The store's timeout, in ms. @default 100 */
  readonly storeTimeoutMs?: number;
}

/** What the framework modules share. */
export interface ServiceParts {
  readonly client: Redis;
  readonly store: RedisStore;
  readonly perClient: RateLimiter;
  readonly tenantQuota: Quota;
  readonly shedder: LoadShedder;
  readonly health: Health;
  readonly upstream: ResilientFetch;
  readonly guarded: Policy<{ items: unknown[]; stale: boolean }>;
  readonly registry: Registry;
  readonly metrics: MetricsRegistration;
  /** The tenant a request belongs to (the user's `key` callback for the quota). */
  tenantOf(headers: IncomingHttpHeaders): string;
  /** Units a request takes from its tenant's quota (the user's `cost` callback). */
  unitsOf(url: string, headers: IncomingHttpHeaders): number;
  /** A JavaScript user's `cost` callback that forgets to convert the header it reads. */
  rawUnitsOf(headers: IncomingHttpHeaders): number;
  /** GET /api/items: the upstream's items through the guarded fetch. */
  items(url: string, headers: IncomingHttpHeaders): Promise<{ status: number; body: unknown }>;
  /** Releases everything but the server (the framework module closes that). */
  release(): Promise<void>;
}

/** An error that says which user callback should throw next (row C5). */
class UpstreamError extends Error {
  constructor(
    readonly status: number,
    readonly throwIn: string,
  ) {
    super(`upstream answered ${status}`);
    this.name = 'UpstreamError';
  }
}

/** What a user callback throws when asked to: with a path and a message that must not reach a client. */
export function userFailure(where: string): Error {
  return new Error(`user ${where} callback failed reading /srv/secret/config.json`);
}

function header(headers: IncomingHttpHeaders, name: string): string | undefined {
  const v = headers[name];
  return Array.isArray(v) ? v[0] : v;
}

/** The per-client limit's window: an hour, so that a test rarely starts near its edge. */
const PER_CLIENT_WINDOW_MS = 3_600_000;

/** Waits, if needed, until at least `marginMs` remain before the current clock-aligned window ends. */
async function clearOfWindowEdge(windowMs: number, marginMs: number): Promise<void> {
  const left = windowMs - (Date.now() % windowMs);
  if (left < marginMs) await new Promise((resolve) => setTimeout(resolve, left + 50));
}

/** Builds the framework-independent parts; waits until Redis is ready. */
export async function buildParts(options: ServiceOptions): Promise<ServiceParts> {
  const client = new Redis({
    host: '127.0.0.1',
    port: options.redisPort,
    enableOfflineQueue: false,
    autoResendUnfulfilledCommands: false,
    maxRetriesPerRequest: 1,
    retryStrategy: (times) => Math.min(times * 50, 500),
  });
  client.on('error', () => {}); // the store reports outages itself (onStoreError, store.status)
  await new Promise<void>((resolve, reject) => {
    client.once('ready', () => resolve());
    client.once('end', () => reject(new Error('redis client ended before it was ready')));
  });

  // A test that counts the per-client limit must not see its fixed window (aligned to the clock)
  // roll over half-way: that refills the bucket and a 429 it expects turns into a 200.
  if (options.perClientLimit !== undefined) await clearOfWindowEdge(PER_CLIENT_WINDOW_MS, 20_000);

  const store = redisStore(client, { prefix: options.prefix, timeoutMs: options.storeTimeoutMs ?? 100 });
  // Limits keep their defaults on a Redis outage: the per-client limit decides locally, the paid
  // quota fails closed.
  const perClient = rateLimiter({
    name: 'per-client',
    algorithm: fixedWindow({ limit: options.perClientLimit ?? 1_000, windowMs: PER_CLIENT_WINDOW_MS }),
    store,
  });
  const tenantQuota = quota({ name: 'tenant-units', limit: options.tenantUnits ?? 100_000, period: 'day', timeZone: 'UTC', store });

  const sampler = options.sampler ?? ((): LoadSample => ({ eventLoopDelayMs: 0 }));
  const shedder = loadShedder({ maxEventLoopDelayMs: 200, sampleIntervalMs: 50, retryAfterSeconds: 2, sampler });

  const upstream = createFetch({
    name: 'catalog',
    attemptTimeoutMs: 1_000,
    retry: { maxAttempts: 3, backoff: constant(5) },
    circuitBreaker: { breaker: consecutive(50), halfOpenAfterMs: 1_000 },
  });
  upstream.onRetry(({ error }) => {
    const url = (error as { url?: unknown } | undefined)?.url;
    if (typeof url === 'string' && url.includes('throw=listener')) throw userFailure('retry listener');
  });
  const guarded = pipeline(
    fallback((error: unknown) => {
      if ((error as UpstreamError).throwIn === 'fallback') throw userFailure('fallback');
      return { items: [] as unknown[], stale: true };
    }),
    circuitBreaker({
      name: 'catalog-calls',
      breaker: consecutive(50),
      handle: (error) => {
        if ((error as UpstreamError).throwIn === 'handle') throw userFailure('handle');
        return true;
      },
    }),
  );

  const h = health({
    checks: [
      // Not critical: the store's fallback keeps the service useful while Redis is away, so an
      // outage must not take every instance out of rotation at once.
      redisCheck(store, { critical: false, cacheMs: 500 }),
    ],
  });

  const registry = new Registry();
  const metrics = registerMetrics(registry);

  const tenantOf = (headers: IncomingHttpHeaders): string => {
    if (header(headers, 'x-throw') === 'key') throw userFailure('key');
    return header(headers, 'x-tenant') ?? 'public';
  };
  const unitsOf = (url: string, headers: IncomingHttpHeaders): number => {
    if (header(headers, 'x-throw') === 'cost') throw userFailure('cost');
    const units = new URL(url, 'http://service.invalid').searchParams.get('units');
    return units === null ? 1 : Number(units);
  };
  const rawUnitsOf = (headers: IncomingHttpHeaders): number => (header(headers, 'x-units') ?? 1) as unknown as number;

  const items = async (url: string, headers: IncomingHttpHeaders): Promise<{ status: number; body: unknown }> => {
    const query = new URL(url, 'http://service.invalid').searchParams;
    const throwIn = query.get('throw') ?? header(headers, 'x-throw') ?? '';
    const path = query.has('fail') ? `/items?fail=1&throw=${encodeURIComponent(throwIn)}` : '/items';
    try {
      const body = await guarded.execute(async ({ signal }) => {
        const res = await upstream(`${options.upstreamUrl}${path}`, { signal });
        if (!res.ok) {
          await res.body?.cancel();
          throw new UpstreamError(res.status, throwIn);
        }
        return (await res.json()) as unknown;
      });
      return { status: 200, body };
    } catch {
      return { status: 502, body: { type: 'about:blank', title: 'Bad Gateway', status: 502, detail: 'The catalog is unavailable.' } };
    }
  };

  const release = async (): Promise<void> => {
    shedder.dispose();
    h.dispose();
    metrics.dispose();
    await new Promise<void>((resolve) => {
      if (client.status === 'end') return resolve();
      client.once('end', () => resolve());
      client.disconnect();
    });
  };

  return {
    client,
    store,
    perClient,
    tenantQuota,
    shedder,
    health: h,
    upstream,
    guarded,
    registry,
    metrics,
    tenantOf,
    unitsOf,
    rawUnitsOf,
    items,
    release,
  };
}

/**
 * Graceful shutdown as the service sets it up: readiness fails, the drain, the close, then the
 * parts are released. In-process tests call `shutdown()` themselves (no signal, no drain, no
 * exit); the program of ./service-main.ts shuts down on SIGTERM and exits.
 */
export function shutdownOf(target: ShutdownTarget, parts: ServiceParts, options: ServiceOptions): GracefulShutdown {
  const signals = options.signals;
  return gracefulShutdown(target, {
    health: parts.health,
    signals: signals === undefined ? [] : ['SIGTERM'],
    exit: signals !== undefined,
    drainDelayMs: signals?.drainDelayMs ?? 0,
    closeTimeoutMs: 5_000,
    hookTimeoutMs: 2_000,
    hooks: [
      function releaseParts() {
        return parts.release();
      },
    ],
    log: (line) => {
      if (signals !== undefined) console.log(line);
    },
  });
}
