// Redis memory per key: what one rate-limited caller costs the Redis server, for bulwark's Redis
// store (fixedWindow, slidingWindow, gcra) and rate-limiter-flexible's `RateLimiterRedis`, with
// the same user keys on both sides.
//
//   npm run bench                                      (builds, then runs every benchmark)
//   npm run build && node benchmarks/redis-memory.mjs [--keys 100000] [--quick] [--dist DIR]
//
// --quick: accepted (npm run bench -- --quick passes it) and changes nothing: the run is short, and
// fewer keys would change the hash tables' share of each key (8 B a bucket, 2 tables, sized to a
// power of two: 21 B a key at 100,000 keys, 26 B at 20,000).
// --dist: the build to measure (default ../dist), e.g. a copy of an older build for a before/after.
// --instructions: instead of the tables above, Redis's instructions per decision (redis-server
// under valgrind's callgrind, counters zeroed before and dumped after each workload): the script
// cost without the timing noise of a shared machine. 2,000 keys that already hold a value; one
// decision at a time, then 128 at a time. Slow (about a minute); needs valgrind.
// --no-time: leave out the second table, Redis's time in scripts per decision (a timing, unlike
// the memory figures: run it under the machine's benchmark lock when others measure too).
//
// Method: the script starts its own redis-server (no persistence, temp dir, free loopback port,
// maxmemory-policy noeviction: Redis's default). For each contender and each user-key length (8
// and 36 characters; the same keys for everyone), it empties the server, reads `used_memory`,
// makes one consume() per key through the contender's public API (1,000 at a time), reads
// `used_memory` again, and reports the difference divided by the number of keys. Every key on
// both sides carries a TTL (an expires entry each). The limiter is named `login`, and
// RateLimiterRedis is measured twice: with its default key prefix (`rlflx`) and with the prefix
// `login` (the same name in both keys). Memory is counted by Redis, so the figures do not depend
// on the machine's speed. A second table gives Redis's time in scripts per decision (INFO
// commandstats): what each contender's per-key path costs the server, one decision at a time and
// 128 at a time.
//
// Target (issue 14 §1): every bulwark algorithm ≤ 1.2× RateLimiterRedis's memory per key.
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { cleanUpOnExit, freePort, onPath, printTargets } from './support.mjs';

const HOST = '127.0.0.1';
const TARGET = 1.2;

const { values: args } = parseArgs({
  options: {
    keys: { type: 'string' },
    quick: { type: 'boolean', default: false },
    dist: { type: 'string' },
    'no-time': { type: 'boolean', default: false },
    instructions: { type: 'boolean', default: false },
  },
});
const KEYS = Number(args.keys ?? '100000');
if (!Number.isInteger(KEYS) || KEYS < 1000) {
  console.error(`--keys must be a whole number of at least 1000, got ${args.keys}`);
  process.exit(1);
}
const distDir = path.resolve(args.dist ?? new URL('../dist', import.meta.url).pathname);

const require = createRequire(import.meta.url);
const { Redis } = await import('ioredis');
const { RateLimiterRedis } = require('rate-limiter-flexible');
const rlfVersion = require('rate-limiter-flexible/package.json').version;
let bulwark;
let bulwarkRedis;
try {
  bulwark = await import(pathToFileURL(path.join(distDir, 'index.js')).href);
  bulwarkRedis = await import(pathToFileURL(path.join(distDir, 'redis.js')).href);
} catch (error) {
  console.error(`${distDir} is missing or broken: run \`npm run build\` first (npm run bench does it).\n${error.message}`);
  process.exit(1);
}
const { fixedWindow, gcra, rateLimiter, slidingWindow } = bulwark;
const { redisStore } = bulwarkRedis;

let server;
function killServer() {
  if (server === undefined) return;
  server.child.kill('SIGKILL');
  rmSync(server.dir, { recursive: true, force: true });
  server = undefined;
}
cleanUpOnExit(killServer);

async function startServer() {
  const redisServer = onPath('redis-server');
  if (redisServer === undefined) throw new Error('redis-server was not found on PATH (apt-get install -y redis-server)');
  const dir = mkdtempSync(path.join(os.tmpdir(), 'bulwark-bench-redis-memory-'));
  const port = await freePort();
  const argv = ['--port', String(port), '--bind', HOST, '--dir', dir, '--save', '', '--appendonly', 'no', '--maxmemory-policy', 'noeviction'];
  let child;
  if (args.instructions) {
    const valgrind = onPath('valgrind');
    if (valgrind === undefined || onPath('callgrind_control') === undefined) throw new Error('valgrind was not found on PATH (apt-get install -y valgrind)');
    child = spawn(valgrind, ['-q', '--tool=callgrind', `--callgrind-out-file=${path.join(dir, 'cg.out')}`, redisServer, ...argv], { stdio: 'ignore' });
  } else {
    child = spawn(redisServer, argv, { stdio: 'ignore' });
  }
  child.on('error', () => {});
  server = { child, dir, port };
}

