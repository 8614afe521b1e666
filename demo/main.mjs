// `npm run demo`: bulwark in one run, no Redis needed (set REDIS_URL to keep the rate limits in
// Redis). It starts two quote upstreams (a primary and a standby) in this process, starts the API
// service (demo/api-service.mjs, Express + bulwark) as a child process, drives load through it in
// phases, and prints what each mechanism did:
//
//   steady     tenants call GET /quote within their limits
//   outage     the primary upstream fails: retries, its breaker opens, calls fail over to the standby
//   recovery   the primary is back: its breaker probes, closes, and traffic returns to it
//   chaos      fault injection on the primary (bulwark/express's faultInjectionMiddleware in front
//              of its handler) answers 30 % of its requests 503: retries move them to the
//              standby, the breaker opens on runs of failures, and no client sees an error
//   burst      one tenant calls far over its limit: 429s with Retry-After, other tenants unaffected
//   overload   GET /report at about 3× what the reports backend can serve, 30 % of it critical:
//              the adaptive concurrency limit (bulwark/express's admissionMiddleware) keeps the
//              backend's queue short and sheds, sheddable requests first; critical ones are served
//   shutdown   SIGTERM to the service under load: readiness fails first, the load balancer (this
//              script, polling /readyz) stops sending, in-flight requests finish, the service exits
//
// Everything listens on 127.0.0.1 on ports the system picks. The run ends by itself in about 40 s
// and exits non-zero if a request was dropped or the service did not exit cleanly. A phase is an
// entry in PHASES: its name, its length, and what it switches on entering and leaving.
//
// The service serves a live dashboard of its policies (bulwark/dashboard); its address is printed
// at the start. `npm run demo -- --keep` (or DEMO_KEEP=1) keeps the service running, with the
// tenants' steady traffic, after the scenario, for a person to look at it; Ctrl-C then shuts it
// down gracefully and prints the report.
import { fork } from 'node:child_process';
import http from 'node:http';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { faultInjectionMiddleware, httpFaultInjector } from '../dist/express.js';

const KEEP = process.argv.includes('--keep') || process.env.DEMO_KEEP === '1';
const TENANTS = 6; // each calls about 10 times a second, half its limit
const GREEDY_WORKERS = 4; // the burst tenant's concurrent loops, with no pause
const started = performance.now();
const elapsed = () => ((performance.now() - started) / 1000).toFixed(1).padStart(5) + ' s';

// ---- upstreams -------------------------------------------------------------------------------
const upstreamHits = { primary: 0, standby: 0, primaryFailed: 0, primaryInjected: 0 };
// The chaos phase's faults: 30 % of the primary's requests answered 503 (problem+json) before its
// handler runs, while `enabled`. Off until then.
const primaryFaults = httpFaultInjector({ rate: 0.3, status: 503, enabled: false, name: 'primary chaos' });
primaryFaults.onInjected(() => upstreamHits.primaryInjected++);
const chaos = faultInjectionMiddleware(primaryFaults);
function startUpstream(name) {
  const state = { healthy: true };
  const handle = (req, res) => {
    if (name === 'primary' && !state.healthy) {
      upstreamHits.primaryFailed++;
      res.writeHead(503, { 'content-type': 'application/json' }).end('{"error":"maintenance"}');
      return;
    }
    upstreamHits[name]++;
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ quote: (100 + Math.random() * 5).toFixed(2), from: name }));
  };
  // Any (req, res, next) server takes the middleware; plain node:http here.
  const server = http.createServer(name === 'primary' ? (req, res) => chaos(req, res, () => handle(req, res)) : handle);
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve({ server, state, url: `http://127.0.0.1:${server.address().port}` })));
}
const primary = await startUpstream('primary');
const standby = await startUpstream('standby');

