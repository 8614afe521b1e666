// RELIABILITY.md row F7: one master of a 3-master Redis Cluster (with a replica each) is
// SIGKILLed under load. Keys on the other two masters keep being decided by Redis, with no error;
// keys on the dead one follow onStoreError until its replica takes over, then come back to Redis.
// A second drive keeps the live masters' keys quiet and the dead master's busy: the store's
// breaker is per master, so the dead one's failures never send the live masters' keys to the
// fallback (regression: one breaker for the whole Cluster opened for every key).
import { Cluster, type ClusterOptions } from 'ioredis';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, afterEach, beforeEach, describe, expect, it } from 'vitest';
import { gcra } from '../../../src/ratelimit/algorithms/index.js';
import { storeKey } from '../../../src/ratelimit/keys.js';
import { quota } from '../../../src/ratelimit/quota/quota.js';
import { rateLimiter } from '../../../src/ratelimit/rate-limiter.js';
import { redisStore } from '../../../src/ratelimit/redis/redis-store.js';
import { hashSlot } from '../../../src/ratelimit/redis/slot.js';
import type { LimiterDecision } from '../../../src/ratelimit/store.js';
import { watchLoopStalls } from '../support/loop-stall.js';
import { disconnectClient, infoField, type RedisCluster, slotMap, startCluster } from '../support/redis.js';
import { byStore, eventually, percentile } from './support.js';

const cleanup: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const step of cleanup.splice(0).reverse()) await step();
});

const loop = watchLoopStalls();
beforeEach(() => loop.reset());
afterAll(() => loop.stop());

/** One decision of the F7 drive: which master's keys it was for, and who answered. */
interface ShardSample {
  readonly at: number;
  readonly shard: number;
  readonly kind: 'limiter' | 'quota';
  readonly latencyMs: number;
  readonly store: string;
}

/** A 3-master Cluster with a replica each, a store on it, and a limiter's and a quota's keys on each master. */
async function clusterWithKeys(timeoutMs: number) {
  // A replica takes over 1–2 s after its master stops answering (node timeout 1000 ms, then the
  // election). Without full coverage a node keeps serving its own slots while another's are down.
  const cluster = await startCluster({
    replicas: 1,
    args: ['--cluster-node-timeout', '1000', '--cluster-require-full-coverage', 'no'],
  });
  cleanup.push(() => cluster.stop());
  // As docs/redis.md recommends for a Cluster.
  const options: ClusterOptions = {
    retryDelayOnTryAgain: 0,
    redisOptions: { autoResendUnfulfilledCommands: false, keepAlive: 10_000, socketTimeout: 2_000 },
  };
  const client = new Cluster(cluster.startupNodes, options);
  client.on('error', () => {});
  cleanup.push(() => disconnectClient(client));
  await eventually('the cluster client to be ready', () => client.status === 'ready');

  const store = redisStore(client, { timeoutMs });
  const limiter = rateLimiter({ name: 'f7', algorithm: gcra({ limit: 1_000_000, periodMs: 1_000 }), store });
  const paid = quota({ name: 'f7-quota', limit: 1_000_000, period: 'month', store });

  // Four keys per master, for the limiter and the quota alike (a key's slot depends on the name).
  const owners = await slotMap(cluster.nodes[0]!.port);
  const shardOf = (name: string, key: string): number => {
    const port = owners[hashSlot(store.redisKey(storeKey('test', name, key)))];
    return cluster.nodes.findIndex((n) => n.port === port);
  };
  type Subject = { shard: number; kind: 'limiter' | 'quota'; decide: () => Promise<LimiterDecision> };
  const subjects: Subject[] = [];
  for (const [kind, name, decide] of [
    ['limiter', 'f7', (key: string) => limiter.consume(key)],
    ['quota', 'f7-quota', (key: string) => paid.consume(key)],
  ] as const) {
    const perShard = [0, 0, 0];
    for (let n = 0; perShard.some((c) => c < 4); n++) {
      if (n > 10_000) throw new Error('could not find keys on every master');
      const key = `user-${n}`;
      const shard = shardOf(name, key);
      if (perShard[shard]! >= 4) continue;
      perShard[shard]!++;
      subjects.push({ shard, kind, decide: () => decide(key) });
    }
  }
  // Every node connection open and every script loaded before the fault.
  await eventually('every key to be decided by Redis', async () => {
    const decisions = await Promise.all(subjects.map((s) => s.decide()));
    return decisions.every((d) => d.store === 'redis');
  });
  return { cluster, store, subjects };
}

