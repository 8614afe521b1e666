// RELIABILITY.md row F7 for the shared circuit breaker's store: one master of a 3-master Redis
// Cluster is SIGKILLed. The breakers whose keys live on it decide alone, and the store says so
// ('degraded') and calls that master once per `openMs` only; those on the other masters keep
// following the fleet, every moment. Before, the store had one breaker around the whole Cluster:
// here, where a live master answers between the dead one's failures, it never opened, so the store
// said 'ready' while three breakers decided alone, and sent each of them to the dead master every
// sync (each call waiting out the timeout); where no live answer came between three failures it
// opened for every breaker (test/unit/ratelimit/redis/cluster-breaker-store.test.ts, on a fake
// client). Here the client's real slot table and errors decide.
import { Cluster } from 'ioredis';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterEach, describe, expect, it } from 'vitest';
import type { SharedBreaker } from '../../../src/circuit/store.js';
import { redisBreakerStore } from '../../../src/ratelimit/redis/breaker-store.js';
import { hashSlot, redisKeyOf } from '../../../src/ratelimit/redis/slot.js';
import { breakerPeer } from '../../support/breaker-peer.js';
import { disconnectClient, startCluster } from '../support/redis.js';
import { eventually } from './support.js';

const steps: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  while (steps.length > 0) await steps.pop()!();
});

describe('F7: redisBreakerStore on a Cluster whose master is killed', () => {
  it("the breakers on the other masters keep following the fleet while the dead master's decide alone", async () => {
    // Without full coverage the live masters keep serving their slots while one master is down.
    const cluster = await startCluster({ args: ['--cluster-node-timeout', '1000', '--cluster-require-full-coverage', 'no'] });
    steps.push(() => cluster.stop());
    // The client's connections to the dead master each leave ioredis's `disconnectTimeout` timer
    // when disconnected; 200 ms (not the default 2 s) lets them fire before the test ends.
    steps.push(() => sleep(300));
    const client = new Cluster(cluster.startupNodes, {
      retryDelayOnMoved: 0,
      retryDelayOnTryAgain: 0,
      redisOptions: { autoResendUnfulfilledCommands: false, disconnectTimeout: 200 },
    });
    client.on('error', () => {});
    steps.push(() => disconnectClient(client));
    await eventually('the cluster client to be ready', () => client.status === 'ready');
    // Syncs every 250 ms (a quarter of maxStalenessMs); three failed calls open a master's breaker.
    const store = redisBreakerStore(client, { maxStalenessMs: 1_000, timeoutMs: 100, openAfterFailures: 3, openMs: 1_000 });
    steps.push(() => store.close());

    // Three breakers whose keys live on the master to be killed, one on each of the others.
    const owners = new Map<number, string[]>();
    for (let i = 0; owners.size < 3 || [...owners.values()].some((names) => names.length < 3); i++) {
      const name = `dep-${i}`;
      const owner = await cluster.slotOwner(hashSlot(redisKeyOf('bulwark:', `breaker:${name}`)));
      const names = owners.get(owner) ?? [];
      if (names.length < 3) names.push(name);
      owners.set(owner, names);
    }
    const deadIndex = 1;
    const dead: SharedBreaker[] = owners.get(deadIndex)!.map((name) => store.connect(breakerPeer(name)));
    const live: SharedBreaker[] = [0, 2].map((index) => store.connect(breakerPeer(owners.get(index)![0]!)));
    steps.push(() => [...dead, ...live].forEach((handle) => handle.close()));
    await eventually('every breaker to follow the fleet', () => [...dead, ...live].every((handle) => handle.active), 5_000);

    // Counts the script calls for the dead master's breakers.
    const deadKeys = new Set(owners.get(deadIndex)!.map((name) => redisKeyOf('bulwark:', `breaker:${name}`)));
    const scripted = client as unknown as { bulwarkBreaker1: (...args: unknown[]) => Promise<unknown> };
    const script = scripted.bulwarkBreaker1;
    let deadCalls = 0;
    scripted.bulwarkBreaker1 = (...args: unknown[]) => {
      if (deadKeys.has(args[1] as string)) deadCalls++;
      return script.apply(client, args);
    };

    cluster.nodes[deadIndex]!.kill('SIGKILL');
    // The dead master's breakers stop following the fleet once their view is older than 1 s.
    await eventually("the dead master's breakers to decide alone", () => dead.every((handle) => !handle.active), 5_000);
    await eventually('the store to say some breakers decide alone', () => store.status === 'degraded', 5_000);
    // For 2 s from then (the dead master's breaker probed and opened again meanwhile), the live
    // masters' breakers follow the fleet at every 20 ms sample.
    const samples: boolean[] = [];
    const deadCallsBefore = deadCalls;
    for (let i = 0; i < 100; i++) {
      samples.push(live.every((handle) => handle.active));
      await sleep(20);
    }
    const inactive = samples.filter((active) => !active).length;
    expect(inactive, `${inactive} of ${samples.length} samples with a live master's breaker deciding alone`).toBe(0);
    expect(dead.some((handle) => handle.active)).toBe(false);
    // One probe per openMs (1 s) over those 2 s, not three breakers' syncs every 250 ms (about 24).
    expect(deadCalls - deadCallsBefore, `${deadCalls - deadCallsBefore} calls to the dead master in 2 s`).toBeLessThanOrEqual(4);
  });
});
