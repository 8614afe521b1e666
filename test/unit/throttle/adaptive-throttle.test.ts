import { subscribe, unsubscribe } from 'node:diagnostics_channel';
import { describe, expect, it } from 'vitest';
import {
  adaptiveThrottle,
  BulwarkError,
  channelNames,
  isBulwarkError,
  ManualClock,
  ThrottledError,
  type ThrottleRejectedEvent,
} from '../../../src/index.js';
import { capture, captureCallbackErrors, deferred, rejection } from '../../support/helpers.js';

const ok = (): string => 'ok';
const refuse = (): Promise<never> => Promise.reject(new Error('503'));

/** Runs `n` calls that the upstream accepts (`accept`) or refuses, one after another. */
async function outcomes(throttle: ReturnType<typeof adaptiveThrottle>, n: number, accept: boolean): Promise<void> {
  for (let i = 0; i < n; i++) await capture(throttle.execute(accept ? ok : refuse));
}

describe('adaptiveThrottle: the rejection probability', () => {
  it('is max(0, (requests − k·accepts) / (requests + 1)) over the window', async () => {
    const clock = new ManualClock();
    const throttle = adaptiveThrottle({ minRequests: 0, random: () => 0.999, clock });
    expect(throttle.rejectionProbability).toBe(0);
    await outcomes(throttle, 3, true);
    await outcomes(throttle, 7, false);
    // 10 requests, 3 accepted: (10 − 6) / 11.
    expect(throttle.window).toEqual({ requests: 10, accepts: 3 });
    expect(throttle.rejectionProbability).toBeCloseTo(4 / 11, 12);
    await outcomes(throttle, 2, true);
    // 12 requests, 5 accepted: 12 − 10 = 2 → 2 / 13.
    expect(throttle.rejectionProbability).toBeCloseTo(2 / 13, 12);
    await outcomes(throttle, 1, true);
    // 13 requests, 6 accepted: 13 − 12 = 1 → 1 / 14.
    expect(throttle.rejectionProbability).toBeCloseTo(1 / 14, 12);
    await outcomes(throttle, 1, true);
    expect(throttle.rejectionProbability).toBe(0); // 14 − 14 = 0
  });

  it('uses k: with k = 1 it rejects as soon as fewer calls are accepted than sent', async () => {
    const throttle = adaptiveThrottle({ k: 1, minRequests: 0, random: () => 0.999, clock: new ManualClock() });
    await outcomes(throttle, 3, true);
    await outcomes(throttle, 1, false);
    expect(throttle.rejectionProbability).toBeCloseTo(1 / 5, 12);
  });

  it('is capped by maxRejectionProbability (0.9 by default), so some calls still reach the upstream', async () => {
    const clock = new ManualClock();
    const capped = adaptiveThrottle({ minRequests: 0, random: () => 0.999, clock });
    await outcomes(capped, 50, false);
    expect(capped.rejectionProbability).toBe(0.9); // 50 / 51 uncapped
    const lower = adaptiveThrottle({ minRequests: 0, maxRejectionProbability: 0.5, random: () => 0.999, clock });
    await outcomes(lower, 50, false);
    expect(lower.rejectionProbability).toBe(0.5);
  });

  it('counts a request before the call, and weighs a call in flight once it settles', async () => {
    const throttle = adaptiveThrottle({ minRequests: 0, random: () => 0, clock: new ManualClock() });
    const gate = deferred<string>();
    const first = throttle.execute(() => gate.promise);
    expect(throttle.window).toEqual({ requests: 1, accepts: 0 });
    // No outcome yet: neither an accept nor a refusal.
    expect(throttle.rejectionProbability).toBe(0);
    gate.resolve('done');
    await first;
    expect(throttle.window).toEqual({ requests: 1, accepts: 1 });
    expect(throttle.rejectionProbability).toBe(0);
    await outcomes(throttle, 1, false);
    expect(throttle.rejectionProbability).toBeCloseTo(0 / 3, 12);
    await outcomes(throttle, 1, false);
    expect(throttle.rejectionProbability).toBeCloseTo((3 - 2) / 4, 12);
  });

  it('a slow, healthy upstream from a cold start: 0 local rejections while the first calls are still in flight', async () => {
    // 10 s calls at 10 req/s: 100 requests go out before the first answer. Counted as requests
    // with no accept, they read as an upstream refusing everything (probability at the cap).
    const throttle = adaptiveThrottle({ random: () => 0, clock: new ManualClock() });
    const gates = Array.from({ length: 250 }, () => deferred<string>());
    const calls = gates.map((g) => throttle.execute(() => g.promise));
    expect(throttle.window).toEqual({ requests: 250, accepts: 0 });
    expect(throttle.rejectionProbability).toBe(0);
    for (const g of gates) g.resolve('ok');
    expect(await Promise.all(calls)).toHaveLength(250);
    expect(throttle.window).toEqual({ requests: 250, accepts: 250 });
  });

  it('a call that fails after a long flight counts as not accepted when it settles', async () => {
    const throttle = adaptiveThrottle({ minRequests: 0, random: () => 0.999, clock: new ManualClock() });
    const gate = deferred<string>();
    const call = capture(throttle.execute(() => gate.promise));
    expect(throttle.rejectionProbability).toBe(0);
    gate.reject(new Error('refused'));
    await rejection(call);
    expect(throttle.window).toEqual({ requests: 1, accepts: 0 });
    expect(throttle.rejectionProbability).toBeCloseTo(1 / 2, 12);
  });

  it('counts a local rejection as a request, and not as an accept', async () => {
    const throttle = adaptiveThrottle({ minRequests: 0, random: () => 0, clock: new ManualClock() });
    await outcomes(throttle, 1, false); // p = 0 for the first call: no draw
    const error = await rejection(capture(throttle.execute(ok))); // p = 1/2, drew 0
    expect(error).toBeInstanceOf(ThrottledError);
    expect(throttle.window).toEqual({ requests: 2, accepts: 0 });
  });

  it('rejects nothing below minRequests (200 by default), then applies the formula', async () => {
    const throttle = adaptiveThrottle({ random: () => 0, clock: new ManualClock() });
    await outcomes(throttle, 199, false);
    expect(throttle.rejectionProbability).toBe(0);
    await outcomes(throttle, 1, false);
    expect(throttle.window).toEqual({ requests: 200, accepts: 0 });
    expect(throttle.rejectionProbability).toBe(0.9);
    expect(await rejection(capture(throttle.execute(ok)))).toBeInstanceOf(ThrottledError);
    const fresh = adaptiveThrottle({ minRequests: 5, random: () => 0, clock: new ManualClock() });
    await outcomes(fresh, 4, false);
    expect(fresh.rejectionProbability).toBe(0);
    await outcomes(fresh, 1, false);
    expect(fresh.rejectionProbability).toBeCloseTo(5 / 6, 12);
  });

  it('forgets what left the window: a bucket at a time (windowMs / 10), and everything after a whole window', async () => {
    const clock = new ManualClock();
    const throttle = adaptiveThrottle({ minRequests: 0, windowMs: 10_000, random: () => 0.999, clock });
    await outcomes(throttle, 4, false);
    await clock.advance(5_000);
    await outcomes(throttle, 4, true);
    expect(throttle.window).toEqual({ requests: 8, accepts: 4 });
    await clock.advance(5_000); // the first bucket (the four refusals) has left
    expect(throttle.window).toEqual({ requests: 4, accepts: 4 });
    await clock.advance(10_000);
    expect(throttle.window).toEqual({ requests: 0, accepts: 0 });
    expect(throttle.rejectionProbability).toBe(0);
  });

  it('sets no timer, ever', async () => {
    const clock = new ManualClock();
    const throttle = adaptiveThrottle({ minRequests: 0, random: () => 0, clock });
    await outcomes(throttle, 20, false);
    await outcomes(throttle, 20, true);
    expect(clock.pendingTimers).toBe(0);
  });
});

