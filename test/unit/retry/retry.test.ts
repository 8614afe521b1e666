import { describe, expect, it } from 'vitest';
import {
  BrokenCircuitError,
  BulkheadRejectedError,
  constant,
  defaultRetryHandle,
  exponential,
  IsolatedCircuitError,
  ManualClock,
  QuotaExceededError,
  RateLimitedError,
  retry,
  TimeoutError,
  type Backoff,
  type GiveUpEvent,
  type RetryEvent,
} from '../../../src/index.js';
import { abortHandlerCount } from '../../../src/core/shared-abort.js';
import { abortListeners, captureCallbackErrors, flush, stateOf } from '../../support/helpers.js';
import { alwaysFailing, failing, outcome } from './support.js';

function rateLimited(retryAfterMs: number): RateLimitedError {
  return new RateLimitedError({ allowed: false, limit: 10, remaining: 0, resetMs: retryAfterMs, retryAfterMs });
}

function withRetryAfter(retryAfterMs: unknown): Error {
  return Object.assign(new Error('try later'), { retryAfterMs });
}

describe('retry: attempt counts', () => {
  it('makes maxAttempts attempts in all, the first one included', async () => {
    const clock = new ManualClock();
    const { fn, calls } = alwaysFailing();
    const result = outcome(retry({ maxAttempts: 4, backoff: constant(10), clock }).execute(fn));
    await clock.advance(1_000);
    expect((await result).ok).toBe(false);
    expect(calls()).toBe(4);
  });

  it('defaults to 3 attempts', async () => {
    const clock = new ManualClock();
    const { fn, calls } = alwaysFailing();
    const policy = retry({ backoff: constant(10), clock });
    expect(policy.maxAttempts).toBe(3);
    const result = outcome(policy.execute(fn));
    await clock.advance(1_000);
    await result;
    expect(calls()).toBe(3);
  });

  it('passes ctx.attempt 1, 2, 3 to successive attempts', async () => {
    const clock = new ManualClock();
    const { fn, calls } = failing([new Error('a'), new Error('b'), new Error('c')]);
    const result = outcome(retry({ maxAttempts: 3, backoff: constant(10), clock }).execute(fn));
    await clock.advance(1_000);
    await result;
    expect(calls).toEqual([1, 2, 3]);
  });

  it('stops at the first success and resolves with its value', async () => {
    const clock = new ManualClock();
    const { fn, calls } = failing([new Error('a'), new Error('b')], 'ok');
    const p = retry({ maxAttempts: 5, backoff: constant(10), clock }).execute(fn);
    await clock.advance(1_000);
    await expect(p).resolves.toBe('ok');
    expect(calls).toEqual([1, 2, 3]);
    expect(clock.pendingTimers).toBe(0);
  });

  it('resolves on the first attempt without scheduling any timer', async () => {
    const clock = new ManualClock();
    const policy = retry({ maxAttempts: 3, backoff: constant(10), clock });
    const p = policy.execute(() => 42);
    expect(clock.pendingTimers).toBe(0);
    await expect(p).resolves.toBe(42);
  });

  it('rethrows the last error, the very same object, when attempts run out', async () => {
    const clock = new ManualClock();
    const errors = [new Error('first'), new Error('second'), new Error('last')];
    const { fn } = failing(errors);
    const result = outcome(retry({ maxAttempts: 3, backoff: constant(10), clock }).execute(fn));
    await clock.advance(1_000);
    const r = await result;
    expect(r.ok).toBe(false);
    expect(!r.ok && r.error).toBe(errors[2]);
  });

  it('rethrows a non-Error rejection value unchanged', async () => {
    const clock = new ManualClock();
    const thrown = { code: 'WEIRD' };
    const result = outcome(
      retry({ maxAttempts: 2, backoff: constant(10), clock }).execute(() => Promise.reject(thrown)),
    );
    await clock.advance(100);
    const r = await result;
    expect(!r.ok && r.error).toBe(thrown);
  });

  it('with maxAttempts: 1 calls fn once, never waits and rethrows its error', async () => {
    const clock = new ManualClock();
    const error = new Error('once');
    const { fn, calls } = alwaysFailing(error);
    const p = retry({ maxAttempts: 1, backoff: constant(10), clock }).execute(fn);
    await expect(p).rejects.toBe(error);
    expect(calls()).toBe(1);
    expect(clock.pendingTimers).toBe(0);
  });

  it('retries a function that throws synchronously like one that rejects', async () => {
    const clock = new ManualClock();
    let n = 0;
    const p = retry({ maxAttempts: 3, backoff: constant(10), clock }).execute(() => {
      n++;
      if (n < 3) throw new Error('sync');
      return 'third time';
    });
    await clock.advance(100);
    await expect(p).resolves.toBe('third time');
    expect(n).toBe(3);
  });

  it('keeps separate calls on one policy independent', async () => {
    const clock = new ManualClock();
    const policy = retry({ maxAttempts: 3, backoff: constant(10), clock });
    const a = failing([new Error('a')], 'A');
    const b = failing([new Error('b1'), new Error('b2')], 'B');
    const pa = policy.execute(a.fn);
    const pb = policy.execute(b.fn);
    await clock.advance(100);
    await expect(pa).resolves.toBe('A');
    await expect(pb).resolves.toBe('B');
    expect(a.calls).toEqual([1, 2]);
    expect(b.calls).toEqual([1, 2, 3]);
  });
});

