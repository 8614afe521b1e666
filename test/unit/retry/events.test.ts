import { subscribe, unsubscribe } from 'node:diagnostics_channel';
import { describe, expect, it } from 'vitest';
import {
  BrokenCircuitError,
  channelNames,
  constant,
  ManualClock,
  retry,
  retryBudget,
  type GiveUpEvent,
  type RetryEvent,
} from '../../../src/index.js';
import { flush } from '../../support/helpers.js';
import { alwaysFailing, failing, outcome } from './support.js';

describe('retry events: onRetry', () => {
  it('reports the failed attempt, the delay and the error before each wait', async () => {
    const clock = new ManualClock();
    const errors = [new Error('a'), new Error('b')];
    const events: RetryEvent[] = [];
    const policy = retry({ maxAttempts: 3, backoff: constant(40), clock, name: 'users-api' });
    policy.onRetry((e) => events.push(e));
    const p = policy.execute(failing(errors, 'ok').fn);
    await clock.advance(200);
    await expect(p).resolves.toBe('ok');
    expect(events).toEqual([
      { policy: 'users-api', attempt: 1, delayMs: 40, error: errors[0] },
      { policy: 'users-api', attempt: 2, delayMs: 40, error: errors[1] },
    ]);
  });

  it('fires before the wait starts, while the next attempt has not run yet', async () => {
    const clock = new ManualClock();
    const { fn, calls } = failing([new Error('a')], 'ok');
    const seen: { calls: number[]; now: number; timers: number }[] = [];
    const policy = retry({ maxAttempts: 2, backoff: constant(40), clock });
    policy.onRetry(() => seen.push({ calls: [...calls], now: clock.now(), timers: clock.pendingTimers }));
    const p = policy.execute(fn);
    await clock.advance(40);
    await expect(p).resolves.toBe('ok');
    expect(seen).toEqual([{ calls: [1], now: 0, timers: 0 }]);
  });

  it('is not fired for a call that succeeds first time, nor for the last failed attempt', async () => {
    const clock = new ManualClock();
    const events: RetryEvent[] = [];
    const policy = retry({ maxAttempts: 2, backoff: constant(10), clock });
    policy.onRetry((e) => events.push(e));
    await policy.execute(() => 'fine');
    expect(events).toEqual([]);
    const result = outcome(policy.execute(alwaysFailing().fn));
    await clock.advance(100);
    await result;
    expect(events.map((e) => e.attempt)).toEqual([1]);
  });

  it('stops reaching a listener once its subscription is disposed', async () => {
    const clock = new ManualClock();
    const kept: RetryEvent[] = [];
    const dropped: RetryEvent[] = [];
    const policy = retry({ maxAttempts: 3, backoff: constant(10), clock });
    policy.onRetry((e) => kept.push(e));
    const sub = policy.onRetry((e) => dropped.push(e));
    sub.dispose();
    sub.dispose();
    const result = outcome(policy.execute(alwaysFailing().fn));
    await clock.advance(100);
    await result;
    expect(kept).toHaveLength(2);
    expect(dropped).toEqual([]);
  });
});

