// HTTP benchmark: requests/s and latency (p50, p99) of a small `GET /` JSON route on Express 5 and
// Fastify 5, bare and behind a rate limiter — express-rate-limit (memory, and Redis through
// rate-limit-redis), @fastify/rate-limit (memory and Redis) and bulwark's adapters (memory and
// Redis store) — with wrk as the load generator on loopback. Every limited variant is compared
// with the bare server of its framework measured in the same round.
//
//   npm run build && node benchmarks/http.mjs [--rounds 3] [--duration 5] [--warmup 2]
//       [--connections 64] [--threads 1] [--keys 1] [--filter REGEX] [--redis-cpu 0]
//       [--peer-headers draft|default] [--nice=N] [--quick] [--json] [--no-pin]
//
// --quick: unless given, --rounds 1, --duration 2, --warmup 1 (a smoke run, as
// `npm run bench -- --quick` makes). The "Target: ..." lines end with the `bench-targets:` line
// that benchmarks/run.mjs reads.
//
// Needs wrk (apt-get install -y wrk) and, for the Redis variants, redis-server on PATH.
//
// Processes and CPUs (this machine has 2 cores):
// - Each server variant runs in its own child process (`benchmarks/http-server.mjs <variant>`,
//   forked with an IPC channel), started through `taskset -c 1` so that it and all its threads
//   live on CPU 1. Node serves HTTP on one thread: CPU 1 is the resource being measured.
// - wrk runs on CPU 0 (`taskset -c 0`, one thread by default), and so does this script, which
//   pins itself there (`taskset -a -p`) and only waits while wrk runs.
// - redis-server (one for the whole run, started here on a free loopback port, no persistence,
//   killed by pid at the end) runs on CPU 0 too, with wrk, by default (--redis-cpu to move it).
//   Reason: in production Redis runs on another host and its CPU is not taken from the Node
//   server's; putting it on CPU 1 would charge Redis's work to the server and measure the two
//   together. wrk with one thread needs well under a core at these rates, so CPU 0 has room for
//   both. `--redis-cpu 1` puts Redis with the server instead, for comparison.
// - CPU use is read from /proc inside each run: the table shows the share of a core used by the
//   server, wrk and Redis, and a warning lists every variant whose figures something else may
//   have bounded (CPU 0 over 90 % busy, the server under 90 % of CPU 1, or other processes
//   taking over 10 % of CPU 1). On a shared machine, read the figures with those in mind.
// - --nice=N (opt-in; negative values need root; write it with `=`) runs servers, wrk and
//   redis-server at that niceness, so that on a shared machine other processes take less of
//   their CPUs (it slows those processes down: use it only when that is acceptable). The output
//   says when it was used.
// - Without taskset, with fewer than 2 CPUs or with --no-pin nothing is pinned and the output
//   says so. Every child (servers, wrk, redis-server) is killed by pid on exit, on an error and
//   on Ctrl-C/SIGTERM/SIGHUP; servers also exit on their own when this script's IPC channel
//   closes (so even a SIGKILL of this script leaves no server behind, only redis-server).
//
// Limits: fixed window of 60 s with a limit of 1e9 per key (nothing is ever denied), keyed by
// the client IP (every request comes from 127.0.0.1: one key), or with --keys N > 1 by an
// `x-client-id` header that wrk cycles through N values (all variants, bare ones included, get
// the same requests). bulwark: `rateLimiter({ algorithm: fixedWindow(...), store })` with
// `rateLimitMiddleware(limiter, { headers: 'draft' })` / `rateLimitPlugin` and their defaults;
// its Redis store gets `timeoutMs: 10_000` and `onStoreError: 'fail-closed'`, so that a decision
// Redis did not make is a 429 (which fails the run) rather than a fast local answer that would
// flatter it. Peers: their defaults, except that with --peer-headers draft (the default) they
// send the IETF draft headers as bulwark does (express-rate-limit `standardHeaders: 'draft-8',
// legacyHeaders: false`; @fastify/rate-limit `enableDraftSpec: true`); on Redis they give up
// only by erroring (500), which fails the run too. All Redis variants use the same ioredis client
// options (bulwark's README: no offline queue, no resend, one retry).
//
// "bare + the same two rate-limit headers, constant" is each framework's bare server with a hook
// that sets the two draft headers bulwark sends, with constant values: the base of the memory-store
// targets (issue 14 §5), since the headers alone cost a bare server several per cent.
//
// Method: every server is started, probed once (status 200, the JSON body, which rate-limit
// headers it sends: a limited variant must send some, a bare one none) and warmed up with one wrk
// run of --warmup s. Then --rounds rounds; in each, every variant gets one wrk run of --duration s
// (order rotated every round, so a burst of load from elsewhere on this shared machine does not
// always hit the same variant). Per variant: the median over rounds of req/s, p50 and p99 (wrk's
// own percentiles; wrk is closed-loop, so latency is per connection with no coordinated-omission
// correction); ÷ bare is the median of the per-round ratios to the bare server of the same
// framework. Also per run: the server's CPU time (all its threads, /proc) per request that
// reached the handler; "÷ bare by CPU" is bare's µs/request over the variant's (median of the
// per-round ratios): roughly what ÷ bare would be if the server had its core to itself in both
// runs. A cross-check on a shared machine, less disturbed by other processes than req/s but not
// immune (a server starved of CPU handles fewer requests per wake-up, each costing more, and
// shares caches). Targets are judged on req/s, as the issue states them, on a quiet machine.
// A run fails loudly (message, exit code 1, every child killed) when wrk reports any error
// (connect, read, write, timeout, or a status >= 400: a denial, a 429, is one) or when the
// number of requests that reached the route handler does not match wrk's count (a request
// answered without reaching it was not served).
// For Redis variants a run also fails when Redis processed no command meanwhile (only one
// variant runs at a time); requests per script call and Redis commands per request are shown.
import { fork, spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import http from 'node:http';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { cleanUpOnExit, freePort, onPath, printTargets, redisCommand } from './support.mjs';

const HOST = '127.0.0.1';
const GENERATOR_CPU = 0;
const SERVER_CPU = 1;
const KEY_HEADER = 'x-client-id';
const here = path.dirname(fileURLToPath(import.meta.url));
const SERVER_SCRIPT = path.join(here, 'http-server.mjs');
const WRK_SCRIPT = path.join(here, 'http-wrk.lua');

let args;
try {
  ({ values: args } = parseArgs({
    options: {
      rounds: { type: 'string' },
      duration: { type: 'string' },
      warmup: { type: 'string' },
      quick: { type: 'boolean', default: false },
      connections: { type: 'string', default: '64' },
      threads: { type: 'string', default: '1' },
      keys: { type: 'string', default: '1' },
      filter: { type: 'string' },
      'redis-cpu': { type: 'string', default: String(GENERATOR_CPU) },
      'peer-headers': { type: 'string', default: 'draft' },
      nice: { type: 'string' },
      json: { type: 'boolean', default: false },
      'no-pin': { type: 'boolean', default: false },
      help: { type: 'boolean', default: false },
    },
  }));
} catch (error) {
  console.error(`${error.message}\n(see --help)`);
  process.exit(1);
}
if (args.help) {
  const header = readFileSync(fileURLToPath(import.meta.url), 'utf8').split('\n');
  console.log(header.slice(0, header.findIndex((l) => !l.startsWith('//'))).map((l) => l.slice(3)).join('\n'));
  process.exit(0);
}
const ROUNDS = Number(args.rounds ?? (args.quick ? '1' : '3'));
const DURATION_S = Number(args.duration ?? (args.quick ? '2' : '5'));
const WARMUP_S = Number(args.warmup ?? (args.quick ? '1' : '2'));
const CONNECTIONS = Number(args.connections);
const THREADS = Number(args.threads);
const KEYS = Number(args.keys);
const REDIS_CPU = Number(args['redis-cpu']);
const NICE = args.nice === undefined ? undefined : Number(args.nice);
for (const [name, value, min] of [
  ['--rounds', ROUNDS, 1],
  ['--duration', DURATION_S, 1],
  ['--warmup', WARMUP_S, 0],
  ['--connections', CONNECTIONS, 1],
  ['--threads', THREADS, 1],
  ['--keys', KEYS, 1],
  ['--redis-cpu', REDIS_CPU, 0],
]) {
  if (!Number.isInteger(value) || value < min) fail(`${name} must be a whole number of at least ${min}, got ${value}`);
}
if (NICE !== undefined && !(Number.isInteger(NICE) && NICE >= -20 && NICE <= 19)) fail(`--nice must be a whole number from -20 to 19, got ${args.nice}`);
if (CONNECTIONS < THREADS) fail('--connections must be at least --threads (wrk gives each thread its connections)');
if (!['draft', 'default'].includes(args['peer-headers'])) fail(`--peer-headers must be draft or default, got ${args['peer-headers']}`);
let filter;
try {
  filter = args.filter === undefined ? undefined : new RegExp(args.filter);
} catch (error) {
  fail(`--filter: ${error.message}`);
}

function fail(message) {
  console.error(message);
  process.exit(1);
}

// ---------------------------------------------------------------------------------------------
// The variants. `id` is what http-server.mjs builds; the first of each framework is its bare one.

const VARIANTS = [
  { id: 'express-bare', framework: 'Express', label: 'bare' },
  // What the draft's two headers cost by themselves: the memory-store targets' base (issue 14 §5).
  { id: 'express-headers', framework: 'Express', label: 'bare + the same two rate-limit headers, constant' },
  { id: 'express-erl-memory', framework: 'Express', label: 'express-rate-limit, memory' },
  { id: 'express-erl-redis', framework: 'Express', label: 'express-rate-limit + rate-limit-redis', redis: 'bench-erl:' },
  { id: 'express-bulwark-memory', framework: 'Express', label: 'bulwark, memoryStore' },
  { id: 'express-bulwark-redis', framework: 'Express', label: 'bulwark, redisStore', redis: 'bench-express-bulwark:' },
  { id: 'fastify-bare', framework: 'Fastify', label: 'bare' },
  { id: 'fastify-headers', framework: 'Fastify', label: 'bare + the same two rate-limit headers, constant' },
  { id: 'fastify-frl-memory', framework: 'Fastify', label: '@fastify/rate-limit, memory' },
  { id: 'fastify-frl-redis', framework: 'Fastify', label: '@fastify/rate-limit, Redis', redis: 'bench-frl-' },
  { id: 'fastify-bulwark-memory', framework: 'Fastify', label: 'bulwark, memoryStore' },
  { id: 'fastify-bulwark-redis', framework: 'Fastify', label: 'bulwark, redisStore', redis: 'bench-fastify-bulwark:' },
  // Diagnostics, run only when --filter names them: where a limiter's time goes.
  { id: 'express-hook', framework: 'Express', label: 'an empty middleware (diagnostic)', diagnostic: true },
  { id: 'express-bulwark-memory-noheaders', framework: 'Express', label: "bulwark, memoryStore, headers: 'none' (diagnostic)", diagnostic: true },
  { id: 'fastify-hook', framework: 'Fastify', label: 'an empty onRequest hook (diagnostic)', diagnostic: true },
  { id: 'fastify-bulwark-memory-noheaders', framework: 'Fastify', label: "bulwark, memoryStore, headers: 'none' (diagnostic)", diagnostic: true },
];
for (const v of VARIANTS) v.bare = v.id.endsWith('-bare');

// The issue's targets (issue 14 §5: req/s ÷ the same framework's `base` variant, measured in the
// same rounds) and the peer figures it reports. The memory store is held to the bare server plus
// the same two headers with constant values: the headers alone cost a bare server several per
// cent, which no limiter that sends them can win back.
const TARGETS = [
  { id: 'express-bulwark-memory', base: 'express-headers', min: 0.97, text: 'Express + bulwark memoryStore ≥ 0.97× bare Express + constant headers' },
  { id: 'fastify-bulwark-memory', base: 'fastify-headers', min: 0.97, text: 'Fastify + bulwark memoryStore ≥ 0.97× bare Fastify + constant headers' },
  { id: 'fastify-bulwark-redis', base: 'fastify-bare', min: 0.85, text: 'Fastify + bulwark redisStore ≥ 0.85× bare Fastify' },
];
const ISSUE_FIGURES = { 'express-erl-memory': 0.72, 'fastify-frl-memory': 0.86, 'fastify-frl-redis': 0.48 };

const selected = VARIANTS.filter((v) => (filter === undefined ? !v.diagnostic : filter.test(v.id)));
if (selected.length === 0) fail(`--filter ${args.filter} matches no variant (ids: ${VARIANTS.map((v) => v.id).join(', ')})`);
// A limited variant needs its framework's bare server for its ratio.
for (const v of [...selected]) {
  const bare = VARIANTS.find((b) => b.bare && b.framework === v.framework);
  if (!selected.includes(bare)) selected.push(bare);
  // And a target's base, for the target's ratio.
  const base = VARIANTS.find((b) => b.id === TARGETS.find((t) => t.id === v.id)?.base);
  if (base !== undefined && !selected.includes(base)) selected.push(base);
}
const variants = VARIANTS.filter((v) => selected.includes(v));
const needRedis = variants.some((v) => v.redis);

// ---------------------------------------------------------------------------------------------
// Tools and pinning.

function allowedCpus(pid = 'self') {
  try {
    return /^Cpus_allowed_list:\s*(.+)$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1]?.trim();
  } catch {
    return undefined;
  }
}

