// Load-shedding thresholds: what share of requests each candidate setting would shed, on a healthy
// server at a moderate steady load, and on an overloaded one (a handler that burns CPU). Every
// candidate watches the same server process at once, in shadow (its `check()` is read for every
// request, nothing is turned away), so all candidates see exactly the same load and the load does
// not change with the setting.
//
//   npm run build && node benchmarks/shedding-thresholds.mjs [--seconds 10] [--rate 800]
//       [--overload-rate 800] [--work-ms 0.6] [--busy-ms 3] [--startup-ms 1500] [--connections 32]
//       [--runs 1] [--json]
//
// - Three scenarios, each a fresh server: `healthy` (a handler doing `--work-ms` of CPU, at
//   `--rate`: 800 × 0.6 ms keeps the loop about half busy),
//   `healthy, busy start` (the same, but the app does `--startup-ms` of synchronous start-up work
//   after making its shedders, as an app that builds its shedder before loading the rest of its
//   modules does; load starts as soon as it listens), and `overloaded` (a handler that first
//   burns `--busy-ms` of CPU, at `--overload-rate`: above 1,000 ms of work per second is more
//   than one event loop can do).
// - The server is a child process (this file with `--server`), plain node:http, loopback. The
//   handlers answer a small JSON body after one `setImmediate`.
// - The load generator is this process: an open loop (a batch every 10 ms, `--rate` requests/s,
//   at most `--connections` in flight: requests beyond that are counted as not sent), bounded in
//   count (rate × seconds) and time (seconds + 5 s).
// - Besides the shed shares, the server reports each 1 s interval's event-loop utilization and
//   mean event-loop delay (as the shedder computes them), so a setting can be judged against the
//   signal it reads.
// - On a shared or small machine (2 cores here, other work running), the healthy figures vary
//   from run to run: that variance is what the thresholds must survive. Re-run on a quiet machine
//   before quoting absolute numbers; `--runs N` repeats each scenario.
import { fork } from 'node:child_process';
import { Agent, createServer, request } from 'node:http';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const { values: args } = parseArgs({
  options: {
    server: { type: 'string' },
    seconds: { type: 'string', default: '10' },
    rate: { type: 'string', default: '800' },
    'overload-rate': { type: 'string', default: '800' },
    'work-ms': { type: 'string', default: '0.6' },
    'busy-ms': { type: 'string', default: '3' },
    'startup-ms': { type: 'string', default: '1500' },
    connections: { type: 'string', default: '32' },
    runs: { type: 'string', default: '1' },
    json: { type: 'boolean', default: false },
  },
});

/** The settings compared: name → loadShedder options (sampleIntervalMs as each says, else the default 1 s). */
const CANDIDATES = {
  'ELU > 0.98 (old README)': { maxEventLoopUtilization: 0.98 },
  'ELU > 0.98 for 3 samples': { maxEventLoopUtilization: 0.98, sustainedSamples: 3 },
  'delay > 25 ms for 2 samples': { maxEventLoopDelayMs: 25, sustainedSamples: 2 },
  'delay > 30 ms (1 sample, the default)': { maxEventLoopDelayMs: 30 },
  'delay > 30 ms for 2 samples (README)': { maxEventLoopDelayMs: 30, sustainedSamples: 2 },
  'delay > 50 ms': { maxEventLoopDelayMs: 50 },
  'delay > 50 ms for 2 samples': { maxEventLoopDelayMs: 50, sustainedSamples: 2 },
  'delay > 100 ms': { maxEventLoopDelayMs: 100 },
  'delay > 100 ms for 2 samples': { maxEventLoopDelayMs: 100, sustainedSamples: 2 },
  'delay > 200 ms': { maxEventLoopDelayMs: 200 },
};

if (args.server !== undefined) await serve(args.server);
else await main();

async function serve(kind) {
  const { loadShedder } = await import('../dist/index.js');
  const busyMs = Number(args['busy-ms']);
  const workMs = Number(args['work-ms']);
  const burn = (ms) => {
    const end = performance.now() + ms;
    while (performance.now() < end) {
      // burning CPU: start-up work, or a handler doing too much
    }
  };
  const names = Object.keys(CANDIDATES);
  const shedders = [];
  for (const name of names) {
    try {
      shedders.push(loadShedder(CANDIDATES[name]));
    } catch (error) {
      // A build without an option a candidate uses: report it, measure the rest.
      shedders.push(undefined);
      process.send({ type: 'skipped', name, reason: error.message });
    }
  }
  const would = new Array(names.length).fill(0);
  let total = 0;
  const intervals = [];
  const { monitorEventLoopDelay, performance: perf } = await import('node:perf_hooks');
  const h = monitorEventLoopDelay({ resolution: 10 });
  h.enable();
  let elu = perf.eventLoopUtilization();
  const sampler = setInterval(() => {
    const now = perf.eventLoopUtilization();
    const mean = h.count > 0 ? h.mean / 1e6 : 0;
    intervals.push({ elu: perf.eventLoopUtilization(now, elu).utilization, delayMs: Math.max(0, mean - 10) });
    elu = now;
    h.reset();
  }, 1000);
  sampler.unref();
  const body = JSON.stringify({ ok: true, items: [1, 2, 3] });
  const server = createServer((req, res) => {
    total++;
    for (let i = 0; i < shedders.length; i++) if (shedders[i] !== undefined && shedders[i].check() !== null) would[i]++;
    burn(kind === 'overloaded' ? busyMs : workMs);
    setImmediate(() => {
      res.setHeader('content-type', 'application/json');
      res.end(body);
    });
  });
  if (kind === 'starting') burn(Number(args['startup-ms']));
  server.listen(0, '127.0.0.1', () => process.send({ type: 'listening', port: server.address().port }));
  process.on('message', (m) => {
    if (m === 'report') {
      process.send({ type: 'report', total, would: Object.fromEntries(names.map((n, i) => [n, shedders[i] === undefined ? null : would[i]])), intervals });
    }
  });
  process.on('disconnect', () => process.exit(0));
}

