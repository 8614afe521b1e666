import { describe, expect, it } from 'vitest';
import {
  BrokenCircuitError,
  circuitBreaker,
  type CircuitBreakerPolicy,
  consecutive,
  countWindow,
  ManualClock,
  timeWindow,
} from '../../../src/index.js';
import { deferred, flush } from '../../support/helpers.js';
import { abortError, Boom, fail, succeed } from './support.js';

/** Runs one call that takes `ms` on the manual clock and then succeeds or fails. */
async function timedCall(breaker: CircuitBreakerPolicy, clock: ManualClock, ms: number, failed = false): Promise<void> {
  const d = deferred<string>();
  const p = breaker.execute(() => d.promise);
  await clock.advance(ms);
  if (failed) {
    const e = new Boom('slow failure');
    d.reject(e);
    await expect(p).rejects.toBe(e);
  } else {
    d.resolve('done');
    await expect(p).resolves.toBe('done');
  }
}

describe('consecutive(n)', () => {
  it('opens exactly at the n-th handled failure in a row', async () => {
    const breaker = circuitBreaker({ breaker: consecutive(3), clock: new ManualClock() });
    await fail(breaker, 2);
    expect(breaker.state).toBe('closed');
    await fail(breaker, 1);
    expect(breaker.state).toBe('open');
  });

  it('opens on the first failure when n is 1', async () => {
    const breaker = circuitBreaker({ breaker: consecutive(1), clock: new ManualClock() });
    await fail(breaker, 1);
    expect(breaker.state).toBe('open');
  });

  it('a success in between resets the count', async () => {
    const breaker = circuitBreaker({ breaker: consecutive(3), clock: new ManualClock() });
    await fail(breaker, 2);
    await succeed(breaker);
    await fail(breaker, 2);
    expect(breaker.state).toBe('closed');
    await fail(breaker, 1);
    expect(breaker.state).toBe('open');
  });

  it('passes errors rejected by handle through unchanged and does not count them', async () => {
    class Ignored extends Error {}
    const breaker = circuitBreaker({
      breaker: consecutive(2),
      handle: (e) => !(e instanceof Ignored),
      clock: new ManualClock(),
    });
    await fail(breaker, 1);
    await fail(breaker, 5, () => new Ignored('not mine'));
    expect(breaker.state).toBe('closed');
    await fail(breaker, 1);
    expect(breaker.state).toBe('open');
  });

  it('an error rejected by handle does not reset the failure count either', async () => {
    class Ignored extends Error {}
    const breaker = circuitBreaker({
      breaker: consecutive(2),
      handle: (e) => !(e instanceof Ignored),
      clock: new ManualClock(),
    });
    await fail(breaker, 1);
    await fail(breaker, 1, () => new Ignored('not mine'));
    await fail(breaker, 1);
    expect(breaker.state).toBe('open');
  });

  it('does not count an AbortError by default', async () => {
    const breaker = circuitBreaker({ breaker: consecutive(2), clock: new ManualClock() });
    await fail(breaker, 10, abortError);
    expect(breaker.state).toBe('closed');
  });

  it('counts an AbortError when a custom handle says so', async () => {
    const breaker = circuitBreaker({ breaker: consecutive(2), handle: () => true, clock: new ManualClock() });
    await fail(breaker, 2, abortError);
    expect(breaker.state).toBe('open');
  });

  it('counts a rejected non-Error value as a failure', async () => {
    const breaker = circuitBreaker({ breaker: consecutive(2), clock: new ManualClock() });
    await fail(breaker, 2, () => 'a string');
    expect(breaker.state).toBe('open');
  });

  it('one strategy object gives every breaker its own count', async () => {
    const strategy = consecutive(2);
    const a = circuitBreaker({ breaker: strategy, clock: new ManualClock() });
    const b = circuitBreaker({ breaker: strategy, clock: new ManualClock() });
    await fail(a, 1);
    await fail(b, 1);
    expect(a.state).toBe('closed');
    expect(b.state).toBe('closed');
    await fail(a, 1);
    expect(a.state).toBe('open');
    expect(b.state).toBe('closed');
  });
});

