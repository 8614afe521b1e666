import { afterEach, describe, expect, it, vi } from 'vitest';
import { AbortableContext, AttemptContext, RootContext } from '../../../src/core/context.js';
import { bulkhead, type ExecutionContext, ManualClock, pipeline, type Policy, timeout } from '../../../src/index.js';
import { abortListeners, countAbortControllers } from '../../support/helpers.js';

afterEach(() => {
  vi.unstubAllGlobals();
});

describe('RootContext', () => {
  it('is attempt 1', () => {
    expect(new RootContext(undefined).attempt).toBe(1);
  });

  it('hands out the caller signal itself when one is given', () => {
    const caller = new AbortController();
    const ctx = new RootContext(caller.signal);
    expect(ctx.signal).toBe(caller.signal);
    expect(ctx.abortable()).toBe(caller.signal);
  });

  it('has nothing to abort it without a caller signal, and makes a signal only when read', () => {
    const counter = countAbortControllers();
    const ctx = new RootContext(undefined);
    expect(ctx.abortable()).toBeUndefined();
    expect(counter.count).toBe(0);
    const signal = ctx.signal;
    expect(counter.count).toBe(1);
    expect(ctx.signal).toBe(signal);
    expect(counter.count).toBe(1);
    expect(signal.aborted).toBe(false);
  });
});

describe('AttemptContext', () => {
  it('carries its own attempt number and its parent signal', () => {
    const caller = new AbortController();
    const root = new RootContext(caller.signal);
    const ctx = new AttemptContext(root, 3);
    expect(ctx.attempt).toBe(3);
    expect(ctx.signal).toBe(caller.signal);
    expect(ctx.abortable()).toBe(caller.signal);
  });

  it('has nothing to abort it when its parent has nothing', () => {
    expect(new AttemptContext(new RootContext(undefined), 2).abortable()).toBeUndefined();
  });
});