// The reports backend: REPORT_WORKERS requests at a time, each about REPORT_MS, the rest wait in
// an unbounded queue, as an overloaded backend's do. Its capacity is REPORT_WORKERS / REPORT_MS.
const REPORT_WORKERS = 2;
const REPORT_MS = 40; // ± 20 %: capacity about 50 requests a second
const reportQueue = [];
let reportBusy = 0;
function nextReport() {
  while (reportBusy < REPORT_WORKERS && reportQueue.length > 0) {
    const res = reportQueue.shift();
    if (res.destroyed) continue;
    reportBusy++;
    setTimeout(() => {
      reportBusy--;
      if (!res.destroyed) res.writeHead(200, { 'content-type': 'application/json' }).end('{"report":"ok"}');
      nextReport();
    }, REPORT_MS * (0.8 + 0.4 * Math.random()));
  }
}
const reportsServer = http.createServer((req, res) => {
  reportQueue.push(res);
  nextReport();
});
const reports = await new Promise((resolve) =>
  reportsServer.listen(0, '127.0.0.1', () => resolve({ server: reportsServer, url: `http://127.0.0.1:${reportsServer.address().port}` })),
);

// ---- the API service -------------------------------------------------------------------------
// What happened, in order; a line repeated back to back is shown once with its count.
const events = [];
function note(text) {
  const last = events.at(-1);
  if (last !== undefined && last.text === text) {
    last.times++;
    last.until = elapsed();
  } else events.push({ at: elapsed(), text, times: 1, until: undefined });
}
const breaker = { primary: 'closed', standby: 'closed', transitions: [], opens: 0 };
let serviceCounts = {
  retries: 0,
  failovers: 0,
  allowed: 0,
  denied: 0,
  upstreamCalls: { primary: 0, standby: 0 },
  admission: { limit: 0, inFlight: 0, shed: { critical: 0, sheddable: 0 } },
};
const service = fork(fileURLToPath(new URL('./api-service.mjs', import.meta.url)), [primary.url, standby.url, reports.url], {
  stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  env: { ...process.env, DEMO_KEEP: KEEP ? '1' : '0' },
});
const exited = new Promise((resolve) => service.once('exit', (code, signal) => resolve({ code, signal, at: performance.now() })));
const { port, store } = await new Promise((resolve, reject) => {
  service.on('message', function onMessage(m) {
    if (m.type === 'listening') {
      service.off('message', onMessage);
      resolve(m);
    }
  });
  service.once('exit', (code) => reject(new Error(`the API service exited before listening (code ${code})`)));
});
service.on('message', (m) => {
  if (m.type === 'stats') serviceCounts = m.counts;
  else if (m.type === 'breaker') {
    const which = m.policy.includes('primary') ? 'primary' : 'standby';
    breaker[which] = m.to;
    if (which === 'primary' && m.to === 'open') breaker.opens++;
    breaker.transitions.push(`${which} ${m.from} → ${m.to} at ${elapsed().trim()}`);
    note(`breaker ${which}: ${m.from} → ${m.to}`);
  } else if (m.type === 'event') note(m.what);
});
const api = `http://127.0.0.1:${port}`;
console.log(
  `bulwark demo: API service on ${api} (rate limits in ${store}), upstreams ${primary.url} (primary) and ${standby.url} (standby)\n` +
    `Dashboard, live, in a browser on this host: ${api}/dashboard/${KEEP ? '' : ' (add --keep to look at it after the scenario)'}\n` +
    `Prometheus metrics while it runs: ${api}/metrics (scraped by a real Prometheus: node observability/capture.mjs)\n`,
);

// The service's counts now: the next `stats` message after asking (they also come once a second).
function serviceStats() {
  return new Promise((resolve) => {
    const id = Math.random();
    service.on('message', function onMessage(m) {
      if (m.type === 'stats' && m.id === id) {
        service.off('message', onMessage);
        resolve(m.counts);
      }
    });
    service.send({ type: 'stats', id });
  });
}

// ---- load ------------------------------------------------------------------------------------
const totals = { sent: 0, ok: 0, limited: 0, limitedWithRetryAfter: 0, upstreamErrors: 0, dropped: 0, other: 0 };
// Per phase: requests sent and how many a client saw fail (a 502, another non-2xx but 429, or dropped).
const byPhase = {};
const perSecond = { sent: 0, ok: 0, limited: 0, upstreamErrors: 0, dropped: 0 };
const greedy = { sent: 0, limited: 0 };
let routing = true; // the "load balancer": sends to the service while its readiness passes
let running = true;
let phase = 'starting';

