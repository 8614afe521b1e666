import { tracingChannel } from 'node:diagnostics_channel';
import { describe, expect, it } from 'vitest';
import {
  bulkhead,
  circuitBreaker,
  channelNames,
  constant,
  fallback,
  hedge,
  ManualClock,
  pipeline,
  retry,
  timeout,
  type Backoff,
} from '../../../src/index.js';
import { abortListeners, deferred, flush } from '../../support/helpers.js';

describe('execute() and the caller signal', () => {
  it.each([
    ['a circuit breaker', () => circuitBreaker()],
    ['a retry', () => retry()],
    ['a pipeline', () => pipeline(retry(), circuitBreaker())],
    ['a timeout', () => timeout(10_000)],
    ['a bulkhead', () => bulkhead()],
    ['a fallback', () => fallback('fallback value')],
    ['a hedge', () => hedge({ delayMs: 10_000 })],
  ])('%s rejects with the reason at once when the caller aborts, even if fn ignores its signal', async (_n, make) => {
    const caller = new AbortController();
    const work = deferred<string>();
    const call = make().execute(() => work.promise, { signal: caller.signal });
    const reason = new Error('caller gave up');
    caller.abort(reason);
    await expect(call).rejects.toBe(reason);
    // The work goes on; its later failure is observed, never an unhandled rejection.
    work.reject(new Error('late failure'));
    await flush();
    expect(abortListeners(caller.signal)).toBe(0);
  });

  it('removes its listener from the caller signal when the call settles first', async () => {
    const caller = new AbortController();
    await expect(circuitBreaker().execute(() => 'ok', { signal: caller.signal })).resolves.toBe('ok');
    expect(abortListeners(caller.signal)).toBe(0);
  });

  it('adds no listener when no signal is given', async () => {
    await expect(circuitBreaker().execute(async () => 1)).resolves.toBe(1);
  });

  it.each([
    ['an unknown key', { sginal: new AbortController().signal }, /unknown option "sginal"/],
    ['an array', [], /options must be an object, got an array/],
  ])('refuses %s as options with a TypeError', async (_n, options, message) => {
    const call = retry().execute(() => 1, options as never);
    await expect(call).rejects.toThrow(TypeError);
    await expect(call).rejects.toThrow(message);
  });

  // The hot-path policies each carry their own copy of execute() (see PolicyBase, issue 14 §3):
  // each copy must check its arguments as the shared one does.
  it.each([
    ['circuitBreaker', () => circuitBreaker()],
    ['retry', () => retry()],
    ['timeout', () => timeout(1_000)],
    ['bulkhead', () => bulkhead()],
    ['fallback', () => fallback(0)],
    ['hedge', () => hedge({ delayMs: 1_000 })],
    ['pipeline', () => pipeline(retry())],
  ])("%s's execute() refuses a non-function and an already aborted signal", async (_n, make) => {
    await expect(make().execute(42 as never)).rejects.toThrow('execute: fn must be a function, got 42');
    const reason = new Error('aborted before the call');
    await expect(make().execute(() => 1, { signal: AbortSignal.abort(reason) })).rejects.toBe(reason);
  });
});

describe('execute() on the hot path', () => {
  it('is defined by each hot-path policy class itself, so that its dispatch sees one class', () => {
    // A shared execute() sees every class at `this[runSymbol]`: a megamorphic symbol-keyed load,
    // ~10 ns a call once five classes have run (issue 14 §3). Guards against a refactor that
    // quietly brings the shared one back.
    for (const policy of [
      circuitBreaker(),
      retry(),
      timeout(1_000),
      bulkhead(),
      fallback(0),
      hedge({ delayMs: 1_000 }),
      pipeline(retry()),
    ]) {
      expect(Object.hasOwn(Object.getPrototypeOf(policy), 'execute'), policy.constructor.name).toBe(true);
    }
  });
});

describe('tracing channel', () => {
  it('reaches a subscriber that listens to errors only', async () => {
    const channel = tracingChannel(channelNames.execute);
    const seen: unknown[] = [];
    const handlers = { error: (message: unknown) => seen.push(message) };
    channel.subscribe(handlers as never);
    try {
      await circuitBreaker({ name: 'payments' }).execute(() => Promise.reject(new Error('boom'))).catch(() => {});
    } finally {
      channel.unsubscribe(handlers as never);
    }
    expect(seen).toHaveLength(1);
    expect(seen[0]).toMatchObject({ kind: 'circuit-breaker', policy: 'payments' });
  });
});

describe('hand-written backoffs that answer badly', () => {
  const answering = (value: number): Backoff => ({ initialMs: 25, next: () => value });

  it.each([
    ['NaN', Number.NaN, 25],
    ['a negative delay', -5, 0],
    ['Infinity', Number.POSITIVE_INFINITY, 1_000],
  ])('retry waits a safe delay when the backoff returns %s', async (_n, value, expected) => {
    const clock = new ManualClock();
    const delays: number[] = [];
    const policy = retry({ clock, maxAttempts: 2, backoff: answering(value), maxDelayMs: 1_000 });
    policy.onRetry((e) => delays.push(e.delayMs));
    const call = policy.execute(({ attempt }) => (attempt === 1 ? Promise.reject(new Error('x')) : 'ok'));
    await clock.advance(1_000);
    await expect(call).resolves.toBe('ok');
    expect(delays).toEqual([expected]);
  });

  it('a breaker whose backoff returns NaN opens for the backoff initial delay, not forever', async () => {
    const clock = new ManualClock();
    const breaker = circuitBreaker({ clock, halfOpenAfterMs: answering(Number.NaN), breaker: undefined });
    for (let i = 0; i < 5; i++) await breaker.execute(() => Promise.reject(new Error('x'))).catch(() => {});
    expect(breaker.state).toBe('open');
    await clock.advance(25);
    expect(breaker.state).toBe('half-open');
  });
});

describe('fallback and cancellation', () => {
  // The abort must come from inside (an enclosing timeout), since a top-level caller abort is
  // answered by execute() itself before any policy sees it.
  it('does not replace a cancellation from an enclosing policy whatever the reason is named', async () => {
    const clock = new ManualClock();
    const policy = pipeline(timeout(50, { clock, strategy: 'cooperative' }), fallback('substitute'));
    const call = policy.execute(
      ({ signal }) => new Promise((_, reject) => signal.addEventListener('abort', () => reject(signal.reason))),
    );
    const outcome = call.catch((e: unknown) => e);
    await clock.advance(50);
    // The reason is the timeout's TimeoutError (not named AbortError): still not replaced.
    expect(await outcome).toMatchObject({ code: 'ERR_BULWARK_TIMEOUT' });
  });

  it('still replaces other errors', async () => {
    await expect(fallback('substitute').execute(() => Promise.reject(new Error('x')))).resolves.toBe('substitute');
    await expect(retry({ maxAttempts: 1, backoff: constant(0) }).execute(() => 2)).resolves.toBe(2);
  });
});
