// Instructions per request, counted by callgrind: a noise-free companion to http.mjs for the small
// differences the shared machine's timing cannot resolve (what a hook, two headers or a limiter
// adds to a bare Fastify request). Each variant is http-server.mjs run under
// `valgrind --tool=callgrind --separate-threads=yes`; a client in this process makes --warmup
// keep-alive requests (--concurrency at a time, 8 unless told), callgrind's counters are zeroed,
// --requests more are made, and the counters are dumped. The figure is the main thread's instructions ÷ requests: the JS and
// the HTTP work. V8's helper threads (parallel GC, concurrent compiling) are shown apart. With a
// short warm-up (4,000 requests) the main thread's count moved by up to 2 % between runs, as code
// was still being optimised; 12,000 warm-up requests let it settle.
//
//   npm run build && node benchmarks/http-instructions.mjs [--filter REGEX] [--requests 4000] [--warmup 12000] [--concurrency 8] [--keep DIR]
//
// --keep DIR saves each variant's main-thread dump and V8's map of its compiled code (node runs
// with --perf-basic-prof, which adds a little to the counts) for benchmarks/callgrind-jit.mjs.
//
// Needs valgrind (apt-get install -y valgrind). The Redis variants (run only when --filter names
// them) also need redis-server: one is started here, on a free loopback port, and killed at the
// end. Only the HTTP server runs under callgrind; Redis's own work is not counted. How many
// decisions share one Redis call depends on --concurrency.
import { spawn, execFileSync } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import http from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { callgrindNode, freePort, onPath, redisCommand, requireCounts } from './support.mjs';

const { values: args } = parseArgs({
  options: {
    filter: { type: 'string' },
    requests: { type: 'string', default: '4000' },
    warmup: { type: 'string', default: '12000' },
    concurrency: { type: 'string', default: '8' },
    keep: { type: 'string' },
  },
});
requireCounts(args, ['requests', 'warmup', 'concurrency']);
const REQUESTS = Number(args.requests);
const WARMUP = Number(args.warmup);
const CONCURRENCY = Number(args.concurrency);
callgrindNode(tmpdir(), false); // exits at once when valgrind is missing

const VARIANTS = [
  ['fastify-bare', 'bare'],
  ['fastify-hook', 'an empty onRequest hook'],
  ['fastify-headers', 'two constant rate-limit headers, no limiter'],
  ['fastify-bulwark-memory-noheaders', "bulwark, memoryStore, headers: 'none'"],
  ['fastify-bulwark-memory', 'bulwark, memoryStore (draft headers, the default)'],
  ['fastify-frl-memory', '@fastify/rate-limit, memory (draft headers)'],
  ['fastify-bulwark-redis', 'bulwark, redisStore (draft headers)', 'redis'],
  ['fastify-frl-redis', '@fastify/rate-limit, Redis (draft headers)', 'redis'],
  ['express-bare', 'bare'],
  ['express-hook', 'an empty middleware'],
  ['express-headers', 'two constant rate-limit headers, no limiter'],
  ['express-bulwark-memory-noheaders', "bulwark, memoryStore, headers: 'none'"],
  ['express-bulwark-memory', 'bulwark, memoryStore (draft headers)'],
  ['express-erl-memory', 'express-rate-limit, memory (draft headers)'],
  ['express-bulwark-redis', 'bulwark, redisStore (draft headers)', 'redis'],
].filter(([id, , redis]) => (args.filter === undefined ? redis === undefined : new RegExp(args.filter).test(id)));
const needRedis = VARIANTS.some(([, , redis]) => redis !== undefined);
const redisServer = needRedis ? onPath('redis-server') : undefined;
if (needRedis && redisServer === undefined) {
  console.error('redis-server was not found on PATH (apt-get install -y redis-server)');
  process.exit(1);
}

/** `count` GET / requests, CONCURRENCY at a time over keep-alive connections. */
function load(port, count) {
  const agent = new http.Agent({ keepAlive: true, maxSockets: CONCURRENCY });
  let started = 0;
  let finished = 0;
  return new Promise((resolve, reject) => {
    const one = () => {
      if (started >= count) return;
      started++;
      http
        .get({ host: '127.0.0.1', port, path: '/', agent }, (res) => {
          if (res.statusCode !== 200) reject(new Error(`GET / answered ${res.statusCode}`));
          res.resume();
          res.on('end', () => (++finished === count ? resolve() : one()));
        })
        .on('error', reject);
    };
    for (let i = 0; i < CONCURRENCY; i++) one();
  }).finally(() => agent.destroy());
}

