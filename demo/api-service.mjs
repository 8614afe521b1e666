// The demo's API service: an Express app built with bulwark, run as a child process of
// demo/main.mjs so that it can get a real SIGTERM. It answers GET /quote by calling a quote
// upstream through bulwark's fetch (retry, a breaker per endpoint, a timeout per attempt and
// failover from the primary to a standby), limits each API key with a rate limiter (memory, or
// Redis when REDIS_URL is set), serves /livez /readyz /startupz /healthz, and shuts down
// gracefully. It serves Prometheus metrics at /metrics (bulwark/prometheus into its own prom-client
// registry), and a live page of every policy at /dashboard (bulwark/dashboard, loopback clients
// only). What its mechanisms do is also reported to the parent over the IPC channel.
//
// GET /report calls a reports backend of fixed capacity behind an adaptive concurrency limit
// (bulwark/express's admissionMiddleware): past that capacity it sheds, sheddable requests first.
//
//   argv: <primary base URL> <standby base URL> <reports backend URL>; env REDIS_URL (optional), BULWARK_DEMO_PORT
//   (optional: the port to listen on, for a Prometheus server that scrapes the run; default any)
import { subscribe } from 'node:diagnostics_channel';
import express from 'express';
import { collectDefaultMetrics, Registry } from 'prom-client';
import { channelNames, consecutive, exponential, gcra, gracefulShutdown, gradient2, health, memoryStore, rateLimiter } from '../dist/index.js';
import { admissionMiddleware, healthMiddleware, rateLimitMiddleware } from '../dist/express.js';
import { createFetch } from '../dist/fetch.js';
import { metricsHandler, registerMetrics } from '../dist/prometheus.js';
import { dashboard } from '../dist/dashboard.js';

const [primary, standby, reports] = process.argv.slice(2);
const report = (message) => process.send?.(message);

// What the parent's table shows: counted from bulwark's diagnostics channels, which cost nothing
// while nobody subscribes.
const counts = {
  retries: 0,
  failovers: 0,
  allowed: 0,
  denied: 0,
  upstreamCalls: { primary: 0, standby: 0 },
  admission: { limit: 0, inFlight: 0, shed: { critical: 0, sheddable: 0 } },
};
subscribe(channelNames.retryAttempt, () => counts.retries++);
subscribe(channelNames.fetchFailover, (m) => {
  counts.failovers++;
  report({ type: 'event', what: `failover ${label(m.from)} → ${label(m.to)} (${m.reason})` });
});
subscribe(channelNames.circuitState, (m) => report({ type: 'breaker', policy: label(m.policy), from: m.from, to: m.to }));
subscribe(channelNames.rateLimitDecision, (m) => (m.decision.allowed ? counts.allowed++ : counts.denied++));
subscribe(channelNames.admissionRejected, (m) => (m.priority === 3 ? counts.admission.shed.critical++ : counts.admission.shed.sheddable++));
subscribe(channelNames.shutdownPhase, (m) => report({ type: 'event', what: `shutdown: ${m.phase}` }));
function label(text) {
  return String(text).replace(primary, 'primary').replace(standby, 'standby');
}

// Rate limit per API key: 20 requests a second, bursts of 10.
let store = memoryStore();
let redis;
if (process.env.REDIS_URL) {
  const [{ Redis }, { redisStore }] = await Promise.all([import('ioredis'), import('../dist/redis.js')]);
  redis = new Redis(process.env.REDIS_URL, { enableOfflineQueue: false, maxRetriesPerRequest: 1, autoResendUnfulfilledCommands: false });
  await new Promise((resolve, reject) => {
    redis.once('ready', resolve);
    redis.once('error', reject);
  });
  store = redisStore(redis, { prefix: `bulwark-demo-${process.pid}:` });
}
const perKey = rateLimiter({ name: 'api-key', algorithm: gcra({ limit: 20, periodMs: 1_000, burst: 10 }), store });

// The upstream: primary first, standby when the primary's breaker is open. Three attempts at
// most, each cut at 300 ms; a breaker opens after 3 failures in a row and probes after 2 s.
const upstream = createFetch({
  name: 'quotes',
  endpoints: [primary, standby],
  attemptTimeoutMs: 300,
  retry: { maxAttempts: 3, backoff: exponential({ initialMs: 20, maxMs: 200 }) },
  circuitBreaker: { breaker: consecutive(3), halfOpenAfterMs: 2_000 },
});

