import { describe, expect, it } from 'vitest';
import {
  circuitBreaker,
  consecutive,
  constant,
  faultInjection,
  type FaultInjectedEvent,
  ManualClock,
  pipeline,
  retry,
  timeout,
  TimeoutError,
} from '../../../src/index.js';
import { abortHandlerCount } from '../../../src/core/shared-abort.js';
import { abortListeners, capture, rejection, status } from '../../support/helpers.js';
import { refedTrackedTimers } from '../../support/timer-tracker.js';

/** A random source that plays back `values`, then fails the test if asked for more. */
function draws(...values: number[]): () => number {
  let i = 0;
  return () => {
    if (i >= values.length) throw new Error('random() called more often than the test expected');
    return values[i++]!;
  };
}

const work = async (): Promise<string> => 'real';

/** The timers still held open once cleared ones are gone (Node reports a cleared timer's end a tick later). */
async function timersLeft(): Promise<string[]> {
  await new Promise((resolve) => setImmediate(resolve));
  return refedTrackedTimers();
}

describe('faultInjection: which calls get the fault', () => {
  it('injects the calls that draw below the rate and runs the others', async () => {
    const boom = new Error('injected');
    const chaos = faultInjection({ rate: 0.3, fault: boom, random: draws(0.1, 0.3, 0.29, 0.9) });
    const results = await Promise.all([1, 2, 3, 4].map(() => capture(chaos.execute(work))));
    expect(results).toEqual([
      { ok: false, error: boom },
      { ok: true, value: 'real' },
      { ok: false, error: boom },
      { ok: true, value: 'real' },
    ]);
  });

  it('does not run the function of an injected call', async () => {
    let ran = 0;
    const chaos = faultInjection({ rate: 1, fault: new Error('x') });
    await capture(chaos.execute(() => ran++));
    expect(ran).toBe(0);
  });

  it('consults `when` first: a call it refuses never draws and runs as is', async () => {
    const seen: number[] = [];
    const chaos = faultInjection({
      rate: 1,
      fault: new Error('x'),
      when: ({ attempt }) => {
        seen.push(attempt);
        return attempt > 1;
      },
      random: draws(0),
    });
    const policy = pipeline(retry({ maxAttempts: 2, backoff: constant(0) }), chaos);
    let calls = 0;
    // Attempt 1 is refused by `when`; attempt 1 succeeding means no retry, so only one draw (none).
    await expect(policy.execute(() => ++calls)).resolves.toBe(1);
    expect(seen).toEqual([1]);
  });

  it('rejects the call (and runs nothing) when `when` throws or answers a non-boolean', async () => {
    const thrown = new Error('predicate broke');
    const throwing = faultInjection({ rate: 1, latencyMs: 5, when: () => { throw thrown; } });
    let ran = 0;
    await expect(throwing.execute(() => ran++)).rejects.toBe(thrown);
    const vague = faultInjection({ rate: 1, latencyMs: 5, when: (() => 'yes') as never });
    await expect(vague.execute(() => ran++)).rejects.toThrow(/"when" must return a boolean, got "yes"/);
    expect(ran).toBe(0);
  });

  it('rejects the call when `random` throws', async () => {
    const chaos = faultInjection({ rate: 0.5, fault: new Error('x'), random: draws() });
    await expect(chaos.execute(work)).rejects.toThrow(/more often/);
  });
});

