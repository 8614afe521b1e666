// Issue 16 §1 on a 3-master Redis Cluster and through Sentinel: the pacing state of
// `createFetch({ pacing: { store } })` is one hash-tagged key per origin and key, so each script
// call runs on the node that owns that key (no CROSSSLOT), keys spread over every master keep
// their own pauses and slots, and a failover leaves each process pacing alone until ioredis has
// found the new master. Each fetch has its own ioredis client, standing in for another process.
import { subscribe, unsubscribe } from 'node:diagnostics_channel';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { Cluster, Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createFetch, type FetchPacingMessage } from '../../../src/adapters/fetch.js';
import { hashSlot, redisKeyOf } from '../../../src/ratelimit/redis/slot.js';
import { disconnectClient, type RedisCluster, startCluster, startSentinel } from '../support/redis.js';
import { eventually, recommendedClientOptions } from './support.js';

const PREFIX = 'bulwark:pacing:';

const steps: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  while (steps.length > 0) await steps.pop()!();
});

/** One request as the upstream saw it; `at`: when the client sent it (after pacing), epoch ms. */
interface Arrival {
  readonly at: number;
  readonly key: string;
  readonly who: string;
}

/** What the upstream answers a request for `key` (its `x-api-key`). */
type Answer = (key: string, req: IncomingMessage) => { status: number; headers?: Record<string, string> };