describe('adaptiveThrottle: what counts as accepted', () => {
  it('by default every error is a refusal by the upstream, every value an accept', async () => {
    const throttle = adaptiveThrottle({ clock: new ManualClock() });
    await capture(throttle.execute(() => Promise.reject(new TypeError('bad input'))));
    await capture(throttle.execute(() => null));
    expect(throttle.window).toEqual({ requests: 2, accepts: 1 });
  });

  it('isAccepted turns an error into an accept (the upstream answered, with an error of the caller’s making)', async () => {
    class NotFound extends Error {}
    const throttle = adaptiveThrottle({ isAccepted: (e) => e instanceof NotFound, clock: new ManualClock() });
    const notFound = new NotFound('404');
    expect(await rejection(capture(throttle.execute(() => Promise.reject(notFound))))).toBe(notFound);
    await capture(throttle.execute(refuse));
    expect(throttle.window).toEqual({ requests: 2, accepts: 1 });
  });

  it('a cancellation by the caller counts neither way, and never reaches isAccepted', async () => {
    const seen: unknown[] = [];
    const throttle = adaptiveThrottle({ isAccepted: (e) => seen.push(e) > 0, clock: new ManualClock() });
    const controller = new AbortController();
    const hang = ({ signal }: { signal: AbortSignal }): Promise<never> =>
      new Promise((_, reject) => signal.addEventListener('abort', () => reject(signal.reason)));
    const call = capture(throttle.execute(hang, { signal: controller.signal }));
    controller.abort();
    await call;
    await new Promise((resolve) => setImmediate(resolve));
    expect(throttle.window).toEqual({ requests: 0, accepts: 0 });
    expect(seen).toEqual([]);
  });

  it('an isAccepted that throws: the call still rejects with its own error, counts as refused, and the throw is reported', async () => {
    const errors = captureCallbackErrors();
    try {
      const bug = new Error('bug in isAccepted');
      const throttle = adaptiveThrottle({ name: 'pricing', isAccepted: () => { throw bug; }, clock: new ManualClock() });
      const own = new Error('503');
      expect(await rejection(capture(throttle.execute(() => Promise.reject(own))))).toBe(own);
      expect(throttle.window).toEqual({ requests: 1, accepts: 0 });
      expect(errors.messages).toEqual([{ policy: 'pricing', callback: 'isAccepted', error: bug }]);
    } finally {
      errors.stop();
    }
  });
});