describe('countWindow', () => {
  it('does not open before minimumCalls outcomes, even when every one failed', async () => {
    const breaker = circuitBreaker({
      breaker: countWindow({ size: 10, minimumCalls: 5, failureRateThreshold: 0.5 }),
      clock: new ManualClock(),
    });
    await fail(breaker, 4);
    expect(breaker.state).toBe('closed');
    await fail(breaker, 1);
    expect(breaker.state).toBe('open');
  });

  it('opens when the failure rate reaches the threshold exactly', async () => {
    const breaker = circuitBreaker({
      breaker: countWindow({ size: 4, minimumCalls: 4, failureRateThreshold: 0.5 }),
      clock: new ManualClock(),
    });
    await succeed(breaker, 2);
    await fail(breaker, 1);
    expect(breaker.state).toBe('closed');
    await fail(breaker, 1); // 2 of 4 = 0.5
    expect(breaker.state).toBe('open');
  });

  it('stays closed while the failure rate is below the threshold', async () => {
    const breaker = circuitBreaker({
      breaker: countWindow({ size: 10, minimumCalls: 10, failureRateThreshold: 0.5 }),
      clock: new ManualClock(),
    });
    await succeed(breaker, 6);
    await fail(breaker, 4);
    expect(breaker.state).toBe('closed');
  });

  // Regression: the threshold was compared as failures >= rate * calls, and rate * calls can
  // round up (0.07 * 100 = 7.000000000000001), so a rate exactly at the threshold did not open.
  it.each([
    { size: 100, rate: 0.07, failures: 7 },
    { size: 50, rate: 0.14, failures: 7 },
    { size: 25, rate: 0.28, failures: 7 },
    { size: 75, rate: 0.68, failures: 51 },
  ])('opens at a failure rate exactly equal to a decimal threshold ($failures of $size at $rate)', async ({ size, rate, failures }) => {
    const breaker = circuitBreaker({
      breaker: countWindow({ size, minimumCalls: size, failureRateThreshold: rate }),
      clock: new ManualClock(),
    });
    await succeed(breaker, size - failures);
    await fail(breaker, failures - 1);
    expect(breaker.state).toBe('closed');
    await fail(breaker, 1);
    expect(breaker.state).toBe('open');
  });

  it('opens on the slow-call rate, counting slow successes', async () => {
    const clock = new ManualClock();
    const breaker = circuitBreaker({
      breaker: countWindow({ size: 4, minimumCalls: 4, slowCallMs: 100, slowCallRateThreshold: 0.5 }),
      clock,
    });
    await timedCall(breaker, clock, 10);
    await timedCall(breaker, clock, 99); // just under the limit: not slow
    await timedCall(breaker, clock, 100); // at the limit: slow
    expect(breaker.state).toBe('closed');
    await timedCall(breaker, clock, 500); // 2 slow of 4, all successes
    expect(breaker.state).toBe('open');
  });

  it('a slow failure counts towards both rates', async () => {
    const clock = new ManualClock();
    const breaker = circuitBreaker({
      breaker: countWindow({
        size: 2,
        minimumCalls: 2,
        failureRateThreshold: 1,
        slowCallMs: 50,
        slowCallRateThreshold: 1,
      }),
      clock,
    });
    await timedCall(breaker, clock, 60, true);
    await timedCall(breaker, clock, 60, false);
    // failures 1/2 < 1, slow 2/2 >= 1
    expect(breaker.state).toBe('open');
  });

  it('fast calls never count as slow without slowCallMs', async () => {
    const clock = new ManualClock();
    const breaker = circuitBreaker({ breaker: countWindow({ size: 2, minimumCalls: 2 }), clock });
    await timedCall(breaker, clock, 1_000_000);
    await timedCall(breaker, clock, 1_000_000);
    expect(breaker.state).toBe('closed');
  });

  it('the window slides: outcomes older than the last size calls drop out', async () => {
    const breaker = circuitBreaker({
      breaker: countWindow({ size: 4, minimumCalls: 4, failureRateThreshold: 0.75 }),
      clock: new ManualClock(),
    });
    await fail(breaker, 2);
    await succeed(breaker, 2); // window: F F S S (0.5)
    await succeed(breaker, 2); // window: S S S S, the two failures dropped out
    await fail(breaker, 2); // window: S S F F (0.5)
    expect(breaker.state).toBe('closed');
    await fail(breaker, 1); // window: S F F F (0.75)
    expect(breaker.state).toBe('open');
  });

  it('a failure that slides out of a full window lowers the rate again', async () => {
    const breaker = circuitBreaker({
      breaker: countWindow({ size: 3, minimumCalls: 3, failureRateThreshold: 1 }),
      clock: new ManualClock(),
    });
    await fail(breaker, 2);
    await succeed(breaker, 1); // F F S
    await fail(breaker, 2); // S F F: the first two failures are gone, one success remains
    expect(breaker.state).toBe('closed');
    await fail(breaker, 1); // F F F
    expect(breaker.state).toBe('open');
  });

  it('minimumCalls defaults to the window size when the size is below 20', async () => {
    const breaker = circuitBreaker({ breaker: countWindow({ size: 5 }), clock: new ManualClock() });
    await fail(breaker, 4);
    expect(breaker.state).toBe('closed');
    await fail(breaker, 1);
    expect(breaker.state).toBe('open');
  });

  it('starts with an empty window after it closes again', async () => {
    const clock = new ManualClock();
    const breaker = circuitBreaker({
      breaker: countWindow({ size: 4, minimumCalls: 2, failureRateThreshold: 0.5 }),
      halfOpenAfterMs: 1000,
      clock,
    });
    await fail(breaker, 2);
    expect(breaker.state).toBe('open');
    await clock.advance(1000);
    await succeed(breaker); // the probe closes it
    expect(breaker.state).toBe('closed');
    await fail(breaker, 1); // one failure alone is below minimumCalls
    expect(breaker.state).toBe('closed');
  });
});