describe('faultInjection: what is injected', () => {
  it('makes a new error per injection from a `fault` function, and a TypeError when it returns a non-error', async () => {
    let n = 0;
    const chaos = faultInjection({ rate: 1, fault: () => new Error(`fault ${++n}`) });
    await expect(chaos.execute(work)).rejects.toThrow('fault 1');
    await expect(chaos.execute(work)).rejects.toThrow('fault 2');
    const bad = faultInjection({ rate: 1, fault: (() => 'oops') as never });
    await expect(bad.execute(work)).rejects.toThrow(new TypeError('faultInjection: option "fault" must return an Error, got "oops"'));
    const thrown = new RangeError('thrown, not returned');
    const throwing = faultInjection({ rate: 1, fault: () => { throw thrown; } });
    await expect(throwing.execute(work)).rejects.toBe(thrown);
  });

  it('resolves with an `outcome` value, or what an `outcome` function makes each time', async () => {
    const fixed = faultInjection({ rate: 1, outcome: 42 });
    await expect(fixed.execute(work)).resolves.toBe(42);
    let made = 0;
    const fresh = faultInjection({ rate: 1, outcome: async () => ({ made: ++made }) });
    await expect(fresh.execute(work)).resolves.toEqual({ made: 1 });
    await expect(fresh.execute(work)).resolves.toEqual({ made: 2 });
  });

  it('delays a call by `latencyMs` and then runs it, on the given clock', async () => {
    const clock = new ManualClock();
    const chaos = faultInjection({ rate: 1, latencyMs: 100, clock });
    let ran = 0;
    const result = capture(chaos.execute(() => ++ran));
    await clock.advance(99);
    expect(await status(result)).toBe('pending');
    expect(ran).toBe(0);
    await clock.advance(1);
    expect(await result).toEqual({ ok: true, value: 1 });
  });

  it('with latency and a fault, rejects after the latency (a slow failure)', async () => {
    const clock = new ManualClock();
    const boom = new Error('slow failure');
    const chaos = faultInjection({ rate: 1, latencyMs: () => 50, fault: boom, clock });
    const result = capture(chaos.execute(work));
    await clock.advance(49);
    expect(await status(result)).toBe('pending');
    await clock.advance(1);
    expect(await rejection(result)).toBe(boom);
  });

  it('rejects the call with a RangeError naming "latencyMs" when its function gives a bad latency', async () => {
    const chaos = faultInjection({ rate: 1, latencyMs: () => -1 });
    await expect(chaos.execute(work)).rejects.toThrow(RangeError);
    await expect(chaos.execute(work)).rejects.toThrow(/"latencyMs" must be from 0 .* got -1/);
  });

  it('tells `onInjected` listeners what it injected', async () => {
    const clock = new ManualClock();
    const events: FaultInjectedEvent[] = [];
    const chaos = faultInjection({ rate: 1, latencyMs: 10, fault: new Error('x'), clock, name: 'chaos-a' });
    chaos.onInjected((e) => events.push(e));
    const outcome = faultInjection({ rate: 1, outcome: 1 });
    outcome.onInjected((e) => events.push(e));
    const latency = faultInjection({ rate: 1, latencyMs: 0 });
    latency.onInjected((e) => events.push(e));
    const slow = capture(chaos.execute(work));
    await clock.advance(10);
    await slow;
    await outcome.execute(work);
    await latency.execute(work);
    expect(events).toEqual([
      { policy: 'chaos-a', kind: 'fault', latencyMs: 10 },
      { policy: 'fault-injection', kind: 'outcome', latencyMs: 0 },
      { policy: 'fault-injection', kind: 'latency', latencyMs: 0 },
    ]);
  });
});

describe('faultInjection: injected latency and the signal', () => {
  it("ends at once with the caller's reason when the caller aborts, leaving no timer or listener", async () => {
    const chaos = faultInjection({ rate: 1, latencyMs: 60_000 });
    const caller = new AbortController();
    let ran = 0;
    const started = performance.now();
    const result = capture(chaos.execute(() => ran++, { signal: caller.signal }));
    expect(refedTrackedTimers()).toHaveLength(1); // the injected latency's own timer, while it waits
    const reason = new Error('caller gave up');
    caller.abort(reason);
    expect(await rejection(result)).toBe(reason);
    expect(performance.now() - started).toBeLessThan(1_000);
    expect(ran).toBe(0);
    expect(await timersLeft()).toEqual([]);
    expect(abortHandlerCount(caller.signal)).toBe(0);
    expect(abortListeners(caller.signal)).toBe(0);
  });

  it('ends at the deadline of a timeout around it, with its TimeoutError, leaving no timer', async () => {
    const policy = pipeline(timeout(20), faultInjection({ rate: 1, latencyMs: 60_000 }));
    const started = performance.now();
    await expect(policy.execute(work)).rejects.toBeInstanceOf(TimeoutError);
    expect(performance.now() - started).toBeLessThan(1_000);
    expect(await timersLeft()).toEqual([]);
  });

  it('rejects at once, with no timer, when the signal has already aborted', async () => {
    const chaos = faultInjection({ rate: 1, latencyMs: 60_000 });
    const reason = new Error('already');
    await expect(chaos.execute(work, { signal: AbortSignal.abort(reason) })).rejects.toBe(reason);
    expect(await timersLeft()).toEqual([]);
  });
});

