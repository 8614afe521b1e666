import { describe, expect, it } from 'vitest';
import { constant, ManualClock, retry, retryBudget, RetryBudget, type GiveUpEvent } from '../../../src/index.js';
import { alwaysFailing, failing, outcome } from './support.js';

describe('retryBudget: accounting', () => {
  it('exposes its options, with defaults ratio 0.2, 10 retries per second and a 10 s window', () => {
    const budget = retryBudget();
    expect(budget).toBeInstanceOf(RetryBudget);
    expect(budget.ratio).toBe(0.2);
    expect(budget.minRetriesPerSecond).toBe(10);
    expect(budget.windowMs).toBe(10_000);
  });

  it('grants minRetriesPerSecond × window seconds retries before any call', () => {
    const clock = new ManualClock(50_000);
    const budget = retryBudget({ ratio: 0.2, minRetriesPerSecond: 1, windowMs: 5_000, clock });
    expect(budget.available).toBe(5);
    let granted = 0;
    while (budget.tryRetry()) granted++;
    expect(granted).toBe(5);
    expect(budget.available).toBe(0);
  });

  it('adds ratio of a retry for every call recorded', () => {
    const clock = new ManualClock(50_000);
    const budget = retryBudget({ ratio: 0.25, minRetriesPerSecond: 0, clock });
    expect(budget.available).toBe(0);
    expect(budget.tryRetry()).toBe(false);
    for (let i = 0; i < 3; i++) budget.recordCall();
    expect(budget.available).toBe(0);
    budget.recordCall();
    expect(budget.available).toBe(1);
    for (let i = 0; i < 8; i++) budget.recordCall();
    expect(budget.available).toBe(3);
  });

  it('refuses a retry once the budget is spent, and a refusal takes nothing', () => {
    const clock = new ManualClock(50_000);
    const budget = retryBudget({ ratio: 0.5, minRetriesPerSecond: 0, clock });
    for (let i = 0; i < 4; i++) budget.recordCall();
    expect(budget.tryRetry()).toBe(true);
    expect(budget.tryRetry()).toBe(true);
    expect(budget.tryRetry()).toBe(false);
    expect(budget.tryRetry()).toBe(false);
    budget.recordCall();
    budget.recordCall();
    expect(budget.tryRetry()).toBe(true);
    expect(budget.tryRetry()).toBe(false);
  });

  // Regression: bucket indices went negative while clock.now() < windowMs, which turned the counts
  // into NaN and the budget into an unlimited one for the life of the process.
  it('limits retries when first used while the clock reads less than windowMs', () => {
    const clock = new ManualClock(0);
    const budget = retryBudget({ ratio: 0.2, minRetriesPerSecond: 0, windowMs: 10_000, clock });
    budget.recordCall();
    expect(budget.available).toBe(0);
    let granted = 0;
    for (let i = 0; i < 100; i++) if (budget.tryRetry()) granted++;
    expect(granted).toBe(0);
  });

  it.each([0, 1, 999, 4_321, 9_999, 10_000, 123_456])('keeps finite counts when first used at clock time %i', (start) => {
    const clock = new ManualClock(start);
    const budget = retryBudget({ ratio: 0.5, minRetriesPerSecond: 0, clock });
    for (let i = 0; i < 10; i++) budget.recordCall();
    expect(budget.available).toBe(5);
    let granted = 0;
    for (let i = 0; i < 20; i++) if (budget.tryRetry()) granted++;
    expect(granted).toBe(5);
    expect(budget.available).toBe(0);
  });
});