describe('timeWindow', () => {
  it('does not open before minimumCalls outcomes in the window', async () => {
    const breaker = circuitBreaker({
      breaker: timeWindow({ windowMs: 1000, minimumCalls: 3, failureRateThreshold: 0.5 }),
      clock: new ManualClock(),
    });
    await fail(breaker, 2);
    expect(breaker.state).toBe('closed');
    await fail(breaker, 1);
    expect(breaker.state).toBe('open');
  });

  // Regression: with the clock near 0 (a ManualClock, or performance.now() early in a process)
  // the first bucket sweep indexed the arrays with negative numbers and made every count NaN,
  // so a time window never opened.
  it.each([
    ['at 0', 0],
    ['far from 0', 1_000_000_007],
  ])('opens with a clock that starts %s', async (_where, start) => {
    const breaker = circuitBreaker({
      breaker: timeWindow({ windowMs: 10_000, minimumCalls: 2 }),
      clock: new ManualClock(start),
    });
    await fail(breaker, 2);
    expect(breaker.state).toBe('open');
  });

  it('opens when the failure rate reaches the threshold', async () => {
    const breaker = circuitBreaker({
      breaker: timeWindow({ windowMs: 1000, minimumCalls: 4, failureRateThreshold: 0.5 }),
      clock: new ManualClock(),
    });
    await succeed(breaker, 2);
    await fail(breaker, 1);
    expect(breaker.state).toBe('closed');
    await fail(breaker, 1);
    expect(breaker.state).toBe('open');
  });

  it('stays closed while the failure rate is below the threshold', async () => {
    const breaker = circuitBreaker({
      breaker: timeWindow({ windowMs: 1000, minimumCalls: 4, failureRateThreshold: 0.5 }),
      clock: new ManualClock(),
    });
    await succeed(breaker, 5);
    await fail(breaker, 4);
    expect(breaker.state).toBe('closed');
  });

  it('opens on the slow-call rate, counting slow successes', async () => {
    const clock = new ManualClock();
    const breaker = circuitBreaker({
      breaker: timeWindow({ windowMs: 10_000, minimumCalls: 3, slowCallMs: 100, slowCallRateThreshold: 0.6 }),
      clock,
    });
    await timedCall(breaker, clock, 150);
    await timedCall(breaker, clock, 10);
    expect(breaker.state).toBe('closed');
    await timedCall(breaker, clock, 100); // 2 slow of 3 >= 0.6
    expect(breaker.state).toBe('open');
  });

  it('outcomes older than windowMs stop counting', async () => {
    const clock = new ManualClock();
    const breaker = circuitBreaker({
      breaker: timeWindow({ windowMs: 1000, minimumCalls: 3, failureRateThreshold: 0.5 }),
      clock,
    });
    await fail(breaker, 2);
    await clock.advance(1000);
    await fail(breaker, 1); // the two earlier failures have left the window
    expect(breaker.state).toBe('closed');
    await fail(breaker, 1);
    expect(breaker.state).toBe('closed');
    await fail(breaker, 1);
    expect(breaker.state).toBe('open');
  });

  it('outcomes still inside the window keep counting', async () => {
    const clock = new ManualClock();
    const breaker = circuitBreaker({
      breaker: timeWindow({ windowMs: 1000, minimumCalls: 3, failureRateThreshold: 0.5 }),
      clock,
    });
    await fail(breaker, 2);
    await clock.advance(850);
    await fail(breaker, 1);
    expect(breaker.state).toBe('open');
  });

  it('a long idle gap clears the whole window', async () => {
    const clock = new ManualClock(5);
    const breaker = circuitBreaker({
      breaker: timeWindow({ windowMs: 1000, minimumCalls: 2, failureRateThreshold: 1 }),
      clock,
    });
    await fail(breaker, 1);
    await clock.advance(123_456);
    await succeed(breaker, 1);
    await fail(breaker, 1); // 1 of 2: the old failure is gone
    expect(breaker.state).toBe('closed');
    await fail(breaker, 1);
    expect(breaker.state).toBe('closed'); // 2 of 3
    await clock.advance(2000);
    await fail(breaker, 2);
    expect(breaker.state).toBe('open');
  });

  it('a slow call is timed from its start to its settlement', async () => {
    const clock = new ManualClock();
    const breaker = circuitBreaker({
      breaker: timeWindow({ windowMs: 60_000, minimumCalls: 1, slowCallMs: 1000, slowCallRateThreshold: 1 }),
      clock,
    });
    const d = deferred<number>();
    const p = breaker.execute(() => d.promise);
    await clock.advance(999);
    d.resolve(1);
    await expect(p).resolves.toBe(1);
    expect(breaker.state).toBe('closed');
    await timedCall(breaker, clock, 1000);
    // 1 slow of 2 < 1
    expect(breaker.state).toBe('closed');
  });
});

describe('strategy results on an open breaker', () => {
  it('a breaker opened by a window rejects with BrokenCircuitError', async () => {
    const breaker = circuitBreaker({
      breaker: countWindow({ size: 2, minimumCalls: 2 }),
      halfOpenAfterMs: 500,
      clock: new ManualClock(),
    });
    await fail(breaker, 2);
    const p = breaker.execute(() => 'never');
    await expect(p).rejects.toBeInstanceOf(BrokenCircuitError);
    await flush();
  });
});
