// Issue 15 §5: the proof under overload. A modelled backend of fixed capacity C in its own process
// (benchmarks/overload-backend.mjs: W workers × S ms ± 20 %, an unbounded FIFO queue in front), a
// node:http service under test in another (benchmarks/overload-service.mjs: one backend call per
// request, behind an admission stage), and this process as the open-loop load generator and judge.
//
//   npm run build && node benchmarks/overload.mjs [--quick] [--workers 16] [--service-ms 40]
//       [--timeout-ms 5000] [--only SCENARIO[,SCENARIO]] [--adaptive '{"option":value}'] [--json FILE]
//
//   --adaptive   the adaptive stage's options as JSON, for tuning (defaults otherwise; a key given
//                replaces the scenario's own, e.g. priority's `controller`): `algorithm`
//                ('gradient2', 'vegas' or 'aimd'), `controller` (admissionController's options),
//                every other key goes to the algorithm
//   --json       also write every figure to FILE
//
// - C and the unloaded p99 are measured first, in the same run: C as the completions per second
//   of a closed loop of 4 W callers through the service (the backend never idles), the unloaded
//   p99 as the p99 latency at 0.5 C open-loop with no admission control.
// - Arrivals are open loop: a Poisson process at the scenario's rate, independent of the answers
//   (a request is sent when it is due, whatever is still in flight); latency is measured from the
//   time a request was due, so a generator that falls behind shows up in the figures instead of
//   hiding them. Each request carries its class in `x-priority`. A request not answered within
//   --timeout-ms (5 s: 100× the unloaded p99) counts as failed.
// - Scenarios (full length; --quick runs a shortened `step` and `priority` and the comparison's
//   `none`, about 80 s in all):
//     step        adaptive limit: 0.5 C 120 s (rejections < 0.1 %), 3 C 30 s (from 5 s after the
//                 step: admitted p99 ≤ 1.3× unloaded, goodput ≥ 90 % of C, rejections answered
//                 with p99 ≤ 2 ms), 0.5 C 20 s (limit back to ≥ 90 % of the pre-step limit ≤ 10 s)
//     halve       adaptive limit at 1.5 C; after 20 s the backend's workers halve: the limit settles
//                 within 10 s (every 100 ms sample from then on within ±20 % (at least ±2) of the
//                 median of the last 10 s)
//     slow        adaptive limit at 0.5 C; the service time × 5 for 120 s: the limit does not creep
//                 more than 20 % above where it settled (median of seconds 10–20 after the change;
//                 every later 5 s median compared with it)
//     priority    adaptive limit, critical requests may wait up to 50 ms for a slot (maxQueue 32,
//                 queueFrom 'critical': docs/admission.md's advice with priorities; the rest are
//                 decided on arrival; `--adaptive '{"controller":{}}'` runs the plain defaults),
//                 30 % critical / 70 % sheddable: 0.5 C 10 s (warm-up, not judged),
//                 0.8 C 30 s (0 rejections in either class), 3 C 30 s (critical success ≥ 99.5 %,
//                 ≥ 98 % of rejections on sheddable, ≥ 99.9 % of 100 ms intervals without a
//                 critical request rejected while a sheddable one was admitted)
//     none, bulkhead   the `step` without admission control, and with bulwark's bulkhead sized by
//                 hand to W (the best a static setting can do while capacity holds), for comparison
// - Every process measures its own event-loop delay (and the service its CPU share), and the
//   generator how late it sent requests, so a run on a busy machine says so.
// - Output: a table per scenario, the targets (a `bench-targets:` line for benchmarks/run.mjs),
//   and as its last line one JSON object:
//   {"p99Ratio":…, "goodputRatio":…, "criticalSuccess":…, "sheddableShareOfRejections":…}
import { fork } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { Agent, request } from 'node:http';
import { monitorEventLoopDelay, performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { analyse, median, percentile, RUN_SCENARIOS, schedules } from './overload-scenarios.mjs';
import { cleanUpOnExit, printTargets, requireCounts } from './support.mjs';

const { values: args } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    workers: { type: 'string', default: '16' },
    'service-ms': { type: 'string', default: '40' },
    'timeout-ms': { type: 'string', default: '5000' },
    only: { type: 'string' },
    adaptive: { type: 'string', default: '{}' },
    json: { type: 'string' },
  },
});
requireCounts(args, ['workers', 'service-ms', 'timeout-ms']);
const workers = Number(args.workers);
const serviceMs = Number(args['service-ms']);
const timeoutMs = Number(args['timeout-ms']);
const adaptiveOptions = JSON.parse(args.adaptive);
const mode = args.quick ? 'quick' : 'full';
const chosen = args.only === undefined ? RUN_SCENARIOS[mode] : args.only.split(',').map((s) => s.trim());
for (const name of chosen) {
  if (!(name in schedules)) {
    console.error(`--only ${name}: no such scenario (scenarios: ${Object.keys(schedules).join(', ')})`);
    process.exit(1);
  }
}