describe('retry: which errors are retried', () => {
  it('rethrows an error that handle rejects at once, without waiting or retrying', async () => {
    const clock = new ManualClock();
    const error = new Error('fatal');
    const seen: unknown[] = [];
    const { fn, calls } = alwaysFailing(error);
    const policy = retry({
      maxAttempts: 5,
      backoff: constant(10),
      clock,
      handle: (e) => {
        seen.push(e);
        return false;
      },
    });
    const p = policy.execute(fn);
    await expect(p).rejects.toBe(error);
    expect(calls()).toBe(1);
    expect(seen).toEqual([error]);
    expect(clock.pendingTimers).toBe(0);
  });

  it('stops retrying as soon as a later error is not handled', async () => {
    const clock = new ManualClock();
    const fatal = new Error('fatal');
    const { fn, calls } = failing([new Error('transient'), fatal]);
    const policy = retry({ maxAttempts: 5, backoff: constant(10), clock, handle: (e) => e !== fatal });
    const result = outcome(policy.execute(fn));
    await clock.advance(1_000);
    const r = await result;
    expect(!r.ok && r.error).toBe(fatal);
    expect(calls).toEqual([1, 2]);
  });

  const abortError = new DOMException('The operation was aborted', 'AbortError');
  const namedAbort = Object.assign(new Error('aborted'), { name: 'AbortError' });

  it.each([
    ['an AbortError DOMException', abortError],
    ['an Error named AbortError', namedAbort],
    ['a BrokenCircuitError', new BrokenCircuitError(1_000)],
    ['an IsolatedCircuitError', new IsolatedCircuitError()],
    ['a QuotaExceededError', new QuotaExceededError(10, 0, 60_000)],
  ])('by default does not retry %s', async (_label, error) => {
    const clock = new ManualClock();
    const { fn, calls } = alwaysFailing(error);
    expect(defaultRetryHandle(error)).toBe(false);
    await expect(retry({ maxAttempts: 3, backoff: constant(10), clock }).execute(fn)).rejects.toBe(error);
    expect(calls()).toBe(1);
    expect(clock.pendingTimers).toBe(0);
  });

  it.each([
    ['a TimeoutError', new TimeoutError(500)],
    ['a BulkheadRejectedError', new BulkheadRejectedError(10, 5)],
    ['a RateLimitedError', rateLimited(20)],
    ['a plain Error', new Error('boom')],
    ['a TypeError', new TypeError('bad')],
    ['a thrown string', 'oops'],
    ['a thrown undefined', undefined],
  ])('by default retries %s', async (_label, error) => {
    const clock = new ManualClock();
    const { fn, calls } = alwaysFailing(error);
    expect(defaultRetryHandle(error)).toBe(true);
    const result = outcome(retry({ maxAttempts: 3, backoff: constant(10), clock }).execute(fn));
    await clock.advance(1_000);
    const r = await result;
    expect(r.ok).toBe(false);
    expect(!r.ok && r.error).toBe(error);
    expect(calls()).toBe(3);
  });
});

