import { describe, expect, it, vi } from 'vitest';
import {
  BrokenCircuitError,
  type FallbackEvent,
  fallback,
  FallbackPolicy,
  ManualClock,
  pipeline,
  timeout,
  TimeoutError,
} from '../../../src/index.js';
import { captureCallbackErrors, deferred, stateOf } from '../../support/helpers.js';

describe('fallback', () => {
  it('resolves with the function result when the call succeeds, without using the fallback', async () => {
    const policy = fallback('fallback');
    const seen: FallbackEvent[] = [];
    policy.onFallback((e) => seen.push(e));
    await expect(policy.execute(() => 'real')).resolves.toBe('real');
    await expect(policy.execute(async () => 'async real')).resolves.toBe('async real');
    expect(seen).toEqual([]);
  });

  it('replaces a handled error with the value', async () => {
    await expect(fallback('cached').execute(() => Promise.reject(new Error('down')))).resolves.toBe('cached');
  });

  it('replaces a synchronous throw with the value', async () => {
    const result = await fallback(0).execute((): number => {
      throw new Error('sync');
    });
    expect(result).toBe(0);
  });

  it('replaces a rejection with a non-Error reason', async () => {
    await expect(fallback('v').execute(() => Promise.reject('just a string'))).resolves.toBe('v');
    await expect(fallback('v').execute(() => Promise.reject(undefined))).resolves.toBe('v');
  });

  it('uses falsy values such as undefined, null, 0 and the empty string as they are', async () => {
    for (const value of [undefined, null, 0, '', false]) {
      await expect(fallback(value).execute(() => Promise.reject(new Error('x')))).resolves.toBe(value);
    }
  });

  it('replaces a handled error with what a synchronous fallback function returns for it', async () => {
    const error = new Error('down');
    const make = vi.fn((e: unknown) => `replaced ${(e as Error).message}`);
    await expect(fallback(make).execute(() => Promise.reject(error))).resolves.toBe('replaced down');
    expect(make).toHaveBeenCalledTimes(1);
    expect(make).toHaveBeenCalledWith(error);
  });

  it('replaces a handled error with what an async fallback function resolves to', async () => {
    const gate = deferred<string>();
    const call = fallback(() => gate.promise).execute(() => Promise.reject(new Error('down')));
    expect(await stateOf(call)).toBe('pending');
    gate.resolve('from cache');
    await expect(call).resolves.toBe('from cache');
  });

  it('does not call the fallback function when the call succeeds', async () => {
    const make = vi.fn(() => 'fallback');
    await fallback(make).execute(() => 'ok');
    expect(make).not.toHaveBeenCalled();
  });

  it('falls back to a function value when it is wrapped in another function', async () => {
    const fn = (): string => 'I am the value';
    const result = await fallback(() => fn).execute((): (() => string) => {
      throw new Error('x');
    });
    expect(result).toBe(fn);
  });

  it('rejects with the error thrown by a synchronous fallback function', async () => {
    const fallbackError = new Error('cache also down');
    const policy = fallback(() => {
      throw fallbackError;
    });
    await expect(policy.execute(() => Promise.reject(new Error('down')))).rejects.toBe(fallbackError);
  });

  it('rejects with the rejection of an async fallback function', async () => {
    const fallbackError = new Error('cache rejected');
    const policy = fallback(async () => {
      throw fallbackError;
    });
    await expect(policy.execute(() => Promise.reject(new Error('down')))).rejects.toBe(fallbackError);
  });

  it('passes through errors that handle does not accept, untouched', async () => {
    const handle = vi.fn((e: unknown) => e instanceof TypeError);
    const policy = fallback('v', { handle });
    const other = new RangeError('not handled');
    await expect(policy.execute(() => Promise.reject(other))).rejects.toBe(other);
    await expect(policy.execute(() => Promise.reject(new TypeError('handled')))).resolves.toBe('v');
    expect(handle).toHaveBeenCalledTimes(2);
    expect(handle).toHaveBeenNthCalledWith(1, other);
  });

  it('rejects with the error thrown by handle itself', async () => {
    const handleError = new Error('handle broke');
    const policy = fallback('v', {
      handle: () => {
        throw handleError;
      },
    });
    await expect(policy.execute(() => Promise.reject(new Error('down')))).rejects.toBe(handleError);
  });

  it('passes an AbortError through by default', async () => {
    const policy = fallback('v');
    const abort = new DOMException('The operation was aborted', 'AbortError');
    await expect(policy.execute(() => Promise.reject(abort))).rejects.toBe(abort);
    const plainAbort = Object.assign(new Error('aborted'), { name: 'AbortError' });
    await expect(policy.execute(() => Promise.reject(plainAbort))).rejects.toBe(plainAbort);
  });

  it("passes the caller's abort reason through when it is an AbortError", async () => {
    const controller = new AbortController();
    const call = fallback('v').execute(
      ({ signal }) => new Promise<never>((_, reject) => signal.addEventListener('abort', () => reject(signal.reason))),
      { signal: controller.signal },
    );
    controller.abort();
    const err = await call.catch((e: unknown) => e);
    expect(err).toMatchObject({ name: 'AbortError' });
  });

  it('replaces an AbortError when a custom handle accepts it', async () => {
    const policy = fallback('v', { handle: () => true });
    await expect(
      policy.execute(() => Promise.reject(new DOMException('aborted', 'AbortError'))),
    ).resolves.toBe('v');
  });

  it("replaces bulwark's own errors by default, such as a TimeoutError or a BrokenCircuitError", async () => {
    const clock = new ManualClock();
    const p = pipeline(fallback('late'), timeout(10, { clock }));
    const call = p.execute(() => new Promise<string>(() => {}));
    await clock.advance(10);
    await expect(call).resolves.toBe('late');
    await expect(fallback('open').execute(() => Promise.reject(new BrokenCircuitError(5)))).resolves.toBe('open');
  });

  it('emits onFallback with the policy name and the error each time it is used', async () => {
    const policy = fallback('v', { name: 'prices' });
    const events: FallbackEvent[] = [];
    policy.onFallback((e) => events.push(e));
    const error = new Error('down');
    await policy.execute(() => Promise.reject(error));
    await policy.execute(() => Promise.reject('second'));
    expect(events).toEqual([
      { policy: 'prices', error },
      { policy: 'prices', error: 'second' },
    ]);
  });

  it('emits onFallback before calling the fallback function', async () => {
    const order: string[] = [];
    const policy = fallback(() => {
      order.push('fallback fn');
      return 1;
    });
    policy.onFallback(() => order.push('event'));
    await policy.execute(() => Promise.reject(new Error('x')));
    expect(order).toEqual(['event', 'fallback fn']);
  });

  // Audit (issue 12): a listener has no call of its own to reject: its throw is reported, and the
  // call still resolves with the fallback value.
  it('an onFallback listener that throws is reported, and the call still resolves with the fallback', async () => {
    const bug = new Error('listener bug');
    const policy = fallback('v', { name: 'prices' });
    policy.onFallback(() => {
      throw bug;
    });
    const reports = captureCallbackErrors();
    await expect(policy.execute(() => Promise.reject(new Error('x')))).resolves.toBe('v');
    reports.stop();
    expect(reports.messages).toEqual([{ policy: 'prices', callback: 'listener', error: bug }]);
  });

  it('does not emit onFallback for an error it passes through', async () => {
    const policy = fallback('v', { handle: () => false });
    const listener = vi.fn();
    policy.onFallback(listener);
    await expect(policy.execute(() => Promise.reject(new Error('x')))).rejects.toThrow('x');
    expect(listener).not.toHaveBeenCalled();
  });

  it('stops emitting to a listener once its subscription is disposed', async () => {
    const policy = fallback('v');
    const listener = vi.fn();
    const sub = policy.onFallback(listener);
    await policy.execute(() => Promise.reject(new Error('1')));
    sub.dispose();
    await policy.execute(() => Promise.reject(new Error('2')));
    expect(listener).toHaveBeenCalledTimes(1);
  });

  it("uses the default name 'fallback' and reports its kind", async () => {
    const policy = fallback('v');
    expect(policy).toBeInstanceOf(FallbackPolicy);
    expect(policy.name).toBe('fallback');
    expect(policy.kind).toBe('fallback');
    const events: FallbackEvent[] = [];
    policy.onFallback((e) => events.push(e));
    await policy.execute(() => Promise.reject(new Error('x')));
    expect(events[0]?.policy).toBe('fallback');
  });

  it("passes the function the context with the caller's signal and attempt 1", async () => {
    const controller = new AbortController();
    let seen: { signal: AbortSignal; attempt: number } | undefined;
    await fallback('v').execute(
      ({ signal, attempt }) => {
        seen = { signal, attempt };
      },
      { signal: controller.signal },
    );
    expect(seen).toEqual({ signal: controller.signal, attempt: 1 });
  });

  it('rejects a non-function fn with a TypeError', async () => {
    await expect(fallback('v').execute('nope' as unknown as () => string)).rejects.toThrow(TypeError);
  });

  it('replaces a TimeoutError and still runs every time (no state between calls)', async () => {
    const policy = fallback('v');
    for (let i = 0; i < 3; i++) {
      await expect(policy.execute(() => Promise.reject(new TimeoutError(10)))).resolves.toBe('v');
    }
    await expect(policy.execute(() => 'ok')).resolves.toBe('ok');
  });
});
