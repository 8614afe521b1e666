import diagnosticsChannel from 'node:diagnostics_channel';
import { afterEach, describe, expect, expectTypeOf, it, vi } from 'vitest';
import {
  BrokenCircuitError,
  BulkheadRejectedError,
  channelNames,
  constant,
  type ExecuteMessage,
  type ExecutionContext,
  isBulwarkError,
  pipeline,
  retry,
  timeout,
  TimeoutError,
} from '../../../src/index.js';
import { fromOpossum, type OpossumStateChangeEvent, opossumAction, OpossumPolicy } from '../../../src/interop/opossum.js';
import {
  circuitRejectedChannel,
  circuitStateChannel,
  fallbackChannel,
  timeoutChannel,
} from '../../../src/core/diagnostics.js';
import { abortListeners, capture, deferred, flush, rejection } from '../../support/helpers.js';
import { delay, listen, newBreaker, nextEvent, shutDownEngines, unlistenAll } from './support.js';

afterEach(async () => {
  vi.restoreAllMocks();
  unlistenAll();
  await shutDownEngines();
});

/** Something that fails, with opossum's error code for a timeout as its own. */
function codedError(message: string, code: string): Error {
  return Object.assign(new Error(message), { code });
}

describe('fromOpossum: calls', () => {
  it('passes results, thrown values and rejections through unchanged', async () => {
    const policy = fromOpossum(newBreaker(opossumAction));
    const failure = new Error('boom');
    expect(await policy.execute(async () => 'async')).toBe('async');
    expect(await policy.execute(() => 'sync')).toBe('sync');
    expect(await policy.execute(() => undefined)).toBeUndefined();
    expect(await rejection(capture(policy.execute(() => Promise.reject(failure))))).toBe(failure);
    expect(
      await rejection(
        capture(
          policy.execute(() => {
            throw failure;
          }),
        ),
      ),
    ).toBe(failure);
  });

  it('runs each call’s own function through the one breaker, which counts every outcome', async () => {
    const breaker = newBreaker(opossumAction);
    const policy = fromOpossum(breaker);
    await policy.execute(() => 1);
    await policy.execute(() => 2);
    await capture(policy.execute(() => Promise.reject(new Error('x'))));
    const stats = (breaker as unknown as { stats: { fires: number; successes: number; failures: number } }).stats;
    expect(stats).toMatchObject({ fires: 3, successes: 2, failures: 1 });
  });

  it('gives the function a context with a signal and the attempt number of an enclosing retry', async () => {
    const policy = fromOpossum(newBreaker(opossumAction, { volumeThreshold: 10 }));
    const seen: { attempt: number; signal: boolean }[] = [];
    const outer = retry({ maxAttempts: 2, backoff: constant(1) });
    await outer.execute(() =>
      policy.execute((ctx: ExecutionContext) => {
        seen.push({ attempt: ctx.attempt, signal: ctx.signal instanceof AbortSignal });
        return 1;
      }),
    );
    expect(seen).toEqual([{ attempt: 1, signal: true }]);

    const attempts: number[] = [];
    await pipeline(retry({ maxAttempts: 3, backoff: constant(1) }), policy).execute(({ attempt }) => {
      attempts.push(attempt);
      if (attempt < 3) throw new Error('again');
      return 'ok';
    });
    expect(attempts).toEqual([1, 2, 3]);
  });

  it('runs a function fired on the breaker directly, with a fresh context', async () => {
    const breaker = newBreaker(opossumAction);
    const result = await breaker.fire((ctx: ExecutionContext) => [ctx.attempt, ctx.signal.aborted]);
    expect(result).toEqual([1, false]);
    await expect(breaker.fire('not a function')).rejects.toThrow(/opossumAction: the breaker must be fired with a function, got "not a function"/);
  });

  it('announces each execution on the bulwark:execute tracing channel, nested in a pipeline', async () => {
    const policy = fromOpossum(newBreaker(opossumAction, { name: 'payments' }));
    const starts: ExecuteMessage[] = [];
    const handlers = { start: (m: unknown) => starts.push({ ...(m as ExecuteMessage) }) };
    const channel = diagnosticsChannel.tracingChannel(channelNames.execute);
    channel.subscribe(handlers as unknown as diagnosticsChannel.TracingChannelSubscribers<object>);
    try {
      await policy.execute(() => 1);
      await pipeline(retry(), policy).execute(() => 2);
    } finally {
      channel.unsubscribe(handlers as unknown as diagnosticsChannel.TracingChannelSubscribers<object>);
    }
    expect(starts).toEqual([
      { kind: 'opossum', policy: 'payments' },
      { kind: 'pipeline', policy: 'pipeline' },
      { kind: 'retry', policy: 'retry' },
      { kind: 'opossum', policy: 'payments' },
    ]);
  });
});