describe('retry: handleResult', () => {
  /** A function that returns the given values in turn (the last one from then on); counts its calls. */
  function returning<T>(...values: T[]): { fn: (ctx: { attempt: number }) => Promise<T>; calls: number[] } {
    const calls: number[] = [];
    const fn = async (ctx: { attempt: number }): Promise<T> => {
      calls.push(ctx.attempt);
      return values[Math.min(calls.length, values.length) - 1]!;
    };
    return { fn, calls };
  }
  const notOk = (v: unknown): boolean => (v as { ok?: unknown }).ok === false;

  // Regression (issue 12): only errors were retried, so a dependency answering 503 as a value
  // (a fetch Response, an `{ ok: false }`) was never tried again.
  it('retries a handled value like an error, and resolves with the first value it does not handle', async () => {
    const clock = new ManualClock();
    const { fn, calls } = returning(new Response(null, { status: 503 }), new Response(null, { status: 503 }), new Response('ok'));
    const policy = retry({ maxAttempts: 3, backoff: constant(10), clock, handleResult: (v) => (v as Response).status === 503 });
    const result = outcome(policy.execute(fn));
    await clock.advance(100);
    const settled = await result;
    expect(settled.ok && (settled.value as Response).status).toBe(200);
    expect(calls).toEqual([1, 2, 3]);
  });

  it('when attempts run out, resolves with the last handled value and reports it on give-up', async () => {
    const clock = new ManualClock();
    const last = { ok: false, n: 3 };
    const { fn, calls } = returning({ ok: false, n: 1 }, { ok: false, n: 2 }, last);
    const retries: RetryEvent[] = [];
    const giveUps: GiveUpEvent[] = [];
    const policy = retry({ maxAttempts: 3, backoff: constant(10), clock, handleResult: notOk });
    policy.onRetry((e) => retries.push(e));
    policy.onGiveUp((e) => giveUps.push(e));
    const result = outcome(policy.execute(fn));
    await clock.advance(100);
    expect(await result).toEqual({ ok: true, value: last });
    expect(calls).toEqual([1, 2, 3]);
    expect(retries.map((e) => [e.attempt, e.error, e.result])).toEqual([
      [1, undefined, { ok: false, n: 1 }],
      [2, undefined, { ok: false, n: 2 }],
    ]);
    expect(giveUps).toEqual([{ policy: 'retry', attempts: 3, reason: 'attempts', error: undefined, result: last }]);
  });

  it('with maxAttempts 1, a handled value resolves as it is and is reported on give-up', async () => {
    const giveUps: GiveUpEvent[] = [];
    const policy = retry({ maxAttempts: 1, handleResult: notOk });
    policy.onGiveUp((e) => giveUps.push(e));
    await expect(policy.execute(() => ({ ok: false }))).resolves.toEqual({ ok: false });
    expect(giveUps).toMatchObject([{ attempts: 1, reason: 'attempts', result: { ok: false } }]);
  });

  it('a value it does not handle resolves at once', async () => {
    const clock = new ManualClock();
    const { fn, calls } = returning({ ok: true });
    await expect(retry({ clock, handleResult: notOk }).execute(fn)).resolves.toEqual({ ok: true });
    expect(calls).toEqual([1]);
  });

  it('errors and handled values mix: each is retried by its own predicate', async () => {
    const clock = new ManualClock();
    let n = 0;
    const fn = async (): Promise<{ ok: boolean }> => {
      n++;
      if (n === 1) throw new Error('reset');
      return { ok: n === 3 };
    };
    const result = outcome(retry({ maxAttempts: 3, backoff: constant(10), clock, handleResult: notOk }).execute(fn));
    await clock.advance(100);
    expect(await result).toEqual({ ok: true, value: { ok: true } });
    expect(n).toBe(3);
  });

  it("a handled value's retryAfterMs sets the next delay, as an error's does", async () => {
    const clock = new ManualClock();
    const { fn, calls } = returning({ ok: false, retryAfterMs: 20 }, { ok: true });
    const result = outcome(retry({ backoff: constant(1_000), clock, handleResult: notOk }).execute(fn));
    await clock.advance(19);
    expect(calls).toEqual([1]);
    await clock.advance(1);
    expect(calls).toEqual([1, 2]);
    expect(await result).toEqual({ ok: true, value: { ok: true } });
  });

  it.each([1, 2])('a handleResult that throws on attempt %i rejects the call with what it threw, and stops retrying', async (at) => {
    const clock = new ManualClock();
    const bug = new TypeError("Cannot read properties of undefined (reading 'status')");
    const { fn, calls } = returning({ ok: false });
    const policy = retry({
      maxAttempts: 3,
      backoff: constant(10),
      clock,
      handleResult: () => {
        if (calls.length === at) throw bug;
        return true;
      },
    });
    const result = outcome(policy.execute(fn));
    await clock.advance(100);
    expect(await result).toEqual({ ok: false, error: bug });
    expect(calls.length).toBe(at);
  });
});