const here = fileURLToPath(new URL('.', import.meta.url));
const children = [];
cleanUpOnExit(() => {
  for (const child of children) if (child.exitCode === null) child.kill('SIGKILL');
});
/** Epoch ms with sub-ms precision, comparable across the harness's processes. */
const now = () => performance.timeOrigin + performance.now();

// --- the two child processes --------------------------------------------------------------------
function start(file, env) {
  const child = fork(`${here}${file}`, [], { env: { ...process.env, ...env }, stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  children.push(child);
  return new Promise((resolve, reject) => {
    child.once('message', (m) => (m.type === 'listening' ? resolve({ child, port: m.port }) : reject(new Error(`${file}: ${JSON.stringify(m)}`))));
    child.once('exit', (code) => reject(new Error(`${file} exited (${code}) before listening`)));
  });
}

/** Sends `message` to `child` and resolves with its reply of the same type. */
function ask(child, message) {
  return new Promise((resolve, reject) => {
    const onMessage = (m) => {
      if (m.type !== message.type) return;
      child.off('message', onMessage);
      clearTimeout(timer);
      resolve(m);
    };
    const timer = setTimeout(() => {
      child.off('message', onMessage);
      reject(new Error(`no ${message.type} reply within 10 s`));
    }, 10_000);
    child.on('message', onMessage);
    child.send(message);
  });
}

const backend = await start('overload-backend.mjs', { OVERLOAD_WORKERS: String(workers), OVERLOAD_SERVICE_MS: String(serviceMs) });
const service = await start('overload-service.mjs', {
  OVERLOAD_BACKEND_PORT: String(backend.port),
  // The built package; OVERLOAD_BULWARK names another build (a branch's, to compare).
  OVERLOAD_BULWARK: process.env.OVERLOAD_BULWARK ?? fileURLToPath(new URL('../dist/index.js', import.meta.url)),
});

// --- the load generator -------------------------------------------------------------------------
/** The event-loop delay histograms sample every 5 ms; their values include that period, which is taken off. */
const LOOP_RESOLUTION_MS = 5;
const agent = new Agent({ keepAlive: true, maxSockets: 8_000 });
const HEADERS = [{ 'x-priority': 'sheddable' }, { 'x-priority': 'critical' }];
const NO_CLASS = {};

/**
 * Sends open-loop Poisson arrivals through `segments` ({ seconds, rate, criticalShare? }) and
 * resolves when every request is answered or timed out. Per request: arrival (ms from the start,
 * when it was due), class (1 critical, 0 sheddable, 255 none), status (0 = timed out or failed),
 * latency (ms from when it was due).
 */
function runLoad(segments) {
  const expected = segments.reduce((n, s) => n + s.rate * s.seconds, 0);
  const capacity = Math.ceil(expected * 1.2 + 1_000);
  const arrival = new Float64Array(capacity);
  const cls = new Uint8Array(capacity);
  const status = new Uint16Array(capacity);
  const latency = new Float64Array(capacity);
  const lag = new Float64Array(capacity);
  const ends = [];
  let end = 0;
  for (const s of segments) ends.push((end += s.seconds * 1000));
  const loopDelay = monitorEventLoopDelay({ resolution: LOOP_RESOLUTION_MS });
  loopDelay.enable();
  const t0 = now();
  let segment = 0;
  let next = gap(segments[0]);
  let sent = 0;
  let open = 0;
  let finished = false;

  return new Promise((resolve) => {
    const hardStop = setTimeout(() => finish(), end + timeoutMs + 5_000);
    const tick = () => {
      const t = now() - t0;
      while (segment < segments.length && next <= t) {
        if (next >= ends[segment]) {
          // Memoryless: the next arrival of the next segment is a fresh gap from its start.
          segment++;
          if (segment < segments.length) next = ends[segment - 1] + gap(segments[segment]);
          continue;
        }
        if (sent < capacity) send(sent++, next, segments[segment], t);
        next += gap(segments[segment]);
      }
      if (segment < segments.length) setTimeout(tick, 1);
      else if (open === 0) finish();
    };
    function send(i, due, s, t) {
      arrival[i] = due;
      lag[i] = t - due;
      const share = s.criticalShare;
      const c = share === undefined ? 255 : Math.random() < share ? 1 : 0;
      cls[i] = c;
      open++;
      let done = false;
      const settle = (code) => {
        if (done) return;
        done = true;
        status[i] = code;
        latency[i] = now() - t0 - due;
        open--;
        if (open === 0 && segment >= segments.length) finish();
      };
      const req = request({ host: '127.0.0.1', port: service.port, path: '/', agent, headers: c === 255 ? NO_CLASS : HEADERS[c] }, (res) => {
        res.on('end', () => settle(res.statusCode));
        res.on('error', () => settle(0));
        res.resume();
      });
      req.setTimeout(timeoutMs, () => req.destroy(new Error('timed out')));
      req.on('error', () => settle(0));
      req.end();
    }
    function finish() {
      if (finished) return;
      finished = true;
      clearTimeout(hardStop);
      loopDelay.disable();
      resolve({
        t0,
        ends,
        count: sent,
        arrival: arrival.subarray(0, sent),
        cls: cls.subarray(0, sent),
        status: status.subarray(0, sent),
        latency: latency.subarray(0, sent),
        lag: lag.subarray(0, sent),
        loopDelayP99Ms: Math.max(0, loopDelay.percentile(99) / 1e6 - LOOP_RESOLUTION_MS),
      });
    }
    setTimeout(tick, 1);
  });

  function gap(s) {
    return (-Math.log(1 - Math.random()) / s.rate) * 1000;
  }
}

/** Closed loop: `callers` send one request after another for `seconds`; completions per second after the first. */
async function closedLoop(callers, seconds) {
  const t0 = now();
  const stopAt = t0 + seconds * 1000;
  let counted = 0;
  const one = () =>
    new Promise((resolve) => {
      const req = request({ host: '127.0.0.1', port: service.port, path: '/', agent }, (res) => {
        res.on('end', () => resolve(res.statusCode));
        res.resume();
      });
      req.setTimeout(timeoutMs, () => req.destroy(new Error('timed out')));
      req.on('error', () => resolve(0));
      req.end();
    });
  await Promise.all(
    Array.from({ length: callers }, async () => {
      while (now() < stopAt) {
        const status = await one();
        const t = now();
        if (status === 200 && t - t0 >= 1_000 && t < stopAt) counted++;
      }
    }),
  );
  return counted / (seconds - 1);
}

/** Gives the service a fresh admission stage; empties the backend's queue and waits until the service is idle. */
async function stage(name, options) {
  await ask(backend.child, { type: 'flush' });
  for (let i = 0; i < 100; i++) {
    const s = await ask(service.child, { type: 'stats' });
    if (s.inFlight === 0 && s.pendingBackendCalls === 0) break;
    await new Promise((r) => setTimeout(r, 100));
  }
  await ask(backend.child, { type: 'set', workers, serviceScale: 1 });
  await ask(backend.child, { type: 'stats' });
  const reply = await ask(service.child, { type: 'stage', stage: name, options });
  if (!reply.ok) throw new Error(`stage ${name}: ${reply.error}`);
  await ask(service.child, { type: 'stats' });
}

/** Runs one scenario's schedule: its segments, with the backend changes it asks for at their times. */
async function runScenario(schedule) {
  const timers = (schedule.changes ?? []).map(({ atSeconds, set }) => setTimeout(() => backend.child.send({ type: 'set', ...set }), atSeconds * 1000));
  const load = await runLoad(schedule.segments);
  for (const t of timers) clearTimeout(t);
  const serviceStats = await ask(service.child, { type: 'stats' });
  const backendStats = await ask(backend.child, { type: 'stats' });
  const limit = serviceStats.limitSamples.map(([t, l, inFlight]) => [t - load.t0, l, inFlight]);
  return { load, serviceStats, backendStats, limit };
}

// --- the run ------------------------------------------------------------------------------------
const started = now();
console.log(`# Overload proof (${mode}): backend ${workers} workers × ${serviceMs} ms ± 20 % (C = ${((workers * 1000) / serviceMs).toFixed(0)}/s by design), client timeout ${timeoutMs} ms`);
console.log(`scenarios: ${chosen.join(', ')}; node ${process.version}\n`);

await stage('none', {});
const capacity = await closedLoop(4 * workers, mode === 'quick' ? 5 : 10);
await stage('none', {});
const base = schedules.unloaded(mode, capacity);
const unloadedRun = await runScenario(base);
const baseline = analyse.unloaded(unloadedRun, base);
console.log(`C measured: ${capacity.toFixed(1)} req/s (closed loop, ${4 * workers} callers, no admission control)`);
console.log(`unloaded at 0.5 C: p50 ${baseline.p50.toFixed(1)} ms, p99 ${baseline.p99.toFixed(1)} ms over ${baseline.count} requests; ${keepUp(unloadedRun)}\n`);

const results = { capacity, baseline, scenarios: {} };
for (const name of chosen) {
  const schedule = schedules[name](mode, capacity, workers);
  await stage(schedule.stage, schedule.stage === 'bulkhead' ? { maxConcurrent: workers } : schedule.stage === 'adaptive' ? { ...schedule.adaptive, ...adaptiveOptions } : {});
  const run = await runScenario(schedule);
  const figures = analyse[schedule.analysis](run, schedule, { capacity, baseline, workers });
  results.scenarios[name] = { figures, keepUp: keepUpFigures(run), timeline: timeline(run) };
  console.log(`## ${name}: ${schedule.title}`);
  for (const line of figures.lines) console.log(line);
  console.log(`${keepUp(run)}\n`);
}

const targets = analyse.targets(results);
console.log('| target | measured | verdict |\n|---|---|---|');
for (const t of targets) console.log(`| ${t.name} | ${t.value}${t.target ? ` (target ${t.target})` : ''} | ${t.met === true ? 'met' : t.met === false ? 'NOT met' : 'not measured'} |`);
console.log(`\n(${((now() - started) / 1000).toFixed(0)} s in all)`);
if (args.json !== undefined) writeFileSync(args.json, `${JSON.stringify(results, null, 2)}\n`);
printTargets(targets);
console.log(JSON.stringify(analyse.summary(results)));
for (const child of children) child.disconnect();
agent.destroy();

/** Each second of a run (by due time): requests, answered 200, 503, failed, p99 of the 200s, the limit's median. */
function timeline(run) {
  const seconds = [];
  const row = (s) => (seconds[s] ??= { second: s, requests: 0, ok: 0, rejected: 0, failed: 0, okLatencies: [], limits: [] });
  const { arrival, status, latency } = run.load;
  for (let i = 0; i < arrival.length; i++) {
    const r = row(Math.floor(arrival[i] / 1000));
    r.requests++;
    if (status[i] === 200) {
      r.ok++;
      r.okLatencies.push(latency[i]);
    } else if (status[i] === 503) r.rejected++;
    else r.failed++;
  }
  for (const [t, l] of run.limit) if (t >= 0) row(Math.floor(t / 1000)).limits.push(l);
  return seconds.filter(Boolean).map(({ okLatencies, limits, ...r }) => ({ ...r, okP99Ms: Math.round(10 * percentile(okLatencies, 99)) / 10, limit: median(limits) }));
}

function keepUpFigures(run) {
  const lags = Float64Array.from(run.load.lag).sort();
  return {
    generatorLagP99Ms: lags.length ? lags[Math.min(lags.length - 1, Math.floor(lags.length * 0.99))] : 0,
    generatorLoopDelayP99Ms: run.load.loopDelayP99Ms,
    serviceLoopDelayP99Ms: run.serviceStats.loopDelayP99Ms,
    serviceLoopDelayMaxMs: run.serviceStats.loopDelayMaxMs,
    serviceCpuShare: run.serviceStats.cpuShare,
    backendLoopDelayP99Ms: run.backendStats.delayP99Ms,
  };
}

function keepUp(run) {
  const k = keepUpFigures(run);
  return `keep-up: generator sent p99 ${k.generatorLagP99Ms.toFixed(1)} ms late (its loop delay p99 ${k.generatorLoopDelayP99Ms.toFixed(1)} ms); service loop delay p99 ${k.serviceLoopDelayP99Ms.toFixed(1)} ms (max ${k.serviceLoopDelayMaxMs.toFixed(1)}), CPU ${(100 * k.serviceCpuShare).toFixed(0)} % of a core; backend loop delay p99 ${k.backendLoopDelayP99Ms.toFixed(1)} ms`;
}
