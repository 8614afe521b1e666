// Where the slowest decisions of a closed loop at moderate concurrency lose their time (issue 14
// §1, p99 at concurrency 64). Diagnostic: for bulwark's Redis store (fixedWindow) and
// rate-limiter-flexible's RateLimiterRedis in turn, C workers each await a decision and ask the
// next; every decision's start and end are kept, and so is every garbage collection
// (PerformanceObserver 'gc': its start and length). Reported per contender: p50, p99, the share
// of the slowest 1 % whose wait overlapped a collection, and the p99 of the decisions that
// overlapped none (what the tail would be without the collector's pauses).
//
//   taskset -c 1 redis-server --port 6399 --save '' --appendonly no &
//   npm run build && taskset -c 0 node benchmarks/redis-tail.mjs --port 6399 [--concurrency 64] [--seconds 3] [--rounds 3]
import { createRequire } from 'node:module';
import { performance, PerformanceObserver } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { requireCounts } from './support.mjs';

const { values: args } = parseArgs({
  options: {
    port: { type: 'string', default: '6379' },
    concurrency: { type: 'string', default: '64' },
    seconds: { type: 'string', default: '3' },
    rounds: { type: 'string', default: '3' },
  },
});
requireCounts(args, ['port', 'concurrency', 'seconds', 'rounds']);
const C = Number(args.concurrency);
const require = createRequire(import.meta.url);
const { Redis } = require('ioredis');
const { RateLimiterRedis } = require('rate-limiter-flexible');
const { fixedWindow, rateLimiter } = await import('../dist/index.js');
const { redisStore } = await import('../dist/redis.js');

const client = new Redis({ port: Number(args.port), host: '127.0.0.1', enableOfflineQueue: false, lazyConnect: true });
await client.connect();
const rlf = new RateLimiterRedis({ storeClient: client, points: 1e9, duration: 3600, keyPrefix: 'tail-rlf' });
const store = redisStore(client, { timeoutMs: 10_000 });
const fixed = rateLimiter({ name: 'tail-fixed', algorithm: fixedWindow({ limit: 1e9, windowMs: 3_600_000 }), store });
const contenders = {
  'bulwark fixedWindow': (key) => fixed.consume(key),
  RateLimiterRedis: (key) => rlf.consume(key),
};
const keys = Array.from({ length: 10_000 }, (_, i) => `user-${String(i).padStart(5, '0')}`);

const gcs = [];
new PerformanceObserver((list) => {
  // detail.kind: 1 a scavenge (young generation), 2 a mark-sweep-compact, 4 incremental marking.
  for (const e of list.getEntries()) gcs.push([e.startTime, e.startTime + e.duration, e.detail?.kind ?? 0]);
}).observe({ entryTypes: ['gc'] });

/** Start and end of each decision, in one preallocated array: the record itself allocates nothing. */
const record = new Float64Array(2 * 2_000_000 * Math.max(1, Number(args.seconds)));

/** Runs the closed loop for `ms`; resolves with [start, end] of every decision. */
async function loop(decide, ms) {
  const stopAt = performance.now() + ms;
  let next = 0;
  let n = 0;
  const worker = async () => {
    while (performance.now() < stopAt) {
      const start = performance.now();
      await decide(keys[next++ % keys.length]);
      if (2 * n + 1 < record.length) {
        record[2 * n] = start;
        record[2 * n + 1] = performance.now();
        n++;
      }
    }
  };
  await Promise.all(Array.from({ length: C }, worker));
  return Array.from({ length: n }, (_, i) => [record[2 * i], record[2 * i + 1]]);
}

const quantile = (sorted, q) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))];
const median = (xs) => [...xs].sort((a, b) => a - b)[xs.length >> 1];
const results = {};
for (const decide of Object.values(contenders)) await loop(decide, 500); // warm-up
for (let round = 0; round < Number(args.rounds); round++) {
  for (const [name, decide] of Object.entries(contenders)) {
    gcs.length = 0;
    const spans = await loop(decide, Number(args.seconds) * 1000);
    await new Promise((resolve) => setImmediate(resolve)); // the observer's last entries
    const pauses = gcs.slice().sort((a, b) => a[0] - b[0]);
    const overlaps = ([s, e]) => pauses.some(([gs, ge]) => gs < e && ge > s);
    const latencies = spans.map(([s, e]) => e - s);
    const sorted = [...latencies].sort((a, b) => a - b);
    const p99 = quantile(sorted, 0.99);
    const tail = spans.filter(([s, e]) => e - s >= p99);
    const clean = spans.filter((span) => !overlaps(span)).map(([s, e]) => e - s).sort((a, b) => a - b);
    const gcMs = pauses.reduce((sum, [s, e]) => sum + (e - s), 0);
    const minorMs = pauses.reduce((sum, [s, e, kind]) => sum + (kind === 1 ? e - s : 0), 0);
    (results[name] ??= []).push({
      rate: spans.length / Number(args.seconds),
      p50: quantile(sorted, 0.5),
      p99,
      tailWithGc: tail.filter(overlaps).length / tail.length,
      allWithGc: spans.filter(overlaps).length / spans.length,
      cleanP99: quantile(clean, 0.99),
      gcPerS: pauses.length / Number(args.seconds),
      gcMsPerS: gcMs / Number(args.seconds),
      minorMsPerS: minorMs / Number(args.seconds),
      longestGc: Math.max(0, ...pauses.map(([s, e]) => e - s)),
    });
  }
}
console.log(`concurrency ${C}, ${args.seconds} s per contender and round, medians of ${args.rounds} rounds:`);
for (const [name, rs] of Object.entries(results)) {
  const m = (k) => median(rs.map((r) => r[k]));
  console.log(
    `  ${name}: ${Math.round(m('rate'))} decisions/s, p50 ${m('p50').toFixed(3)} ms, p99 ${m('p99').toFixed(3)} ms; ` +
      `collections ${m('gcPerS').toFixed(0)}/s, ${m('gcMsPerS').toFixed(1)} ms/s (scavenges ${m('minorMsPerS').toFixed(1)}), longest ${m('longestGc').toFixed(2)} ms; ` +
      `slowest 1 % overlapping one ${(m('tailWithGc') * 100).toFixed(0)} % (all decisions ${(m('allWithGc') * 100).toFixed(0)} %); ` +
      `p99 of those overlapping none ${m('cleanP99').toFixed(3)} ms`,
  );
}
client.disconnect();