const wrk = onPath('wrk');
if (wrk === undefined) fail('wrk was not found on PATH (apt-get install -y wrk)');
const redisServerBin = needRedis ? onPath('redis-server') : undefined;
if (needRedis && redisServerBin === undefined) fail('redis-server was not found on PATH (apt-get install -y redis-server), or leave out the Redis variants with --filter');
const taskset = onPath('taskset');
const cpuCount = os.cpus().length;

let pinNote;
if (args['no-pin']) pinNote = 'UNPINNED (--no-pin)';
else if (taskset === undefined) pinNote = 'UNPINNED: taskset not found (server, wrk and Redis share the cores)';
else if (cpuCount < 2) pinNote = `UNPINNED: ${cpuCount} CPU, cannot keep server and wrk apart`;
else if (REDIS_CPU >= cpuCount) fail(`--redis-cpu ${REDIS_CPU}: this machine has CPUs 0-${cpuCount - 1}`);
else {
  // Pin this process (every thread) to the generator's CPU; what it spawns inherits that unless
  // started through taskset with another CPU.
  const r = spawnSync(taskset, ['-a', '-c', '-p', String(GENERATOR_CPU), String(process.pid)], { encoding: 'utf8' });
  if (r.status !== 0 || allowedCpus() !== String(GENERATOR_CPU)) {
    pinNote = `UNPINNED: taskset -a -c -p ${GENERATOR_CPU} failed (${`${r.stderr}`.trim() || `exit ${r.status}`})`;
  }
}
const pinned = pinNote === undefined;
const redisCpu = pinned ? REDIS_CPU : undefined;