// GET /report: the reports backend serves a few requests at a time. The adaptive limit (gradient2)
// finds how many it can have in flight without queueing there; beyond that it answers 503 with
// Retry-After at once, sheddable requests (the default here) before critical ones (X-Priority).
const admission = admissionMiddleware({
  name: 'reports',
  limit: gradient2({ initialLimit: 4, minLimit: 1, maxLimit: 50 }),
  priority: (req) => (req.get('x-priority') === 'critical' ? 'critical' : 'sheddable'),
});

const h = health({
  checks: [
    {
      name: 'quotes-upstream',
      probes: ['ready'],
      critical: false, // a failing upstream is reported, but the standby keeps us serving
      timeoutMs: 200,
      cacheMs: 1_000,
      check: () => upstream.endpoints.some((base) => upstream.circuitBreaker(base)?.state !== 'open'),
    },
  ],
});

// Metrics: bulwark's (executions, retries, breaker state, rate-limit decisions, health checks)
// and the process's own, in a registry of this service's.
const registry = new Registry();
collectDefaultMetrics({ register: registry });
// The endpoints' breakers are read at every scrape, so their state shows from the first one.
registerMetrics(registry, { circuitBreakers: upstream.endpoints.map((base) => upstream.circuitBreaker(base)) });

const app = express();
app.disable('x-powered-by');
app.use(healthMiddleware(h));
app.get('/metrics', metricsHandler(registry));
app.use('/dashboard', dashboard({ title: 'bulwark demo: API service' }));
// Before the per-key rate limit: /report has its own protection, the admission limit.
app.get('/report', admission, async (req, res) => {
  try {
    const answer = await fetch(`${reports}/report`, { signal: AbortSignal.timeout(2_000) });
    res.status(answer.status).json(await answer.json());
  } catch (error) {
    res.status(502).json({ error: 'reports unavailable', code: error?.code ?? error?.name ?? 'ERR' });
  }
});

app.use(rateLimitMiddleware(perKey, { key: (req) => String(req.headers['x-api-key'] ?? 'anonymous') }));
app.get('/quote', async (req, res) => {
  try {
    const answer = await upstream('/quote');
    const body = await answer.json();
    counts.upstreamCalls[body.from === 'primary' ? 'primary' : 'standby']++;
    res.json({ quote: body.quote, servedBy: body.from });
  } catch (error) {
    res.status(502).json({ error: 'upstream unavailable', code: error?.code ?? 'ERR' });
  }
});

const server = app.listen(Number(process.env.BULWARK_DEMO_PORT ?? 0), '127.0.0.1', () => {
  h.started();
  report({ type: 'listening', port: server.address().port, store: redis ? 'redis' : 'memory' });
});
server.keepAliveTimeout = 5_000;

// With --keep (DEMO_KEEP=1) the parent keeps this service up after the scenario and sends SIGTERM
// when the person watching presses Ctrl-C; the terminal's SIGINT reaches this process too, so it
// is left to the parent here.
const keep = process.env.DEMO_KEEP === '1';
if (keep) process.on('SIGINT', () => {});
gracefulShutdown(server, {
  health: h,
  signals: keep ? ['SIGTERM'] : ['SIGTERM', 'SIGINT'],
  drainDelayMs: 1_000,
  closeTimeoutMs: 5_000,
  hookTimeoutMs: 2_000,
  hooks: [
    async () => {
      report({ type: 'stats', counts });
      if (redis) await redis.quit();
    },
  ],
  log: () => {},
});

// Counts go to the parent once a second for its progress line, and when it asks (between phases).
// The admission limit is sampled every 250 ms for the closing table's "over time".
setInterval(() => report({ type: 'stats', counts }), 1_000).unref();
setInterval(() => {
  counts.admission.limit = admission.controller.limit;
  counts.admission.inFlight = admission.controller.inFlight;
}, 250).unref();
process.on('message', (m) => {
  if (m?.type === 'stats') report({ type: 'stats', id: m.id, counts });
});