async function main() {
  const seconds = Number(args.seconds);
  const connections = Number(args.connections);
  const runs = Number(args.runs);
  const results = [];
  for (let run = 1; run <= runs; run++) {
    for (const [kind, rate] of [
      ['healthy', Number(args.rate)],
      ['starting', Number(args.rate)],
      ['overloaded', Number(args['overload-rate'])],
    ]) {
      results.push({ run, kind, rate, ...(await scenario(kind, rate, seconds, connections)) });
    }
  }
  if (args.json) {
    console.log(JSON.stringify(results, null, 2));
    return;
  }
  for (const r of results) {
    const elus = r.intervals.map((i) => i.elu);
    const delays = r.intervals.map((i) => i.delayMs);
    console.log(
      `\n## run ${r.run}, ${r.kind === 'starting' ? 'healthy, busy start' : r.kind}: ${r.rate} req/s offered for ${seconds} s; ${r.total} served, ${r.notSent} not sent (all ${connections} connections busy), p50 ${r.p50.toFixed(1)} ms, p99 ${r.p99.toFixed(1)} ms`,
    );
    console.log(`per-second ELU: ${elus.map((x) => x.toFixed(2)).join(' ')}`);
    console.log(`per-second mean loop delay (ms): ${delays.map((x) => x.toFixed(1)).join(' ')}`);
    console.log('| setting | would shed |\n|---|---|');
    for (const [name, n] of Object.entries(r.would)) {
      console.log(`| ${name} | ${n === null ? `not in this build (${r.skipped[name] ?? ''})` : `${((100 * n) / Math.max(1, r.total)).toFixed(1)} %`} |`);
    }
  }
}

async function scenario(kind, rate, seconds, connections) {
  const child = fork(fileURLToPath(import.meta.url), ['--server', kind, '--busy-ms', args['busy-ms'], '--work-ms', args['work-ms'], '--startup-ms', args['startup-ms']], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  const skipped = {};
  const killer = setTimeout(() => child.kill('SIGKILL'), (seconds + 30) * 1000);
  try {
    const port = await new Promise((resolve, reject) => {
      child.on('message', (m) => {
        if (m.type === 'listening') resolve(m.port);
        if (m.type === 'skipped') skipped[m.name] = m.reason;
      });
      child.once('exit', (code) => reject(new Error(`server exited (${code}) before listening`)));
    });
    const agent = new Agent({ keepAlive: true, maxSockets: connections });
    const latencies = [];
    let inFlight = 0;
    let notSent = 0;
    let sent = 0;
    const limit = rate * seconds;
    const perTick = rate / 100;
    let owed = 0;
    const deadline = performance.now() + (seconds + 5) * 1000;
    await new Promise((resolve) => {
      const tick = setInterval(() => {
        owed += perTick;
        while (owed >= 1 && sent + notSent < limit) {
          owed--;
          if (inFlight >= connections) {
            notSent++;
            continue;
          }
          sent++;
          inFlight++;
          const t0 = performance.now();
          const req = request({ host: '127.0.0.1', port, path: '/', agent }, (res) => {
            res.resume();
            res.on('end', () => {
              latencies.push(performance.now() - t0);
              inFlight--;
            });
          });
          req.on('error', () => inFlight--);
          req.end();
        }
        if ((sent + notSent >= limit && inFlight === 0) || performance.now() > deadline) {
          clearInterval(tick);
          resolve();
        }
      }, 10);
    });
    agent.destroy();
    const report = await new Promise((resolve) => {
      child.on('message', (m) => m.type === 'report' && resolve(m));
      child.send('report');
    });
    latencies.sort((a, b) => a - b);
    const q = (p) => latencies[Math.min(latencies.length - 1, Math.floor(p * latencies.length))] ?? NaN;
    return { total: report.total, would: report.would, intervals: report.intervals, notSent, p50: q(0.5), p99: q(0.99), skipped };
  } finally {
    clearTimeout(killer);
    child.kill('SIGKILL');
  }
}