const niceBin = NICE === undefined ? undefined : onPath('nice');
if (NICE !== undefined && niceBin === undefined) fail('--nice: the nice command was not found on PATH');

/** The commands that run a program on `cpu` (when pinning) with niceness --nice (when given); each execs the next. */
function launcher(cpu) {
  return [...(pinned ? [taskset, '-c', String(cpu)] : []), ...(niceBin ? [niceBin, '-n', String(NICE)] : [])];
}

/** [file, argv] to run `file argv` through launcher(cpu). */
function onCpu(cpu, file, argv) {
  const [first, ...rest] = [...launcher(cpu), file, ...argv];
  return [first, rest];
}

/** Niceness of a process (field 19 of /proc/<pid>/stat), or NaN. */
function niceness(pid) {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[16]);
  } catch {
    return NaN;
  }
}

// ---------------------------------------------------------------------------------------------
// Children and their cleanup.

const children = new Set(); // every ChildProcess still to be killed
let redisDir;

function track(child) {
  children.add(child);
  child.once('exit', () => children.delete(child));
  return child;
}

function killAll() {
  for (const child of children) {
    if (child.exitCode === null && child.signalCode === null) {
      try {
        child.kill('SIGKILL');
      } catch {
        // already gone
      }
    }
  }
  children.clear();
  if (redisDir !== undefined) {
    rmSync(redisDir, { recursive: true, force: true });
    redisDir = undefined;
  }
}
cleanUpOnExit(killAll);