async function call(apiKey) {
  const mine = (byPhase[phase] ??= { sent: 0, failed: 0 });
  mine.sent++;
  totals.sent++;
  perSecond.sent++;
  if (apiKey === 'greedy') greedy.sent++;
  try {
    const res = await fetch(`${api}/quote`, { headers: { 'x-api-key': apiKey } });
    await res.arrayBuffer();
    if (res.status === 200) {
      totals.ok++;
      perSecond.ok++;
    } else if (res.status === 429) {
      totals.limited++;
      perSecond.limited++;
      if (Number(res.headers.get('retry-after')) >= 1) totals.limitedWithRetryAfter++;
      if (apiKey === 'greedy') greedy.limited++;
    } else if (res.status === 502) {
      totals.upstreamErrors++;
      perSecond.upstreamErrors++;
      mine.failed++;
    } else {
      totals.other++;
      mine.failed++;
    }
  } catch (error) {
    mine.failed++;
    totals.dropped++;
    perSecond.dropped++;
    note(`DROPPED: ${error.cause?.code ?? error.message}`);
  }
}
async function tenant(i) {
  await sleep(i * 15);
  while (running) {
    if (routing) await call(`tenant-${i}`);
    await sleep(100);
  }
}
async function greedyLoop() {
  while (running && phase === 'burst') {
    if (routing) await call('greedy');
    else await sleep(10);
  }
}
// The overload phase's clients: open-loop arrivals (each request sent on schedule, whatever the
// answers before it), OVERLOAD_RPS a second, 30 % of them critical.
const OVERLOAD_RPS = 150;
const overload = { critical: { sent: 0, ok: 0, shed: 0, failed: 0, ms: [] }, sheddable: { sent: 0, ok: 0, shed: 0, failed: 0, ms: [] } };
const limitOverTime = [];
async function report(priority) {
  const mine = overload[priority];
  mine.sent++;
  const t0 = performance.now();
  try {
    const res = await fetch(`${api}/report`, { headers: priority === 'critical' ? { 'x-priority': 'critical' } : {} });
    await res.arrayBuffer();
    if (res.status === 200) {
      mine.ok++;
      mine.ms.push(performance.now() - t0);
    } else if (res.status === 503 && Number(res.headers.get('retry-after')) >= 1) mine.shed++;
    else mine.failed++;
  } catch {
    mine.failed++;
  }
}
async function overloadArrivals() {
  const pending = [];
  const t0 = performance.now();
  for (let i = 0; running && phase === 'overload'; i++) {
    pending.push(report(Math.random() < 0.3 ? 'critical' : 'sheddable'));
    const due = t0 + ((i + 1) * 1_000) / OVERLOAD_RPS;
    const wait = due - performance.now();
    if (wait > 0) await sleep(wait);
  }
  await Promise.all(pending);
}
async function limitSampler() {
  const t0 = performance.now();
  while (running && phase === 'overload') {
    const { admission } = await serviceStats();
    limitOverTime.push({ s: (performance.now() - t0) / 1000, limit: admission.limit, inFlight: admission.inFlight });
    await sleep(500);
  }
}

async function readinessPoller() {
  while (running) {
    try {
      const res = await fetch(`${api}/readyz`);
      await res.arrayBuffer();
      if (res.status !== 200 && routing) {
        routing = false;
        note('readiness failed (503): the load balancer stops sending');
      }
    } catch {
      if (routing) note('readiness unreachable: the load balancer stops sending');
      routing = false;
    }
    await sleep(100);
  }
}

const progress = setInterval(() => {
  if (phase === 'kept') return;
  const b = `breaker primary ${breaker.primary}`;
  console.log(
    `${elapsed()}  ${phase.padEnd(9)} ${String(perSecond.sent).padStart(4)} req/s  ok ${String(perSecond.ok).padStart(4)}  ` +
      `429 ${String(perSecond.limited).padStart(4)}  502 ${String(perSecond.upstreamErrors).padStart(3)}  dropped ${perSecond.dropped}  | ` +
      `retries ${serviceCounts.retries}  failovers ${serviceCounts.failovers}  ${b}`,
  );
  for (const key of Object.keys(perSecond)) perSecond[key] = 0;
}, 1_000);