/** Waits until the replica of master `dead` is a master; resolves with when (performance.now()). */
async function promoted(cluster: RedisCluster, dead: number): Promise<number> {
  const replica = cluster.replicas[dead]!;
  await eventually(
    `the replica on ${replica.port} to take over`,
    async () => infoField(String(await replica.command(['INFO', 'replication'])), 'role') === 'master',
    15_000,
  );
  return performance.now();
}

describe('F7: a Cluster master killed', () => {
  it('F7: keys on the other masters stay on Redis with no error; the dead shard follows onStoreError until its replica takes over', async () => {
    const timeoutMs = 150;
    const { cluster, subjects } = await clusterWithKeys(timeoutMs);

    const dead = 1;
    const master = cluster.nodes[dead]!;
    let killedAt = 0;
    let promotedAt = 0;
    const started = performance.now();
    const samples: ShardSample[] = [];
    let stop = false;
    const chaos = (async () => {
      await sleep(800);
      killedAt = performance.now() - started;
      master.kill('SIGKILL');
      await master.exited();
      promotedAt = (await promoted(cluster, dead)) - started;
      await sleep(3_000);
      stop = true;
    })();
    const deadline = started + 20_000;
    await Promise.all(
      subjects.map(async (subject) => {
        while (!stop && performance.now() < deadline) {
          const t = performance.now();
          const d = await subject.decide();
          samples.push({ at: t - started, shard: subject.shard, kind: subject.kind, latencyMs: performance.now() - t, store: d.store });
          await sleep(5);
        }
      }),
    );
    await chaos;

    const after = (from: number) => samples.filter((x) => x.at >= from);
    const others = after(killedAt).filter((x) => x.shard !== dead);
    const deadShard = after(killedAt).filter((x) => x.shard === dead);
    // A replica cannot take over sooner than the node timeout (1000 ms) plus its election delay
    // (at least 500 ms): until then, the dead shard's keys have no master.
    const masterless = deadShard.filter((x) => x.at >= killedAt + 50 && x.at < killedAt + 1_400);
    const firstBack = deadShard.find((x) => x.at >= killedAt + 1_400 && x.store === 'redis');
    const tail = after(promotedAt + 2_000);
    const latencies = samples.map((x) => x.latencyMs);
    const stall = loop.maxMs();
    const storesOf = (kind: 'limiter' | 'quota', list: readonly ShardSample[]) => byStore(list.filter((x) => x.kind === kind));
    console.log(
      `F7: master ${dead} of 3 SIGKILLed at ${killedAt.toFixed(0)} ms, its replica promoted ${(promotedAt - killedAt).toFixed(0)} ms later; ` +
        `other shards: limiter ${JSON.stringify(storesOf('limiter', others))}, quota ${JSON.stringify(storesOf('quota', others))} ` +
        `(errors on other shards: ${others.filter((x) => x.store !== 'redis').length}); ` +
        `dead shard: limiter ${JSON.stringify(storesOf('limiter', deadShard))}, quota ${JSON.stringify(storesOf('quota', deadShard))}, ` +
        `back on Redis ${firstBack ? `${(firstBack.at - killedAt).toFixed(0)} ms after the kill` : 'never'}; ` +
        `p99 ${percentile(latencies, 99).toFixed(0)} ms, max ${Math.max(...latencies).toFixed(0)} ms (loop stall ${stall.toFixed(0)} ms)`,
    );

    // Errors on the other shards = 0: every decision for their keys made by Redis, throughout.
    expect(others.length).toBeGreaterThan(500);
    expect(byStore(others)).toEqual({ redis: others.length });
    // Every decision resolved within the timeout (plus F2's slack and this loop's own stalls).
    expect(percentile(latencies, 99)).toBeLessThanOrEqual(timeoutMs + 30 + stall);
    expect(Math.max(...latencies)).toBeLessThanOrEqual(timeoutMs + 250 + stall);
    // The dead shard's keys follow onStoreError while it has no master: the limiter's local
    // fallback, the quota's fail-closed; and only those, or Redis, at any time.
    expect(masterless.length).toBeGreaterThan(20);
    expect(storesOf('limiter', masterless)).toEqual({ local: masterless.filter((x) => x.kind === 'limiter').length });
    expect(storesOf('quota', masterless)).toEqual({ 'fail-closed': masterless.filter((x) => x.kind === 'quota').length });
    expect(Object.keys(storesOf('limiter', deadShard)).sort()).toEqual(['local', 'redis']);
    expect(Object.keys(storesOf('quota', deadShard)).sort()).toEqual(['fail-closed', 'redis']);
    // Then the replica takes over, and the dead shard's keys are back on Redis by themselves.
    expect(firstBack, 'the dead shard back on Redis').toBeDefined();
    expect(firstBack!.at - promotedAt).toBeLessThan(2_000);
    expect(tail.length).toBeGreaterThan(100);
    expect(byStore(tail)).toEqual({ redis: tail.length });
  });

  it("F7: with the dead master's keys busy and the other masters' quiet, the quiet keys all stay on Redis (its breaker opens for its own keys only)", async () => {
    const timeoutMs = 150;
    const { cluster, store, subjects } = await clusterWithKeys(timeoutMs);
    const dead = 1;
    // Four busy callers on the dead master's keys; one decision every 400 ms, in turn, for the
    // other masters' keys: alone, their answers cannot keep a breaker for the whole Cluster closed.
    const busy = subjects.filter((x) => x.shard === dead && x.kind === 'limiter');
    const quiet = subjects.filter((x) => x.shard !== dead);
    expect(busy).toHaveLength(4);
    let killedAt = 0;
    let stop = false;
    const started = performance.now();
    const deadline = started + 15_000;
    const samples: ShardSample[] = [];
    let degraded = 0;
    const chaos = (async () => {
      await sleep(300);
      killedAt = performance.now() - started;
      cluster.nodes[dead]!.kill('SIGKILL');
      await cluster.nodes[dead]!.exited();
      await promoted(cluster, dead);
      // As in the first drive: ioredis drops the dead master's connection a while after the
      // promotion, and its disconnect timer (2 s) must be over before the test ends.
      await sleep(3_000);
      stop = true;
    })();
    const record = async (subject: (typeof subjects)[number]) => {
      const t = performance.now();
      const d = await subject.decide();
      samples.push({ at: t - started, shard: subject.shard, kind: subject.kind, latencyMs: performance.now() - t, store: d.store });
    };
    await Promise.all([
      ...busy.map(async (subject) => {
        while (!stop && performance.now() < deadline) {
          await record(subject);
          await sleep(5);
        }
      }),
      (async () => {
        for (let i = 0; !stop && performance.now() < deadline; i++) {
          await record(quiet[i % quiet.length]!);
          await sleep(400);
        }
      })(),
      (async () => {
        // The dead master's own breaker opens: the store reports 'degraded' meanwhile.
        while (!stop && performance.now() < deadline) {
          if (store.status === 'degraded') degraded++;
          await sleep(20);
        }
      })(),
    ]);
    await chaos;

    const afterKill = samples.filter((x) => x.at >= killedAt);
    const others = afterKill.filter((x) => x.shard !== dead);
    const deadShard = afterKill.filter((x) => x.shard === dead);
    console.log(
      `F7 (quiet live masters): master ${dead} SIGKILLed at ${killedAt.toFixed(0)} ms; other shards ${JSON.stringify(byStore(others))}, ` +
        `dead shard ${JSON.stringify(byStore(deadShard))}; store degraded in ${degraded} status reads`,
    );
    // The fault happened and opened the dead master's breaker...
    expect(deadShard.filter((x) => x.store === 'local').length).toBeGreaterThan(20);
    expect(degraded).toBeGreaterThan(0);
    // ...and every decision for the other masters' keys was still made by Redis.
    expect(others.length).toBeGreaterThanOrEqual(5);
    expect(byStore(others)).toEqual({ redis: others.length });
  });
});