describe('fromOpossum: an open circuit', () => {
  it('rejects with BrokenCircuitError, opossum’s error as cause, without running the function', async () => {
    const breaker = newBreaker(opossumAction, { resetTimeout: 10_000 });
    const policy = fromOpossum(breaker);
    await capture(policy.execute(() => Promise.reject(new Error('down'))));
    expect(breaker.opened).toBe(true);
    let ran = false;
    const error = await rejection(
      capture(
        policy.execute(() => {
          ran = true;
        }),
      ),
    );
    expect(ran).toBe(false);
    expect(error).toBeInstanceOf(BrokenCircuitError);
    expect(isBulwarkError(error, 'ERR_BULWARK_BROKEN_CIRCUIT')).toBe(true);
    expect((error as Error).cause).toMatchObject({ code: 'EOPENBREAKER' });
    // Until opossum's reset timer half-opens it.
    expect((error as BrokenCircuitError).retryAfterMs).toBeGreaterThan(9_000);
    expect((error as BrokenCircuitError).retryAfterMs).toBeLessThanOrEqual(10_000);
  });

  it('rejects at once with retryAfterMs 0 while half-open and its probe is out, then closes on the probe’s success', async () => {
    const breaker = newBreaker(opossumAction, { resetTimeout: 20 });
    const policy = fromOpossum(breaker);
    const openedAround = Date.now();
    await capture(policy.execute(() => Promise.reject(new Error('down'))));
    await nextEvent(breaker, 'halfOpen');
    const probe = deferred<string>();
    const first = policy.execute(() => probe.promise);
    // As if the clock still read the time it opened: half-open must say 0 all the same.
    vi.spyOn(Date, 'now').mockReturnValue(openedAround);
    const second = await rejection(capture(policy.execute(() => 'never')));
    vi.restoreAllMocks();
    expect(second).toBeInstanceOf(BrokenCircuitError);
    expect((second as BrokenCircuitError).retryAfterMs).toBe(0);
    expect((second as Error).message).toMatch(/half-open/);
    probe.resolve('probe');
    expect(await first).toBe('probe');
    expect(policy.state).toBe('closed');
  });

  it('retries in a pipeline(retry, fromOpossum, timeout) and stops once the breaker opens', async () => {
    const breaker = newBreaker(opossumAction, { volumeThreshold: 2, errorThresholdPercentage: 50, resetTimeout: 10_000 });
    const outer = retry({ maxAttempts: 5, backoff: constant(1) });
    const giveUps: unknown[] = [];
    outer.onGiveUp((e) => giveUps.push({ attempts: e.attempts, reason: e.reason }));
    const resilient = pipeline(outer, fromOpossum(breaker), timeout(1_000));
    let calls = 0;
    const error = await rejection(
      capture(
        resilient.execute(() => {
          calls++;
          return Promise.reject(new Error('dependency down'));
        }),
      ),
    );
    // Two failures open the breaker; the third attempt is refused and retry does not go on.
    expect(calls).toBe(2);
    expect(error).toBeInstanceOf(BrokenCircuitError);
    expect(giveUps).toEqual([{ attempts: 3, reason: 'unhandled' }]);
  });

  it('does not mistake an open opossum breaker inside the function for its own', async () => {
    const inner = newBreaker(opossumAction);
    inner.open();
    const policy = fromOpossum(newBreaker(opossumAction));
    const error = await rejection(capture(policy.execute(() => inner.fire(() => 'x'))));
    expect(error).not.toBeInstanceOf(BrokenCircuitError);
    expect(error).toMatchObject({ code: 'EOPENBREAKER' });
  });

  it('passes opossum’s error through after the breaker is shut down', async () => {
    const breaker = newBreaker(opossumAction);
    const policy = fromOpossum(breaker);
    breaker.shutdown();
    const error = await rejection(capture(policy.execute(() => 1)));
    expect(error).toMatchObject({ code: 'ESHUTDOWN' });
    expect(policy.state).toBe('shutdown');
  });
});