describe('retry: user functions that throw reject the call', () => {
  const bug = new TypeError("Cannot read properties of undefined (reading 'status')");

  // Audit (issue 12): every user function retry calls where a call can reject makes that call
  // reject with its throw, never an uncaught exception nor a retry loop that goes on.
  it.each([1, 2])('a handle that throws on attempt %i rejects the call with what it threw, and stops retrying', async (at) => {
    const clock = new ManualClock();
    const { fn, calls } = alwaysFailing(new Error('reset'));
    let asked = 0;
    const policy = retry({
      maxAttempts: 5,
      backoff: constant(10),
      clock,
      handle: () => {
        if (++asked === at) throw bug;
        return true;
      },
    });
    const result = outcome(policy.execute(fn));
    await clock.advance(100);
    expect(await result).toEqual({ ok: false, error: bug });
    expect(calls()).toBe(at);
  });

  it('a backoff whose next() throws rejects the call with what it threw', async () => {
    const clock = new ManualClock();
    const { fn, calls } = alwaysFailing(new Error('reset'));
    const backoff: Backoff = {
      initialMs: 10,
      next: () => {
        throw bug;
      },
    };
    const result = outcome(retry({ maxAttempts: 3, backoff, clock }).execute(fn));
    await clock.advance(100);
    expect(await result).toEqual({ ok: false, error: bug });
    expect(calls()).toBe(1);
  });

  it('onRetry and onGiveUp listeners that throw are reported; the call retries and settles as before', async () => {
    const clock = new ManualClock();
    const last = new Error('still down');
    const { fn } = failing([new Error('a'), new Error('b'), last]);
    const policy = retry({ maxAttempts: 3, backoff: constant(10), clock, name: 'api' });
    policy.onRetry(() => {
      throw bug;
    });
    policy.onGiveUp(() => {
      throw bug;
    });
    const reports = captureCallbackErrors();
    const result = outcome(policy.execute(fn));
    await clock.advance(100);
    reports.stop();
    expect(await result).toEqual({ ok: false, error: last });
    expect(reports.messages).toEqual([1, 2, 3].map(() => ({ policy: 'api', callback: 'listener', error: bug })));
  });
});

