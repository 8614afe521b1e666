import { afterEach, describe, expect, it, vi } from 'vitest';
import { EventEmitter, toDisposable } from '../../../src/index.js';
import { captureCallbackErrors } from '../../support/helpers.js';

afterEach(() => {
  vi.restoreAllMocks();
});

describe('EventEmitter', () => {
  it('calls every subscribed listener with the event, in subscription order', () => {
    const emitter = new EventEmitter<{ n: number }>();
    const calls: string[] = [];
    emitter.subscribe((e) => calls.push(`a${e.n}`));
    emitter.subscribe((e) => calls.push(`b${e.n}`));
    emitter.emit({ n: 1 });
    emitter.emit({ n: 2 });
    expect(calls).toEqual(['a1', 'b1', 'a2', 'b2']);
  });

  it('passes the very same event object to each listener', () => {
    const emitter = new EventEmitter<object>();
    const seen: object[] = [];
    emitter.subscribe((e) => seen.push(e));
    emitter.subscribe((e) => seen.push(e));
    const event = {};
    emitter.emit(event);
    expect(seen[0]).toBe(event);
    expect(seen[1]).toBe(event);
  });

  it('does nothing when emitting with no listeners', () => {
    expect(() => new EventEmitter<number>().emit(1)).not.toThrow();
  });

  it('stops calling a listener once its subscription is disposed', () => {
    const emitter = new EventEmitter<number>();
    const listener = vi.fn();
    const other = vi.fn();
    const sub = emitter.subscribe(listener);
    emitter.subscribe(other);
    emitter.emit(1);
    sub.dispose();
    emitter.emit(2);
    expect(listener).toHaveBeenCalledTimes(1);
    expect(listener).toHaveBeenCalledWith(1);
    expect(other).toHaveBeenCalledTimes(2);
  });

  it('is harmless to dispose a subscription twice', () => {
    const emitter = new EventEmitter<number>();
    const a = vi.fn();
    const b = vi.fn();
    const subA = emitter.subscribe(a);
    emitter.subscribe(b);
    subA.dispose();
    expect(() => subA.dispose()).not.toThrow();
    emitter.emit(1);
    expect(a).not.toHaveBeenCalled();
    expect(b).toHaveBeenCalledTimes(1);
  });

  it('disposes through Symbol.dispose as well', () => {
    const emitter = new EventEmitter<number>();
    const listener = vi.fn();
    const sub = emitter.subscribe(listener);
    expect(typeof sub[Symbol.dispose]).toBe('function');
    sub[Symbol.dispose]();
    emitter.emit(1);
    expect(listener).not.toHaveBeenCalled();
    expect(emitter.active).toBe(false);
    expect(() => sub.dispose()).not.toThrow();
  });

  it('reports active only while at least one listener is subscribed', () => {
    const emitter = new EventEmitter<number>();
    expect(emitter.active).toBe(false);
    const a = emitter.subscribe(() => {});
    const b = emitter.subscribe(() => {});
    expect(emitter.active).toBe(true);
    a.dispose();
    expect(emitter.active).toBe(true);
    b.dispose();
    expect(emitter.active).toBe(false);
  });

  it('keeps the other registration when the same function is subscribed twice and one is disposed (regression)', () => {
    const emitter = new EventEmitter<number>();
    const listener = vi.fn();
    const first = emitter.subscribe(listener);
    emitter.subscribe(listener);
    emitter.emit(1);
    expect(listener).toHaveBeenCalledTimes(2);
    first.dispose();
    first.dispose();
    expect(emitter.active).toBe(true);
    emitter.emit(2);
    expect(listener).toHaveBeenCalledTimes(3);
    expect(listener).toHaveBeenLastCalledWith(2);
  });

  it('calls a listener subscribed during an emit from the next emit on', () => {
    const emitter = new EventEmitter<number>();
    const late = vi.fn();
    emitter.subscribe(() => {
      if (!late.mock.calls.length) emitter.subscribe(late);
    });
    emitter.emit(1);
    expect(late).not.toHaveBeenCalled();
    emitter.emit(2);
    expect(late).toHaveBeenCalledWith(2);
  });

  it('lets a listener dispose itself while being called', () => {
    const emitter = new EventEmitter<number>();
    const calls: number[] = [];
    const sub = emitter.subscribe((n) => {
      calls.push(n);
      sub.dispose();
    });
    const after = vi.fn();
    emitter.subscribe(after);
    emitter.emit(1);
    emitter.emit(2);
    expect(calls).toEqual([1]);
    expect(after).toHaveBeenCalledTimes(2);
  });

  it('rejects a listener that is not a function with a TypeError', () => {
    const emitter = new EventEmitter<number>();
    expect(() => emitter.subscribe('nope' as unknown as () => void)).toThrow(TypeError);
    expect(() => emitter.subscribe(undefined as unknown as () => void)).toThrow('listener must be a function, got undefined');
    expect(emitter.active).toBe(false);
  });

  // Regression (issue 11, row C5): a throwing listener's error was rethrown on a microtask, an
  // uncaught exception that stops a server with no handler.
  it('keeps calling the other listeners when one throws, and reports its error on bulwark:callback:error', () => {
    const reports = captureCallbackErrors();
    const emitter = new EventEmitter<number>('orders-db');
    const boom = new Error('listener broke');
    const before = vi.fn();
    const after = vi.fn();
    emitter.subscribe(before);
    emitter.subscribe(() => {
      throw boom;
    });
    emitter.subscribe(after);
    expect(() => emitter.emit(7)).not.toThrow();
    expect(before).toHaveBeenCalledWith(7);
    expect(after).toHaveBeenCalledWith(7);
    expect(reports.messages).toEqual([{ policy: 'orders-db', callback: 'listener', error: boom }]);
    reports.stop();
  });

  it('reports the error of each throwing listener separately, naming the owner given as a function', () => {
    const reports = captureCallbackErrors();
    let name = 'before';
    const emitter = new EventEmitter<number>(() => name);
    emitter.subscribe(() => {
      throw new Error('first');
    });
    emitter.subscribe(() => {
      throw new Error('second');
    });
    name = 'payments';
    emitter.emit(1);
    expect(reports.messages.map((m) => [m.policy, (m.error as Error).message])).toEqual([
      ['payments', 'first'],
      ['payments', 'second'],
    ]);
    reports.stop();
  });

  it('with nobody subscribed, warns the process once per owner and callback, never throwing', () => {
    // Caught, not passed on: a passing run prints no warning.
    const spy = vi.spyOn(process, 'emitWarning').mockImplementation(() => {});
    try {
      const emitter = new EventEmitter<number>('warn-once-owner');
      emitter.subscribe(() => {
        throw new Error('again and again');
      });
      for (let i = 0; i < 5; i++) expect(() => emitter.emit(i)).not.toThrow();
      expect(spy).toHaveBeenCalledTimes(1);
      expect(String(spy.mock.calls[0]![0])).toContain('warn-once-owner: a listener threw (Error: again and again)');
      expect(spy.mock.calls[0]![1]).toEqual({ code: 'BULWARK_CALLBACK_ERROR' });
    } finally {
      spy.mockRestore();
    }
  });

  it('exposes subscribe as a bound function, so it can be handed out on its own', () => {
    const emitter = new EventEmitter<number>();
    const { subscribe } = emitter;
    const listener = vi.fn();
    subscribe(listener);
    emitter.emit(3);
    expect(listener).toHaveBeenCalledWith(3);
  });
});

describe('toDisposable', () => {
  it('runs the release function once however often it is disposed, by either method', () => {
    const release = vi.fn();
    const d = toDisposable(release);
    d.dispose();
    d.dispose();
    d[Symbol.dispose]();
    expect(release).toHaveBeenCalledTimes(1);
  });

  it('runs the release function when disposed only through Symbol.dispose', () => {
    const release = vi.fn();
    toDisposable(release)[Symbol.dispose]();
    expect(release).toHaveBeenCalledTimes(1);
  });
});