describe('fromOpossum: opossum’s timeout and capacity', () => {
  it('rejects with TimeoutError on opossum’s timeout and aborts the function’s signal with it', async () => {
    const policy = fromOpossum(newBreaker(opossumAction, { timeout: 20 }));
    const expired = listen(channelNames.timeout);
    let signal: AbortSignal | undefined;
    const work = deferred<string>();
    const error = await rejection(
      capture(
        policy.execute((ctx) => {
          signal = ctx.signal;
          return work.promise;
        }),
      ),
    );
    expect(error).toBeInstanceOf(TimeoutError);
    expect((error as TimeoutError).timeoutMs).toBe(20);
    expect((error as Error).cause).toMatchObject({ code: 'ETIMEDOUT' });
    expect(signal?.aborted).toBe(true);
    expect(signal?.reason).toBe(error);
    expect(expired).toEqual([{ policy: 'opossum', timeoutMs: 20 }]);
    work.resolve('late'); // ignored by opossum, as it was already timed out
    await flush();
  });

  it('leaves no listener on the caller’s signal once a call has settled', async () => {
    const policy = fromOpossum(newBreaker(opossumAction, { timeout: 1_000, volumeThreshold: 10 }));
    const controller = new AbortController();
    const readSignal = (ctx: ExecutionContext): string => (ctx.signal.aborted ? 'aborted' : 'ok');
    expect(await policy.execute(readSignal, { signal: controller.signal })).toBe('ok');
    await capture(policy.execute((ctx) => Promise.reject(new Error(readSignal(ctx))), { signal: controller.signal }));
    expect(abortListeners(controller.signal)).toBe(0);
  });

  it('leaves a function’s own ETIMEDOUT error as it is', async () => {
    const policy = fromOpossum(newBreaker(opossumAction, { timeout: 5_000 }));
    const own = codedError('socket timed out', 'ETIMEDOUT');
    expect(await rejection(capture(policy.execute(() => Promise.reject(own))))).toBe(own);
  });

  it('leaves the signal alone once the call has settled before opossum’s timeout', async () => {
    const policy = fromOpossum(newBreaker(opossumAction, { timeout: 30 }));
    let signal: AbortSignal | undefined;
    await policy.execute((ctx) => {
      signal = ctx.signal;
      return 'fast';
    });
    await delay(50);
    expect(signal?.aborted).toBe(false);
  });

  it('rejects with BulkheadRejectedError when opossum’s capacity is taken, and publishes it', async () => {
    const policy = fromOpossum(newBreaker(opossumAction, { capacity: 1 }));
    const rejected = listen(channelNames.bulkheadRejected);
    const busy = deferred<string>();
    const first = policy.execute(() => busy.promise);
    const error = await rejection(capture(policy.execute(() => 'second')));
    expect(error).toBeInstanceOf(BulkheadRejectedError);
    expect(error).toMatchObject({ active: 1, queued: 0 });
    expect((error as Error).cause).toMatchObject({ code: 'ESEMLOCKED' });
    expect(rejected).toEqual([{ policy: 'opossum', active: 1, queued: 0, mode: 'enforce' }]);
    busy.resolve('first');
    expect(await first).toBe('first');
  });
});

