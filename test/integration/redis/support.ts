import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { Redis, type RedisOptions } from 'ioredis';
import type { LimiterDecision } from '../../../src/ratelimit/store.js';
import { disconnectClient } from '../support/redis.js';

/** The ioredis options the README recommended before issue 12 (no keepAlive or socketTimeout). */
export const recommendedClientOptions: RedisOptions = {
  enableOfflineQueue: false,
  autoResendUnfulfilledCommands: false,
  maxRetriesPerRequest: 1,
  retryStrategy: (times) => Math.min(times * 50, 500),
};

/**
 * Connects a client with `options` (by default {@link recommendedClientOptions}) to 127.0.0.1:`port`, ignoring its
 * connection errors, puts its disconnect on `cleanup`, and resolves once it is ready.
 */
export async function connectReady(port: number, cleanup: (() => Promise<void>)[], options: RedisOptions = recommendedClientOptions): Promise<Redis> {
  const client = new Redis({ host: '127.0.0.1', port, ...options });
  client.on('error', () => {}); // connection errors are expected; ioredis logs them otherwise
  cleanup.push(() => disconnectClient(client));
  await eventually('the client to connect', () => client.status === 'ready');
  return client;
}

/**
 * Connects a client through Sentinel (to the master `setup` names) with {@link recommendedClientOptions},
 * ignoring its connection errors, puts its disconnect on `cleanup`, and resolves once it is ready.
 */
export async function connectSentinelReady(
  setup: { readonly sentinelAddresses: { host: string; port: number }[]; readonly masterName: string },
  cleanup: (() => Promise<void>)[],
): Promise<Redis> {
  const client = new Redis({ sentinels: setup.sentinelAddresses, name: setup.masterName, ...recommendedClientOptions });
  client.on('error', () => {});
  cleanup.push(() => disconnectClient(client));
  await eventually('the client to connect', () => client.status === 'ready');
  return client;
}

/** One decision as a load driver saw it. */
export interface Sample {
  /** ms since the drive started, when the decision was asked for. */
  readonly at: number;
  readonly latencyMs: number;
  readonly store: string;
  readonly allowed: boolean;
}

/**
 * Runs `workers` loops that each ask for a decision, wait for it, then ask again, until
 * `durationMs` has passed or `maxDecisions` were asked for in all (bounded both ways). A decision
 * that rejects fails the drive: decisions must never reject.
 */
export async function drive(
  decide: (worker: number, n: number) => Promise<LimiterDecision>,
  { workers, durationMs, maxDecisions = 1_000_000, pauseMs = 0 }: { workers: number; durationMs: number; maxDecisions?: number; pauseMs?: number },
): Promise<Sample[]> {
  const samples: Sample[] = [];
  const start = performance.now();
  const end = start + durationMs;
  let asked = 0;
  await Promise.all(
    Array.from({ length: workers }, async (_, worker) => {
      let n = 0;
      while (performance.now() < end && asked < maxDecisions) {
        asked++;
        const t = performance.now();
        const d = await decide(worker, n++);
        samples.push({ at: t - start, latencyMs: performance.now() - t, store: d.store, allowed: d.allowed });
        if (pauseMs > 0) await sleep(pauseMs);
      }
    }),
  );
  return samples;
}

/** The p-th percentile (0–100) of `values`, nearest rank. */
export function percentile(values: readonly number[], p: number): number {
  if (values.length === 0) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))]!;
}

/** How many samples each store answered. */
export function byStore(samples: readonly { readonly store: string }[]): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const s of samples) counts[s.store] = (counts[s.store] ?? 0) + 1;
  return counts;
}

/** Polls `check` every 25 ms until it is true, for at most `timeoutMs`. */
export async function eventually(what: string, check: () => boolean | Promise<boolean>, timeoutMs = 10_000): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  while (!(await check())) {
    if (performance.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(25);
  }
}

/**
 * Waits, when the fixed window of `windowMs` now in force (aligned to the epoch, as the stores
 * align it) ends within `needMs`, until the next one has begun: a test that compares the count
 * Redis holds with what it admitted must not straddle two windows.
 */
export async function clearOfWindowEdge(windowMs: number, needMs: number): Promise<void> {
  const left = windowMs - (Date.now() % windowMs);
  if (left < needMs) await sleep(left + 50);
}