describe('AbortableContext', () => {
  it('takes the attempt number of its parent', () => {
    expect(new AbortableContext(new AttemptContext(new RootContext(undefined), 4)).attempt).toBe(4);
  });

  it('makes no AbortController until its signal is read', () => {
    const caller = new AbortController();
    const counter = countAbortControllers();
    const ctx = new AbortableContext(new RootContext(caller.signal));
    ctx.abort('early');
    ctx.release();
    expect(counter.count).toBe(0);
    expect(ctx.signal.reason).toBe('early');
    expect(counter.count).toBe(1);
  });

  it('applies an abort made before the first read at that read', () => {
    const ctx = new AbortableContext(new RootContext(undefined));
    const reason = new Error('early');
    ctx.abort(reason);
    expect(ctx.aborted).toBe(true);
    expect(ctx.signal.aborted).toBe(true);
    expect(ctx.signal.reason).toBe(reason);
  });

  it('aborts its signal at once when it has already been read', () => {
    const ctx = new AbortableContext(new RootContext(undefined));
    const signal = ctx.signal;
    const seen: unknown[] = [];
    signal.addEventListener('abort', () => seen.push(signal.reason));
    ctx.abort('now');
    expect(seen).toEqual(['now']);
    expect(ctx.aborted).toBe(true);
  });

  it('keeps the first reason when aborted twice', () => {
    const before = new AbortableContext(new RootContext(undefined));
    before.abort('first');
    before.abort('second');
    expect(before.signal.reason).toBe('first');

    const after = new AbortableContext(new RootContext(undefined));
    void after.signal;
    after.abort('first');
    after.abort('second');
    expect(after.signal.reason).toBe('first');
  });

  it('returns its own signal from abortable()', () => {
    const ctx = new AbortableContext(new RootContext(undefined));
    expect(ctx.abortable()).toBe(ctx.signal);
  });

  it('follows its parent signal once read, with the parent reason', () => {
    const caller = new AbortController();
    const ctx = new AbortableContext(new RootContext(caller.signal));
    const signal = ctx.signal;
    expect(abortListeners(caller.signal)).toBe(1);
    caller.abort('parent reason');
    expect(signal.aborted).toBe(true);
    expect(signal.reason).toBe('parent reason');
    expect(abortListeners(caller.signal)).toBe(0);
  });

  it('hands out an aborted signal when the parent aborted before the first read', () => {
    const caller = new AbortController();
    const ctx = new AbortableContext(new RootContext(caller.signal));
    caller.abort('gone');
    expect(ctx.signal.aborted).toBe(true);
    expect(ctx.signal.reason).toBe('gone');
    expect(abortListeners(caller.signal)).toBe(0);
  });

  it('reports the parent reason when the parent aborted before an unread context was aborted', () => {
    // Regression: the later, policy-made reason used to win because the signal had not been read.
    const caller = new AbortController();
    const ctx = new AbortableContext(new RootContext(caller.signal));
    caller.abort('caller first');
    ctx.abort('deadline later');
    expect(ctx.signal.reason).toBe('caller first');
  });

  it('reports its own reason when it was aborted before its parent', () => {
    const caller = new AbortController();
    const ctx = new AbortableContext(new RootContext(caller.signal));
    ctx.abort('mine first');
    caller.abort('parent later');
    expect(ctx.signal.reason).toBe('mine first');
    expect(abortListeners(caller.signal)).toBe(0);
  });

  it('stops following its parent once released', () => {
    const caller = new AbortController();
    const ctx = new AbortableContext(new RootContext(caller.signal));
    const signal = ctx.signal;
    ctx.release();
    expect(abortListeners(caller.signal)).toBe(0);
    caller.abort('after release');
    expect(signal.aborted).toBe(false);
  });

  it('attaches nothing to its parent when first read after release', () => {
    const caller = new AbortController();
    const ctx = new AbortableContext(new RootContext(caller.signal));
    ctx.release();
    const signal = ctx.signal;
    expect(abortListeners(caller.signal)).toBe(0);
    expect(signal.aborted).toBe(false);
  });

  it('detaches from its parent when aborted by its owner', () => {
    const caller = new AbortController();
    const ctx = new AbortableContext(new RootContext(caller.signal));
    void ctx.signal;
    expect(abortListeners(caller.signal)).toBe(1);
    ctx.abort('owner');
    expect(abortListeners(caller.signal)).toBe(0);
  });

  it('propagates an abort down a chain of contexts, each with the top reason', () => {
    const caller = new AbortController();
    const outer = new AbortableContext(new RootContext(caller.signal));
    const inner = new AbortableContext(outer);
    const counter = countAbortControllers();
    const innerSignal = inner.signal; // the outer follows the caller for it, without a signal of its own
    expect(counter.count).toBe(1);
    expect(abortListeners(caller.signal)).toBe(1);
    caller.abort('top');
    expect(innerSignal.reason).toBe('top');
    expect(outer.signal.reason).toBe('top');
    expect(abortListeners(caller.signal)).toBe(0);
  });

  it('follows an outer context through a retry attempt without making its signal, and passes its abort on', () => {
    const outer = new AbortableContext(new RootContext(undefined));
    const inner = new AbortableContext(new AttemptContext(outer, 2));
    const counter = countAbortControllers();
    const innerSignal = inner.signal;
    expect(counter.count).toBe(1);
    expect(outer.aborted).toBe(false);
    outer.abort('outer');
    expect(innerSignal.reason).toBe('outer');
    expect(outer.signal.reason).toBe('outer');
  });

  it('stops following an outer context once released', () => {
    const outer = new AbortableContext(new RootContext(undefined));
    const inner = new AbortableContext(outer);
    const innerSignal = inner.signal;
    inner.release();
    outer.abort('outer');
    expect(innerSignal.aborted).toBe(false);
  });

  it('takes the reason of an unread outer context whose caller aborted, when aborted itself before being read', () => {
    const caller = new AbortController();
    const outer = new AbortableContext(new RootContext(caller.signal));
    const inner = new AbortableContext(outer);
    caller.abort('top');
    inner.abort('own');
    expect(inner.signal.reason).toBe('top');
  });

  it('aborts an inner context read after its unread outer context was aborted', () => {
    const outer = new AbortableContext(new RootContext(undefined));
    const inner = new AbortableContext(outer);
    outer.abort('outer');
    expect(inner.signal.aborted).toBe(true);
    expect(inner.signal.reason).toBe('outer');
  });

  it('is not aborted before anything happens', () => {
    const ctx = new AbortableContext(new RootContext(undefined));
    expect(ctx.aborted).toBe(false);
    void ctx.signal;
    expect(ctx.aborted).toBe(false);
  });
});

const policies: [string, () => Policy][] = [
  ['timeout', () => timeout(1_000, { clock: new ManualClock() })],
  ['bulkhead', () => bulkhead()],
  ['pipeline', () => pipeline(bulkhead(), timeout(1_000, { clock: new ManualClock() }))],
];

