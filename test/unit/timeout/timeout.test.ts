import { afterEach, describe, expect, it, vi } from 'vitest';
import {
  type ExecutionContext,
  ManualClock,
  pipeline,
  timeout,
  TimeoutError,
  type TimeoutEvent,
  isBulwarkError,
} from '../../../src/index.js';
import {
  abortListeners,
  capture,
  countAbortControllers,
  deferred,
  flush,
  type Outcome,
  rejection,
  status,
} from '../../support/helpers.js';
import { abortHandlerCount } from '../../../src/core/shared-abort.js';

const never = (): Promise<never> => new Promise<never>(() => {});

afterEach(() => {
  vi.unstubAllGlobals();
});

describe('timeout (aggressive)', () => {
  it('is aggressive by default', () => {
    const policy = timeout(100);
    expect(policy.strategy).toBe('aggressive');
    expect(policy.timeoutMs).toBe(100);
    expect(policy.name).toBe('timeout');
    expect(policy.kind).toBe('timeout');
  });

  it('rejects with TimeoutError exactly at the deadline while fn is still pending', async () => {
    const clock = new ManualClock();
    const policy = timeout(100, { clock });
    const result = capture(policy.execute(never));

    await clock.advance(99);
    expect(await status(result)).toBe('pending');
    await clock.advance(1);
    const error = await rejection(result);
    expect(error).toBeInstanceOf(TimeoutError);
    expect(error).toMatchObject({ name: 'TimeoutError', code: 'ERR_BULWARK_TIMEOUT', timeoutMs: 100 });
    expect((error as Error).message).toContain('100 ms');
    expect(isBulwarkError(error, 'ERR_BULWARK_TIMEOUT')).toBe(true);
  });

  it('aborts the signal of fn with the same TimeoutError it rejects with', async () => {
    const clock = new ManualClock();
    const policy = timeout(100, { clock });
    let signal!: AbortSignal;
    const result = capture(
      policy.execute(({ signal: s }) => {
        signal = s;
        return never();
      }),
    );
    await clock.advance(99);
    expect(signal.aborted).toBe(false);
    await clock.advance(1);
    expect(signal.aborted).toBe(true);
    const error = await rejection(result);
    expect(signal.reason).toBe(error);
  });

  it('ignores a value fn resolves with after the deadline', async () => {
    const clock = new ManualClock();
    const policy = timeout(100, { clock });
    const late = deferred<string>();
    const result = capture(policy.execute(() => late.promise));
    await clock.advance(100);
    late.resolve('late');
    await clock.advance(0);
    expect(await rejection(result)).toBeInstanceOf(TimeoutError);
  });

  it('ignores a rejection from fn after the deadline, without an unhandled rejection', async () => {
    const clock = new ManualClock();
    const policy = timeout(100, { clock });
    const late = deferred<string>();
    const result = capture(policy.execute(() => late.promise));
    await clock.advance(100);
    const error = await rejection(result);
    late.reject(new Error('late failure'));
    await clock.advance(0);
    expect(error).toBeInstanceOf(TimeoutError);
  });

  it('leaves the TimeoutError the caller already holds unchanged when fn fails later', async () => {
    // Regression: a late failure of fn used to be written into the delivered error's `cause`.
    const clock = new ManualClock();
    const policy = timeout(100, { clock });
    const late = deferred<string>();
    const result = capture(policy.execute(() => late.promise));
    await clock.advance(100);
    const error = (await rejection(result)) as TimeoutError;
    expect(error.cause).toBeUndefined();
    late.reject(new Error('late failure'));
    await clock.advance(0);
    expect(error.cause).toBeUndefined();
    expect('cause' in error).toBe(false);
  });

  it('resolves with the value of fn when fn settles before the deadline, and never aborts its signal', async () => {
    const clock = new ManualClock();
    const policy = timeout(100, { clock });
    const work = deferred<string>();
    let signal!: AbortSignal;
    const result = capture(
      policy.execute(({ signal: s }) => {
        signal = s;
        return work.promise;
      }),
    );
    await clock.advance(99);
    work.resolve('ok');
    expect(await result).toEqual({ ok: true, value: 'ok' });
    await clock.advance(1_000);
    expect(signal.aborted).toBe(false);
  });

  it('rejects with the own error of fn when fn fails before the deadline, and never aborts its signal', async () => {
    const clock = new ManualClock();
    const policy = timeout(100, { clock });
    const boom = new Error('boom');
    let signal!: AbortSignal;
    const result = capture(
      policy.execute(async ({ signal: s }) => {
        signal = s;
        throw boom;
      }),
    );
    expect(await rejection(result)).toBe(boom);
    await clock.advance(1_000);
    expect(signal.aborted).toBe(false);
  });

  it('passes through a synchronous value or throw of fn', async () => {
    const clock = new ManualClock();
    const policy = timeout(100, { clock });
    expect(await policy.execute(() => 7)).toBe(7);
    const boom = new TypeError('sync');
    await expect(
      policy.execute(() => {
        throw boom;
      }),
    ).rejects.toBe(boom);
  });

  it('gives each call its own deadline, measured from its start', async () => {
    const clock = new ManualClock();
    const policy = timeout(100, { clock });
    const first = capture(policy.execute(never));
    await clock.advance(40);
    const second = capture(policy.execute(never));
    await clock.advance(60); // t = 100
    expect(await status(first)).toBe('rejected');
    expect(await status(second)).toBe('pending');
    await clock.advance(39);
    expect(await status(second)).toBe('pending');
    await clock.advance(1); // t = 140
    expect(await rejection(second)).toBeInstanceOf(TimeoutError);
  });

  it('expires queued calls on time when an abort handler starts a new call on the same policy', async () => {
    // Regression for the deadline queue: a call pushed while the shared timer was firing re-armed
    // it for its own deadline, delaying the expiry of calls already waiting.
    const clock = new ManualClock();
    const policy = timeout(100, { clock });
    let replacement: Promise<Outcome<never>> | undefined;
    const first = capture(
      policy.execute(({ signal }) => {
        signal.addEventListener('abort', () => {
          replacement = capture(policy.execute(never));
        });
        return never();
      }),
    );
    await clock.advance(50);
    const second = capture(policy.execute(never));
    await clock.advance(50); // t = 100: first expires and starts the replacement
    expect(await rejection(first)).toBeInstanceOf(TimeoutError);
    expect(replacement).toBeDefined();
    await clock.advance(50); // t = 150
    expect(await status(second)).toBe('rejected');
    expect(await rejection(second)).toBeInstanceOf(TimeoutError);
    expect(await status(replacement!)).toBe('pending');
    await clock.advance(50); // t = 200
    expect(await rejection(replacement!)).toBeInstanceOf(TimeoutError);
    expect(policy.queue.size).toBe(0);
  });
});