/** Kills every child and waits (bounded) until each has exited, so none is left a zombie. */
async function shutdown() {
  const waits = [...children].filter((c) => c.exitCode === null && c.signalCode === null).map((c) => new Promise((resolve) => c.once('exit', resolve)));
  killAll();
  await Promise.race([Promise.all(waits), sleep(5_000, undefined, { ref: false })]);
}

// ---------------------------------------------------------------------------------------------
// Redis.

let redis; // { child, port, version }

async function startRedis() {
  redisDir = mkdtempSync(path.join(os.tmpdir(), 'bulwark-bench-http-redis-'));
  const port = await freePort();
  const argv = [
    '--port', String(port), '--bind', HOST, '--protected-mode', 'no', '--dir', redisDir,
    '--logfile', path.join(redisDir, 'redis.log'), '--save', '', '--appendonly', 'no', '--daemonize', 'no',
  ];
  // taskset execs redis-server in place: the pid is the server's.
  const [file, fileArgs] = onCpu(redisCpu, redisServerBin, argv);
  const child = track(spawn(file, fileArgs, { stdio: 'ignore' }));
  child.on('error', () => {});
  const deadline = Date.now() + 10_000;
  while (Date.now() < deadline && child.exitCode === null && child.signalCode === null) {
    try {
      if ((await redisCommand(port, ['PING'], 500)).startsWith('+PONG')) {
        const version = /redis_version:(\S+)/.exec(await redisCommand(port, ['INFO', 'server']))?.[1] ?? '?';
        return { child, port, version };
      }
    } catch {
      // not up yet
    }
    await sleep(50);
  }
  let log = '';
  try {
    log = readFileSync(path.join(redisDir, 'redis.log'), 'utf8').split('\n').slice(-10).join('\n');
  } catch {
    // no log
  }
  throw new Error(`redis-server on port ${port} did not answer PING within 10 s\n${log}`);
}

/**
 * Commands Redis has processed so far (each call of this counts one more; commands run inside
 * scripts count too) and script calls (EVAL, EVALSHA, FCALL: what the limiters send per decision,
 * or per batch of decisions).
 */
async function redisCounters() {
  let reply;
  try {
    reply = await redisCommand(redis.port, ['INFO', 'stats', 'commandstats']);
  } catch (error) {
    const gone = redis.child.exitCode !== null || redis.child.signalCode !== null;
    throw new Error(`cannot read Redis's counters (${error.message})${gone ? `: redis-server has exited (${redis.child.signalCode ?? `code ${redis.child.exitCode}`})` : ''}`);
  }
  let scripts = 0;
  for (const m of reply.matchAll(/^cmdstat_(?:eval|evalsha|eval_ro|evalsha_ro|fcall|fcall_ro):calls=(\d+)/gm)) scripts += Number(m[1]);
  return { commands: Number(/total_commands_processed:(\d+)/.exec(reply)?.[1] ?? NaN), scripts };
}

// ---------------------------------------------------------------------------------------------
// Servers.

function waitForMessage(child, type, timeoutMs) {
  return new Promise((resolve, reject) => {
    const cleanup = () => {
      clearTimeout(timer);
      child.off('message', onMessage);
      child.off('exit', onExit);
    };
    const onMessage = (m) => {
      if (type.includes(m?.type)) {
        cleanup();
        resolve(m);
      }
    };
    const onExit = (code, signal) => {
      cleanup();
      reject(new Error(`server exited (${signal ?? `code ${code}`}) before sending ${type.join('/')}`));
    };
    const timer = setTimeout(() => {
      cleanup();
      reject(new Error(`server sent no ${type.join('/')} within ${timeoutMs} ms`));
    }, timeoutMs);
    child.on('message', onMessage);
    child.once('exit', onExit);
  });
}

/** Starts one variant's server; sets v.child and v.port, or v.unavailable. */
async function startServer(v) {
  const env = {
    ...process.env,
    BULWARK_HTTP_PEER_HEADERS: args['peer-headers'],
    ...(redis ? { BULWARK_HTTP_REDIS_PORT: String(redis.port) } : {}),
    ...(KEYS > 1 ? { BULWARK_HTTP_KEY_HEADER: KEY_HEADER } : {}),
  };
  // Several tries: another engineer's `npm run build` may be rewriting dist/ at this moment.
  for (let attempt = 1; ; attempt++) {
    // fork() runs `execPath ...execArgv script ...args`: through taskset (and nice), which exec
    // node in place (so the pid is node's and the IPC channel's descriptor is inherited).
    const [execPath, ...execArgv] = launcher(SERVER_CPU);
    const options =
      execPath === undefined
        ? { env, stdio: ['ignore', 'inherit', 'inherit', 'ipc'] }
        : { execPath, execArgv: [...execArgv, process.execPath], env, stdio: ['ignore', 'inherit', 'inherit', 'ipc'] };
    const child = track(fork(SERVER_SCRIPT, [v.id], options));
    let m;
    try {
      m = await waitForMessage(child, ['ready', 'unavailable', 'failed'], 30_000);
    } catch (error) {
      m = { type: 'failed', error: error.message };
    }
    if (m.type === 'ready') {
      v.child = child;
      v.port = m.port;
      v.cpus = m.cpus;
      if (pinned && m.cpus !== String(SERVER_CPU)) throw new Error(`${v.id}: server runs on CPUs ${m.cpus}, not ${SERVER_CPU}`);
      if (NICE !== undefined && niceness(child.pid) !== NICE) {
        throw new Error(`${v.id}: server runs at niceness ${niceness(child.pid)}, not ${NICE} (a negative --nice needs root or CAP_SYS_NICE)`);
      }
      return;
    }
    child.kill('SIGKILL');
    if (m.type === 'unavailable') {
      v.unavailable = m.reason;
      return;
    }
    if (attempt === 3) throw new Error(`${v.id}: server failed to start:\n${m.error}`);
    await sleep(2_000);
  }
}