describe('fromOpossum: events', () => {
  it('publishes closed → open → half-open → closed on bulwark:circuit:state with reasons', async () => {
    const breaker = newBreaker(opossumAction, { resetTimeout: 20, name: 'inventory' });
    const policy = fromOpossum(breaker);
    const states = listen(channelNames.circuitState);
    const rejected = listen(channelNames.circuitRejected);
    await capture(policy.execute(() => Promise.reject(new Error('down'))));
    await capture(policy.execute(() => 'refused'));
    await nextEvent(breaker, 'halfOpen');
    await policy.execute(() => 'probe');
    expect(states).toEqual([
      { policy: 'inventory', from: 'closed', to: 'open', reason: 'failures' },
      { policy: 'inventory', from: 'open', to: 'half-open', reason: 'half-open-due' },
      { policy: 'inventory', from: 'half-open', to: 'closed', reason: 'probes-succeeded' },
    ]);
    expect(rejected).toEqual([{ policy: 'inventory', state: 'open' }]);
  });

  it('tells a failed probe and a change by hand apart from failures', async () => {
    const breaker = newBreaker(opossumAction, { resetTimeout: 20 });
    const policy = fromOpossum(breaker);
    const changes: OpossumStateChangeEvent[] = [];
    policy.onStateChange((e) => changes.push(e));
    breaker.open();
    await nextEvent(breaker, 'halfOpen');
    await capture(policy.execute(() => Promise.reject(new Error('still down'))));
    breaker.close();
    expect(changes.map((e) => `${e.from}>${e.to}:${e.reason}`)).toEqual([
      'closed>open:manual',
      'open>half-open:half-open-due',
      'half-open>open:probe-failed',
      'open>closed:manual',
    ]);
  });

  it('reports a failed health check as the reason the breaker opened', async () => {
    const breaker = newBreaker(opossumAction);
    const policy = fromOpossum(breaker);
    const changes: OpossumStateChangeEvent[] = [];
    policy.onStateChange((e) => changes.push(e));
    const opened = nextEvent(breaker, 'open');
    breaker.healthCheck(() => Promise.reject(new Error('unhealthy')), 60_000);
    await opened;
    expect(changes).toEqual([{ policy: 'opossum', from: 'closed', to: 'open', reason: 'health-check-failed' }]);
  });

  it('reports a breaker fallback on bulwark:fallback:used and resolves with its value', async () => {
    const breaker = newBreaker(opossumAction);
    breaker.fallback(() => 'cached');
    const policy = fromOpossum<string>(breaker);
    const used = listen(channelNames.fallback);
    const failure = new Error('down');
    const result = policy.execute(() => Promise.reject<number>(failure));
    expectTypeOf(result).resolves.toEqualTypeOf<number | string>();
    expectTypeOf(pipeline(retry(), policy).execute(() => 1)).resolves.toEqualTypeOf<number | string>();
    expect(await result).toBe('cached');
    expect(used).toEqual([{ policy: 'opossum', error: failure }]);
  });

  it('stops calling a typed listener once it is disposed', async () => {
    const breaker = newBreaker(opossumAction, { timeout: 10 });
    const policy = fromOpossum(breaker);
    const seen = { state: 0, rejected: 0, timeout: 0, fallback: 0 };
    const subs = [
      policy.onStateChange(() => seen.state++),
      policy.onRejected(() => seen.rejected++),
      policy.onTimeout(() => seen.timeout++),
      policy.onFallback(() => seen.fallback++),
    ];
    const never = (): Promise<never> => new Promise<never>(() => {});
    await capture(policy.execute(never)); // timeout → failure → open
    await capture(policy.execute(() => 1)); // refused
    expect(seen).toEqual({ state: 1, rejected: 1, timeout: 1, fallback: 0 });
    for (const sub of subs) sub.dispose();
    breaker.close();
    breaker.fallback(() => 'fb');
    await policy.execute(never); // timeout, fallback, open again
    await policy.execute(() => 1); // refused, fallback
    expect(seen).toEqual({ state: 1, rejected: 1, timeout: 1, fallback: 0 });
  });

  it('publishes nothing while no channel has subscribers', async () => {
    const publishers = [circuitStateChannel, circuitRejectedChannel, timeoutChannel, fallbackChannel];
    const spies = publishers.map((channel) => vi.spyOn(channel, 'publish'));
    const breaker = newBreaker(opossumAction, { timeout: 10, resetTimeout: 10_000 });
    breaker.fallback(() => 'fb');
    const policy = fromOpossum(breaker);
    await policy.execute(() => new Promise<never>(() => {})); // timeout, fallback, open
    await policy.execute(() => 1); // refused, fallback
    breaker.close();
    for (const spy of spies) expect(spy).not.toHaveBeenCalled();
    // A spied publish would shadow the one Node switches in on subscription.
    vi.restoreAllMocks();
    const states = listen(channelNames.circuitState);
    breaker.open();
    expect(states).toEqual([{ policy: 'opossum', from: 'closed', to: 'open', reason: 'manual' }]);
  });

  it('adds one listener per breaker event however often the breaker is wrapped', () => {
    const breaker = newBreaker(opossumAction);
    const before = breaker.listenerCount('open');
    const first = fromOpossum(breaker);
    const again = fromOpossum(breaker);
    const named = fromOpossum(breaker, { name: 'opossum' });
    expect(again).toBe(first);
    expect(named).toBe(first);
    expect(breaker.listenerCount('open')).toBe(before + 1);
    expect(breaker.listenerCount('reject')).toBe(2); // opossum's own statistics, and ours
  });
});