async function measure(id) {
  const dir = mkdtempSync(join(tmpdir(), 'bulwark-callgrind-'));
  const { valgrind, control, args: command } = callgrindNode(dir, args.keep !== undefined);
  const child = spawn(
    valgrind,
    [...command, 'benchmarks/http-server.mjs', id],
    { stdio: ['ignore', 'ignore', 'ignore', 'ipc'], env: { ...process.env, BULWARK_HTTP_REDIS_PORT: String(redis?.port ?? '') } },
  );
  try {
    const port = await new Promise((resolve, reject) => {
      child.on('message', (m) => (m.type === 'ready' ? resolve(m.port) : reject(new Error(`${id}: ${JSON.stringify(m)}`))));
      child.once('exit', (code) => reject(new Error(`${id}: the server exited (${code})`)));
    });
    await load(port, WARMUP);
    execFileSync(control, ['-z', String(child.pid)], { stdio: 'ignore' });
    const before = redis === undefined ? 0 : await scriptCalls();
    await load(port, REQUESTS);
    execFileSync(control, ['-d', String(child.pid)], { stdio: 'ignore' });
    const calls = redis === undefined ? 0 : (await scriptCalls()) - before;
    const perThread = readdirSync(dir)
      .filter((f) => /^cg\.out\.1-\d+$/.test(f))
      .sort()
      .map((f) => Number(/^summary: (\d+)$/m.exec(readFileSync(join(dir, f), 'utf8'))?.[1] ?? 0));
    if (perThread.length === 0) throw new Error(`${id}: callgrind wrote no dump`);
    const [main, ...helpers] = perThread;
    if (args.keep) {
      // The main thread's dump and V8's map of its compiled code, for benchmarks/callgrind-jit.mjs.
      mkdirSync(args.keep, { recursive: true });
      const first = readdirSync(dir).filter((f) => /^cg\.out\.1-\d+$/.test(f)).sort()[0];
      copyFileSync(join(dir, first), join(args.keep, `${id}.callgrind`));
      copyFileSync(`/tmp/perf-${child.pid}.map`, join(args.keep, `${id}.perf-map`));
    }
    return { main: main / REQUESTS, helpers: helpers.reduce((a, b) => a + b, 0) / REQUESTS, perScriptCall: calls > 0 ? REQUESTS / calls : undefined };
  } finally {
    child.kill('SIGKILL');
    await new Promise((resolve) => (child.exitCode !== null || child.signalCode !== null ? resolve() : child.once('exit', resolve)));
    if (args.keep) rmSync(`/tmp/perf-${child.pid}.map`, { force: true });
    rmSync(dir, { recursive: true, force: true });
  }
}

/** A throwaway redis-server on a free loopback port, no persistence; killed by pid on exit. */
async function startRedis() {
  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), 'bulwark-callgrind-redis-'));
  const child = spawn(redisServer, ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir], { stdio: 'ignore' });
  process.on('exit', () => {
    child.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  });
  for (let i = 0; i < 200; i++) {
    if ((await redisCommand(port, ['PING'], 500).catch(() => '')).startsWith('+PONG')) return { port };
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  throw new Error(`redis-server on port ${port} did not answer PING within 10 s`);
}
const redis = needRedis ? await startRedis() : undefined;

/** Script calls (EVAL, EVALSHA) Redis has run so far. */
async function scriptCalls() {
  const reply = await redisCommand(redis.port, ['INFO', 'commandstats']);
  let calls = 0;
  for (const m of reply.matchAll(/^cmdstat_(?:eval|evalsha):calls=(\d+)/gm)) calls += Number(m[1]);
  return calls;
}

const rows = [];
for (const [id, label] of VARIANTS) {
  const r = await measure(id);
  rows.push({ id, label, ...r });
  console.error(`${id}: ${(r.main / 1000).toFixed(1)}k main-thread instructions per request${r.perScriptCall ? `, ${r.perScriptCall.toFixed(1)} requests per script call` : ''}`);
}
console.log(`\nNode ${process.version}; callgrind; ${WARMUP} warm-up requests, then ${REQUESTS} counted (${CONCURRENCY} at a time, keep-alive).\n`);
console.log(`Command: \`node benchmarks/http-instructions.mjs${process.argv.slice(2).length ? ' ' + process.argv.slice(2).join(' ') : ''}\`\n`);
const withRedis = rows.some((r) => r.perScriptCall !== undefined);
console.log(`| variant | main thread, instructions/request | over bare | ÷ bare, as req/s would be | V8 helper threads (varies) |${withRedis ? ' requests per script call |' : ''}`);
console.log(`|---|---:|---:|---:|---:|${withRedis ? '---:|' : ''}`);
for (const r of rows) {
  const bare = rows.find((b) => b.id === `${r.id.split('-')[0]}-bare`);
  const signed = (x, digits) => `${x >= 0 ? '+' : '−'}${Math.abs(x).toFixed(digits)}`;
  const over = bare && r !== bare ? `${signed((r.main - bare.main) / 1000, 1)}k (${signed(((r.main - bare.main) / bare.main) * 100, 1)} %)` : '—';
  const ratio = bare && r !== bare ? `${(bare.main / r.main).toFixed(3)}×` : '—';
  console.log(`| ${r.id.split('-')[0] === 'fastify' ? 'Fastify' : 'Express'}: ${r.label} | ${(r.main / 1000).toFixed(1)}k | ${over} | ${ratio} | ${(r.helpers / 1000).toFixed(1)}k |${withRedis ? ` ${r.perScriptCall?.toFixed(1) ?? '—'} |` : ''}`);
}
process.exit(0); // the redis-server child, if any, is killed on exit