describe('retryBudget: sliding window', () => {
  it('gives retries back once the retries that spent them leave the window', async () => {
    const clock = new ManualClock();
    // 0.2 retries per second over 10 s: 2 retries per window, no matter how many calls.
    const budget = retryBudget({ ratio: 0.1, minRetriesPerSecond: 0.2, windowMs: 10_000, clock });
    expect(budget.tryRetry()).toBe(true);
    expect(budget.tryRetry()).toBe(true);
    expect(budget.tryRetry()).toBe(false);
    await clock.advance(9_999);
    expect(budget.tryRetry()).toBe(false);
    await clock.advance(1);
    expect(budget.available).toBe(2);
    expect(budget.tryRetry()).toBe(true);
  });

  it('forgets calls older than the window', async () => {
    const clock = new ManualClock();
    const budget = retryBudget({ ratio: 0.5, minRetriesPerSecond: 0, windowMs: 1_000, clock });
    for (let i = 0; i < 10; i++) budget.recordCall();
    expect(budget.available).toBe(5);
    await clock.advance(500);
    for (let i = 0; i < 4; i++) budget.recordCall();
    expect(budget.available).toBe(7);
    await clock.advance(500);
    // The first ten calls have left the window; the four made at 500 ms remain.
    expect(budget.available).toBe(2);
    await clock.advance(500);
    expect(budget.available).toBe(0);
  });

  it('forgets everything after a pause longer than the window', async () => {
    const clock = new ManualClock();
    const budget = retryBudget({ ratio: 1, minRetriesPerSecond: 0, windowMs: 2_000, clock });
    for (let i = 0; i < 6; i++) budget.recordCall();
    for (let i = 0; i < 6; i++) budget.tryRetry();
    expect(budget.available).toBe(0);
    await clock.advance(3_600_000);
    budget.recordCall();
    expect(budget.available).toBe(1);
  });

  it('counts retries against the window in which they were taken', async () => {
    const clock = new ManualClock();
    const budget = retryBudget({ ratio: 1, minRetriesPerSecond: 0, windowMs: 10_000, clock });
    for (let i = 0; i < 4; i++) budget.recordCall();
    await clock.advance(5_000);
    expect(budget.tryRetry()).toBe(true);
    expect(budget.tryRetry()).toBe(true);
    // At 10 s the four calls expire, but the two retries taken at 5 s still count.
    await clock.advance(5_000);
    for (let i = 0; i < 3; i++) budget.recordCall();
    expect(budget.available).toBe(1);
    await clock.advance(5_000);
    expect(budget.available).toBe(3);
  });
});