/** `count` user keys of `length` characters, the same for every contender. */
function userKeys(count, length) {
  const keys = [];
  for (let i = 0; i < count; i++) {
    const n = i.toString(36);
    keys.push(`u${'0'.repeat(length - 1 - n.length)}${n}`);
  }
  return keys;
}

async function usedMemory(client) {
  const info = await client.info('memory');
  return Number(/^used_memory:(\d+)/m.exec(info)[1]);
}

/** Microseconds Redis spent in script calls (EVAL and EVALSHA) since the last CONFIG RESETSTAT. */
async function scriptMicros(client) {
  const info = await client.info('commandstats');
  let usec = 0;
  for (const m of info.matchAll(/^cmdstat_(?:eval|evalsha):calls=\d+,usec=(\d+)/gm)) usec += Number(m[1]);
  return usec;
}

/**
 * Redis's time in scripts per decision: `passes` decisions per key, `inFlight` at a time (the
 * store batches what one tick brings), read from INFO commandstats.
 */
async function scriptCost(client, keys, decide, passes, inFlight) {
  await client.config('RESETSTAT');
  for (let pass = 0; pass < passes; pass++) {
    for (let i = 0; i < keys.length; i += inFlight) await Promise.all(keys.slice(i, i + inFlight).map(decide));
  }
  return (await scriptMicros(client)) / (passes * keys.length);
}

/** Bytes per key after one decision per key by `decide`. */
async function measure(client, keys, decide) {
  await client.flushall();
  const before = await usedMemory(client);
  for (let i = 0; i < keys.length; i += 1000) {
    await Promise.all(keys.slice(i, i + 1000).map(decide));
  }
  const written = await client.dbsize();
  if (written !== keys.length) throw new Error(`expected ${keys.length} keys, found ${written}`);
  const after = await usedMemory(client);
  return (after - before) / keys.length;
}

/** Instructions redis-server ran for `workload` (callgrind's counters zeroed before, dumped after). */
async function instructions(workload) {
  const control = onPath('callgrind_control');
  spawnSync(control, ['-z', String(server.child.pid)], { stdio: 'ignore' });
  await workload();
  spawnSync(control, ['-d', String(server.child.pid)], { stdio: 'ignore' });
  const dumps = readdirSync(server.dir)
    .filter((f) => f.startsWith('cg.out'))
    .map((f) => path.join(server.dir, f))
    .sort((a, b) => statSync(b).mtimeMs - statSync(a).mtimeMs);
  const text = readFileSync(dumps[0], 'utf8');
  return Number(/^(?:summary|totals): (\d+)/m.exec(text)[1]);
}