describe('retry: waiting between attempts', () => {
  it('with constant(ms) starts the next attempt only once ms have passed', async () => {
    const clock = new ManualClock();
    const { fn, calls } = failing([new Error('a'), new Error('b')], 'ok');
    const p = retry({ maxAttempts: 3, backoff: constant(250), clock }).execute(fn);
    await flush();
    expect(calls).toEqual([1]);
    expect(clock.pendingTimers).toBe(1);
    await clock.advance(249);
    expect(calls).toEqual([1]);
    await clock.advance(1);
    expect(calls).toEqual([1, 2]);
    await clock.advance(249);
    expect(calls).toEqual([1, 2]);
    await clock.advance(1);
    expect(calls).toEqual([1, 2, 3]);
    await expect(p).resolves.toBe('ok');
  });

  it('with constant(0) retries at once, without a timer', async () => {
    const clock = new ManualClock();
    const { fn, calls } = failing([new Error('a'), new Error('b')], 'ok');
    const p = retry({ maxAttempts: 3, backoff: constant(0), clock }).execute(fn);
    await expect(p).resolves.toBe('ok');
    expect(calls).toEqual([1, 2, 3]);
    expect(clock.pendingTimers).toBe(0);
  });

  it('with exponential jitter none waits initialMs × factor^(n−1) before attempt n + 1', async () => {
    const clock = new ManualClock();
    const starts: number[] = [];
    const { fn } = alwaysFailing();
    const policy = retry({
      maxAttempts: 5,
      backoff: exponential({ initialMs: 100, factor: 2, maxMs: 10_000, jitter: 'none' }),
      clock,
    });
    const result = outcome(
      policy.execute(() => {
        starts.push(clock.now());
        return fn();
      }),
    );
    await clock.advance(10_000);
    await result;
    expect(starts).toEqual([0, 100, 300, 700, 1_500]);
  });

  it('caps each backoff delay at maxDelayMs', async () => {
    const clock = new ManualClock();
    const delays: number[] = [];
    const policy = retry({
      maxAttempts: 6,
      backoff: exponential({ initialMs: 100, maxMs: 20_000, jitter: 'none' }),
      maxDelayMs: 500,
      clock,
    });
    policy.onRetry((e) => delays.push(e.delayMs));
    const result = outcome(policy.execute(alwaysFailing().fn));
    await clock.advance(10_000);
    await result;
    expect(delays).toEqual([100, 200, 400, 500, 500]);
  });

  it('gives the backoff the attempt number and the delay it returned last time', async () => {
    const clock = new ManualClock();
    const seen: [number, number][] = [];
    let next = 10;
    const backoff: Backoff = {
      initialMs: 7,
      next: (n, previous) => {
        seen.push([n, previous]);
        return (next += 10);
      },
    };
    const result = outcome(retry({ maxAttempts: 4, backoff, clock }).execute(alwaysFailing().fn));
    await clock.advance(1_000);
    await result;
    expect(seen).toEqual([
      [1, 7],
      [2, 20],
      [3, 30],
    ]);
  });

  it('uses exponential full jitter by default, so the first wait is at most 100 ms', async () => {
    const clock = new ManualClock();
    const { fn, calls } = failing([new Error('a')], 'ok');
    const p = retry({ clock }).execute(fn);
    await clock.advance(100);
    await expect(p).resolves.toBe('ok');
    expect(calls).toEqual([1, 2]);
  });
});