describe('faultInjection: enabled and rate at run time', () => {
  it('runs every call as is while disabled, without drawing, and injects again once enabled', async () => {
    const chaos = faultInjection({ rate: 1, fault: new Error('x'), enabled: false, random: draws(0) });
    expect(chaos.enabled).toBe(false);
    await expect(chaos.execute(work)).resolves.toBe('real');
    await expect(pipeline(chaos).execute(work)).resolves.toBe('real');
    chaos.enabled = true;
    await expect(chaos.execute(work)).rejects.toThrow('x');
    chaos.enabled = false;
    await expect(chaos.execute(work)).resolves.toBe('real');
  });

  it('hands the function of a disabled call a usable context: attempt 1 and a signal that never aborts', async () => {
    const chaos = faultInjection({ rate: 1, fault: new Error('x'), enabled: false });
    const seen = await chaos.execute(({ attempt, signal }) => ({ attempt, aborted: signal.aborted, isSignal: signal instanceof AbortSignal }));
    expect(seen).toEqual({ attempt: 1, aborted: false, isSignal: true });
  });

  it('checks the arguments of a disabled call as any policy does', async () => {
    const chaos = faultInjection({ rate: 1, fault: new Error('x'), enabled: false });
    await expect(chaos.execute('not a function' as never)).rejects.toThrow(TypeError);
    const reason = new Error('aborted before');
    await expect(chaos.execute(work, { signal: AbortSignal.abort(reason) })).rejects.toBe(reason);
    await expect(chaos.execute(work, { timeoutMs: 1 } as never)).rejects.toThrow(/unknown option "timeoutMs"/);
  });

  it('takes a new rate at run time, and refuses a bad `enabled` or `rate` with the value named', async () => {
    const chaos = faultInjection({ rate: 0.1, fault: new Error('x'), random: draws(0.5, 0.5) });
    await expect(chaos.execute(work)).resolves.toBe('real');
    chaos.rate = 0.6;
    expect(chaos.rate).toBe(0.6);
    await expect(chaos.execute(work)).rejects.toThrow('x');
    expect(() => {
      chaos.enabled = 'false' as never;
    }).toThrow(new TypeError('faultInjection: option "enabled" must be a boolean, got "false"'));
    expect(() => {
      chaos.rate = 0;
    }).toThrow(RangeError);
    expect(() => {
      chaos.rate = 1.5;
    }).toThrow(/"rate" .* got 1\.5/);
    expect(chaos.rate).toBe(0.6);
    expect(chaos.enabled).toBe(true);
  });
});

describe('faultInjection in a pipeline', () => {
  it('is met by the retries and the breaker around it as a real failure would be', async () => {
    const breaker = circuitBreaker({ breaker: consecutive(2), halfOpenAfterMs: 60_000 });
    const chaos = faultInjection({ rate: 0.5, fault: () => new Error('injected 503'), random: draws(0.1, 0.9, 0.1, 0.1) });
    const policy = pipeline(retry({ maxAttempts: 2, backoff: constant(0) }), breaker, chaos);
    // Call 1: injected, then retried and served. Call 2: injected twice, so the breaker opens.
    await expect(policy.execute(work)).resolves.toBe('real');
    await expect(policy.execute(work)).rejects.toThrow('injected 503');
    expect(breaker.state).toBe('open');
  });
});

describe('faultInjection: rate accuracy', () => {
  it('injects 5 % ± 0.3 % of 100,000 calls at rate 0.05, with the default random source', async () => {
    const chaos = faultInjection({ rate: 0.05, outcome: 'injected' });
    const fn = (): string => 'real';
    let injected = 0;
    for (let i = 0; i < 100_000; i++) if ((await chaos.execute(fn)) === 'injected') injected++;
    // ±0.3 % of 100,000 is ±300 calls; the binomial σ is √(100,000 × 0.05 × 0.95) ≈ 69, so ~4.4 σ.
    expect(injected).toBeGreaterThanOrEqual(4_700);
    expect(injected).toBeLessThanOrEqual(5_300);
  });
});