let client;
const targets = [];
try {
  await startServer();
  client = new Redis({ host: HOST, port: server.port, lazyConnect: true, maxRetriesPerRequest: 1 });
  client.on('error', () => {});
  for (let tries = 0; ; tries++) {
    try {
      await client.connect();
      break;
    } catch (error) {
      if (tries > 600) throw error;
      client.disconnect();
      await sleep(50);
    }
  }
  const redisVersion = /redis_version:(\S+)/.exec(await client.info('server'))?.[1] ?? '?';
  const HOUR_MS = 3_600_000;
  const LIMIT = 100;
  // The store's marker key (one per prefix) is checked at most once an hour here, so it is written
  // by the warm-up decision, not during a measured run.
  // One store per limiter: they all use the name `login` (a store refuses two limiters of one name).
  const store = () => redisStore(client, { timeoutMs: 10_000, stateCheckMs: HOUR_MS });
  const limiters = {
    fixedWindow: rateLimiter({ name: 'login', algorithm: fixedWindow({ limit: LIMIT, windowMs: HOUR_MS }), store: store() }),
    slidingWindow: rateLimiter({ name: 'login', algorithm: slidingWindow({ limit: LIMIT, windowMs: HOUR_MS }), store: store() }),
    gcra: rateLimiter({ name: 'login', algorithm: gcra({ limit: LIMIT, periodMs: HOUR_MS }), store: store() }),
  };
  const rlfDefault = new RateLimiterRedis({ storeClient: client, points: LIMIT, duration: HOUR_MS / 1000 });
  const rlfNamed = new RateLimiterRedis({ storeClient: client, points: LIMIT, duration: HOUR_MS / 1000, keyPrefix: 'login' });
  const bulwarkDecide = (limiter) => async (key) => {
    const d = await limiter.consume(key);
    if (d.store !== 'redis' || !d.allowed) throw new Error(`a decision not made by Redis: ${JSON.stringify(d)}`);
  };
  const contenders = [
    { name: `RateLimiterRedis (rlf ${rlfVersion}), prefix rlflx`, rlf: true, decide: (key) => rlfDefault.consume(key) },
    { name: 'RateLimiterRedis, prefix login', rlf: true, decide: (key) => rlfNamed.consume(key) },
    ...Object.entries(limiters).map(([name, limiter]) => ({ name: `bulwark ${name}`, algorithm: name, decide: bulwarkDecide(limiter) })),
  ];

  if (args.instructions) {
    const keys = userKeys(2_000, 8);
    const pass = async (decide, inFlight) => {
      for (let i = 0; i < keys.length; i += inFlight) await Promise.all(keys.slice(i, i + inFlight).map(decide));
    };
    console.log(`Redis instructions per decision (redis-server ${redisVersion} under callgrind), ${keys.length} keys holding a value:`);
    const width = Math.max(...contenders.map((c) => c.name.length));
    console.log(`${'contender'.padEnd(width)}  ${'1 in flight'.padStart(14)}${'128 in flight'.padStart(16)}`);
    for (const contender of contenders) {
      await client.flushall();
      await pass(contender.decide, 128);
      const single = (await instructions(() => pass(contender.decide, 1))) / keys.length;
      const batched = (await instructions(() => pass(contender.decide, 128))) / keys.length;
      console.log(`${contender.name.padEnd(width)}  ${`${(single / 1000).toFixed(1)}k`.padStart(14)}${`${(batched / 1000).toFixed(1)}k`.padStart(16)}`);
    }
    printTargets([]);
    process.exit(0);
  }

  console.log(`Redis memory per key: used_memory difference ÷ ${KEYS.toLocaleString('en-US')} keys, one consume() each`);
  console.log(`redis-server ${redisVersion} (maxmemory-policy noeviction), node ${process.version}, ${os.cpus().length} CPUs; build: ${distDir}`);
  console.log('Key layout: bulwark `bulwark:{5:login:k:<key>}`; RateLimiterRedis `<prefix>:<key>`\n');

  const lengths = [8, 36];
  const rows = [];
  for (const contender of contenders) {
    const row = { name: contender.name, bytes: [] };
    for (const length of lengths) {
      // A warm-up decision on another key, then the measured run on a fresh server state.
      await contender.decide(`warm-up-${length}`);
      row.bytes.push(await measure(client, userKeys(KEYS, length), contender.decide));
    }
    rows.push(row);
    contender.row = row;
  }
  // Redis's time per decision: what the per-key path of each script costs the server (the limit at
  // high concurrency). 10,000 keys, 5 passes; batches of 1 (one decision at a time) and of 128.
  const costKeys = userKeys(10_000, 8);
  const costs = [];
  if (!args['no-time']) {
    for (const contender of contenders) {
      await client.flushall();
      const single = await scriptCost(client, costKeys.slice(0, 2_000), contender.decide, 1, 1);
      const batched = await scriptCost(client, costKeys, contender.decide, 5, 128);
      costs.push({ name: contender.name, single, batched });
    }
  }
  const worstRlf = lengths.map((_, i) => Math.min(...rows.filter((_, r) => contenders[r].rlf).map((row) => row.bytes[i])));
  const width = Math.max(...rows.map((r) => r.name.length));
  console.log(`${'contender'.padEnd(width)}  ${lengths.map((l) => `${l}-char keys`.padStart(22)).join('')}`);
  for (const row of rows) {
    const cells = row.bytes.map((b, i) => `${b.toFixed(1)} B (${(b / worstRlf[i]).toFixed(2)}×)`.padStart(22));
    console.log(`${row.name.padEnd(width)}  ${cells.join('')}`);
  }
  console.log('\n(×: against the smaller of the two RateLimiterRedis figures at that key length)');
  if (costs.length > 0) {
    console.log('\nRedis time in scripts per decision (INFO commandstats, EVAL + EVALSHA usec ÷ decisions; 8-char keys):');
    console.log(`${'contender'.padEnd(width)}  ${'1 in flight'.padStart(14)}${'128 in flight'.padStart(16)}`);
    for (const c of costs) console.log(`${c.name.padEnd(width)}  ${`${c.single.toFixed(2)} µs`.padStart(14)}${`${c.batched.toFixed(2)} µs`.padStart(16)}`);
  }
  for (const contender of contenders) {
    if (contender.rlf) continue;
    const ratios = contender.row.bytes.map((b, i) => b / worstRlf[i]);
    const worst = Math.max(...ratios);
    const met = worst <= TARGET;
    console.log(`Target: ${contender.name} memory per key ≤ ${TARGET}× RateLimiterRedis: ${ratios.map((r) => `${r.toFixed(2)}×`).join(', ')} (${lengths.join('/')}-char keys): ${met ? 'met' : 'NOT met'}`);
    targets.push({ name: `Redis memory per key, ${contender.name} ÷ RateLimiterRedis`, met, value: `${worst.toFixed(2)}×`, target: `≤ ${TARGET}×` });
  }
} finally {
  client?.disconnect();
  killServer();
}
printTargets(targets);