async function handledCount(v) {
  const reply = waitForMessage(v.child, ['stats'], 5_000);
  v.child.send({ type: 'stats' });
  return (await reply).handled;
}

/** One request, to check the route and see which rate-limit headers the variant sends. */
function probe(v) {
  return new Promise((resolve, reject) => {
    const headers = KEYS > 1 ? { [KEY_HEADER]: 'client-probe' } : {};
    const req = http.get({ host: HOST, port: v.port, path: '/', headers, agent: false }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk) => (body += chunk));
      res.on('end', () => resolve({ status: res.statusCode, body, headers: Object.keys(res.headers) }));
    });
    req.setTimeout(10_000, () => req.destroy(new Error('probe timed out')));
    req.on('error', reject);
  });
}

// ---------------------------------------------------------------------------------------------
// Measuring.

const CLK_TCK = Number(spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).stdout) || 100;

/** CPU ticks of each CPU (busy and total) and of the given processes, from /proc. */
function cpuSnapshot(pids) {
  const cpus = [];
  try {
    for (const line of readFileSync('/proc/stat', 'utf8').split('\n')) {
      const m = /^cpu(\d+)\s+(.*)$/.exec(line);
      if (!m) continue;
      const [user, nice, system, idle, iowait = 0, irq = 0, softirq = 0, steal = 0] = m[2].split(/\s+/).map(Number);
      cpus[Number(m[1])] = { busy: user + nice + system + irq + softirq, total: user + nice + system + idle + iowait + irq + softirq + steal };
    }
  } catch {
    // not Linux
  }
  const procs = {};
  for (const pid of pids) {
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
      const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      procs[pid] = Number(rest[11]) + Number(rest[12]); // utime + stime
    } catch {
      procs[pid] = NaN;
    }
  }
  return { at: performance.now(), cpus, procs };
}

/** Share of one CPU (0–1) each CPU and process used between two snapshots. */
function cpuShares(a, b) {
  const seconds = (b.at - a.at) / 1000;
  const cpus = b.cpus.map((c, i) => (a.cpus[i] && c.total > a.cpus[i].total ? (c.busy - a.cpus[i].busy) / (c.total - a.cpus[i].total) : NaN));
  const procs = {};
  for (const pid of Object.keys(b.procs)) procs[pid] = (b.procs[pid] - a.procs[pid]) / CLK_TCK / seconds;
  return { cpus, procs };
}

/** Starts wrk; `done` resolves with its figures (the BULWARK_WRK line of http-wrk.lua). */
function runWrk(port, seconds) {
  let child;
  const done = new Promise((resolve, reject) => {
    const argv = ['-t', String(THREADS), '-c', String(CONNECTIONS), '-d', `${seconds}s`, '--timeout', '10s', '-s', WRK_SCRIPT, `http://${HOST}:${port}/`];
    const [file, fileArgs] = onCpu(GENERATOR_CPU, wrk, argv);
    const env = { ...process.env, BULWARK_HTTP_KEYS: String(KEYS), BULWARK_HTTP_KEY_HEADER: KEY_HEADER };
    child = track(spawn(file, fileArgs, { stdio: ['ignore', 'pipe', 'pipe'], env }));
    let out = '';
    let err = '';
    child.stdout.setEncoding('utf8').on('data', (chunk) => (out += chunk));
    child.stderr.setEncoding('utf8').on('data', (chunk) => (err += chunk));
    const timer = setTimeout(() => child.kill('SIGKILL'), (seconds + 30) * 1000);
    child.on('error', (error) => {
      clearTimeout(timer);
      reject(error);
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      const line = /^BULWARK_WRK (.*)$/m.exec(out)?.[1];
      if (code !== 0 || line === undefined) {
        reject(new Error(`wrk failed (${signal ?? `exit ${code}`}):\n${`${err}\n${out}`.trim().slice(-1000)}`));
        return;
      }
      resolve(JSON.parse(line));
    });
  });
  return { pid: child.pid, done };
}