describe('retry events: onGiveUp', () => {
  it('reports reason attempts with the attempt count and the last error', async () => {
    const clock = new ManualClock();
    const last = new Error('last');
    const events: GiveUpEvent[] = [];
    const policy = retry({ maxAttempts: 3, backoff: constant(10), clock });
    policy.onGiveUp((e) => events.push(e));
    const result = outcome(policy.execute(failing([new Error('a'), new Error('b'), last]).fn));
    await clock.advance(100);
    await result;
    expect(events).toEqual([{ policy: 'retry', attempts: 3, reason: 'attempts', error: last }]);
  });

  it('reports reason unhandled when handle refuses the error', async () => {
    const clock = new ManualClock();
    const error = new BrokenCircuitError(5_000);
    const events: GiveUpEvent[] = [];
    const policy = retry({ maxAttempts: 3, backoff: constant(10), clock });
    policy.onGiveUp((e) => events.push(e));
    const result = outcome(policy.execute(failing([new Error('a'), error]).fn));
    await clock.advance(100);
    await result;
    expect(events).toEqual([{ policy: 'retry', attempts: 2, reason: 'unhandled', error }]);
  });

  it('reports reason budget when the retry budget is spent', async () => {
    const clock = new ManualClock(1_000_000);
    const budget = retryBudget({ ratio: 0.1, minRetriesPerSecond: 0, clock });
    const error = new Error('down');
    const events: GiveUpEvent[] = [];
    const policy = retry({ maxAttempts: 3, backoff: constant(10), budget, clock });
    policy.onGiveUp((e) => events.push(e));
    await expect(policy.execute(alwaysFailing(error).fn)).rejects.toBe(error);
    expect(events).toEqual([{ policy: 'retry', attempts: 1, reason: 'budget', error }]);
  });

  it('reports reason aborted when fn fails after the caller’s signal aborted', async () => {
    const clock = new ManualClock();
    const controller = new AbortController();
    const error = new Error('cancelled');
    const events: GiveUpEvent[] = [];
    const policy = retry({ maxAttempts: 3, backoff: constant(10), clock });
    policy.onGiveUp((e) => events.push(e));
    const p = policy.execute(
      async () => {
        controller.abort(new Error('reason'));
        throw error;
      },
      { signal: controller.signal },
    );
    await expect(p).rejects.toBe(error);
    expect(events).toEqual([{ policy: 'retry', attempts: 1, reason: 'aborted', error }]);
  });

  // Regression: an abort during the wait used to end the call with no give-up event at all.
  it('reports reason aborted with the signal’s reason when the caller aborts during a wait', async () => {
    const clock = new ManualClock();
    const controller = new AbortController();
    const reason = new Error('caller gave up');
    const events: GiveUpEvent[] = [];
    const policy = retry({ maxAttempts: 5, backoff: constant(1_000), clock });
    policy.onGiveUp((e) => events.push(e));
    const result = outcome(policy.execute(alwaysFailing().fn, { signal: controller.signal }));
    await clock.advance(1_000);
    controller.abort(reason);
    const r = await result;
    expect(!r.ok && r.error).toBe(reason);
    expect(events).toEqual([{ policy: 'retry', attempts: 2, reason: 'aborted', error: reason }]);
  });

  // Regression: with maxAttempts 1 the policy skipped its give-up path, so listeners heard nothing.
  it('reports a failure of a maxAttempts: 1 policy as reason attempts', async () => {
    const clock = new ManualClock();
    const error = new Error('once');
    const events: GiveUpEvent[] = [];
    const policy = retry({ maxAttempts: 1, backoff: constant(10), clock });
    policy.onGiveUp((e) => events.push(e));
    await expect(policy.execute(alwaysFailing(error).fn)).rejects.toBe(error);
    expect(events).toEqual([{ policy: 'retry', attempts: 1, reason: 'attempts', error }]);
  });

  it('reports an unhandled failure of a maxAttempts: 1 policy as reason unhandled', async () => {
    const clock = new ManualClock();
    const error = new BrokenCircuitError(10);
    const events: GiveUpEvent[] = [];
    const policy = retry({ maxAttempts: 1, clock });
    policy.onGiveUp((e) => events.push(e));
    await expect(policy.execute(alwaysFailing(error).fn)).rejects.toBe(error);
    expect(events.map((e) => e.reason)).toEqual(['unhandled']);
  });

  it('is not fired when the call succeeds, even after retries', async () => {
    const clock = new ManualClock();
    const events: GiveUpEvent[] = [];
    const policy = retry({ maxAttempts: 3, backoff: constant(10), clock });
    policy.onGiveUp((e) => events.push(e));
    const p = policy.execute(failing([new Error('a')], 'ok').fn);
    await clock.advance(100);
    await expect(p).resolves.toBe('ok');
    await expect(retry({ maxAttempts: 1, clock }).execute(() => 1)).resolves.toBe(1);
    expect(events).toEqual([]);
  });

  it('stops reaching a listener once its subscription is disposed', async () => {
    const clock = new ManualClock();
    const events: GiveUpEvent[] = [];
    const policy = retry({ maxAttempts: 2, backoff: constant(10), clock });
    const sub = policy.onGiveUp((e) => events.push(e));
    const first = outcome(policy.execute(alwaysFailing().fn));
    await clock.advance(100);
    await first;
    expect(events).toHaveLength(1);
    sub.dispose();
    const second = outcome(policy.execute(alwaysFailing().fn));
    await clock.advance(100);
    await second;
    expect(events).toHaveLength(1);
  });

  it('rejects a listener that is not a function', () => {
    const policy = retry();
    expect(() => policy.onGiveUp('nope' as never)).toThrow(TypeError);
    expect(() => policy.onRetry(undefined as never)).toThrow(TypeError);
  });
});

describe('retry events: diagnostics channels', () => {
  it('publishes retries and give-ups on bulwark:retry:attempt and bulwark:retry:give-up', async () => {
    const clock = new ManualClock();
    const attempts: unknown[] = [];
    const giveUps: unknown[] = [];
    const onAttempt = (m: unknown): void => void attempts.push(m);
    const onGiveUp = (m: unknown): void => void giveUps.push(m);
    subscribe(channelNames.retryAttempt, onAttempt);
    subscribe(channelNames.retryGiveUp, onGiveUp);
    try {
      const error = new Error('down');
      const result = outcome(retry({ maxAttempts: 2, backoff: constant(30), clock, name: 'ch' }).execute(alwaysFailing(error).fn));
      await clock.advance(100);
      await result;
      expect(attempts).toEqual([{ policy: 'ch', attempt: 1, delayMs: 30, error }]);
      expect(giveUps).toEqual([{ policy: 'ch', attempts: 2, reason: 'attempts', error }]);
    } finally {
      unsubscribe(channelNames.retryAttempt, onAttempt);
      unsubscribe(channelNames.retryGiveUp, onGiveUp);
    }
    await flush();
  });
});