describe('retry: Retry-After hints (RELIABILITY F12 at the policy level)', () => {
  it('waits the retryAfterMs of a RateLimitedError instead of the backoff', async () => {
    const clock = new ManualClock();
    const { fn, calls } = failing([rateLimited(750)], 'ok');
    const p = retry({ maxAttempts: 2, backoff: constant(100), clock }).execute(fn);
    await clock.advance(749);
    expect(calls).toEqual([1]);
    await clock.advance(1);
    expect(calls).toEqual([1, 2]);
    await expect(p).resolves.toBe('ok');
  });

  it('honours retryAfterMs on a plain Error', async () => {
    const clock = new ManualClock();
    const { fn, calls } = failing([withRetryAfter(2_500)], 'ok');
    const p = retry({ maxAttempts: 2, backoff: constant(100), clock }).execute(fn);
    await clock.advance(2_499);
    expect(calls).toEqual([1]);
    await clock.advance(1);
    await expect(p).resolves.toBe('ok');
    expect(calls).toEqual([1, 2]);
  });

  it('honours a hint shorter than the backoff too', async () => {
    const clock = new ManualClock();
    const { fn, calls } = failing([withRetryAfter(5)], 'ok');
    const p = retry({ maxAttempts: 2, backoff: constant(1_000), clock }).execute(fn);
    await clock.advance(5);
    await expect(p).resolves.toBe('ok');
    expect(calls).toEqual([1, 2]);
  });

  it('retries at once on retryAfterMs: 0', async () => {
    const clock = new ManualClock();
    const { fn, calls } = failing([withRetryAfter(0)], 'ok');
    const p = retry({ maxAttempts: 2, backoff: constant(1_000), clock }).execute(fn);
    await expect(p).resolves.toBe('ok');
    expect(calls).toEqual([1, 2]);
    expect(clock.pendingTimers).toBe(0);
  });

  it('caps a hint at maxDelayMs', async () => {
    const clock = new ManualClock();
    const delays: number[] = [];
    const { fn, calls } = failing([withRetryAfter(3_600_000)], 'ok');
    const policy = retry({ maxAttempts: 2, backoff: constant(100), maxDelayMs: 2_000, clock });
    policy.onRetry((e) => delays.push(e.delayMs));
    const p = policy.execute(fn);
    await clock.advance(1_999);
    expect(calls).toEqual([1]);
    await clock.advance(1);
    await expect(p).resolves.toBe('ok');
    expect(delays).toEqual([2_000]);
  });

  it('caps a hint at the default maxDelayMs of 30 s', async () => {
    const clock = new ManualClock();
    const delays: number[] = [];
    const policy = retry({ maxAttempts: 2, backoff: constant(100), clock });
    policy.onRetry((e) => delays.push(e.delayMs));
    const p = policy.execute(failing([rateLimited(24 * 3_600_000)], 'ok').fn);
    await clock.advance(30_000);
    await expect(p).resolves.toBe('ok');
    expect(delays).toEqual([30_000]);
  });

  it('applies a hint only to the wait right after the error that carries it', async () => {
    const clock = new ManualClock();
    const delays: number[] = [];
    const policy = retry({ maxAttempts: 4, backoff: constant(100), clock });
    policy.onRetry((e) => delays.push(e.delayMs));
    const result = outcome(policy.execute(failing([new Error('a'), rateLimited(900), new Error('c'), new Error('d')]).fn));
    await clock.advance(5_000);
    await result;
    expect(delays).toEqual([100, 900, 100]);
  });

  it.each([
    ['negative', -1],
    ['negative infinity', -Infinity],
    ['NaN', Number.NaN],
    ['Infinity', Infinity],
    ['a numeric string', '500'],
    ['null', null],
    ['an object', { ms: 500 }],
    ['a bigint', 500n],
    ['a boolean', true],
  ])('ignores a retryAfterMs that is %s and uses the backoff', async (_label, hint) => {
    const clock = new ManualClock();
    const delays: number[] = [];
    const { fn, calls } = failing([withRetryAfter(hint)], 'ok');
    const policy = retry({ maxAttempts: 2, backoff: constant(100), clock });
    policy.onRetry((e) => delays.push(e.delayMs));
    const p = policy.execute(fn);
    await clock.advance(99);
    expect(calls).toEqual([1]);
    await clock.advance(1);
    await expect(p).resolves.toBe('ok');
    expect(delays).toEqual([100]);
  });

  it('does not let a hint change what a decorrelated backoff sees as its previous delay', async () => {
    const clock = new ManualClock();
    const previous: number[] = [];
    const backoff: Backoff = {
      initialMs: 10,
      next: (_n, prev) => {
        previous.push(prev);
        return 10;
      },
    };
    const result = outcome(
      retry({ maxAttempts: 3, backoff, clock }).execute(failing([withRetryAfter(500), new Error('b'), new Error('c')]).fn),
    );
    await clock.advance(2_000);
    await result;
    expect(previous).toEqual([10, 10]);
  });
});