/** A loopback upstream answering with `answer`, logging every request; closed when the test ends. */
async function upstream(answer: Answer): Promise<{ origin: string; arrivals: Arrival[] }> {
  const arrivals: Arrival[] = [];
  const server: Server = createServer((req, res) => {
    const key = String(req.headers['x-api-key']);
    arrivals.push({ at: Number(req.headers['x-sent-at']), key, who: String(req.headers['x-who']) });
    const { status, headers } = answer(key, req);
    res.writeHead(status, headers).end(status === 200 ? 'ok' : 'slow down');
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  steps.push(() => new Promise<void>((resolve) => (server.closeAllConnections(), server.close(() => resolve()))));
  return { origin: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, arrivals };
}

/** Every pacing decision published while the test runs. */
function pacingMessages(): FetchPacingMessage[] {
  const messages: FetchPacingMessage[] = [];
  const listener = (m: unknown): void => void messages.push(m as FetchPacingMessage);
  subscribe('bulwark:fetch:pacing', listener);
  steps.push(() => void unsubscribe('bulwark:fetch:pacing', listener));
  return messages;
}

/** A client that waits for `client` to be ready, ignores its connection errors and is disconnected after the test. */
async function ready<C extends Redis | Cluster>(client: C): Promise<C> {
  client.on('error', () => {});
  steps.push(() => disconnectClient(client));
  await eventually('the client to connect', () => client.status === 'ready');
  return client;
}

/**
 * A fetch paced per origin and `x-api-key` through `client`, as process `who`: each request
 * carries `x-who` and `x-sent-at` (stamped as it leaves the pipeline, after pacing).
 */
function pacedFetch(client: Redis | Cluster, who: string, maxWaitMs: number) {
  const stamped: typeof fetch = (input, init) => {
    const headers = new Headers(init?.headers);
    headers.set('x-who', who);
    headers.set('x-sent-at', String(Date.now()));
    return globalThis.fetch(input, { ...init, headers });
  };
  // On the Cluster the tests are about where keys live and what is shared, not Redis timeouts: a
  // first script call per node (NOSCRIPT, then EVAL) on a loaded CI machine once took longer than
  // the default 100 ms, and the store then rested, pacing that process alone (the pause unshared).
  const timeoutMs = client instanceof Cluster ? 1_000 : 100;
  const f = createFetch({ name: `pacing-${who}`, fetch: stamped, retry: false, pacing: { maxWaitMs, key: (_url, h) => h.get('x-api-key') ?? '', store: client, timeoutMs } });
  return async (origin: string, key: string, extra: Record<string, string> = {}): Promise<number> => {
    const response = await f(`${origin}/`, { headers: { 'x-api-key': key, ...extra } });
    await response.arrayBuffer();
    return response.status;
  };
}

/** A 429 with `Retry-After: 1` for a request marked `x-block`, else 200 (with `advertise`'s headers). */
const blockWhenAsked =
  (advertise: Record<string, string> = {}): Answer =>
  (_key, req) =>
    req.headers['x-block'] === undefined ? { status: 200, headers: advertise } : { status: 429, headers: { 'retry-after': '1' } };

/** 10 requests per second, advertised as the draft's fields (paced at 98 %: a slot every ~102 ms). */
const TEN_PER_SECOND = { 'ratelimit-policy': '"p";q=10;w=1', ratelimit: '"p";r=9;t=1' };

/**
 * `who`'s requests for `key` sent from 100 ms after `blockedAt` until 20 ms before its 1 s pause
 * ends: none when the pause is shared.
 */
const sentDuringPause = (arrivals: Arrival[], blockedAt: number, who: string, key: string): Arrival[] =>
  arrivals.filter((a) => a.who === who && a.key === key && a.at > blockedAt + 100 && a.at < blockedAt + 1_000 - 20);

/**
 * While process `b` offers 20 calls/s for `key` (for 1.8 s), process `a` (through its `client`)
 * meets a 429 with `Retry-After: 1` for it 400 ms in. Resolves when the answer reached `a`, with
 * that moment. `a` sends it through a fetch of its own: createFetch's `serverBackoff` pauses the
 * whole origin in the fetch that met the 429, which would refuse that fetch's later calls.
 */
async function pauseWhileOffered(
  a: { client: Redis | Cluster; who: string },
  b: ReturnType<typeof pacedFetch>,
  origin: string,
  key: string,
): Promise<{ blockedAt: number; offered: Promise<number[]> }> {
  const meet = pacedFetch(a.client, a.who, 2_000);
  const calls: Promise<number>[] = [];
  const offered = (async () => {
    for (let i = 0; i < 36; i++) {
      calls.push(b(origin, key));
      await sleep(50);
    }
    return Promise.all(calls);
  })();
  await sleep(400);
  expect(await meet(origin, key, { 'x-block': '1' })).toBe(429);
  return { blockedAt: Date.now(), offered };
}

describe('pacing shared through a 3-master Redis Cluster', () => {
  let cluster: RedisCluster;
  beforeAll(async () => void (cluster = await startCluster()), 60_000);
  afterAll(() => cluster?.stop());

  /** Two processes' Cluster clients. */
  const connect = async () => {
    const options = { scaleReads: 'master', retryDelayOnMoved: 0, retryDelayOnTryAgain: 0, redisOptions: { autoResendUnfulfilledCommands: false } } as const;
    const clients = [await ready(new Cluster(cluster.startupNodes, options)), await ready(new Cluster(cluster.startupNodes, options))] as const;
    // Connected to every master before the clock starts.
    await Promise.all(clients.flatMap((c) => c.nodes('master').map((n) => n.ping())));
    return clients;
  };

  /** One API key per master: the pacing keys of `origin` with them land on every node. */
  async function keyPerMaster(origin: string): Promise<string[]> {
    const byOwner = new Map<number, string>();
    for (let i = 0; byOwner.size < 3; i++) {
      if (i > 200) throw new Error('no API keys found whose pacing keys cover every master');
      const key = `key-${i}`;
      const owner = await cluster.slotOwner(hashSlot(redisKeyOf(PREFIX, `${origin} ${key}`)));
      if (!byOwner.has(owner)) byOwner.set(owner, key);
    }
    return [...byOwner.values()];
  }

  /** The pacing keys stored on each master, by node. */
  const storedPerNode = () => Promise.all(cluster.nodes.map(async (n) => ((await n.command(['KEYS', `${PREFIX}*`])) as Buffer[]).map(String)));

  it('a Retry-After met by one process stops the other within 100 ms for its length, for keys on every master', async () => {
    const messages = pacingMessages();
    const [clientA, clientB] = await connect();
    const b = pacedFetch(clientB, 'b', 2_000);
    const { origin, arrivals } = await upstream(blockWhenAsked());
    const keys = await keyPerMaster(origin);
    const runs = await Promise.all(keys.map((key) => pauseWhileOffered({ client: clientA, who: 'a' }, b, origin, key)));
    const answers = await Promise.all(runs.map((r) => r.offered));
    // Every call of b went out (queued through the pause, none refused): 200s only.
    expect(answers.flat().filter((s) => s !== 200)).toEqual([]);
    for (const [i, key] of keys.entries()) {
      const { blockedAt } = runs[i]!;
      expect(sentDuringPause(arrivals, blockedAt, 'b', key)).toEqual([]);
      // b was sending before the pause and again after it.
      expect(arrivals.some((r) => r.who === 'b' && r.key === key && r.at < blockedAt)).toBe(true);
      expect(arrivals.some((r) => r.who === 'b' && r.key === key && r.at >= blockedAt + 900)).toBe(true);
    }
    // Each master holds the pause of the key it owns (and only that one).
    const stored = await storedPerNode();
    expect(stored.map((names) => names.length)).toEqual([1, 1, 1]);
    expect(stored.flat().sort()).toEqual(keys.map((k) => redisKeyOf(PREFIX, `${origin} ${k}`)).sort());
    // Every wait was decided by Redis (a failed script call, e.g. CROSSSLOT, decides locally).
    const waits = messages.filter((m) => m.decision !== 'learned');
    expect(waits.length).toBeGreaterThan(0);
    expect(waits.filter((m) => !m.shared)).toEqual([]);
  }, 30_000);

  it('a rate learned by one process paces both, per key, on every master', async () => {
    const messages = pacingMessages();
    const [clientA, clientB] = await connect();
    const [a, b] = [pacedFetch(clientA, 'a', 3_000), pacedFetch(clientB, 'b', 3_000)];
    const { origin, arrivals } = await upstream(blockWhenAsked(TEN_PER_SECOND));
    const keys = await keyPerMaster(origin);
    // Only a learns the rate; b has never seen an answer.
    for (const key of keys) expect(await a(origin, key)).toBe(200);
    await sleep(50);
    const from = Date.now();
    const answers = await Promise.all(keys.flatMap((key) => Array.from({ length: 12 }, (_, i) => (i % 2 === 0 ? a : b)(origin, key))));
    expect(answers.filter((s) => s !== 200)).toEqual([]);
    for (const key of keys) {
      const sent = arrivals.filter((r) => r.key === key && r.at >= from).map((r) => r.at);
      expect(sent).toHaveLength(12);
      // One GCRA for both: 12 slots ~102 ms apart (alone, each would send its 6 in ~510 ms).
      expect(Math.max(...sent) - Math.min(...sent)).toBeGreaterThanOrEqual(1_000);
      // And never faster than the rate: at most 6 in any 500 ms (5 slots + timer jitter).
      for (const t of sent) expect(sent.filter((u) => u >= t && u < t + 500).length).toBeLessThanOrEqual(6);
    }
    expect(messages.filter((m) => m.decision !== 'learned' && !m.shared)).toEqual([]);
    expect(messages.some((m) => m.decision === 'waited' && m.policy === 'pacing-b')).toBe(true);
  }, 30_000);
});

describe('pacing shared through Sentinel', () => {
  it('shares pauses and slots, paces locally through a failover, fails no call, and shares again on the new master', async () => {
    const setup = await startSentinel();
    steps.push(() => setup.stop());
    const messages = pacingMessages();
    const connect = () => ready(new Redis({ sentinels: setup.sentinelAddresses, name: setup.masterName, ...recommendedClientOptions }));
    const [clientA, clientB] = [await connect(), await connect()];
    const [a, b] = [pacedFetch(clientA, 'a', 5_000), pacedFetch(clientB, 'b', 5_000)];
    const { origin, arrivals } = await upstream(blockWhenAsked(TEN_PER_SECOND));

    // A pause one process met stops the other.
    const before = await pauseWhileOffered({ client: clientA, who: 'a' }, b, origin, 'k1');
    await before.offered;
    expect(sentDuringPause(arrivals, before.blockedAt, 'b', 'k1')).toEqual([]);

    // Both send back to back for k2 (each next call once its last one is answered) through the failover.
    expect(await a(origin, 'k2')).toBe(200); // learns 10/s
    let running = true;
    const failures: unknown[] = [];
    const loop = (send: ReturnType<typeof pacedFetch>) =>
      (async () => {
        while (running) await send(origin, 'k2').then((s) => s === 200 || failures.push(s), (e: unknown) => failures.push(e));
      })();
    const loops = [loop(a), loop(b)];
    await sleep(1_500);
    const outage = { from: Date.now(), to: Infinity };
    await setup.failover();
    outage.to = Date.now();
    await eventually('both processes to pace through the new master', () => {
      const recent = messages.filter((m) => m.decision === 'waited' && m.key === `${origin} k2`).slice(-4);
      return recent.length === 4 && recent.every((m) => m.shared);
    });
    const shared = Date.now();
    await sleep(1_500);
    running = false;
    await Promise.all(loops);
    expect(failures).toEqual([]);

    const k2 = arrivals.filter((r) => r.key === 'k2');
    /** Requests for k2 sent in [from, to), by `who` (any when undefined). */
    const sentIn = (from: number, to: number, who?: string) => k2.filter((r) => r.at >= from && r.at < to && (who === undefined || r.who === who)).length;
    // Shared before and after: both together at ~9.8/s (one slot more for a timer's jitter).
    expect(sentIn(outage.from - 1_000, outage.from)).toBeLessThanOrEqual(11);
    expect(sentIn(shared + 200, shared + 1_200)).toBeLessThanOrEqual(11);
    // During the outage each process paced alone, at the learned rate: ~9.8/s each, not faster.
    const seconds = (outage.to - outage.from) / 1_000;
    expect(seconds).toBeGreaterThan(1);
    for (const who of ['a', 'b']) expect(sentIn(outage.from, outage.to, who)).toBeLessThanOrEqual(Math.ceil(9.8 * seconds) + 2);
    expect(messages.some((m) => m.decision === 'waited' && !m.shared && m.policy === 'pacing-a')).toBe(true);

    // And a pause is shared through the new master.
    const after = await pauseWhileOffered({ client: clientB, who: 'b' }, a, origin, 'k3');
    expect((await after.offered).filter((s) => s !== 200)).toEqual([]);
    expect(sentDuringPause(arrivals, after.blockedAt, 'a', 'k3')).toEqual([]);
  }, 60_000);
});
