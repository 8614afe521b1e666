// The client CPU bulwark/fetch adds to one request (issue 14 §4): global `fetch`, `createFetch`
// without policies, with its defaults, with `timeoutMs`, and a cockatiel-wrapped fetch, against
// one local keep-alive server, at concurrency 1 and 16.
//
//   npm run build && node benchmarks/fetch-overhead.mjs [--requests 4000] [--warmup 2000] [--runs 3] [--filter REGEX]
//
// - The server (node:http, keep-alive, a 2-byte body) runs in a child process of its own, so the
//   client's CPU is only the client's: no server share to subtract.
// - Each measurement is a fresh client process (this script with --client): it makes --warmup
//   requests, then --requests more at the given concurrency, reading every body, and reports
//   process.cpuUsage() (user + system, every thread of the process) over those requests ÷ requests,
//   and requests/s. Each (variant, concurrency) is measured --runs times, interleaved with the
//   others, and the median is shown with the spread (min–max).
// - `+µs` is the median client CPU per request minus global fetch's in the same run.
// - Variants:
//   fetch           global fetch, no signal
//   fetch+signal    global fetch with a fresh AbortController's signal: what undici costs for one
//   fetch+timeout   global fetch with AbortSignal.timeout(10 s): the platform's own attempt timeout
//   fetch+dispatcher global fetch with no signal, made abortable through a dispatcher that wraps
//                   the global one and keeps each request's abort function (fetch-dispatchers.mjs)
//   none            createFetch({ retry: false, circuitBreaker: false, attemptTimeoutMs: false })
//   defaults        createFetch(): retry (3 attempts), a breaker per origin, a 10 s attempt timeout
//   timeoutMs       createFetch({ timeoutMs: 30_000 }): the defaults and an overall timeout
//   cockatiel       wrap(retry, circuitBreaker, timeout(10 s)) from cockatiel around fetch with its signal
//
// The machine is shared: CPU per request moves with what else runs; compare variants of one run.
// `--callgrind` counts instructions instead (one client process per variant and concurrency,
// under `valgrind --tool=callgrind --separate-threads=yes`; counters zeroed after the warm-up and
// dumped after the counted requests; the main thread's instructions ÷ requests, V8's helper
// threads apart): the stable figure on a shared machine. Needs valgrind; slow (use
// `--requests 1000 --warmup 1500`).
//
// cockatiel's client prints a MaxListenersExceededWarning at concurrency 16: its own listeners on
// a shared signal, not this script's.
import { execFileSync, fork, spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import http from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { abortableDispatcher, globalDispatcher } from './fetch-dispatchers.mjs';
import { cockatielFetchPolicy, onPath } from './support.mjs';

const { values: args } = parseArgs({
  options: {
    requests: { type: 'string', default: '4000' },
    warmup: { type: 'string', default: '2000' },
    runs: { type: 'string', default: '3' },
    filter: { type: 'string' },
    callgrind: { type: 'boolean', default: false },
    client: { type: 'boolean', default: false },
    server: { type: 'boolean', default: false },
    variant: { type: 'string' },
    concurrency: { type: 'string' },
    url: { type: 'string' },
  },
});
for (const name of ['requests', 'warmup', 'runs']) {
  const n = Number(args[name]);
  if (!Number.isInteger(n) || n < 1) {
    console.error(`--${name} must be a whole number of at least 1, got ${args[name]}`);
    process.exit(1);
  }
}

const variants = ['fetch', 'fetch+signal', 'fetch+timeout', 'fetch+dispatcher', 'none', 'defaults', 'timeoutMs', 'cockatiel'];
const concurrencies = [1, 16];


/** The server process: answers every request with 'ok' on kept-alive connections. */
function runServer() {
  const server = http.createServer((req, res) => {
    req.resume();
    res.writeHead(200, { 'content-type': 'text/plain', 'content-length': '2' });
    res.end('ok');
  });
  server.keepAliveTimeout = 60_000;
  server.listen(0, '127.0.0.1', () => process.send({ port: server.address().port }));
  process.on('disconnect', () => process.exit(0));
}

async function makeClient(variant, url) {
  switch (variant) {
    case 'fetch':
      return () => fetch(url);
    case 'fetch+signal':
      return () => fetch(url, { signal: new AbortController().signal });
    case 'fetch+timeout':
      return () => fetch(url, { signal: AbortSignal.timeout(10_000) });
    case 'fetch+dispatcher': {
      await (await fetch(url)).arrayBuffer();
      const dispatcher = globalDispatcher();
      return () => fetch(url, { dispatcher: abortableDispatcher(dispatcher) });
    }
    case 'none':
    case 'defaults':
    case 'timeoutMs': {
      const { createFetch } = await import('../dist/fetch.js');
      const options =
        variant === 'none'
          ? { retry: false, circuitBreaker: false, attemptTimeoutMs: false }
          : variant === 'timeoutMs'
            ? { timeoutMs: 30_000 }
            : undefined;
      const f = createFetch(options);
      return () => f(url);
    }
    case 'cockatiel': {
      const policy = await cockatielFetchPolicy();
      // cockatiel's timeout aborts its signal once the function settles: the body is read inside.
      return () =>
        policy.execute(async ({ signal }) => {
          const res = await fetch(url, { signal });
          await res.arrayBuffer();
          return res;
        });
    }
    default:
      throw new Error(`unknown variant ${variant}`);
  }
}

/** A client process: --warmup requests, then --requests measured ones at --concurrency. */
async function runClient() {
  const concurrency = Number(args.concurrency);
  const call = await makeClient(args.variant, args.url);
  const one = async () => {
    const res = await call();
    if (res.status !== 200) throw new Error(`status ${res.status}`);
    if (!res.bodyUsed) await res.arrayBuffer();
  };
  const drive = async (total) => {
    let left = total;
    const lane = async () => {
      while (left > 0) {
        left--;
        await one();
      }
    };
    await Promise.all(Array.from({ length: concurrency }, lane));
  };
  await drive(Number(args.warmup));
  const n = Number(args.requests);
  if (args.callgrind) {
    // The orchestrator zeroes callgrind's counters, then says go; it dumps them when told we are done.
    process.send({ warm: true });
    await new Promise((resolve) => process.once('message', resolve));
    await drive(n);
    process.send({ done: true });
    await new Promise((resolve) => process.once('message', resolve));
    process.disconnect();
    return;
  }
  const cpu0 = process.cpuUsage();
  const t0 = process.hrtime.bigint();
  await drive(n);
  const wallNs = Number(process.hrtime.bigint() - t0);
  const cpu = process.cpuUsage(cpu0);
  process.send({ cpuUs: (cpu.user + cpu.system) / n, rps: n / (wallNs / 1e9) });
  process.disconnect();
}

function child(argv) {
  return fork(fileURLToPath(import.meta.url), argv, { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
}

/** Main-thread and helper-thread instructions per request of one client under callgrind. */
async function countInstructions(argv) {
  const valgrind = onPath('valgrind');
  const control = onPath('callgrind_control');
  if (valgrind === undefined || control === undefined) throw new Error('valgrind was not found on PATH (apt-get install -y valgrind)');
  const dir = mkdtempSync(join(tmpdir(), 'bulwark-fetch-cg-'));
  const proc = spawn(
    valgrind,
    ['-q', '--tool=callgrind', '--separate-threads=yes', `--callgrind-out-file=${join(dir, 'cg.out')}`, process.execPath, fileURLToPath(import.meta.url), ...argv],
    { stdio: ['ignore', 'ignore', 'inherit', 'ipc'] },
  );
  try {
    await message(proc);
    execFileSync(control, ['-z', String(proc.pid)], { stdio: 'ignore' });
    proc.send('go');
    await message(proc);
    execFileSync(control, ['-d', String(proc.pid)], { stdio: 'ignore' });
    proc.send('exit');
    const perThread = readdirSync(dir)
      .filter((f) => /^cg\.out\.1-\d+$/.test(f))
      .sort()
      .map((f) => Number(/^summary: (\d+)$/m.exec(readFileSync(join(dir, f), 'utf8'))?.[1] ?? 0));
    if (perThread.length === 0) throw new Error('callgrind wrote no dump');
    const [main, ...helpers] = perThread;
    const n = Number(args.requests);
    return { main: main / n, helpers: helpers.reduce((a, b) => a + b, 0) / n };
  } finally {
    proc.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  }
}

function message(proc) {
  return new Promise((resolve, reject) => {
    proc.once('message', resolve);
    proc.once('exit', (code) => reject(new Error(`child exited with ${code} before reporting`)));
  });
}

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

async function orchestrate() {
  const server = child(['--server']);
  const { port } = await message(server);
  const url = `http://127.0.0.1:${port}/`;
  const filter = args.filter === undefined ? undefined : new RegExp(args.filter);
  const chosen = variants.filter((v) => v === 'fetch' || filter === undefined || filter.test(v));
  const results = new Map();
  const runs = Number(args.runs);
  if (args.callgrind) {
    const rows = [];
    try {
      for (const concurrency of concurrencies) {
        for (const variant of chosen) {
          const argv = ['--client', '--callgrind', '--variant', variant, '--concurrency', String(concurrency), '--url', url];
          const r = await countInstructions([...argv, '--requests', args.requests, '--warmup', args.warmup]);
          rows.push({ variant, concurrency, ...r });
          console.error(`${variant}@${concurrency}: ${(r.main / 1000).toFixed(1)}k main-thread instructions per request`);
        }
      }
    } finally {
      server.disconnect();
    }
    console.log(`\nfetch overhead under callgrind: node ${process.version}, ${args.requests} requests counted after ${args.warmup} warm-up\n`);
    console.log('| variant | conc | main thread, instructions/request | over fetch | V8 helper threads |');
    console.log('|---|---:|---:|---:|---:|');
    for (const r of rows) {
      const base = rows.find((b) => b.variant === 'fetch' && b.concurrency === r.concurrency).main;
      const d = (r.main - base) / 1000;
      console.log(
        `| ${r.variant} | ${r.concurrency} | ${(r.main / 1000).toFixed(1)}k | ${r.variant === 'fetch' ? '—' : `${d >= 0 ? '+' : '−'}${Math.abs(d).toFixed(1)}k (${d >= 0 ? '+' : '−'}${Math.abs((d * 1000 * 100) / base).toFixed(1)} %)`} | ${(r.helpers / 1000).toFixed(1)}k |`,
      );
    }
    return;
  }
  try {
    for (let run = 0; run < runs; run++) {
      for (const concurrency of concurrencies) {
        for (const variant of chosen) {
          const proc = child([
            '--client',
            '--variant', variant,
            '--concurrency', String(concurrency),
            '--url', url,
            '--requests', args.requests,
            '--warmup', args.warmup,
          ]);
          const r = await message(proc);
          const key = `${variant}@${concurrency}`;
          if (!results.has(key)) results.set(key, []);
          results.get(key).push(r);
        }
      }
    }
  } finally {
    server.disconnect();
  }

  let commit = 'unknown';
  try {
    commit = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { encoding: 'utf8' }).trim();
  } catch {
    // not a git checkout
  }
  console.log(
    `fetch overhead: node ${process.version}, commit ${commit}, ${args.requests} requests after ${args.warmup} warm-up, median of ${runs} fresh processes\n`,
  );
  console.log('| variant | conc | client CPU µs/req (min–max) | +µs vs fetch | req/s (median) |');
  console.log('|---|---:|---:|---:|---:|');
  for (const concurrency of concurrencies) {
    const base = median(results.get(`fetch@${concurrency}`).map((r) => r.cpuUs));
    for (const variant of chosen) {
      const rs = results.get(`${variant}@${concurrency}`);
      const cpus = rs.map((r) => r.cpuUs);
      const cpu = median(cpus);
      const delta = cpu - base;
      console.log(
        `| ${variant} | ${concurrency} | ${cpu.toFixed(1)} (${Math.min(...cpus).toFixed(1)}–${Math.max(...cpus).toFixed(1)}) | ${variant === 'fetch' ? '—' : `${delta >= 0 ? '+' : ''}${delta.toFixed(1)}`} | ${Math.round(median(rs.map((r) => r.rps)))} |`,
      );
    }
  }
}

if (args.server) runServer();
else if (args.client) await runClient();
else await orchestrate();