describe('retry: cancellation', () => {
  it('rejects at once with signal.reason when the signal aborts during a wait', async () => {
    const clock = new ManualClock();
    const controller = new AbortController();
    const reason = new Error('caller gave up');
    const { fn, calls } = alwaysFailing();
    const p = retry({ maxAttempts: 3, backoff: constant(10_000), clock }).execute(fn, { signal: controller.signal });
    const result = outcome(p);
    await flush();
    expect(clock.pendingTimers).toBe(1);
    // The wait's handler and execute()'s own, behind the signal's one shared listener.
    expect(abortListeners(controller.signal)).toBe(1);
    expect(abortHandlerCount(controller.signal)).toBe(2);
    controller.abort(reason);
    // No time passes: the rejection comes from the abort itself.
    expect(await stateOf(p)).toBe('rejected');
    const r = await result;
    expect(!r.ok && r.error).toBe(reason);
    expect(calls()).toBe(1);
    expect(clock.pendingTimers).toBe(0);
    expect(abortListeners(controller.signal)).toBe(0);
  });

  it('rejects with an AbortError DOMException when aborted without a reason', async () => {
    const clock = new ManualClock();
    const controller = new AbortController();
    const p = retry({ maxAttempts: 3, backoff: constant(10_000), clock }).execute(alwaysFailing().fn, {
      signal: controller.signal,
    });
    const result = outcome(p);
    await flush();
    controller.abort();
    const r = await result;
    expect(!r.ok && r.error).toBeInstanceOf(DOMException);
    expect(!r.ok && (r.error as DOMException).name).toBe('AbortError');
    expect(clock.pendingTimers).toBe(0);
  });

  it('does not call fn again after an abort during the wait', async () => {
    const clock = new ManualClock();
    const controller = new AbortController();
    const { fn, calls } = alwaysFailing();
    const result = outcome(
      retry({ maxAttempts: 5, backoff: constant(100), clock }).execute(fn, { signal: controller.signal }),
    );
    await clock.advance(100);
    expect(calls()).toBe(2);
    controller.abort(new Error('stop'));
    await clock.advance(10_000);
    await result;
    expect(calls()).toBe(2);
  });

  it('rejects with the reason of an already-aborted signal without calling fn', async () => {
    const clock = new ManualClock();
    const controller = new AbortController();
    const reason = new Error('already cancelled');
    controller.abort(reason);
    const { fn, calls } = alwaysFailing();
    await expect(
      retry({ maxAttempts: 3, backoff: constant(10), clock }).execute(fn, { signal: controller.signal }),
    ).rejects.toBe(reason);
    expect(calls()).toBe(0);
    expect(clock.pendingTimers).toBe(0);
    expect(abortListeners(controller.signal)).toBe(0);
  });

  it('gives up without retrying when fn fails after the signal has aborted, rethrowing fn’s error', async () => {
    const clock = new ManualClock();
    const controller = new AbortController();
    const error = new Error('failed while being cancelled');
    let n = 0;
    const p = retry({ maxAttempts: 3, backoff: constant(10), clock }).execute(
      async () => {
        n++;
        controller.abort(new Error('reason'));
        throw error;
      },
      { signal: controller.signal },
    );
    await expect(p).rejects.toBe(error);
    expect(n).toBe(1);
    expect(clock.pendingTimers).toBe(0);
  });

  it('leaves no abort listener on the caller’s signal after retrying to success', async () => {
    const clock = new ManualClock();
    const controller = new AbortController();
    const p = retry({ maxAttempts: 4, backoff: constant(10), clock }).execute(
      failing([new Error('a'), new Error('b'), new Error('c')], 'ok').fn,
      { signal: controller.signal },
    );
    await clock.advance(100);
    await expect(p).resolves.toBe('ok');
    expect(abortListeners(controller.signal)).toBe(0);
  });

  it('leaves no abort listener on the caller’s signal after running out of attempts', async () => {
    const clock = new ManualClock();
    const controller = new AbortController();
    const result = outcome(
      retry({ maxAttempts: 4, backoff: constant(10), clock }).execute(alwaysFailing().fn, {
        signal: controller.signal,
      }),
    );
    await clock.advance(100);
    expect((await result).ok).toBe(false);
    expect(abortListeners(controller.signal)).toBe(0);
  });

  it('passes the caller’s signal to every attempt', async () => {
    const clock = new ManualClock();
    const controller = new AbortController();
    const signals: AbortSignal[] = [];
    let n = 0;
    const p = retry({ maxAttempts: 3, backoff: constant(10), clock }).execute(
      ({ signal }) => {
        signals.push(signal);
        if (++n < 3) throw new Error('again');
        return 'ok';
      },
      { signal: controller.signal },
    );
    await clock.advance(100);
    await expect(p).resolves.toBe('ok');
    expect(signals).toEqual([controller.signal, controller.signal, controller.signal]);
  });
});
