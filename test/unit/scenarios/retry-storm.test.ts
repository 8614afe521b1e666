// RELIABILITY row L7: an upstream fails for 10 s under 200 clients using retry + breaker. Retries
// must stay within the retry budget, and nothing is retried (or sent upstream) while the breaker
// is open. Simulated on a manual clock: 15 s of traffic, every client calling every 100 ms.
import { describe, expect, it } from 'vitest';
import {
  BrokenCircuitError,
  circuitBreaker,
  constant,
  consecutive,
  ManualClock,
  pipeline,
  retry,
  retryBudget,
  type RetryEvent,
} from '../../../src/index.js';

const CLIENTS = 200;
const OUTAGE_MS = 10_000;
const RUN_MS = 15_000;
const PERIOD_MS = 100;

async function storm(withBudget: boolean) {
  const clock = new ManualClock();
  const budget = withBudget ? retryBudget({ clock, ratio: 0.1, minRetriesPerSecond: 5, windowMs: 10_000 }) : undefined;
  const breaker = circuitBreaker({ clock, breaker: consecutive(20), halfOpenAfterMs: 1_000 });
  const retrying = retry({ clock, maxAttempts: 4, backoff: constant(50), ...(budget ? { budget } : {}) });
  const policy = pipeline(retrying, breaker);

  const retries: RetryEvent[] = [];
  retrying.onRetry((e) => retries.push(e));
  let upstreamCalls = 0;
  let upstreamCallsWhileOpen = 0;
  let requests = 0;
  let succeeded = 0;
  let failedAfterRecovery = 0;
  const pending: Promise<void>[] = [];

  const upstream = async (): Promise<string> => {
    upstreamCalls++;
    if (breaker.state === 'open') upstreamCallsWhileOpen++;
    if (clock.now() < OUTAGE_MS) throw new Error('upstream down');
    return 'ok';
  };

  for (let t = 0; t < RUN_MS; t += PERIOD_MS) {
    for (let c = 0; c < CLIENTS; c++) {
      requests++;
      const startedAt = clock.now();
      pending.push(
        policy.execute(upstream).then(
          () => void succeeded++,
          () => {
            // Once the outage and one open period are over, every request must get through.
            if (startedAt >= OUTAGE_MS + 2_000) failedAfterRecovery++;
          },
        ),
      );
    }
    await clock.advance(PERIOD_MS);
  }
  await clock.advance(1_000);
  await Promise.all(pending);
  return { requests, upstreamCalls, upstreamCallsWhileOpen, retries, succeeded, failedAfterRecovery, clock };
}

describe('retry storm under an upstream outage (L7)', () => {
  it('keeps retries within the budget and never retries or calls upstream while the breaker is open', async () => {
    const r = await storm(true);
    const seconds = (RUN_MS + 1_000) / 1000;
    // The budget's allowance over the whole run, counted generously: 10 % of requests plus the
    // per-second floor for every window second.
    expect(r.retries.length).toBeLessThanOrEqual(0.1 * r.requests + 5 * 10 * Math.ceil(seconds / 10) + 1);
    expect(r.retries.filter((e) => e.error instanceof BrokenCircuitError)).toEqual([]);
    expect(r.upstreamCallsWhileOpen).toBe(0);
    expect(r.failedAfterRecovery).toBe(0);
    expect(r.upstreamCalls / r.requests).toBeLessThan(1.2);
    expect(r.clock.pendingTimers).toBe(0);
  }, 60_000);

  it('without a budget the same outage sends more retries upstream (the budget is what bounds them)', async () => {
    const bounded = await storm(true);
    const unbounded = await storm(false);
    expect(unbounded.retries.length).toBeGreaterThan(bounded.retries.length);
    expect(unbounded.upstreamCallsWhileOpen).toBe(0);
  }, 60_000);
});
