// Helpers shared by the shared-breaker tests on one node, on a Cluster and on Sentinel (not a
// test file itself).
import { fork } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { expect } from 'vitest';
import { BrokenCircuitError, type CircuitBreakerPolicy } from '../../../src/index.js';
import { eventually } from './support.js';

/** A dependency that is down. */
export const down = (): Promise<never> => Promise.reject(new Error('down'));

/** Makes `n` calls to a dead dependency through `breaker`, one after another. */
export async function failTimes(breaker: CircuitBreakerPolicy, n: number): Promise<void> {
  for (let i = 0; i < n; i++) await breaker.execute(down).catch(() => {});
}

/**
 * With the fleet open (the breakers' `halfOpenMaxCalls` = `probes`), runs `windows` half-open
 * windows: in each, every breaker gets 4 calls at once, held until every claim was answered;
 * exactly `probes` of them must run, fleet-wide, and fail, which opens the fleet again.
 * `during(window)` runs while the probes are held.
 */
export async function exactProbeWindows(
  breakers: readonly CircuitBreakerPolicy[],
  windows: number,
  probes: number,
  during: (window: number) => Promise<void> = async () => {},
): Promise<void> {
  for (let window = 0; window < windows; window++) {
    await eventually('every breaker open', () => breakers.every((b) => b.state === 'open'), 5_000);
    await eventually('every breaker half-open', () => breakers.every((b) => b.state === 'half-open'), 5_000);
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    let ran = 0;
    const settled = Promise.allSettled(
      breakers.flatMap((b) =>
        Array.from({ length: 4 }, () =>
          b.execute(() => {
            ran++;
            return gate.then(down);
          }),
        ),
      ),
    );
    await sleep(100); // every claim answered
    await during(window);
    expect(ran, `probes in window ${window}`).toBe(probes);
    release();
    const outcomes = await settled;
    expect(outcomes.filter((o) => o.status === 'rejected' && !(o.reason instanceof BrokenCircuitError))).toHaveLength(probes);
  }
}

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
const WORKER = path.join(root, 'test/integration/redis/shared-breaker-worker.mjs');

/**
 * Groups every worker's calls (the dependency dead throughout, so after the first open each is a
 * probe) into half-open windows, by start time: their open periods (≥ 200 ms) lie between them,
 * the probes of one start within ~100 ms.
 */
export function probeWindows(results: readonly WorkerResult[]): number[][] {
  const times = results.flatMap((r) => r.executions.map(([t]) => t)).sort((x, y) => x - y);
  const windows: number[][] = [];
  for (const t of times) {
    const last = windows.at(-1);
    if (last !== undefined && t - last[0]! < 150) last.push(t);
    else windows.push([t]);
  }
  return windows;
}

/** Expects at least `minWindows` half-open windows, each with exactly `probes` probes, and no call failing for another reason. */
export function expectExactWindows(results: readonly WorkerResult[], probes: number, minWindows: number): void {
  const windows = probeWindows(results);
  expect(windows.length).toBeGreaterThanOrEqual(minWindows);
  expect(windows.map((w) => w.length)).toEqual(windows.map(() => probes));
  expect(results.reduce((sum, r) => sum + r.other, 0)).toBe(0);
}

/** What one worker process (shared-breaker-worker.mjs) saw. */
export interface WorkerResult {
  executions: [number, boolean][];
  opened: [number, string][];
  rejected: number;
  failed: number;
  other: number;
  calls: number;
}

/** Forks `n` workers with `config`, starts them together (then calls `started`), and collects their results. */
export async function runWorkers(
  n: number,
  cleanup: (() => Promise<void> | void)[],
  config: object,
  started: () => void = () => {},
): Promise<WorkerResult[]> {
  if (!existsSync(path.join(root, 'dist', 'redis.js'))) throw new Error('dist/ is missing: run `npm run build` first');
  const children = Array.from({ length: n }, () => fork(WORKER, [], { execArgv: [], stdio: ['ignore', 'inherit', 'inherit', 'ipc'], cwd: root }));
  cleanup.push(() => {
    for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  });
  const next = (c: (typeof children)[number], type: string) =>
    new Promise<Record<string, unknown>>((resolve, reject) => {
      const onMessage = (m: Record<string, unknown>) => {
        if (m.type !== type) return;
        c.off('message', onMessage);
        c.off('exit', onExit);
        resolve(m);
      };
      const onExit = (code: number | null) => reject(new Error(`worker exited (${code}) before "${type}"`));
      c.on('message', onMessage);
      c.once('exit', onExit);
    });
  const ready = children.map((c) => next(c, 'ready'));
  for (const c of children) c.send({ type: 'config', ...config });
  await Promise.all(ready);
  const results = children.map((c) => next(c, 'result'));
  for (const c of children) c.send({ type: 'go' });
  started();
  return (await Promise.all(results)) as unknown as WorkerResult[];
}