describe('adaptiveThrottle: a local rejection', () => {
  it('rejects with a ThrottledError carrying the probability and the counts, without running the function', async () => {
    let draw = 0.999; // nothing rejected while the counts are made
    const throttle = adaptiveThrottle({ minRequests: 0, random: () => draw, clock: new ManualClock() });
    await outcomes(throttle, 3, false);
    await outcomes(throttle, 1, true);
    draw = 0.3;
    let ran = false;
    const error = await rejection(capture(throttle.execute(() => (ran = true))));
    expect(ran).toBe(false);
    expect(error).toBeInstanceOf(ThrottledError);
    expect(error).toBeInstanceOf(BulwarkError);
    expect(isBulwarkError(error, 'ERR_BULWARK_THROTTLED')).toBe(true);
    // 4 requests, 1 accept: (4 − 2) / 5.
    expect(error).toMatchObject({ name: 'ThrottledError', code: 'ERR_BULWARK_THROTTLED', probability: 0.4, requests: 4, accepts: 1 });
    // Made at request rate: no stack frames.
    expect((error as Error).stack).toBe(String(error));
  });

  it('lets the call through when it draws at or above the probability', async () => {
    let draw = 0.999;
    const throttle = adaptiveThrottle({ minRequests: 0, random: () => draw, clock: new ManualClock() });
    await outcomes(throttle, 3, false);
    await outcomes(throttle, 1, true);
    draw = 0.4; // p = 0.4 exactly
    expect(await throttle.execute(ok)).toBe('ok');
  });

  it('a random() that throws fails that call only', async () => {
    const bad = new Error('no entropy');
    let fail = true;
    const throttle = adaptiveThrottle({ minRequests: 0, random: () => { if (fail) throw bad; return 0.99; }, clock: new ManualClock() });
    await outcomes(throttle, 1, false);
    expect(await rejection(capture(throttle.execute(ok)))).toBe(bad);
    fail = false;
    expect(await throttle.execute(ok)).toBe('ok');
  });

  it('is published on bulwark:throttle:rejected and to onRejected listeners, with mode "enforce"', async () => {
    const messages: unknown[] = [];
    const listener = (m: unknown): void => void messages.push(m);
    subscribe(channelNames.throttleRejected, listener);
    try {
      const throttle = adaptiveThrottle({ name: 'pricing', minRequests: 0, random: () => 0, clock: new ManualClock() });
      const events: ThrottleRejectedEvent[] = [];
      throttle.onRejected((e) => events.push(e));
      await outcomes(throttle, 1, false);
      await capture(throttle.execute(ok));
      const expected = { policy: 'pricing', mode: 'enforce', probability: 0.5, requests: 1, accepts: 0 };
      expect(messages).toEqual([expected]);
      expect(events).toEqual([expected]);
    } finally {
      unsubscribe(channelNames.throttleRejected, listener);
    }
  });
});