// ---- phases ----------------------------------------------------------------------------------
// Each phase switches something on `enter` and back on `leave`; the closing table reads what they record.
const bursts = [];
const chaosSeen = { injected: 0, primaryAnswers: 0, retries: 0, failovers: 0, opens: 0 };
let before;
const PHASES = [
  { name: 'steady', ms: 5_000 },
  { name: 'outage', ms: 6_000, enter: () => (primary.state.healthy = false) },
  { name: 'recovery', ms: 5_000, enter: () => (primary.state.healthy = true) },
  {
    name: 'chaos',
    ms: 5_000,
    enter: async () => {
      before = { ...upstreamHits, ...(await serviceStats()), opens: breaker.opens };
      primaryFaults.enabled = true;
    },
    leave: async () => {
      primaryFaults.enabled = false;
      const after = { ...upstreamHits, ...(await serviceStats()), opens: breaker.opens };
      chaosSeen.injected = after.primaryInjected - before.primaryInjected;
      chaosSeen.primaryAnswers = chaosSeen.injected + after.primary - before.primary;
      for (const key of ['retries', 'failovers', 'opens']) chaosSeen[key] = after[key] - before[key];
    },
  },
  { name: 'burst', ms: 3_000, enter: () => bursts.push(...Array.from({ length: GREEDY_WORKERS }, () => greedyLoop())) },
  { name: 'overload', ms: 6_000, enter: () => bursts.push(overloadArrivals(), limitSampler()) },
];

const loops = [readinessPoller(), ...Array.from({ length: TENANTS }, (_, i) => tenant(i))];
for (const { name, ms, enter, leave } of PHASES) {
  phase = name;
  note(`phase: ${name}`);
  await enter?.();
  await sleep(ms);
  await leave?.();
}
// One scrape of /metrics before the service goes away, as Prometheus would take it.
const scrape = await fetch(`${api}/metrics`)
  .then(async (res) => ({ status: res.status, text: await res.text() }))
  .catch((error) => ({ status: 0, text: String(error) }));
if (KEEP) {
  phase = 'kept';
  note('phase: kept running (--keep)');
  console.log(`\nThe scenario is over; the service keeps running with the tenants' steady traffic.\nDashboard: ${api}/dashboard/\nPress Ctrl-C to shut it down gracefully and see the report.`);
  await new Promise((resolve) => {
    process.once('SIGINT', resolve);
    process.once('SIGTERM', resolve);
  });
}
const bulwarkSeries = scrape.text.split('\n').filter((line) => line.startsWith('bulwark_'));
const metricNames = new Set(bulwarkSeries.map((line) => /^[a-z_]+/.exec(line)[0].replace(/_(bucket|sum|count)$/, '')));
phase = 'shutdown';
note('phase: shutdown (SIGTERM to the API service, load continues)');
const sigtermAt = performance.now();
service.kill('SIGTERM');
const exit = await Promise.race([exited, sleep(15_000, undefined, { ref: false })]);
running = false;
await Promise.all([...loops, ...bursts]);
clearInterval(progress);
if (exit === undefined) service.kill('SIGKILL');
await Promise.all([primary, standby, reports].map(({ server }) => new Promise((resolve) => server.close(resolve))));

