import { describe, expect, it, vi } from 'vitest';
import {
  constant,
  type ExecutionContext,
  hedge,
  type HedgeEvent,
  HedgePolicy,
  ManualClock,
  pipeline,
  retry,
  timeout,
  TimeoutError,
} from '../../../src/index.js';
import { abortListeners, deferred, flush, stateOf } from '../../support/helpers.js';

/** A function whose every call is held open until the test settles it by index. */
function controlled<T = string>() {
  const calls: { ctx: ExecutionContext; signal: AbortSignal; resolve: (v: T) => void; reject: (e: unknown) => void }[] = [];
  const fn = (ctx: ExecutionContext): Promise<T> => {
    const d = deferred<T>();
    calls.push({ ctx, signal: ctx.signal, resolve: d.resolve, reject: d.reject });
    return d.promise;
  };
  return { calls, fn };
}

function recordHedges(policy: HedgePolicy): HedgeEvent[] {
  const events: HedgeEvent[] = [];
  policy.onHedge((e) => events.push(e));
  return events;
}

describe('hedge', () => {
  it('resolves with the first attempt when it settles before delayMs, starting no other', async () => {
    const clock = new ManualClock();
    const policy = hedge({ delayMs: 100, clock });
    const events = recordHedges(policy);
    const { calls, fn } = controlled();
    const call = policy.execute(fn);
    await clock.advance(50);
    calls[0]!.resolve('first');
    await expect(call).resolves.toBe('first');
    await clock.advance(100);
    expect(calls).toHaveLength(1);
    expect(events).toEqual([]);
    expect(calls[0]!.signal.aborted).toBe(false);
  });

  it('resolves with a synchronous value at once', async () => {
    const clock = new ManualClock();
    await expect(hedge({ delayMs: 10, clock }).execute(() => 'sync')).resolves.toBe('sync');
    await clock.advance(10);
    expect(clock.pendingTimers).toBe(0);
  });

  it('starts a second attempt after delayMs when the first has not settled', async () => {
    const clock = new ManualClock();
    const policy = hedge({ delayMs: 100, clock });
    const { calls, fn } = controlled();
    const call = policy.execute(fn);
    await flush();
    expect(calls).toHaveLength(1);
    await clock.advance(99);
    expect(calls).toHaveLength(1);
    await clock.advance(1);
    expect(calls).toHaveLength(2);
    calls[1]!.resolve('second');
    await expect(call).resolves.toBe('second');
  });

  it('starts at most maxHedges extra attempts, one per delayMs', async () => {
    const clock = new ManualClock();
    const policy = hedge({ delayMs: 100, maxHedges: 3, clock });
    const { calls, fn } = controlled();
    const call = policy.execute(fn);
    await clock.advance(100);
    expect(calls).toHaveLength(2);
    await clock.advance(100);
    expect(calls).toHaveLength(3);
    await clock.advance(100);
    expect(calls).toHaveLength(4);
    await clock.advance(1_000);
    expect(calls).toHaveLength(4);
    calls[2]!.resolve('third');
    await expect(call).resolves.toBe('third');
  });

  it('defaults to one hedge', async () => {
    const clock = new ManualClock();
    const policy = hedge({ delayMs: 10, clock });
    expect(policy.maxHedges).toBe(1);
    const { calls, fn } = controlled();
    const call = policy.execute(fn);
    await clock.advance(100);
    expect(calls).toHaveLength(2);
    calls[0]!.resolve('a');
    await expect(call).resolves.toBe('a');
  });

  it("lets the first success win and aborts the losers' signals with an AbortError DOMException", async () => {
    const clock = new ManualClock();
    const policy = hedge({ delayMs: 10, maxHedges: 2, clock });
    const { calls, fn } = controlled();
    const call = policy.execute(fn);
    await clock.advance(20);
    expect(calls).toHaveLength(3);
    calls[1]!.resolve('middle');
    await expect(call).resolves.toBe('middle');
    for (const i of [0, 2]) {
      const signal = calls[i]!.signal;
      expect(signal.aborted).toBe(true);
      expect(signal.reason).toBeInstanceOf(DOMException);
      expect((signal.reason as DOMException).name).toBe('AbortError');
    }
    expect(calls[1]!.signal.aborted).toBe(false);
  });

  it('gives every attempt its own signal', async () => {
    const clock = new ManualClock();
    const { calls, fn } = controlled();
    const call = hedge({ delayMs: 10, clock }).execute(fn);
    await clock.advance(10);
    expect(calls[0]!.signal).not.toBe(calls[1]!.signal);
    calls[0]!.resolve('x');
    await call;
  });

  it('aborts a losing attempt whose signal is read only after it lost', async () => {
    const clock = new ManualClock();
    const contexts: ExecutionContext[] = [];
    const first = deferred<string>();
    const call = hedge({ delayMs: 10, clock }).execute((ctx) => {
      contexts.push(ctx);
      return contexts.length === 1 ? first.promise : 'second wins';
    });
    await clock.advance(10);
    await expect(call).resolves.toBe('second wins');
    const late = contexts[0]!.signal;
    expect(late.aborted).toBe(true);
    expect((late.reason as DOMException).name).toBe('AbortError');
    first.resolve('ignored');
  });

  it('ignores a loser that settles later, with a value or an error, and reports no unhandled rejection', async () => {
    const clock = new ManualClock();
    const { calls, fn } = controlled();
    const call = hedge({ delayMs: 10, maxHedges: 2, clock }).execute(fn);
    await clock.advance(20);
    calls[2]!.resolve('winner');
    await expect(call).resolves.toBe('winner');
    calls[0]!.resolve('late value');
    calls[1]!.reject(new Error('late error'));
    await flush();
    await expect(call).resolves.toBe('winner');
  });

  it("hedges a failed attempt at once, with trigger 'failure'", async () => {
    const clock = new ManualClock();
    const policy = hedge({ delayMs: 1_000, clock });
    const events = recordHedges(policy);
    const { calls, fn } = controlled();
    const call = policy.execute(fn);
    await flush();
    calls[0]!.reject(new Error('first failed'));
    await flush();
    expect(calls).toHaveLength(2);
    expect(events).toEqual([{ policy: 'hedge', attempt: 2, trigger: 'failure' }]);
    calls[1]!.resolve('second');
    await expect(call).resolves.toBe('second');
  });

  it('restarts the delay from a hedge started on failure', async () => {
    const clock = new ManualClock();
    const policy = hedge({ delayMs: 100, maxHedges: 2, clock });
    const events = recordHedges(policy);
    const { calls, fn } = controlled();
    const call = policy.execute(fn);
    await clock.advance(60);
    calls[0]!.reject(new Error('fail'));
    await flush();
    expect(calls).toHaveLength(2);
    await clock.advance(99);
    expect(calls).toHaveLength(2);
    await clock.advance(1);
    expect(calls).toHaveLength(3);
    expect(events).toEqual([
      { policy: 'hedge', attempt: 2, trigger: 'failure' },
      { policy: 'hedge', attempt: 3, trigger: 'delay' },
    ]);
    calls[2]!.resolve('third');
    await expect(call).resolves.toBe('third');
  });

  it('rejects with the last error when every attempt fails', async () => {
    const clock = new ManualClock();
    const policy = hedge({ delayMs: 100, maxHedges: 2, clock });
    let n = 0;
    const errors: Error[] = [];
    const call = policy.execute(() => {
      const e = new Error(`failure ${++n}`);
      errors.push(e);
      return Promise.reject(e);
    });
    const err = await call.catch((e: unknown) => e);
    expect(n).toBe(3);
    expect(err).toBe(errors[2]);
  });

  it('rejects with the error of the attempt that failed last, not the one started last', async () => {
    const clock = new ManualClock();
    const policy = hedge({ delayMs: 10, clock });
    const { calls, fn } = controlled();
    const call = policy.execute(fn);
    const outcome = call.catch((e: unknown) => e);
    await clock.advance(10);
    expect(calls).toHaveLength(2);
    calls[1]!.reject(new Error('second attempt'));
    await flush();
    expect(await stateOf(call)).toBe('pending');
    const last = new Error('first attempt, failing last');
    calls[0]!.reject(last);
    expect(await outcome).toBe(last);
  });

  it('still succeeds when an earlier attempt fails after the hedges ran out', async () => {
    const clock = new ManualClock();
    const { calls, fn } = controlled();
    const call = hedge({ delayMs: 10, clock }).execute(fn);
    await clock.advance(10);
    calls[0]!.reject(new Error('first'));
    await flush();
    expect(calls).toHaveLength(2);
    calls[1]!.resolve('second');
    await expect(call).resolves.toBe('second');
  });

  it('emits onHedge with the policy name, the attempt number and the trigger', async () => {
    const clock = new ManualClock();
    const policy = hedge({ delayMs: 100, maxHedges: 3, name: 'replicas', clock });
    const events = recordHedges(policy);
    const { calls, fn } = controlled();
    const call = policy.execute(fn);
    await clock.advance(100);
    calls[1]!.reject(new Error('second failed'));
    await flush();
    await clock.advance(100);
    expect(events).toEqual([
      { policy: 'replicas', attempt: 2, trigger: 'delay' },
      { policy: 'replicas', attempt: 3, trigger: 'failure' },
      { policy: 'replicas', attempt: 4, trigger: 'delay' },
    ]);
    calls[0]!.resolve('first after all');
    await expect(call).resolves.toBe('first after all');
  });

  it('stops emitting to a disposed onHedge listener', async () => {
    const clock = new ManualClock();
    const policy = hedge({ delayMs: 10, clock });
    const listener = vi.fn();
    policy.onHedge(listener).dispose();
    const { calls, fn } = controlled();
    const call = policy.execute(fn);
    await clock.advance(10);
    expect(calls).toHaveLength(2);
    expect(listener).not.toHaveBeenCalled();
    calls[0]!.resolve('x');
    await call;
  });

  it("starts no hedge on delay after the caller's signal aborted", async () => {
    const clock = new ManualClock();
    const policy = hedge({ delayMs: 100, clock });
    const events = recordHedges(policy);
    const controller = new AbortController();
    const { calls, fn } = controlled();
    const call = policy.execute(fn, { signal: controller.signal });
    const outcome = call.catch((e: unknown) => e);
    await clock.advance(50);
    controller.abort(new Error('caller gave up'));
    expect(calls[0]!.signal.aborted).toBe(true);
    await clock.advance(100);
    expect(calls).toHaveLength(1);
    expect(events).toEqual([]);
    calls[0]!.reject(calls[0]!.signal.reason);
    expect(await outcome).toMatchObject({ message: 'caller gave up' });
    expect(abortListeners(controller.signal)).toBe(0);
  });

  it("starts no hedge on failure after the caller's signal aborted, and rejects with the caller's reason", async () => {
    const clock = new ManualClock();
    const policy = hedge({ delayMs: 100, maxHedges: 3, clock });
    const controller = new AbortController();
    const { calls, fn } = controlled();
    const call = policy.execute(fn, { signal: controller.signal });
    const outcome = call.catch((e: unknown) => e);
    await flush();
    controller.abort();
    const failure = new Error('failed after abort');
    calls[0]!.reject(failure);
    expect(await outcome).toBe(controller.signal.reason);
    await clock.advance(500);
    expect(calls).toHaveLength(1);
  });

  it("starts no other attempt after the caller's signal aborted, and rejects at once with its reason", async () => {
    const clock = new ManualClock();
    const policy = hedge({ delayMs: 10, maxHedges: 3, clock });
    const controller = new AbortController();
    const { calls, fn } = controlled();
    const call = policy.execute(fn, { signal: controller.signal });
    const outcome = call.catch((e: unknown) => e);
    await clock.advance(10);
    expect(calls).toHaveLength(2);
    controller.abort();
    expect(await outcome).toBe(controller.signal.reason);
    calls[1]!.reject(new Error('second'));
    await clock.advance(100);
    expect(calls).toHaveLength(2);
    calls[0]!.resolve('first, too late');
    await flush();
  });

  it("rejects at once with the reason when the caller's signal is already aborted, running nothing", async () => {
    const controller = new AbortController();
    controller.abort(new Error('before'));
    const fn = vi.fn(() => 'x');
    await expect(hedge({ delayMs: 10 }).execute(fn, { signal: controller.signal })).rejects.toThrow('before');
    expect(fn).not.toHaveBeenCalled();
  });

  it("aborts every running attempt when the caller's signal aborts", async () => {
    const clock = new ManualClock();
    const controller = new AbortController();
    const { calls, fn } = controlled();
    const call = hedge({ delayMs: 10, maxHedges: 2, clock }).execute(fn, { signal: controller.signal });
    const outcome = call.catch((e: unknown) => e);
    await clock.advance(20);
    const reason = new Error('stop');
    controller.abort(reason);
    for (const c of calls) {
      expect(c.signal.aborted).toBe(true);
      expect(c.signal.reason).toBe(reason);
    }
    for (const c of calls) c.reject(c.signal.reason);
    expect(await outcome).toBe(reason);
  });

  it("shows an attempt that reads its signal only after the caller aborted as aborted, with the caller's reason", async () => {
    const clock = new ManualClock();
    const controller = new AbortController();
    const contexts: ExecutionContext[] = [];
    const gates = [deferred<string>(), deferred<string>()];
    const call = hedge({ delayMs: 10, clock }).execute(
      (ctx) => {
        contexts.push(ctx);
        return gates[contexts.length - 1]!.promise;
      },
      { signal: controller.signal },
    );
    await clock.advance(10);
    const reason = new Error('caller stopped');
    controller.abort(reason);
    expect(contexts.map((c) => c.signal.reason)).toEqual([reason, reason]);
    await expect(call).rejects.toBe(reason);
    gates[1]!.resolve('second');
    gates[0]!.resolve('first');
    await flush();
  });

  it("removes its listeners from the caller's signal once settled", async () => {
    const clock = new ManualClock();
    const controller = new AbortController();
    const { calls, fn } = controlled();
    const call = hedge({ delayMs: 10, maxHedges: 2, clock }).execute(fn, { signal: controller.signal });
    await clock.advance(20);
    expect(calls).toHaveLength(3);
    calls[0]!.resolve('done');
    await call;
    expect(abortListeners(controller.signal)).toBe(0);
  });

  it('adds no MaxListeners warning on the caller signal with many hedges reading their signals (regression)', async () => {
    const clock = new ManualClock();
    const controller = new AbortController();
    const { calls, fn } = controlled();
    const policy = hedge({ delayMs: 1, maxHedges: 15, clock });
    const call = policy.execute(fn, { signal: controller.signal });
    await clock.advance(15);
    expect(calls).toHaveLength(16);
    // One listener for all the attempts, one for execute() itself: not one per attempt.
    expect(abortListeners(controller.signal)).toBeLessThanOrEqual(2);
    const reason = new Error('all stop');
    controller.abort(reason);
    expect(calls.every((c) => c.signal.aborted && c.signal.reason === reason)).toBe(true);
    await expect(call).rejects.toBe(reason);
    calls[3]!.resolve('fourth');
    await flush();
    expect(abortListeners(controller.signal)).toBe(0);
  });

  it('leaves no ref\'d timer behind once settled, on the real clock', async () => {
    const policy = hedge({ delayMs: 60_000 });
    await expect(policy.execute(async () => 'quick')).resolves.toBe('quick');
    await expect(policy.execute(() => Promise.reject(new Error('x')).catch(() => 'recovered'))).resolves.toBe(
      'recovered',
    );
    // The setup file fails this test if a timer still holds the process open.
  });

  it('leaves no timer pending on a ManualClock once settled and the delay has passed, and starts nothing then', async () => {
    const clock = new ManualClock();
    const policy = hedge({ delayMs: 100, clock });
    const { calls, fn } = controlled();
    const call = policy.execute(fn);
    expect(clock.pendingTimers).toBe(1);
    calls[0]!.resolve('ok');
    await call;
    await clock.advance(100);
    expect(clock.pendingTimers).toBe(0);
    expect(calls).toHaveLength(1);
  });

  it('leaves no timer pending after every attempt failed', async () => {
    const clock = new ManualClock();
    const policy = hedge({ delayMs: 100, maxHedges: 2, clock });
    await expect(policy.execute(() => Promise.reject(new Error('no')))).rejects.toThrow('no');
    await clock.advance(100);
    expect(clock.pendingTimers).toBe(0);
  });

  it('shares one timer between concurrent calls of a policy', async () => {
    const clock = new ManualClock();
    const policy = hedge({ delayMs: 100, clock });
    const a = controlled();
    const b = controlled();
    const callA = policy.execute(a.fn);
    await clock.advance(10);
    const callB = policy.execute(b.fn);
    expect(clock.pendingTimers).toBe(1);
    await clock.advance(90);
    expect(a.calls).toHaveLength(2);
    expect(b.calls).toHaveLength(1);
    await clock.advance(10);
    expect(b.calls).toHaveLength(2);
    a.calls[0]!.resolve('a');
    b.calls[1]!.resolve('b');
    await expect(callA).resolves.toBe('a');
    await expect(callB).resolves.toBe('b');
    await clock.advance(100);
    expect(clock.pendingTimers).toBe(0);
  });

  it('with delayMs 0 starts the first attempt at once and every hedge on the next timer tick', async () => {
    const clock = new ManualClock();
    const policy = hedge({ delayMs: 0, maxHedges: 2, clock });
    const events = recordHedges(policy);
    const { calls, fn } = controlled();
    const call = policy.execute(fn);
    expect(calls).toHaveLength(1);
    await clock.advance(0);
    expect(calls).toHaveLength(3);
    expect(events.map((e) => [e.attempt, e.trigger])).toEqual([
      [2, 'delay'],
      [3, 'delay'],
    ]);
    calls[2]!.resolve('third');
    await expect(call).resolves.toBe('third');
    await clock.advance(0);
    expect(clock.pendingTimers).toBe(0);
  });

  it('with delayMs 0 starts no hedge when the first attempt settles synchronously', async () => {
    const clock = new ManualClock();
    const policy = hedge({ delayMs: 0, clock });
    const fn = vi.fn(() => 'now');
    await expect(policy.execute(fn)).resolves.toBe('now');
    await clock.advance(0);
    expect(fn).toHaveBeenCalledTimes(1);
  });

  it("hands each attempt the enclosing attempt number (a retry's), not the hedge's count", async () => {
    const clock = new ManualClock();
    const seen: number[] = [];
    const p = pipeline(retry({ maxAttempts: 2, backoff: constant(0), clock }), hedge({ delayMs: 10, clock }));
    const result = await p.execute(({ attempt }) => {
      seen.push(attempt);
      if (attempt === 1) throw new Error('fail');
      return 'ok';
    });
    expect(result).toBe('ok');
    // Attempt 1 failed, was hedged at once (still attempt 1) and failed again; retry then ran attempt 2.
    expect(seen).toEqual([1, 1, 2]);
  });

  it('hedges an attempt that a timeout inside it cut off', async () => {
    const clock = new ManualClock();
    const policy = hedge({ delayMs: 1_000, clock });
    const events = recordHedges(policy);
    const p = pipeline(policy, timeout(50, { clock }));
    let n = 0;
    const call = p.execute(() => (++n === 1 ? new Promise<string>(() => {}) : 'second'));
    await clock.advance(50);
    await expect(call).resolves.toBe('second');
    expect(events).toEqual([{ policy: 'hedge', attempt: 2, trigger: 'failure' }]);
  });

  it('rejects with the TimeoutError when a timeout outside the hedge expires', async () => {
    const clock = new ManualClock();
    const p = pipeline(timeout(150, { clock }), hedge({ delayMs: 100, clock }));
    const { calls, fn } = controlled();
    const call = p.execute(fn);
    const outcome = call.catch((e: unknown) => e);
    await clock.advance(150);
    expect(calls).toHaveLength(2);
    expect(await outcome).toBeInstanceOf(TimeoutError);
    expect(calls.every((c) => c.signal.aborted)).toBe(true);
    for (const c of calls) c.reject(c.signal.reason);
    await clock.advance(100);
  });

  it("reports kind 'hedge', default name 'hedge' and its resolved options", () => {
    const policy = hedge({ delayMs: 25 });
    expect(policy).toBeInstanceOf(HedgePolicy);
    expect(policy.kind).toBe('hedge');
    expect(policy.name).toBe('hedge');
    expect(policy.delayMs).toBe(25);
    expect(policy.maxHedges).toBe(1);
  });
});