describe('adaptiveThrottle: shadow mode', () => {
  it('runs every call and reports the would-be rejections with mode "shadow"', async () => {
    const events: ThrottleRejectedEvent[] = [];
    const messages: unknown[] = [];
    const listener = (m: unknown): void => void messages.push(m);
    subscribe(channelNames.throttleRejected, listener);
    try {
      const throttle = adaptiveThrottle({ name: 'pricing', mode: 'shadow', minRequests: 0, random: () => 0, clock: new ManualClock() });
      throttle.onRejected((e) => events.push(e));
      await outcomes(throttle, 1, false);
      expect(await throttle.execute(ok)).toBe('ok');
      const expected = { policy: 'pricing', mode: 'shadow', probability: 0.5, requests: 1, accepts: 0 };
      expect(events).toEqual([expected]);
      expect(messages).toEqual([expected]);
      // The call ran and was accepted: it counts like any other.
      expect(throttle.window).toEqual({ requests: 2, accepts: 1 });
    } finally {
      unsubscribe(channelNames.throttleRejected, listener);
    }
  });

  it('switches mode at run time, keeping its counts', async () => {
    const throttle = adaptiveThrottle({ mode: 'shadow', minRequests: 0, random: () => 0, clock: new ManualClock() });
    await outcomes(throttle, 3, false);
    expect(throttle.mode).toBe('shadow');
    throttle.mode = 'enforce';
    expect(throttle.window).toEqual({ requests: 3, accepts: 0 });
    expect(await rejection(capture(throttle.execute(ok)))).toBeInstanceOf(ThrottledError);
    expect(() => {
      throttle.mode = 'off' as never;
    }).toThrow(new TypeError('adaptiveThrottle: "mode" must be "enforce" or "shadow", got "off"'));
  });
});

describe('adaptiveThrottle: options', () => {
  it('has the documented defaults', () => {
    const throttle = adaptiveThrottle();
    expect(throttle).toMatchObject({ name: 'adaptive-throttle', kind: 'adaptive-throttle', k: 2, windowMs: 60_000, maxRejectionProbability: 0.9, minRequests: 200, mode: 'enforce' });
  });

  it.each([
    [{ k: 0.5 }, RangeError, 'adaptiveThrottle: option "k" must be at least 1, got 0.5'],
    [{ k: '2' }, TypeError, 'adaptiveThrottle: option "k" must be a number, got "2"'],
    [{ k: Infinity }, RangeError, 'adaptiveThrottle: option "k" must be a finite number, got Infinity'],
    [{ windowMs: 0 }, RangeError, 'adaptiveThrottle: option "windowMs" must be greater than 0 ms, got 0'],
    [{ windowMs: 2 ** 31 }, RangeError, 'adaptiveThrottle: option "windowMs" must be at most 2147483647 ms (2^31 − 1), got 2147483648'],
    [{ maxRejectionProbability: 1 }, RangeError, 'adaptiveThrottle: option "maxRejectionProbability" must be a number greater than 0 and less than 1, got 1'],
    [{ maxRejectionProbability: 0 }, RangeError, 'adaptiveThrottle: option "maxRejectionProbability" must be a number greater than 0 and less than 1, got 0'],
    [{ maxRejectionProbability: Number.NaN }, RangeError, 'adaptiveThrottle: option "maxRejectionProbability" must be a number greater than 0 and less than 1, got NaN'],
    [{ minRequests: -1 }, RangeError, 'adaptiveThrottle: option "minRequests" must be between 0 and 2147483647, got -1'],
    [{ minRequests: 1.5 }, RangeError, 'adaptiveThrottle: option "minRequests" must be a whole number, got 1.5'],
    [{ isAccepted: true }, TypeError, 'adaptiveThrottle: option "isAccepted" must be a function, got true'],
    [{ random: 0.5 }, TypeError, 'adaptiveThrottle: option "random" must be a function, got 0.5'],
    [{ mode: 'dry-run' }, TypeError, 'adaptiveThrottle: option "mode" must be "enforce" or "shadow", got "dry-run"'],
    [{ name: '' }, TypeError, 'adaptiveThrottle: option "name" must be a non-empty string, got ""'],
    [{ clock: {} }, TypeError, 'adaptiveThrottle: option "clock" must have now(), setTimeout() and clearTimeout(), got an object'],
    [{ K: 2 }, TypeError, 'adaptiveThrottle: unknown option "K" (known options: k, windowMs, maxRejectionProbability, minRequests, isAccepted, mode, random, name, clock)'],
  ])('rejects %o, naming the option and the value', (options, type, message) => {
    expect(() => adaptiveThrottle(options as never)).toThrow(new type(message));
  });
});