/** One wrk run against one variant, checked; returns its figures. */
async function measure(v, seconds) {
  const before = await handledCount(v);
  const redisBefore = v.redis ? await redisCounters() : undefined;
  // The server's CPU time over the whole run (it is idle outside runs), for its cost per request.
  const serverTicks0 = cpuSnapshot([v.child.pid]).procs[v.child.pid];
  const run = runWrk(v.port, seconds);
  // CPU use is sampled inside the run (from 0.3 s after wrk starts to 0.3 s before it stops), so
  // wrk's own share can be read too (taskset execs wrk in place: the pid is wrk's).
  const pids = [v.child.pid, run.pid, ...(redis ? [redis.child.pid] : [])];
  const edge = Math.min(300, seconds * 250);
  let s0;
  let s1;
  const sampler = (async () => {
    await sleep(edge, undefined, { ref: false });
    s0 = cpuSnapshot(pids);
    await sleep(seconds * 1000 - 2 * edge, undefined, { ref: false });
    s1 ??= cpuSnapshot(pids);
  })();
  const w = await run.done;
  const serverTicks1 = cpuSnapshot([v.child.pid]).procs[v.child.pid];
  s1 ??= cpuSnapshot(pids); // wrk ended first (its own figure is then lost)
  await sampler;
  const handled = (await handledCount(v)) - before;
  const redisAfter = v.redis ? await redisCounters() : undefined;
  // Less the INFO command that read `redisBefore`.
  const redisCommands = v.redis ? redisAfter.commands - redisBefore.commands - 1 : undefined;
  const redisScripts = v.redis ? redisAfter.scripts - redisBefore.scripts : undefined;
  const problems = Object.entries(w.errors)
    .filter(([, n]) => n > 0)
    .map(([kind, n]) => `${n} ${kind === 'status' ? 'non-2xx/3xx answers (status >= 400: denied or failed)' : `${kind} errors`}`);
  if (w.requests === 0) problems.push('no request completed');
  // Every answer wrk counted went through the handler; at most one request per connection can
  // have reached the handler without its answer being counted when wrk stopped.
  if (handled < w.requests || handled > w.requests + CONNECTIONS) {
    problems.push(`${handled} requests reached the handler for ${w.requests} answers counted by wrk`);
  }
  // Only one variant runs at a time, so the commands Redis processed meanwhile are this one's.
  if (v.redis && !(redisCommands > 0)) problems.push('Redis processed no command during the run: the limiter is not using it');
  if (problems.length > 0) throw new Error(`${v.id} (port ${v.port}): ${problems.join('; ')}`);
  const shares = s0 === undefined ? { cpus: [], procs: {} } : cpuShares(s0, s1);
  return {
    rps: w.requests / (w.durationUs / 1e6),
    p50: w.latencyUs.p50 / 1000,
    p99: w.latencyUs.p99 / 1000,
    requests: w.requests,
    serverCpu: shares.procs[v.child.pid],
    redisCpu: redis ? shares.procs[redis.child.pid] : undefined,
    wrkCpu: shares.procs[run.pid],
    redisCommands,
    redisScripts,
    generatorCpuBusy: shares.cpus[GENERATOR_CPU],
    // Requests that reached the handler (the denominator includes the few answered after wrk stopped counting).
    serverCpuUsPerRequest: ((serverTicks1 - serverTicks0) / CLK_TCK) * 1e6 / handled,
    serverCpuBusy: shares.cpus[SERVER_CPU],
  };
}