describe('fromOpossum: inputs', () => {
  it('takes its name from the breaker’s name option, else "opossum"', () => {
    expect(fromOpossum(newBreaker(opossumAction, { name: 'billing' })).name).toBe('billing');
    expect(fromOpossum(newBreaker(opossumAction)).name).toBe('opossum');
    expect(fromOpossum(newBreaker(opossumAction), { name: 'mine' }).name).toBe('mine');
    const policy = fromOpossum(newBreaker(opossumAction));
    expect(policy).toBeInstanceOf(OpossumPolicy);
    expect(policy.kind).toBe('opossum');
    expect(policy.state).toBe('closed');
  });

  it('throws a TypeError naming the option and the value for something that is not a breaker', () => {
    const notBreakers: unknown[] = [undefined, null, 42, 'breaker', {}, { fire() {} }, () => {}];
    for (const value of notBreakers) {
      expect(() => fromOpossum(value as never)).toThrow(TypeError);
    }
    expect(() => fromOpossum({ fire: () => {} } as never)).toThrow(
      'fromOpossum: option "breaker" must be an opossum CircuitBreaker, got an object',
    );
    expect(() => fromOpossum('breaker' as never)).toThrow('option "breaker" must be an opossum CircuitBreaker, got "breaker"');
  });

  it('refuses a breaker built around another action, naming it', () => {
    async function fetchUser(): Promise<string> {
      return 'user';
    }
    expect(() => fromOpossum(newBreaker(fetchUser))).toThrow(
      /option "breaker" must be built with opossumAction as its action .* got a breaker whose action is function "fetchUser"/,
    );
    expect(() => fromOpossum(newBreaker((fn: () => unknown) => fn()))).toThrow(/whose action is an anonymous function/);
  });

  it('refuses a breaker with opossum’s cache or coalescing on', () => {
    expect(() => fromOpossum(newBreaker(opossumAction, { cache: true }))).toThrow(/option "breaker" has opossum's "cache" option set to true/);
    expect(() => fromOpossum(newBreaker(opossumAction, { coalesce: true }))).toThrow(/"coalesce" option set to true/);
  });

  it('refuses a breaker that was shut down', () => {
    const breaker = newBreaker(opossumAction);
    breaker.shutdown();
    expect(() => fromOpossum(breaker)).toThrow('fromOpossum: option "breaker" has been shut down');
  });

  it('rejects unknown and bad options', () => {
    const breaker = newBreaker(opossumAction);
    expect(() => fromOpossum(breaker, { nmae: 'x' } as never)).toThrow('fromOpossum: unknown option "nmae" (known options: name)');
    expect(() => fromOpossum(breaker, { name: '' })).toThrow('fromOpossum: option "name" must be a non-empty string, got ""');
    expect(() => fromOpossum(breaker, [] as never)).toThrow('fromOpossum: options must be an object, got an array');
  });

  it('refuses a second name for a breaker already wrapped', () => {
    const breaker = newBreaker(opossumAction);
    fromOpossum(breaker, { name: 'first' });
    expect(() => fromOpossum(breaker, { name: 'second' })).toThrow(
      'fromOpossum: option "name" is "second", but this breaker is already wrapped as "first"',
    );
  });
});
