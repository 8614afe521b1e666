// Helpers for the metrics adapter tests (not a test file itself): run promtool, and make every
// bulwark metric hold at least one series by driving the real policies.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createFetch } from '../../../src/adapters/fetch.js';
import {
  adaptiveThrottle,
  admissionController,
  aimd,
  bulkhead,
  circuitBreaker,
  compoundLimit,
  consecutive,
  constant,
  fallback,
  faultInjection,
  fixedWindow,
  health,
  hedge,
  loadShedder,
  ManualClock,
  quota,
  rateLimiter,
  retry,
  timeout,
} from '../../../src/index.js';
import { redisStore } from '../../../src/ratelimit/redis/index.js';
import { deferred, flush } from '../../support/helpers.js';
import { FakeClient } from '../../unit/ratelimit/redis/fake-client.js';

export const PROMTOOL = '/usr/bin/promtool';

/** What promtool answered. */
export interface PromtoolResult {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

/**
 * Runs promtool with `args` (and `input` on stdin). Never skips: without promtool the test fails
 * and says how to install it.
 */
export function promtool(args: readonly string[], input?: string, binary = PROMTOOL): PromtoolResult {
  if (!existsSync(binary)) {
    throw new Error(`promtool is not installed at ${binary}: install it with \`apt-get install -y prometheus\` (Debian/Ubuntu)`);
  }
  const result = spawnSync(binary, [...args], { input, encoding: 'utf8', timeout: 20_000 });
  if (result.error !== undefined) throw result.error;
  return { code: result.status, stdout: result.stdout, stderr: result.stderr };
}

/**
 * Makes one event of every kind bulwark publishes, so that every metric has series to lint:
 * executions with several outcomes, breaker transitions and rejections, a retry and a give-up, a
 * timeout, a bulkhead rejection, a fallback, an injected fault, a hedge, rate-limit and quota decisions (memory and
 * a Redis store falling back), a store error, a Redis store that lost its keys (state-lost), a
 * load-shedding rejection, health checks, a fetch failover and a fetch origin dropped, an
 * admission rejection and limit change.
 */
export async function exerciseEverything(): Promise<{
  breakers: ReturnType<typeof circuitBreaker>[];
  admission: ReturnType<typeof admissionController>[];
}> {
  const clock = new ManualClock();
  const boom = (): Promise<never> => Promise.reject(new Error('down'));

  const breaker = circuitBreaker({ name: 'payments', breaker: consecutive(1), halfOpenAfterMs: 1_000, clock });
  const faulty = breaker.onStateChange(() => {
    throw new Error('a listener with a bug');
  });
  await breaker.execute(boom).catch(() => {});
  faulty.dispose();
  await breaker.execute(() => 1).catch(() => {});

  const r = retry({ name: 'upstream', maxAttempts: 2, backoff: constant(0), clock });
  await r.execute(boom).catch(() => {});
  await r.execute(() => 'ok');

  const t = timeout(10, { name: 'slow', clock });
  const cut = t.execute(() => new Promise(() => {})).catch(() => {});
  await clock.advance(10);
  await cut;

  const pool = bulkhead({ name: 'pool', maxConcurrent: 1, maxQueue: 0 });
  const gate = deferred();
  const busy = pool.execute(() => gate.promise);
  await pool.execute(() => 1).catch(() => {});
  gate.resolve();
  await busy;

  await fallback('cached', { name: 'cache' }).execute(boom);

  await faultInjection({ name: 'chaos', rate: 1, outcome: 'injected' }).execute(() => 'real');

  // An adaptive throttle whose upstream refused the first call: the second is rejected locally.
  const throttle = adaptiveThrottle({ name: 'throttle', minRequests: 0, random: () => 0, clock });
  await throttle.execute(boom).catch(() => {});
  await throttle.execute(() => 1).catch(() => {});

  const h = hedge({ name: 'search', delayMs: 5, clock });
  const slow = deferred<string>();
  let n = 0;
  const hedged = h.execute(() => (++n === 1 ? slow.promise : Promise.resolve('fast')));
  await clock.advance(5);
  await hedged;
  slow.resolve('late');

  const limiter = rateLimiter({ name: 'api', algorithm: fixedWindow({ limit: 1, windowMs: 60_000 }) });
  await limiter.consume('client-1');
  await limiter.consume('client-1');
  await quota({ name: 'monthly', limit: 5, period: 'month', timeZone: 'UTC' }).consume('client-1');
  // A compound limit (a denial by its first limit), and a reservation settled below its estimate.
  const compound = compoundLimit([limiter, rateLimiter({ name: 'api-minute', algorithm: fixedWindow({ limit: 5, windowMs: 60_000 }), store: limiter.store })], { name: 'api-both' });
  await compound.consume('client-1');
  await (await rateLimiter({ name: 'tokens', algorithm: fixedWindow({ limit: 100, windowMs: 60_000 }) }).reserve('client-1', 10)).settle(4);

  const client = new FakeClient();
  const shared = rateLimiter({ name: 'shared', algorithm: fixedWindow({ limit: 5, windowMs: 60_000 }), store: redisStore(client) });
  const pending = shared.consume('client-1');
  await flush();
  client.last().reject(new Error('Connection is closed.'));
  await pending;

  // A Redis that lost the store's keys (a FLUSHALL): the next check finds the marker gone.
  const flushed = new FakeClient();
  const counted = rateLimiter({ name: 'flushed', algorithm: fixedWindow({ limit: 5, windowMs: 60_000 }), store: redisStore(flushed, { stateCheckMs: 1 }) });
  for (let i = 0; i < 2; i++) {
    const decided = counted.consume('client-1');
    await flush();
    flushed.last().resolve([0, 0, 0, 4, 60_000]);
    await decided;
    flushed.markers.clear();
    await new Promise((resolve) => setTimeout(resolve, 2));
  }

  const shedder = loadShedder({ maxEventLoopDelayMs: 100, sampler: () => ({ eventLoopDelayMs: 500 }) });
  shedder.update();
  shedder.reject();
  shedder.dispose();

  await health({
    checks: [
      { name: 'db', check: () => true },
      { name: 'queue', critical: false, check: () => false },
    ],
  }).readiness();

  const f = createFetch({
    name: 'quotes',
    endpoints: ['http://primary.test', 'http://standby.test'],
    retry: { maxAttempts: 2, backoff: constant(0) },
    fetch: (input) => Promise.resolve(new Response('x', { status: String(input).includes('primary') ? 503 : 200 })),
  });
  await (await f('/quote')).text();

  // Pacing: the first answer advertises 1 call a second, so the call after the next is beyond maxWaitMs.
  const paced = createFetch({
    name: 'paced',
    retry: false,
    pacing: { maxWaitMs: 0 },
    fetch: () => Promise.resolve(new Response('x', { headers: { 'ratelimit-policy': '"p";q=1;w=1' } })),
  });
  await paced('http://paced.test/');
  await paced('http://paced.test/');
  await paced('http://paced.test/').catch(() => {});

  // Two origins through a fetch that keeps one: the first one's state is dropped.
  const perOrigin = createFetch({ name: 'rates', maxOrigins: 1, fetch: () => Promise.resolve(new Response('x')) });
  for (const origin of ['http://rates-a.test', 'http://rates-b.test']) await (await perOrigin(`${origin}/rate`)).text();

  // An admission controller: a rejection, and a limit that moves (slow start doubles it).
  const admission = admissionController({ name: 'admission', limit: aimd({ initialLimit: 1, windowMs: 1, minSamples: 1 }), clock });
  const held = admission.tryAcquire();
  admission.tryAcquire();
  await clock.advance(5);
  if (!('reason' in held)) held.release('success');

  return { breakers: [breaker], admission: [admission] };
}
