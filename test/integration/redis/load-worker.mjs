// A load process for load.test.ts (rows L1 and L8): forked by the test, it imports the BUILT
// package (dist/ — `npm test` runs `npm run build` before vitest, so dist/ is current there; run
// `npm run build` first when running the test file alone), connects its own ioredis client with
// the recommended options, and then:
//
//   parent → { type: 'config', port, job }   connect, build the limiter or quota, answer 'ready'
//   parent → { type: 'go', at }               at epoch ms `at`, run the job, answer { type: 'result', ... }, exit
//
// so that every process is connected and waiting before any of them sends a decision, and the
// load really overlaps. The process exits by itself once it has answered (or after 30 s, or when
// the parent goes away), so a failed test leaves nothing running.
import { Redis } from 'ioredis';
import { fixedWindow, gcra, quota, rateLimiter, slidingWindow } from '../../../dist/index.js';
import { redisStore } from '../../../dist/redis.js';

const HOST = '127.0.0.1';

/** Never outlive a test that forgot us: give up after 30 s, unref'd so it holds nothing open. */
setTimeout(() => {
  console.error('load-worker: no "go" or no end within 30 s; exiting');
  process.exit(3);
}, 30_000).unref();
let finishing = false;
process.on('disconnect', () => {
  if (!finishing) process.exit(4); // the parent went away before we answered
});

/** @type {import('ioredis').Redis | undefined} */
let client;
/** @type {(() => Promise<unknown>) | undefined} */
let run;

function algorithmOf(spec) {
  switch (spec.kind) {
    case 'gcra':
      return gcra(spec.options);
    case 'sliding-window':
      return slidingWindow(spec.options);
    case 'fixed-window':
      return fixedWindow(spec.options);
    default:
      throw new TypeError(`load-worker: unknown algorithm ${JSON.stringify(spec.kind)}`);
  }
}

function count(stores) {
  const counts = {};
  for (const s of stores) counts[s] = (counts[s] ?? 0) + 1;
  return counts;
}

/** L1: `count` concurrent consumes of one key, all started in the same tick. */
function burst(job, store) {
  const limiter = rateLimiter({ name: job.name, algorithm: algorithmOf(job.algorithm), store });
  return async () => {
    const started = performance.now();
    const decisions = await Promise.all(Array.from({ length: job.count }, () => limiter.consume(job.key)));
    const ended = performance.now();
    return {
      admitted: decisions.filter((d) => d.allowed).length,
      stores: count(decisions.map((d) => d.store)),
      elapsedMs: ended - started,
      // Epoch ms with sub-ms precision, comparable across the processes.
      startedAt: performance.timeOrigin + started,
      endedAt: performance.timeOrigin + ended,
    };
  };
}

/** L8: `concurrency` closed loops taking the given costs, in order, from one quota key. */
function weighted(job, store) {
  const q = quota({ name: job.name, limit: job.limit, period: 'month', timeZone: 'Europe/Berlin', store });
  return async () => {
    const started = performance.now();
    const out = [];
    let next = 0;
    await Promise.all(
      Array.from({ length: job.concurrency }, async () => {
        while (next < job.costs.length) {
          const cost = job.costs[next++];
          const d = await q.consume(job.key, { cost });
          out.push({ cost, allowed: d.allowed, store: d.store, remaining: d.remaining, resetMs: d.resetMs });
        }
      }),
    );
    return { decisions: out, elapsedMs: performance.now() - started };
  };
}

async function configure({ port, job }) {
  client = new Redis({
    host: HOST,
    port,
    enableOfflineQueue: false,
    autoResendUnfulfilledCommands: false,
    maxRetriesPerRequest: 1,
    lazyConnect: true,
  });
  client.on('error', (error) => console.error(`load-worker: ioredis: ${error.message}`));
  await client.connect(); // resolves once the client is 'ready': the store sends nothing before
  const store = redisStore(client, { timeoutMs: job.timeoutMs });
  run = job.type === 'burst' ? burst(job, store) : weighted(job, store);
}

async function finish(message) {
  finishing = true;
  try {
    if (client !== undefined && client.status !== 'end') {
      const ended = new Promise((resolve) => client.once('end', resolve));
      client.disconnect();
      await ended;
    }
  } finally {
    process.send(message, () => process.disconnect());
  }
}

process.on('message', (message) => {
  if (message.type === 'config') {
    configure(message).then(
      () => process.send({ type: 'ready' }),
      (error) => finish({ type: 'error', error: String(error?.stack ?? error) }),
    );
  } else if (message.type === 'go') {
    if (run === undefined) {
      void finish({ type: 'error', error: 'load-worker: "go" before "config" finished' });
      return;
    }
    // Start at the time the parent set for every process.
    const start = () =>
      run().then(
        (result) => finish({ type: 'result', result }),
        (error) => finish({ type: 'error', error: String(error?.stack ?? error) }),
      );
    setTimeout(start, Math.max(0, message.at - Date.now()));
  }
});
