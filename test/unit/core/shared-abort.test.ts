import { describe, expect, it } from 'vitest';
import { abortHandlerCount, offAbort, onAbort } from '../../../src/core/shared-abort.js';
import { abortListeners } from '../../support/helpers.js';

describe('shared abort listener', () => {
  it('adds one listener with the first handler and removes it with the last', () => {
    const controller = new AbortController();
    const a = (): void => {};
    const b = (): void => {};
    onAbort(controller.signal, a);
    onAbort(controller.signal, b);
    expect(abortListeners(controller.signal)).toBe(1);
    expect(abortHandlerCount(controller.signal)).toBe(2);
    offAbort(controller.signal, a);
    expect(abortListeners(controller.signal)).toBe(1);
    offAbort(controller.signal, b);
    expect(abortListeners(controller.signal)).toBe(0);
    offAbort(controller.signal, b);
    expect(abortHandlerCount(controller.signal)).toBe(0);
  });

  it('calls every handler once on abort, even when one removes another while they run', () => {
    const controller = new AbortController();
    const seen: string[] = [];
    const second = (): void => {
      seen.push('second');
    };
    onAbort(controller.signal, () => {
      seen.push('first');
      offAbort(controller.signal, second);
    });
    onAbort(controller.signal, second);
    onAbort(controller.signal, () => seen.push('third'));
    controller.abort();
    expect(seen).toEqual(['first', 'third']);
    expect(abortListeners(controller.signal)).toBe(0);
    expect(abortHandlerCount(controller.signal)).toBe(0);
  });

  it('keeps the signals of different callers apart', () => {
    const one = new AbortController();
    const two = new AbortController();
    let calls = 0;
    onAbort(one.signal, () => calls++);
    onAbort(two.signal, () => (calls += 10));
    one.abort();
    expect(calls).toBe(1);
    expect(abortListeners(two.signal)).toBe(1);
    two.abort();
    expect(calls).toBe(11);
  });
});
