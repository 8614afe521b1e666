// Helpers shared by the shared-breaker tests on one node, on a Cluster and on Sentinel (not a
// test file itself).
import { setTimeout as sleep } from 'node:timers/promises';
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