describe('timeout (cooperative)', () => {
  it('aborts the signal at the deadline but waits for fn to settle', async () => {
    const clock = new ManualClock();
    const policy = timeout(100, { clock, strategy: 'cooperative' });
    const work = deferred<string>();
    let signal!: AbortSignal;
    const result = capture(
      policy.execute(({ signal: s }) => {
        signal = s;
        return work.promise;
      }),
    );
    await clock.advance(100);
    expect(signal.aborted).toBe(true);
    expect(signal.reason).toBeInstanceOf(TimeoutError);
    expect(await status(result)).toBe('pending');
    await clock.advance(10_000);
    expect(await status(result)).toBe('pending');
    work.resolve('done');
    await clock.advance(0);
  });

  it('resolves with the value of fn when fn succeeds after the deadline anyway', async () => {
    const clock = new ManualClock();
    const policy = timeout(100, { clock, strategy: 'cooperative' });
    const work = deferred<string>();
    const result = capture(policy.execute(() => work.promise));
    await clock.advance(150);
    work.resolve('anyway');
    expect(await result).toEqual({ ok: true, value: 'anyway' });
  });

  it('rejects with TimeoutError whose cause is the error of fn when fn fails after the deadline', async () => {
    const clock = new ManualClock();
    const policy = timeout(100, { clock, strategy: 'cooperative' });
    const work = deferred<string>();
    let signal!: AbortSignal;
    const result = capture(
      policy.execute(({ signal: s }) => {
        signal = s;
        return work.promise;
      }),
    );
    await clock.advance(100);
    const own = new Error('gave up');
    work.reject(own);
    const error = await rejection(result);
    expect(error).toBeInstanceOf(TimeoutError);
    expect((error as TimeoutError).timeoutMs).toBe(100);
    expect((error as TimeoutError).cause).toBe(own);
    expect(error).toBe(signal.reason);
  });

  it('rejects with the TimeoutError itself, without a cause, when fn rejects with signal.reason', async () => {
    const clock = new ManualClock();
    const policy = timeout(100, { clock, strategy: 'cooperative' });
    let signal!: AbortSignal;
    const result = capture(
      policy.execute(
        ({ signal: s }) =>
          new Promise<never>((_, reject) => {
            signal = s;
            s.addEventListener('abort', () => reject(s.reason), { once: true });
          }),
      ),
    );
    await clock.advance(100);
    const error = await rejection(result);
    expect(error).toBeInstanceOf(TimeoutError);
    expect(error).toBe(signal.reason);
    expect((error as TimeoutError).cause).toBeUndefined();
  });

  it('rejects with the own error of fn when fn fails before the deadline', async () => {
    const clock = new ManualClock();
    const policy = timeout(100, { clock, strategy: 'cooperative' });
    const own = new Error('early');
    const result = capture(policy.execute(() => Promise.reject(own)));
    expect(await rejection(result)).toBe(own);
  });

  it('leaves no deadline queued and no listener on the caller signal once fn settles after the deadline', async () => {
    const clock = new ManualClock();
    const policy = timeout(100, { clock, strategy: 'cooperative' });
    const caller = new AbortController();
    const work = deferred<string>();
    const result = capture(
      policy.execute(
        ({ signal }) => {
          void signal;
          return work.promise;
        },
        { signal: caller.signal },
      ),
    );
    // One handler links fn's signal to the caller's, one lets execute() reject at once on abort;
    // both behind the signal's one shared listener.
    expect(abortListeners(caller.signal)).toBe(1);
    expect(abortHandlerCount(caller.signal)).toBe(2);
    await clock.advance(100);
    // The deadline unlinks fn's signal; execute() still listens while it waits for fn.
    expect(abortListeners(caller.signal)).toBe(1);
    expect(abortHandlerCount(caller.signal)).toBe(1);
    work.resolve('x');
    expect(await result).toEqual({ ok: true, value: 'x' });
    expect(policy.queue.size).toBe(0);
    expect(abortListeners(caller.signal)).toBe(0);
  });
});