describe.each(policies)('execute() of %s', (_name, make) => {
  it('hands fn attempt 1 at the top level', async () => {
    expect(await make().execute((ctx) => ctx.attempt)).toBe(1);
  });

  it('hands fn a signal that is not aborted', async () => {
    const signal = await make().execute((ctx) => ctx.signal);
    expect(signal).toBeInstanceOf(AbortSignal);
    expect(signal.aborted).toBe(false);
  });

  it('rejects with signal.reason, without calling fn, when the signal is already aborted', async () => {
    const fn = vi.fn(() => 'ran');
    const reason = new Error('aborted before the call');
    await expect(make().execute(fn, { signal: AbortSignal.abort(reason) })).rejects.toBe(reason);
    expect(fn).not.toHaveBeenCalled();
  });

  it('rejects with the default AbortError reason of a signal aborted without one', async () => {
    const controller = new AbortController();
    controller.abort();
    const error = await make()
      .execute(() => 'ran', { signal: controller.signal })
      .catch((e: unknown) => e);
    expect(error).toBe(controller.signal.reason);
    expect((error as DOMException).name).toBe('AbortError');
  });

  it.each([
    { label: 'undefined', value: undefined, shown: 'undefined' },
    { label: 'null', value: null, shown: 'null' },
    { label: 'a string', value: 'fn', shown: '"fn"' },
    { label: 'a number', value: 42, shown: '42' },
    { label: 'an object', value: { call: () => 1 }, shown: 'an object' },
    { label: 'a promise', value: Promise.resolve(1), shown: 'an object' },
  ])('rejects with a TypeError when fn is $label', async ({ value, shown }) => {
    const error = await make()
      .execute(value as never)
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(TypeError);
    expect((error as Error).message).toContain('fn');
    expect((error as Error).message).toContain(shown);
  });

  it.each([
    { label: 'null', value: null, shown: 'null' },
    { label: 'a string', value: 'signal', shown: '"signal"' },
    { label: 'a number', value: 5, shown: '5' },
    { label: 'a boolean', value: true, shown: 'true' },
    { label: 'a function', value: () => ({}), shown: 'a function' },
  ])('rejects with a TypeError when options is $label', async ({ value, shown }) => {
    const fn = vi.fn(() => 'ran');
    const error = await make()
      .execute(fn, value as never)
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(TypeError);
    expect((error as Error).message).toContain('options');
    expect((error as Error).message).toContain(shown);
    expect(fn).not.toHaveBeenCalled();
  });

  it.each([
    { label: 'null', value: null, shown: 'null' },
    { label: 'a string', value: 'abort', shown: '"abort"' },
    { label: 'an AbortController', value: new AbortController(), shown: 'an object' },
    { label: 'a look-alike object', value: { aborted: false, addEventListener() {} }, shown: 'an object' },
    { label: 'a number', value: 0, shown: '0' },
  ])('rejects with a TypeError when signal is $label', async ({ value, shown }) => {
    const fn = vi.fn(() => 'ran');
    const error = await make()
      .execute(fn, { signal: value as never })
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(TypeError);
    expect((error as Error).message).toContain('"signal"');
    expect((error as Error).message).toContain(shown);
    expect(fn).not.toHaveBeenCalled();
  });

  it.each([
    { label: 'no options', options: undefined },
    { label: 'empty options', options: {} },
    { label: 'an undefined signal', options: { signal: undefined } },
  ])('runs fn with $label', async ({ options }) => {
    expect(await make().execute(() => 'ran', options)).toBe('ran');
  });
});

describe('ExecutionContext through policies', () => {
  it('is the caller signal itself under a bulkhead', async () => {
    const caller = new AbortController();
    const seen = await bulkhead().execute((ctx: ExecutionContext) => ctx.signal, { signal: caller.signal });
    expect(seen).toBe(caller.signal);
  });

  it('follows the caller signal under a timeout while the call runs, then lets go', async () => {
    const caller = new AbortController();
    const clock = new ManualClock();
    let during = 0;
    const signal = await timeout(1_000, { clock }).execute(
      (ctx) => {
        const s = ctx.signal;
        during = abortListeners(caller.signal);
        return s;
      },
      { signal: caller.signal },
    );
    expect(during).toBe(1);
    expect(abortListeners(caller.signal)).toBe(0);
    expect(signal.aborted).toBe(false);
  });

  it('is made lazily: a bulkhead call that never reads the signal creates no AbortController', async () => {
    const counter = countAbortControllers();
    await bulkhead().execute(() => 'x');
    expect(counter.count).toBe(0);
  });
});
