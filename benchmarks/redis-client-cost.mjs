// Client CPU per decision at concurrency 1 (one decision at a time, nothing to batch), for
// bulwark's Redis store (fixedWindow, gcra) and rate-limiter-flexible's RateLimiterRedis, with a
// plain PING as the floor of one round trip through ioredis. Diagnostic (issue 14 §1): CPU time
// from process.cpuUsage() over N sequential decisions, user + system, so it counts the kernel's
// share of each round trip too; medians of 5 rounds, contenders in turn.
//
//   taskset -c 1 redis-server --port 6399 --save '' --appendonly no &
//   npm run build && taskset -c 0 node benchmarks/redis-client-cost.mjs --port 6399 [--decisions 10000]
//   taskset -c 0 node benchmarks/redis-client-cost.mjs --fake [--decisions 200000]
//
// --fake: no Redis; the store's client answers every call at once with a well-formed reply, so
// what is measured is bulwark's own JavaScript per decision (limiter, batcher, pending record,
// deadline queue, reply reader), without ioredis or any I/O.
import { createRequire } from 'node:module';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { requireCounts } from './support.mjs';

const { values: args } = parseArgs({
  options: {
    port: { type: 'string', default: '6379' },
    decisions: { type: 'string' },
    fake: { type: 'boolean', default: false },
  },
});
args.decisions ??= args.fake ? '200000' : '10000';
requireCounts(args, ['port', 'decisions']);
const N = Number(args.decisions);
const require = createRequire(import.meta.url);
const { fixedWindow, gcra, rateLimiter } = await import('../dist/index.js');
const { redisStore } = await import('../dist/redis.js');

/**
 * A client that answers every script call at once, as the scripts (version 4) do: remaining 5,
 * reset in 1 s, for each decision, after the server time (ms × 4) when the call asked for it
 * (flag 2, the third argument after staleAfterUs; fixedWindow and gcra take two fixed arguments).
 */
function instantClient() {
  return {
    status: 'ready',
    stream: {},
    defineCommand(name) {
      this[name] = (n, ...rest) => {
        const optional = rest.length - n - 3;
        const out = optional === 3 && (Number(rest.at(-1)) & 2) !== 0 ? [Date.now() * 4] : [];
        for (let i = 0; i < n; i++) out.push(5, 1000);
        return Promise.resolve(out);
      };
    },
    info: () => Promise.resolve('run_id:0\n'),
  };
}

let client;
const contenders = {};
if (args.fake) {
  client = instantClient();
} else {
  const { Redis } = require('ioredis');
  client = new Redis({ port: Number(args.port), host: '127.0.0.1', enableOfflineQueue: false, lazyConnect: true });
  await client.connect();
  const { RateLimiterRedis } = require('rate-limiter-flexible');
  const rlf = new RateLimiterRedis({ storeClient: client, points: 1e9, duration: 3600, keyPrefix: 'cost-rlf' });
  contenders.ping = () => client.ping();
  contenders.RateLimiterRedis = (key) => rlf.consume(key);
}
const store = redisStore(client, { timeoutMs: 10_000 });
const fixed = rateLimiter({ name: 'cost-fixed', algorithm: fixedWindow({ limit: 1e9, windowMs: 3_600_000 }), store });
const bucket = rateLimiter({ name: 'cost-gcra', algorithm: gcra({ limit: 10_000, periodMs: 1_000 }), store });
contenders['bulwark fixedWindow'] = (key) => fixed.consume(key);
contenders['bulwark gcra'] = (key) => bucket.consume(key);

const keys = Array.from({ length: 10_000 }, (_, i) => `user-${String(i).padStart(5, '0')}`);
const runs = {};
for (let round = 0; round < 5; round++) {
  for (const [name, decide] of Object.entries(contenders)) {
    const cpu0 = process.cpuUsage();
    const t0 = performance.now();
    for (let i = 0; i < N; i++) await decide(keys[i % keys.length]);
    const wall = performance.now() - t0;
    const cpu = process.cpuUsage(cpu0);
    (runs[name] ??= []).push({ cpu: (cpu.user + cpu.system) / N, wall: (wall * 1000) / N });
  }
}
const median = (xs) => [...xs].sort((a, b) => a - b)[xs.length >> 1];
console.log(`${N} sequential decisions per round, 5 rounds, medians${args.fake ? ' (--fake: no Redis, no I/O)' : ''}:`);
for (const [name, rs] of Object.entries(runs)) {
  console.log(`  ${name}: ${median(rs.map((r) => r.cpu)).toFixed(2)} µs CPU, ${median(rs.map((r) => r.wall)).toFixed(2)} µs wall per decision`);
}
if (!args.fake) client.disconnect();