describe('timeout laziness', () => {
  it('makes no AbortController for a call whose fn never reads the signal', async () => {
    const clock = new ManualClock();
    const policy = timeout(100, { clock });
    const counter = countAbortControllers();
    const caller = new AbortController().signal; // made after stubbing: counts as one
    expect(counter.count).toBe(1);
    await policy.execute(() => 1);
    await policy.execute(async () => 2, { signal: caller });
    await expect(policy.execute(() => Promise.reject(new Error('x')))).rejects.toThrow('x');
    expect(counter.count).toBe(1);
  });

  it('makes no AbortController when the deadline passes and nobody reads the signal', async () => {
    const clock = new ManualClock();
    const policy = timeout(100, { clock });
    const counter = countAbortControllers();
    const result = capture(policy.execute(never));
    await clock.advance(100);
    expect(await rejection(result)).toBeInstanceOf(TimeoutError);
    expect(counter.count).toBe(0);
  });

  it('makes exactly one AbortController for a call whose fn reads the signal', async () => {
    const clock = new ManualClock();
    const policy = timeout(100, { clock });
    const counter = countAbortControllers();
    await policy.execute((ctx) => {
      const first = ctx.signal;
      expect(ctx.signal).toBe(first);
      return 'read';
    });
    expect(counter.count).toBe(1);
  });

  it('hands out an already aborted signal when fn first reads it after the deadline', async () => {
    const clock = new ManualClock();
    const policy = timeout(100, { clock, strategy: 'cooperative' });
    let ctx!: ExecutionContext;
    const work = deferred<void>();
    const result = capture(
      policy.execute((c) => {
        ctx = c;
        return work.promise;
      }),
    );
    await clock.advance(100);
    const signal = ctx.signal;
    expect(signal.aborted).toBe(true);
    expect(signal.reason).toBeInstanceOf(TimeoutError);
    work.reject(signal.reason);
    expect(await rejection(result)).toBe(signal.reason);
  });

  it('hands the late reader of an aggressive call the TimeoutError the call rejected with', async () => {
    const clock = new ManualClock();
    const policy = timeout(100, { clock });
    let ctx!: ExecutionContext;
    const result = capture(
      policy.execute((c) => {
        ctx = c;
        return never();
      }),
    );
    await clock.advance(100);
    const error = await rejection(result);
    expect(ctx.signal.aborted).toBe(true);
    expect(ctx.signal.reason).toBe(error);
  });

  it('serves 100 concurrent calls with one timer', async () => {
    const clock = new ManualClock();
    const policy = timeout(100, { clock });
    const works = Array.from({ length: 100 }, () => deferred<number>());
    const results = works.map((w) => capture(policy.execute(() => w.promise)));
    expect(clock.pendingTimers).toBe(1);
    expect(policy.queue.size).toBe(100);
    await clock.advance(50);
    expect(clock.pendingTimers).toBe(1);
    works.forEach((w, i) => w.resolve(i));
    const outcomes = await Promise.all(results);
    expect(outcomes.every((o, i) => o.ok && o.value === i)).toBe(true);
    expect(clock.pendingTimers).toBeLessThanOrEqual(1);
    expect(policy.queue.size).toBe(0);
  });

  it('times out 100 concurrent calls with one timer firing once', async () => {
    const clock = new ManualClock();
    const policy = timeout(100, { clock });
    const events: TimeoutEvent[] = [];
    policy.onTimeout((e) => events.push(e));
    const results = Array.from({ length: 100 }, () => capture(policy.execute(never)));
    expect(clock.pendingTimers).toBe(1);
    await clock.advance(100);
    const errors = await Promise.all(results.map(rejection));
    expect(errors.every((e) => e instanceof TimeoutError)).toBe(true);
    expect(new Set(errors).size).toBe(100);
    expect(events).toHaveLength(100);
    expect(clock.pendingTimers).toBe(0);
  });

  it('leaves no pending deadline and no listener on the caller signal after all calls settle', async () => {
    const clock = new ManualClock();
    const policy = timeout(100, { clock });
    const caller = new AbortController();
    const results: Promise<Outcome<string>>[] = [];
    for (let i = 0; i < 5; i++) {
      // Mix of calls that read the signal (attaching to the caller) and calls that time out.
      results.push(
        capture(
          policy.execute(
            ({ signal }) => {
              void signal;
              return i % 2 === 0 ? Promise.resolve('fast') : never();
            },
            { signal: caller.signal },
          ),
        ),
      );
    }
    expect(abortListeners(caller.signal)).toBeGreaterThan(0);
    await clock.advance(100);
    const outcomes = await Promise.all(results);
    expect(outcomes.filter((o) => o.ok)).toHaveLength(3);
    expect(policy.queue.size).toBe(0);
    expect(abortListeners(caller.signal)).toBe(0);
  });

  it('stops re-arming the shared timer once the last call has settled', async () => {
    const clock = new ManualClock();
    const policy = timeout(100, { clock });
    await policy.execute(() => 'quick');
    expect(policy.queue.size).toBe(0);
    await clock.advance(100);
    expect(clock.pendingTimers).toBe(0);
  });
});