// ---- report ----------------------------------------------------------------------------------
const fmt = (n) => n.toLocaleString('en-US');
const p99 = (ms) => (ms.length > 0 ? Math.round([...ms].sort((a, b) => a - b)[Math.ceil(ms.length * 0.99) - 1]) : '—');
const pct = (part, whole) => (whole > 0 ? `${((100 * part) / whole).toFixed(1)} %` : '—');
console.log('\nWhat happened:');
for (const { at, text, times, until } of events) {
  console.log(`  ${at}  ${text}${times > 1 ? ` (×${times}, until ${until.trim()})` : ''}`);
}
const rows = [
  ['requests', `${fmt(totals.sent)} sent: ${fmt(totals.ok)} ok, ${fmt(totals.limited)} rate limited, ${fmt(totals.upstreamErrors)} upstream errors (502), ${fmt(totals.other)} other`],
  ['rate limit', `${fmt(serviceCounts.denied)} denied of ${fmt(serviceCounts.allowed + serviceCounts.denied)} decisions; the greedy tenant got ${fmt(greedy.limited)} 429s of ${fmt(greedy.sent)}; ${fmt(totals.limitedWithRetryAfter)} of ${fmt(totals.limited)} 429s carried Retry-After`],
  ['retry', `${fmt(serviceCounts.retries)} upstream attempts retried`],
  ['circuit breaker', breaker.transitions.length > 0 ? breaker.transitions.join('; ') : 'no transitions'],
  [
    'chaos',
    `${fmt(chaosSeen.injected)} of ${fmt(chaosSeen.primaryAnswers)} primary answers were injected 503s (${pct(chaosSeen.injected, chaosSeen.primaryAnswers)}); ` +
      `meanwhile ${fmt(chaosSeen.retries)} retries, ${fmt(chaosSeen.failovers)} failovers, ${fmt(chaosSeen.opens)} primary breaker opens; ` +
      `${fmt(byPhase.chaos?.failed ?? 0)} of ${fmt(byPhase.chaos?.sent ?? 0)} client requests failed`,
  ],
  [
    'overload',
    `${fmt(overload.critical.ok)} of ${fmt(overload.critical.sent)} critical /report requests served (${pct(overload.critical.ok, overload.critical.sent)}, p99 ${p99(overload.critical.ms)} ms), ` +
      `${fmt(overload.critical.shed)} shed; ${fmt(overload.sheddable.shed)} of ${fmt(overload.sheddable.sent)} sheddable shed with 503 + Retry-After (${pct(overload.sheddable.shed, overload.sheddable.sent)}); ` +
      `${fmt(overload.critical.failed + overload.sheddable.failed)} failed otherwise`,
  ],
  ['adaptive limit', limitOverTime.length > 0 ? limitOverTime.map(({ s, limit }) => `${s.toFixed(1)} s: ${limit}`).join(', ') : 'not sampled'],
  ['failover', `${fmt(serviceCounts.failovers)} attempts moved to another endpoint; upstream answers: primary ${fmt(upstreamHits.primary)} ok + ${fmt(upstreamHits.primaryFailed)} failed, standby ${fmt(upstreamHits.standby)}`],
  ['graceful shutdown', exit === undefined ? 'the service did not exit within 15 s (killed)' : `exited with code ${exit.code ?? exit.signal} ${Math.round(exit.at - sigtermAt)} ms after SIGTERM`],
  ['metrics', scrape.status === 200 ? `${fmt(bulwarkSeries.length)} bulwark series in ${metricNames.size} metrics at /metrics before shutdown` : `/metrics failed: ${scrape.status} ${scrape.text.slice(0, 80)}`],
  ['dropped requests', `${totals.dropped}`],
];
const width = Math.max(...rows.map(([k]) => k.length));
console.log('\n| mechanism | what it did |\n|---|---|');
for (const [k, v] of rows) console.log(`| ${k.padEnd(width)} | ${v} |`);
// Under overload the critical class is served (a few may be shed while the limit first finds the
// backend's capacity) and sheddable requests are what gets turned away.
const criticalServed = overload.critical.sent > 0 && overload.critical.ok >= 0.9 * overload.critical.sent;
const shedSheddableFirst = overload.sheddable.shed > 0 && overload.sheddable.shed >= 10 * overload.critical.shed;
const ok =
  totals.dropped === 0 && exit !== undefined && exit.code === 0 && totals.upstreamErrors === 0 && (byPhase.chaos?.failed ?? 0) === 0 && criticalServed && shedSheddableFirst;
console.log(ok ? '\nDemo finished: no request dropped, no upstream error reached a client.' : '\nDemo finished WITH PROBLEMS (see above).');
process.exitCode = ok ? 0 : 1;
