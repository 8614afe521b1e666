// One app instance for shared-breaker.test.ts and benchmarks/shared-breaker.mjs: forked, it imports
// the BUILT package (run `npm run build` first), connects its own ioredis client, and builds a
// breaker on a redisBreakerStore (a single server's `port`, a Cluster's `nodes`, or Sentinel's
// `sentinels` and `masterName`). Then:
//
//   parent → { type: 'config', ... }   connect, build the breaker (when `waitOpen`, wait until the
//                                       fleet's open state has reached it), answer 'ready'
//   parent → { type: 'go', deadAt? }   call the breaker `rate` times a second for `durationMs`,
//                                       answer { type: 'result', ... }, exit
//
// The "dependency" is a function that takes `callMs` and fails from epoch ms `deadAt` on (until
// `healAt`). The process exits by itself after 60 s or when the parent goes away.
import { Cluster, Redis } from 'ioredis';
import { BrokenCircuitError, circuitBreaker, consecutive } from '../../../dist/index.js';
import { redisBreakerStore } from '../../../dist/redis.js';

// Never outlive the parent: exit code 3 after 60 s, 4 when the parent goes away before the result.
let finishing = false;
const giveUp = (code) => () => finishing || process.exit(code);
setTimeout(giveUp(3), 60_000).unref();
process.on('disconnect', giveUp(4));

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

let client;
let store;
let breaker;
let config;

async function setUp(c) {
  config = c;
  // `nodes`: a Cluster's startup nodes (with the options cluster.test.ts explains); else one server.
  // `sentinels` and `masterName`: the master found through Sentinel.
  const where = c.sentinels === undefined ? { host: '127.0.0.1', port: c.port } : { sentinels: c.sentinels, name: c.masterName };
  client =
    c.nodes === undefined
      ? new Redis({
          ...where,
          enableOfflineQueue: false,
          autoResendUnfulfilledCommands: false,
          maxRetriesPerRequest: 1,
          retryStrategy: (times) => Math.min(times * 50, 500),
        })
      : new Cluster(c.nodes, { retryDelayOnMoved: 0, retryDelayOnTryAgain: 0, redisOptions: { autoResendUnfulfilledCommands: false } });
  client.on('error', () => {});
  while (client.status !== 'ready') await sleep(10);
  store = redisBreakerStore(client, { maxStalenessMs: c.maxStalenessMs, timeoutMs: c.timeoutMs ?? 100, quorum: c.quorum });
  breaker = circuitBreaker({
    name: c.name,
    breaker: consecutive(c.threshold ?? 5),
    halfOpenAfterMs: c.halfOpenAfterMs,
    halfOpenMaxCalls: c.halfOpenMaxCalls,
    store,
  });
  const opened = [];
  breaker.onStateChange((e) => {
    if (e.to === 'open') opened.push([Date.now(), e.reason]);
  });
  const deadline = Date.now() + 10_000;
  if (c.waitOpen) while (breaker.state === 'closed' && Date.now() < deadline) await sleep(10);
  return opened;
}

async function run(opened) {
  const executions = []; // [epoch ms, dependency dead]
  let rejected = 0;
  let failed = 0;
  let other = 0;
  const dependency = async () => {
    const t = Date.now();
    const dead = t >= config.deadAt && t < (config.healAt ?? Infinity);
    executions.push([t, dead]);
    await sleep(config.callMs);
    if (dead) throw new Error('dependency down');
    return 'ok';
  };
  const pending = [];
  const intervalMs = 1000 / config.rate;
  const start = Date.now();
  let n = 0;
  while (Date.now() - start < config.durationMs) {
    pending.push(
      breaker.execute(dependency).then(
        () => {},
        (error) => {
          if (error instanceof BrokenCircuitError) rejected++;
          else if (error instanceof Error && error.message === 'dependency down') failed++;
          else other++;
        },
      ),
    );
    n++;
    const next = start + n * intervalMs;
    const wait = next - Date.now();
    if (wait > 0) await sleep(wait);
  }
  await Promise.all(pending);
  return { executions, opened, rejected, failed, other, calls: n };
}

let opened;
process.on('message', async (m) => {
  try {
    if (m.type === 'config') {
      opened = await setUp(m);
      process.send({ type: 'ready', state: breaker.state });
    } else if (m.type === 'go') {
      if (m.deadAt !== undefined) config.deadAt = m.deadAt;
      const result = await run(opened);
      finishing = true;
      store.close();
      client.disconnect();
      process.send({ type: 'result', ...result }, () => process.exit(0));
    }
  } catch (error) {
    console.error(error);
    process.exit(2);
  }
});