describe('timeout abort propagation', () => {
  it('aborts the signal of fn with the reason of the caller signal', async () => {
    const clock = new ManualClock();
    const policy = timeout(100, { clock });
    const caller = new AbortController();
    let signal!: AbortSignal;
    const result = capture(
      policy.execute(
        ({ signal: s }) =>
          new Promise<never>((_, reject) => {
            signal = s;
            s.addEventListener('abort', () => reject(s.reason), { once: true });
          }),
        { signal: caller.signal },
      ),
    );
    const reason = new Error('caller gave up');
    await clock.advance(10);
    caller.abort(reason);
    expect(signal.aborted).toBe(true);
    expect(signal.reason).toBe(reason);
    expect(await rejection(result)).toBe(reason);
    expect(abortListeners(caller.signal)).toBe(0);
    expect(policy.queue.size).toBe(0);
  });

  it('hands an already aborted signal to fn when the caller aborted before fn first read it', async () => {
    const clock = new ManualClock();
    const policy = timeout(100, { clock });
    const caller = new AbortController();
    let ctx!: ExecutionContext;
    const work = deferred<string>();
    const result = capture(
      policy.execute(
        (c) => {
          ctx = c;
          return work.promise;
        },
        { signal: caller.signal },
      ),
    );
    caller.abort('stop');
    expect(ctx.signal.aborted).toBe(true);
    expect(ctx.signal.reason).toBe('stop');
    // The caller stopped waiting: execute() rejects with its reason at once, fn's result is moot.
    expect(await result).toEqual({ ok: false, error: 'stop' });
    work.resolve('done');
    await flush();
    expect(abortListeners(caller.signal)).toBe(0);
  });

  it('keeps the reason of a caller abort that came before the deadline when fn reads the signal afterwards', async () => {
    // Regression: an unread context aborted by its deadline reported the TimeoutError even though
    // the caller's signal had aborted first.
    const clock = new ManualClock();
    const policy = timeout(100, { clock, strategy: 'cooperative' });
    const caller = new AbortController();
    let ctx!: ExecutionContext;
    const work = deferred<string>();
    const result = capture(
      policy.execute(
        (c) => {
          ctx = c;
          return work.promise;
        },
        { signal: caller.signal },
      ),
    );
    const reason = new Error('caller first');
    await clock.advance(10);
    caller.abort(reason);
    await clock.advance(140);
    expect(ctx.signal.aborted).toBe(true);
    expect(ctx.signal.reason).toBe(reason);
    expect(await result).toEqual({ ok: false, error: reason });
    work.resolve('late but fine');
    await flush();
    expect(abortListeners(caller.signal)).toBe(0);
  });

  it('rejects at the deadline even when the caller signal never aborts, and detaches from it', async () => {
    const clock = new ManualClock();
    const policy = timeout(100, { clock });
    const caller = new AbortController();
    let signal!: AbortSignal;
    const result = capture(
      policy.execute(
        ({ signal: s }) => {
          signal = s;
          return never();
        },
        { signal: caller.signal },
      ),
    );
    expect(abortListeners(caller.signal)).toBe(1);
    expect(abortHandlerCount(caller.signal)).toBe(2);
    await clock.advance(100);
    const error = await rejection(result);
    expect(error).toBeInstanceOf(TimeoutError);
    expect(signal.reason).toBe(error);
    expect(abortListeners(caller.signal)).toBe(0);
    caller.abort('too late');
    expect(signal.reason).toBe(error);
  });

  it('lets the shorter inner timeout win in pipeline(timeout(100), timeout(50))', async () => {
    const clock = new ManualClock();
    const outer = timeout(100, { clock });
    const inner = timeout(50, { clock });
    const caller = new AbortController();
    let signal!: AbortSignal;
    const result = capture(
      pipeline(outer, inner).execute(
        ({ signal: s }) => {
          signal = s;
          return never();
        },
        { signal: caller.signal },
      ),
    );
    await clock.advance(49);
    expect(signal.aborted).toBe(false);
    await clock.advance(1);
    const error = await rejection(result);
    expect(error).toBeInstanceOf(TimeoutError);
    expect((error as TimeoutError).timeoutMs).toBe(50);
    expect(signal.reason).toBe(error);
    expect(outer.queue.size).toBe(0);
    expect(inner.queue.size).toBe(0);
    expect(abortListeners(caller.signal)).toBe(0);
    await clock.advance(100);
    expect(clock.pendingTimers).toBe(0);
  });

  it('lets the shorter outer timeout win in pipeline(timeout(50), timeout(100))', async () => {
    const clock = new ManualClock();
    const outer = timeout(50, { clock });
    const inner = timeout(100, { clock });
    const caller = new AbortController();
    let signal!: AbortSignal;
    const result = capture(
      pipeline(outer, inner).execute(
        ({ signal: s }) => {
          signal = s;
          return never();
        },
        { signal: caller.signal },
      ),
    );
    await clock.advance(49);
    expect(signal.aborted).toBe(false);
    await clock.advance(1);
    const error = await rejection(result);
    expect(error).toBeInstanceOf(TimeoutError);
    expect((error as TimeoutError).timeoutMs).toBe(50);
    expect(signal.aborted).toBe(true);
    expect(signal.reason).toBe(error);
    expect(abortListeners(caller.signal)).toBe(0);
    // The inner call is still waiting for fn; its own deadline later passes without effect.
    await clock.advance(50);
    expect(signal.reason).toBe(error);
    expect(error).not.toHaveProperty('cause');
    expect(inner.queue.size).toBe(0);
    expect(outer.queue.size).toBe(0);
    expect(abortListeners(caller.signal)).toBe(0);
  });

  it('hands the outer TimeoutError to fn reading its signal late in pipeline(timeout(50), timeout(100))', async () => {
    const clock = new ManualClock();
    const outer = timeout(50, { clock, strategy: 'cooperative' });
    const inner = timeout(100, { clock, strategy: 'cooperative' });
    let ctx!: ExecutionContext;
    const work = deferred<string>();
    const result = capture(
      pipeline(outer, inner).execute((c) => {
        ctx = c;
        return work.promise;
      }),
    );
    await clock.advance(60);
    expect(ctx.signal.aborted).toBe(true);
    expect((ctx.signal.reason as TimeoutError).timeoutMs).toBe(50);
    work.reject(ctx.signal.reason);
    const error = await rejection(result);
    expect(error).toBe(ctx.signal.reason);
  });

  it('aborts every layer with the caller reason in nested timeouts', async () => {
    const clock = new ManualClock();
    const caller = new AbortController();
    let signal!: AbortSignal;
    const result = capture(
      pipeline(timeout(100, { clock }), timeout(50, { clock })).execute(
        ({ signal: s }) =>
          new Promise<never>((_, reject) => {
            signal = s;
            s.addEventListener('abort', () => reject(s.reason), { once: true });
          }),
        { signal: caller.signal },
      ),
    );
    caller.abort('bye');
    expect(signal.reason).toBe('bye');
    expect(await rejection(result)).toBe('bye');
    expect(abortListeners(caller.signal)).toBe(0);
  });
});

