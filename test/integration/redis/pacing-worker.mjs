// A client process for pacing.test.ts and benchmarks/pacing.mjs: forked with one JSON argument
// { redisPort, url, ratePerSec, durationMs, startAt, id, mode, maxWaitMs }, it imports the BUILT
// package (run `npm run build` first), and from epoch ms `startAt` offers `ratePerSec` calls to
// `url` for `durationMs` through createFetch — mode 'pacing' (pacing shared through Redis),
// 'local' (pacing, no Redis) or 'retry' (today's fetch with retry, the baseline) — then sends
// { sent, ok, limited, refused, failed } to its parent and exits (also after 60 s regardless).
import { Redis } from 'ioredis';
import { createFetch } from '../../../dist/fetch.js';

setTimeout(() => process.exit(3), 60_000).unref();
process.on('disconnect', () => process.exit(0));

const job = JSON.parse(process.argv[2]);
const redis =
  job.mode === 'pacing'
    ? new Redis({ host: '127.0.0.1', port: job.redisPort, enableOfflineQueue: false, autoResendUnfulfilledCommands: false, maxRetriesPerRequest: 1 })
    : undefined;
redis?.on('error', () => {});
if (redis !== undefined) await new Promise((resolve) => (redis.status === 'ready' ? resolve() : redis.once('ready', resolve)));

const pacing = { maxWaitMs: job.maxWaitMs ?? 2_000, key: (_url, headers) => headers.get('x-api-key') ?? '', ...(redis === undefined ? {} : { store: redis }) };
// Stamps each request with the moment it leaves the pipeline (after pacing), so a test can tell
// a request sent late from one that only arrived late on a busy machine.
const stamped = (input, init) => globalThis.fetch(input, { ...init, headers: { ...init?.headers, 'x-sent-at': String(Date.now()) } });
const f = createFetch({ name: `worker-${job.id}`, fetch: stamped, ...(job.mode === 'retry' ? {} : { pacing, retry: false }) });

const counts = { sent: 0, ok: 0, limited: 0, refused: 0, failed: 0 };
await new Promise((resolve) => setTimeout(resolve, Math.max(0, job.startAt - Date.now())));
const end = Date.now() + job.durationMs;
const calls = [];
const gap = 1_000 / job.ratePerSec;
let next = Date.now();
while (Date.now() < end) {
  counts.sent++;
  calls.push(
    f(job.url, { headers: { 'x-api-key': 'k1', 'x-who': String(job.id) } }).then(
      async (r) => {
        await r.arrayBuffer();
        if (r.status === 200) counts.ok++;
        else if (r.status === 429) counts.limited++;
        else counts.failed++;
      },
      (e) => {
        if (e?.code === 'ERR_BULWARK_RATE_LIMITED' || e?.code === 'ERR_BULWARK_RETRY_AFTER') counts.refused++;
        else if (e?.status === 429) counts.limited++;
        else counts.failed++;
      },
    ),
  );
  next += gap;
  await new Promise((resolve) => setTimeout(resolve, Math.max(0, next - Date.now())));
}
await Promise.all(calls);
process.send({ type: 'result', id: job.id, ...counts }, () => {
  redis?.disconnect();
  process.exit(0);
});