function median(xs) {
  const s = xs.filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
  if (s.length === 0) return NaN;
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

// ---------------------------------------------------------------------------------------------

const require = createRequire(import.meta.url);
const version = (name) => {
  try {
    // Read from the package's directory: not every package exports its package.json.
    let dir = path.dirname(require.resolve(name));
    while (!dir.endsWith(`node_modules${path.sep}${name.replace('/', path.sep)}`) && dir !== path.dirname(dir)) dir = path.dirname(dir);
    return JSON.parse(readFileSync(path.join(dir, 'package.json'), 'utf8')).version;
  } catch {
    return 'missing';
  }
};
const versions = {
  node: process.version,
  express: version('express'),
  fastify: version('fastify'),
  'express-rate-limit': version('express-rate-limit'),
  'rate-limit-redis': version('rate-limit-redis'),
  '@fastify/rate-limit': version('@fastify/rate-limit'),
  ioredis: version('ioredis'),
  wrk: /wrk (\S+)/.exec(spawnSync(wrk, ['--version'], { encoding: 'utf8' }).stdout)?.[1] ?? '?',
};

const loadBefore = os.loadavg();
const started = performance.now();
const log = (line) => process.stderr.write(`${line}\n`);
let report;
try {
  if (needRedis) {
    redis = await startRedis();
    versions.redis = redis.version;
  }
  pinNote ??=
    `servers pinned to CPU ${SERVER_CPU}, wrk (${THREADS} thread${THREADS > 1 ? 's' : ''}) and this script to CPU ${GENERATOR_CPU}` +
    (needRedis ? `, redis-server to CPU ${redisCpu}` : '') +
    ' (taskset)' +
    (NICE !== undefined ? `; servers, wrk and redis-server at niceness ${NICE}` : '');

  for (const v of variants) await startServer(v);
  const ready = variants.filter((v) => v.child);

  // Probe: the route answers, and the limiter is in the path (it sends rate-limit headers).
  for (const v of ready) {
    const p = await probe(v);
    if (p.status !== 200 || p.body !== JSON.stringify({ hello: 'world' })) throw new Error(`${v.id}: GET / answered ${p.status} ${p.body.slice(0, 200)}`);
    v.limitHeaders = p.headers.filter((h) => /ratelimit/i.test(h));
    if (v.bare && v.limitHeaders.length > 0) throw new Error(`${v.id}: a bare server sends rate-limit headers (${v.limitHeaders.join(', ')})`);
    if (!v.bare && !v.diagnostic && v.limitHeaders.length === 0) throw new Error(`${v.id}: no rate-limit header in the answer: is the limiter in the path? (headers: ${p.headers.join(', ')})`);
  }

  if (WARMUP_S > 0) {
    for (const v of ready) {
      log(`warm-up ${v.id} (${WARMUP_S} s)`);
      await measure(v, WARMUP_S);
    }
  }

  const rounds = ready.map(() => []);
  for (let round = 0; round < ROUNDS; round++) {
    for (let k = 0; k < ready.length; k++) {
      const i = (k + round) % ready.length;
      rounds[i].push(await measure(ready[i], DURATION_S));
    }
    log(`round ${round + 1}/${ROUNDS} done (${((performance.now() - started) / 1000).toFixed(0)} s)`);
  }
  const loadAfter = os.loadavg();

  const rows = variants.map((v) => {
    const row = { id: v.id, framework: v.framework, variant: v.label, bare: v.bare };
    if (!v.child) return { ...row, unavailable: v.unavailable };
    const runs = rounds[ready.indexOf(v)];
    const bareRuns = rounds[ready.findIndex((b) => b.bare && b.framework === v.framework)];
    return {
      ...row,
      rps: median(runs.map((r) => r.rps)),
      p50: median(runs.map((r) => r.p50)),
      p99: median(runs.map((r) => r.p99)),
      rpsRatio: median(runs.map((r, i) => r.rps / bareRuns[i].rps)),
      p99Ratio: median(runs.map((r, i) => r.p99 / bareRuns[i].p99)),
      serverCpuUsPerRequest: median(runs.map((r) => r.serverCpuUsPerRequest)),
      // Bare's CPU cost per request over this variant's: roughly what req/s ÷ bare would be if the
      // server got all of its core in both runs. Less sensitive to other processes than req/s.
      cpuCostRatio: median(runs.map((r, i) => bareRuns[i].serverCpuUsPerRequest / r.serverCpuUsPerRequest)),
      serverCpu: median(runs.map((r) => r.serverCpu)),
      generatorCpuBusy: median(runs.map((r) => r.generatorCpuBusy)),
      serverCpuBusy: median(runs.map((r) => r.serverCpuBusy)),
      redisCpu: v.redis ? median(runs.map((r) => r.redisCpu)) : undefined,
      wrkCpu: median(runs.map((r) => r.wrkCpu)),
      limitHeaders: v.limitHeaders,
      requestsPerRedisScriptCall: v.redis ? median(runs.map((r) => r.requests / r.redisScripts)) : undefined,
      redisCommandsPerRequest: v.redis ? median(runs.map((r) => r.redisCommands / r.requests)) : undefined,
      rounds: runs,
    };
  });
  const targets = TARGETS.map((t) => {
    const row = rows.find((r) => r.id === t.id);
    const base = rows.find((r) => r.id === t.base);
    // Medians of the per-round ratios to the base, as ÷ bare and ÷ bare by CPU are computed.
    const both = row?.rounds !== undefined && base?.rounds !== undefined;
    const ratio = both ? median(row.rounds.map((r, i) => r.rps / base.rounds[i].rps)) : undefined;
    const cpuCostRatio = both
      ? median(row.rounds.map((r, i) => base.rounds[i].serverCpuUsPerRequest / r.serverCpuUsPerRequest))
      : undefined;
    return { ...t, ratio, cpuCostRatio, status: row === undefined ? 'not measured (filtered out)' : row.unavailable ? `n/a (${row.unavailable})` : ratio >= t.min ? 'met' : 'NOT met' };
  });
  // Signs that something other than the server's CPU bounded a variant's figures: one line per
  // variant, listing what was seen (medians over rounds).
  const warnings = [];
  for (const r of rows) {
    if (r.unavailable || !pinned) continue;
    const seen = [];
    const redisOn0 = r.redisCpu !== undefined && redisCpu === GENERATOR_CPU ? r.redisCpu : 0;
    const redisOn1 = r.redisCpu !== undefined && redisCpu === SERVER_CPU ? r.redisCpu : 0;
    const intruders = r.serverCpuBusy - r.serverCpu - redisOn1;
    if (r.serverCpu < 0.9) {
      seen.push(
        intruders > 0.1
          ? `the server got ${pct(r.serverCpu)} of CPU ${SERVER_CPU}, other processes ~${pct(intruders)}`
          : `the server used only ${pct(r.serverCpu)} of CPU ${SERVER_CPU}: it was not saturated`,
      );
    } else if (intruders > 0.1) {
      seen.push(`other processes took ~${pct(intruders)} of CPU ${SERVER_CPU}`);
    }
    if (r.generatorCpuBusy > 0.9) {
      const others = r.generatorCpuBusy - (r.wrkCpu || 0) - redisOn0;
      seen.push(`CPU ${GENERATOR_CPU} was ${pct(r.generatorCpuBusy)} busy (wrk ${pct(r.wrkCpu)}${redisOn0 ? `, Redis ${pct(redisOn0)}` : ''}, other processes ~${pct(others)}): wrk may have been short of CPU`);
    }
    if (seen.length > 0) warnings.push(`${r.id}: ${seen.join('; ')}`);
  }
  const meta = {
    versions,
    cpu: `${os.cpus()[0]?.model ?? 'cpu'} × ${cpuCount}`,
    pinning: pinNote,
    rounds: ROUNDS,
    durationS: DURATION_S,
    warmupS: WARMUP_S,
    connections: CONNECTIONS,
    threads: THREADS,
    keys: KEYS,
    peerHeaders: args['peer-headers'],
    nice: NICE,
    filter: args.filter,
    loadBefore,
    loadAfter,
    seconds: (performance.now() - started) / 1000,
    command: `node benchmarks/http.mjs ${process.argv.slice(2).join(' ')}`.trim(),
  };
  report = { meta, rows, targets, warnings };
} catch (error) {
  // Every check above throws an Error whose message says what went wrong and where; anything
  // else (a bug here) keeps its stack.
  const checked = error instanceof Error && error.constructor === Error && !error.code;
  console.error(`\nHTTP benchmark FAILED: ${checked ? error.message : error?.stack ?? error}`);
  process.exitCode = 1;
} finally {
  await shutdown();
}
if (report === undefined) process.exit();

function pct(x) {
  return Number.isFinite(x) ? `${Math.round(x * 100)} %` : 'n/a';
}

if (args.json) {
  console.log(JSON.stringify(report, null, 2));
} else {
  const { meta, rows, targets, warnings } = report;
  const int = (x) => (Number.isFinite(x) ? Math.round(x).toLocaleString('en') : 'n/a');
  const ms = (x) => (Number.isFinite(x) ? `${x.toFixed(x < 1 ? 3 : 2)} ms` : 'n/a');
  const ratio = (x) => (Number.isFinite(x) ? `${x.toFixed(2)}×` : 'n/a');
  const la = (l) => l.map((x) => x.toFixed(2)).join(' ');
  const v = meta.versions;
  console.log('');
  console.log(
    `Node ${v.node}, ${meta.cpu}; Express ${v.express}, Fastify ${v.fastify}, express-rate-limit ${v['express-rate-limit']}, ` +
      `rate-limit-redis ${v['rate-limit-redis']}, @fastify/rate-limit ${v['@fastify/rate-limit']}, ioredis ${v.ioredis}` +
      `${v.redis ? `, Redis ${v.redis}` : ''}, wrk ${v.wrk}; ${meta.pinning}. ` +
      `wrk -t ${meta.threads} -c ${meta.connections}, ${meta.keys === 1 ? 'one key (client IP)' : `${meta.keys.toLocaleString('en')} keys (${KEY_HEADER} header)`}; ` +
      `warm-up ${meta.warmupS} s, then ${meta.rounds} rounds of ${meta.durationS} s per variant (interleaved), medians; ÷ bare: median of the per-round ratios to the same framework's bare server; ` +
      `peers send ${meta.peerHeaders === 'draft' ? 'draft' : 'their default'} rate-limit headers; load average ${la(meta.loadBefore)} before, ${la(meta.loadAfter)} after; ${meta.seconds.toFixed(0)} s.`,
  );
  console.log('');
  console.log(`Command: \`${meta.command}\``);
  console.log('');
  console.log('| framework | variant | req/s | p50 | p99 | ÷ bare | p99 ÷ bare | server µs/req | ÷ bare by CPU | CPU: server / wrk / Redis | rounds (req/s) |');
  console.log('|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---|');
  for (const r of rows) {
    if (r.unavailable) {
      console.log(`| ${r.framework} | ${r.variant} | n/a (${r.unavailable.startsWith('adapter missing') ? 'adapter missing' : r.unavailable}) | | | | | | | | |`);
      continue;
    }
    console.log(
      `| ${r.framework} | ${r.variant} | ${int(r.rps)} | ${ms(r.p50)} | ${ms(r.p99)} | ${r.bare ? '—' : ratio(r.rpsRatio)} | ${r.bare ? '—' : ratio(r.p99Ratio)} | ` +
        `${r.serverCpuUsPerRequest.toFixed(1)} | ${r.bare ? '—' : ratio(r.cpuCostRatio)} | ${pct(r.serverCpu)} / ${pct(r.wrkCpu)} / ${r.redisCpu !== undefined ? pct(r.redisCpu) : '—'} | ${r.rounds.map((x) => int(x.rps)).join(', ')} |`,
    );
  }
  console.log('');
  for (const t of targets) {
    const cost = Number.isFinite(t.cpuCostRatio) ? ` (by server CPU per request: ${ratio(t.cpuCostRatio)})` : '';
    console.log(`Target: ${t.text}: ${Number.isFinite(t.ratio) ? `${ratio(t.ratio)} — ` : ''}${t.status}${cost}.`);
  }
  const peers = rows.filter((r) => ISSUE_FIGURES[r.id] !== undefined && !r.unavailable);
  if (peers.length > 0) {
    console.log(`Peers here vs the issue's figures: ${peers.map((r) => `${r.framework} + ${r.variant} ${ratio(r.rpsRatio)}, by CPU ${ratio(r.cpuCostRatio)} (issue: ${ratio(ISSUE_FIGURES[r.id])})`).join('; ')}.`);
  }
  const headerNotes = rows.filter((r) => r.limitHeaders?.length).map((r) => `${r.framework} + ${r.variant}: ${r.limitHeaders.join(', ')}`);
  if (headerNotes.length > 0) console.log(`Rate-limit headers sent: ${headerNotes.join('; ')}.`);
  const redisNotes = rows
    .filter((r) => r.redisCommandsPerRequest !== undefined)
    .map((r) => `${r.framework} + ${r.variant} ${r.requestsPerRedisScriptCall.toFixed(1)} requests per script call, ${r.redisCommandsPerRequest.toFixed(2)} commands per request`);
  if (redisNotes.length > 0) console.log(`Redis (medians; commands include those run inside scripts): ${redisNotes.join('; ')}.`);
  if (warnings.length > 0) {
    console.log('');
    console.log('WARNING: these figures may not measure the server alone (CPU use from /proc, medians over rounds; "÷ bare by CPU" is less disturbed, not immune):');
    for (const w of warnings) console.log(`- ${w}`);
  }
  printTargets(
    targets.map((t) => ({
      name: `${t.text.replace(/ ≥ [\d.]+× /, ' ÷ ')}, req/s`,
      met: t.status === 'met' ? true : t.status === 'NOT met' ? false : null,
      value: Number.isFinite(t.ratio) ? `${ratio(t.ratio)}` : t.status,
      target: `≥ ${t.min.toFixed(2)}×`,
    })),
  );
}