describe('timeout events', () => {
  it('emits onTimeout with the policy name and timeoutMs, and stops after dispose', async () => {
    const clock = new ManualClock();
    const policy = timeout(25, { clock, name: 'db' });
    const events: TimeoutEvent[] = [];
    const sub = policy.onTimeout((e) => events.push(e));
    const first = capture(policy.execute(never));
    await clock.advance(25);
    await rejection(first);
    expect(events).toEqual([{ policy: 'db', timeoutMs: 25 }]);
    sub.dispose();
    const second = capture(policy.execute(never));
    await clock.advance(25);
    await rejection(second);
    expect(events).toHaveLength(1);
  });

  it('emits nothing for calls that finish in time', async () => {
    const clock = new ManualClock();
    const policy = timeout(25, { clock });
    const listener = vi.fn();
    policy.onTimeout(listener);
    await policy.execute(() => 'fast');
    await clock.advance(100);
    expect(listener).not.toHaveBeenCalled();
  });
});

describe('timeout context', () => {
  it('hands fn attempt 1 at the top level', async () => {
    const clock = new ManualClock();
    expect(await timeout(10, { clock }).execute((ctx) => ctx.attempt)).toBe(1);
  });

  it('hands fn its own signal rather than the caller signal', async () => {
    const clock = new ManualClock();
    const caller = new AbortController();
    const signal = await timeout(10, { clock }).execute((ctx) => ctx.signal, { signal: caller.signal });
    expect(signal).not.toBe(caller.signal);
    expect(signal.aborted).toBe(false);
    caller.abort();
    // The call has settled: its signal no longer follows the caller.
    expect(signal.aborted).toBe(false);
  });
});
