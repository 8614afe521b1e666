// RELIABILITY.md row C3 (a whole service), with rows F2/F3 as they apply to it: the service's
// redis-server is frozen (SIGSTOP) or killed (SIGKILL, then restarted on the same port) while
// clients keep calling a route under a per-tenant quota that fails closed. Every answer during the
// outage is a 503 with the problem type "urn:bulwark:problem:store-unavailable" and a short
// Retry-After — never a 429 saying the tenant's quota is used up — while the probes stay 200 (the
// Redis check is not critical). Figures: 429s during the outage = 0; recovery time (from SIGCONT,
// or from the restarted server answering PING, to the first request the quota admits again, which
// only Redis can do while the quota fails closed) ≤ 5 s. The recovery times are recorded in
// benchmarks/RESULTS.md ("A whole service: Redis outage").
import { afterEach, describe, expect, it } from 'vitest';
import { startRedis, type RedisServer } from '../integration/support/redis.js';
import { frameworks, get, problemOf, startService, startUpstream, sleep, type Answer, type Started, type Upstream } from './support/harness.js';

const OUTAGE_MS = 1_500;
const RECOVERY_BOUND_MS = 5_000;

const cleanup: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const step of cleanup.splice(0).reverse()) await step();
});

/** Counts a metric's samples whose labels include every pair in `labels`. */
function metricSum(text: string, name: string, labels: Record<string, string>): number {
  let sum = 0;
  for (const line of text.split('\n')) {
    if (!line.startsWith(`${name}{`)) continue;
    if (!Object.entries(labels).every(([k, v]) => line.includes(`${k}="${v}"`))) continue;
    sum += Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  return sum;
}

/** Calls /api/items from `clients` loops until `ms` have passed (at most 400 requests); returns every answer and its latency. */
async function trafficFor(port: number, ms: number, clients = 2): Promise<{ answers: Answer[]; latenciesMs: number[] }> {
  const answers: Answer[] = [];
  const latenciesMs: number[] = [];
  const until = performance.now() + ms;
  await Promise.all(
    Array.from({ length: clients }, async (_, c) => {
      for (let i = 0; i < 200 && performance.now() < until; i++) {
        const sent = performance.now();
        answers.push(await get(port, '/api/items', { 'x-forwarded-for': `198.51.100.${10 + c}`, 'x-tenant': 'acme' }));
        latenciesMs.push(performance.now() - sent);
        await sleep(10);
      }
    }),
  );
  return { answers, latenciesMs };
}

/** Milliseconds from now until /api/items is admitted again (bounded by `boundMs` × 2, polled every 25 ms). */
async function recoveryMs(port: number, boundMs: number): Promise<number> {
  const start = performance.now();
  for (let i = 0; i < 800 && performance.now() - start < boundMs * 2; i++) {
    const a = await get(port, '/api/items', { 'x-forwarded-for': '198.51.100.30', 'x-tenant': 'acme' });
    if (a.status === 200) return performance.now() - start;
    await sleep(25);
  }
  return Number.POSITIVE_INFINITY;
}

type Fault = 'SIGSTOP' | 'SIGKILL';

async function scenario(framework: (typeof frameworks)[number], fault: Fault): Promise<void> {
  const redis: RedisServer = await startRedis();
  cleanup.push(() => redis.stop());
  const upstream: Upstream = await startUpstream();
  cleanup.push(() => upstream.close());
  const started: Started = await startService(framework, { redisPort: redis.port, upstreamUrl: upstream.url });
  cleanup.push(() => started.service.close());
  const { port } = started.service;

  const { answers: before } = await trafficFor(port, 200, 1);
  expect(before.map((a) => a.status).filter((s) => s !== 200), 'answers before the outage').toEqual([]);

  let recovered = Number.POSITIVE_INFINITY;
  let during: Answer[];
  let latenciesMs: number[];
  let probesDuring: Answer[];
  redis.kill(fault);
  try {
    if (fault === 'SIGKILL') await redis.exited();
    [{ answers: during, latenciesMs }, probesDuring] = await Promise.all([
      trafficFor(port, OUTAGE_MS),
      (async () => {
        await sleep(OUTAGE_MS / 2);
        return Promise.all([get(port, '/livez'), get(port, '/readyz')]);
      })(),
    ]);
  } finally {
    if (fault === 'SIGSTOP') redis.kill('SIGCONT');
    else await redis.restart();
  }
  recovered = await recoveryMs(port, RECOVERY_BOUND_MS);
  const metrics = (await get(port, '/metrics')).body;

  const statuses = during.map((a) => a.status);
  const tally = Object.fromEntries([...new Set(statuses)].map((s) => [s, statuses.filter((x) => x === s).length]));
  console.log(
    `C3 ${framework} ${fault}: ${during.length} requests during a ${OUTAGE_MS} ms outage answered ${JSON.stringify(tally)}; ` +
      `slowest answer ${Math.round(Math.max(...latenciesMs))} ms; ` +
      `back on Redis ${Math.round(recovered)} ms after ${fault === 'SIGSTOP' ? 'SIGCONT' : 'the restarted server answered PING'}`,
  );

  expect(during.length).toBeGreaterThan(20);
  expect(statuses.filter((s) => s === 429), '429s during the outage').toEqual([]);
  expect(statuses.filter((s) => s !== 503), 'answers other than 503 during the outage').toEqual([]);
  for (const a of during) {
    expect(problemOf(a)).toMatchObject({ type: 'urn:bulwark:problem:store-unavailable', status: 503 });
    expect(a.body).not.toMatch(/quota|used up|exceeded/i);
    const retryAfter = Number(a.headers['retry-after']);
    expect(retryAfter, `Retry-After ${String(a.headers['retry-after'])}`).toBeGreaterThanOrEqual(1);
    expect(retryAfter).toBeLessThanOrEqual(10);
  }
  expect(probesDuring.map((a) => a.status), '/livez and /readyz during the outage').toEqual([200, 200]);
  expect(recovered, 'ms until the quota decides on Redis again').toBeLessThanOrEqual(RECOVERY_BOUND_MS);
  // The metrics saw both sides: fail-closed denials in the outage, Redis decisions after it.
  const quota = { kind: 'quota', policy: 'tenant-units' };
  expect(metricSum(metrics, 'bulwark_ratelimit_decisions_total', { ...quota, decision: 'denied', store: 'fail-closed' })).toBeGreaterThan(0);
  expect(metricSum(metrics, 'bulwark_ratelimit_decisions_total', { ...quota, decision: 'allowed', store: 'redis' })).toBeGreaterThan(before.length);
}

describe.each(frameworks)('C3 %s service: Redis outage under a quota that fails closed', (framework) => {
  it('Redis frozen (SIGSTOP): 503 store-unavailable with Retry-After, no 429, back on Redis within 5 s of SIGCONT', async () => {
    await scenario(framework, 'SIGSTOP');
  });

  it('Redis killed (SIGKILL) and restarted: 503 store-unavailable with Retry-After, no 429, back on Redis within 5 s', async () => {
    await scenario(framework, 'SIGKILL');
  });
});