describe('retryBudget: used by retry policies', () => {
  it('is shared by two retry policies: retries one spends the other cannot use', async () => {
    const clock = new ManualClock();
    // One retry per 10 s window and almost nothing per call.
    const budget = retryBudget({ ratio: 0.01, minRetriesPerSecond: 0.1, windowMs: 10_000, clock });
    const users = retry({ maxAttempts: 3, backoff: constant(10), budget, clock, name: 'users' });
    const orders = retry({ maxAttempts: 3, backoff: constant(10), budget, clock, name: 'orders' });
    const giveUps: GiveUpEvent[] = [];
    users.onGiveUp((e) => giveUps.push(e));
    orders.onGiveUp((e) => giveUps.push(e));

    const u = alwaysFailing();
    const first = outcome(users.execute(u.fn));
    await clock.advance(100);
    await first;
    expect(u.calls()).toBe(2);

    const ordersError = new Error('orders down');
    const o = alwaysFailing(ordersError);
    await expect(orders.execute(o.fn)).rejects.toBe(ordersError);
    expect(o.calls()).toBe(1);
    expect(giveUps.map((e) => [e.policy, e.reason, e.attempts])).toEqual([
      ['users', 'budget', 2],
      ['orders', 'budget', 1],
    ]);
    expect(giveUps[1]!.error).toBe(ordersError);
  });

  it('lets retries resume once the window has slid past the spent ones', async () => {
    const clock = new ManualClock();
    const budget = retryBudget({ ratio: 0.01, minRetriesPerSecond: 0.1, windowMs: 10_000, clock });
    const policy = retry({ maxAttempts: 2, backoff: constant(10), budget, clock });
    const a = failing([new Error('a')], 'A');
    const pa = policy.execute(a.fn);
    await clock.advance(10);
    await expect(pa).resolves.toBe('A');
    expect(a.calls).toEqual([1, 2]);

    const error = new Error('b');
    await expect(policy.execute(failing([error], 'B').fn)).rejects.toBe(error);

    await clock.advance(10_000);
    const c = failing([new Error('c')], 'C');
    const pc = policy.execute(c.fn);
    await clock.advance(10);
    await expect(pc).resolves.toBe('C');
    expect(c.calls).toEqual([1, 2]);
  });

  it('takes nothing from the budget for a call that succeeds first time', async () => {
    const clock = new ManualClock();
    const budget = retryBudget({ ratio: 0.5, minRetriesPerSecond: 0, clock });
    const policy = retry({ maxAttempts: 3, backoff: constant(10), budget, clock });
    for (let i = 0; i < 4; i++) await policy.execute(() => 'ok');
    expect(budget.available).toBe(2);
  });

  it('takes nothing from the budget for the last attempt or an unhandled error', async () => {
    const clock = new ManualClock();
    const budget = retryBudget({ ratio: 1, minRetriesPerSecond: 0, clock });
    for (let i = 0; i < 8; i++) budget.recordCall();
    const policy = retry({ maxAttempts: 2, backoff: constant(10), budget, clock, handle: (e) => e !== fatal });
    const fatal = new Error('fatal');
    await expect(policy.execute(alwaysFailing(fatal).fn)).rejects.toBe(fatal);
    expect(budget.available).toBe(9);
    const result = outcome(policy.execute(alwaysFailing().fn));
    await clock.advance(100);
    await result;
    // Two more calls recorded (10 in all), one retry taken.
    expect(budget.available).toBe(9);
  });

  it('RELIABILITY L7 at unit scale: 200 concurrent always-failing calls make at most 200 + 20 % attempts', async () => {
    const clock = new ManualClock();
    const budget = retryBudget({ ratio: 0.2, minRetriesPerSecond: 0, clock });
    const policy = retry({ maxAttempts: 5, backoff: constant(10), budget, clock });
    const { fn, calls } = alwaysFailing(new Error('upstream down'));
    const results = Array.from({ length: 200 }, () => outcome(policy.execute(fn)));
    await clock.advance(1_000);
    const settled = await Promise.all(results);
    expect(settled.every((r) => !r.ok)).toBe(true);
    expect(calls()).toBeGreaterThan(200);
    expect(calls()).toBeLessThanOrEqual(200 + 0.2 * 200 + 1);
  });

  it('RELIABILITY L7 at unit scale: 200 sequential always-failing calls make at most 200 + 20 % attempts', async () => {
    const clock = new ManualClock();
    const budget = retryBudget({ ratio: 0.2, minRetriesPerSecond: 0, windowMs: 60_000, clock });
    const policy = retry({ maxAttempts: 5, backoff: constant(10), budget, clock });
    const { fn, calls } = alwaysFailing(new Error('upstream down'));
    for (let i = 0; i < 200; i++) {
      const result = outcome(policy.execute(fn));
      await clock.advance(50);
      expect((await result).ok).toBe(false);
    }
    expect(clock.now()).toBeLessThan(60_000);
    expect(calls()).toBeGreaterThan(200);
    expect(calls()).toBeLessThanOrEqual(200 + 0.2 * 200 + 1);
  });

  it('RELIABILITY L7 baseline: without a budget the same 200 calls make 1000 attempts', async () => {
    const clock = new ManualClock();
    const policy = retry({ maxAttempts: 5, backoff: constant(10), clock });
    const { fn, calls } = alwaysFailing(new Error('upstream down'));
    const results = Array.from({ length: 200 }, () => outcome(policy.execute(fn)));
    await clock.advance(1_000);
    await Promise.all(results);
    expect(calls()).toBe(1_000);
  });
});
