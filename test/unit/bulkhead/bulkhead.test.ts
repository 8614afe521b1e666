import { subscribe, unsubscribe } from 'node:diagnostics_channel';
import { describe, expect, it, vi } from 'vitest';
import {
  bulkhead,
  BulkheadRejectedError,
  type BulkheadRejectedEvent,
  channelNames,
  isBulwarkError,
  ManualClock,
  pipeline,
  timeout,
  TimeoutError,
} from '../../../src/index.js';
import { runSymbol } from '../../../src/core/policy.js';
import { RootContext } from '../../../src/core/context.js';
import { abortHandlerCount } from '../../../src/core/shared-abort.js';
import { abortListeners, capture, deferred, flush, rejection, stateOf, status } from '../../support/helpers.js';

/** A job whose start is recorded and whose end is controlled by the test. */
function gatedJobs(): {
  started: string[];
  job: (id: string) => () => Promise<string>;
  finish: (id: string) => void;
  fail: (id: string, error: unknown) => void;
} {
  const started: string[] = [];
  const gates = new Map<string, ReturnType<typeof deferred<string>>>();
  const gate = (id: string): ReturnType<typeof deferred<string>> => {
    let d = gates.get(id);
    if (d === undefined) gates.set(id, (d = deferred<string>()));
    return d;
  };
  return {
    started,
    job: (id) => () => {
      started.push(id);
      return gate(id).promise;
    },
    finish: (id) => gate(id).resolve(id),
    fail: (id, error) => gate(id).reject(error),
  };
}

describe('bulkhead', () => {
  it('defaults to 10 concurrent calls and no queue', () => {
    const pool = bulkhead();
    expect(pool.maxConcurrent).toBe(10);
    expect(pool.maxQueue).toBe(0);
    expect(pool.name).toBe('bulkhead');
    expect(pool.kind).toBe('bulkhead');
    expect(pool.active).toBe(0);
    expect(pool.queued).toBe(0);
  });

  it('runs up to maxConcurrent calls at once and queues the rest', async () => {
    const pool = bulkhead({ maxConcurrent: 2, maxQueue: 3 });
    const { started, job, finish } = gatedJobs();
    const calls = ['a', 'b', 'c', 'd'].map((id) => capture(pool.execute(job(id))));
    expect(started).toEqual(['a', 'b']);
    expect(pool.active).toBe(2);
    expect(pool.queued).toBe(2);
    finish('a');
    await stateOf(calls[0]!);
    expect(started).toEqual(['a', 'b', 'c']);
    expect(pool.active).toBe(2);
    expect(pool.queued).toBe(1);
    for (const id of ['b', 'c', 'd']) finish(id);
    expect(await Promise.all(calls)).toEqual(['a', 'b', 'c', 'd'].map((value) => ({ ok: true, value })));
    expect(pool.active).toBe(0);
    expect(pool.queued).toBe(0);
  });

  it('starts queued callers in the order they arrived', async () => {
    const pool = bulkhead({ maxConcurrent: 1, maxQueue: 5 });
    const { started, job, finish } = gatedJobs();
    const ids = ['first', 'q1', 'q2', 'q3', 'q4', 'q5'];
    const calls = ids.map((id) => capture(pool.execute(job(id))));
    expect(pool.queued).toBe(5);
    for (const id of ids) {
      expect(started.at(-1)).toBe(id);
      finish(id);
      await stateOf(calls[ids.indexOf(id)]!);
    }
    expect(started).toEqual(ids);
    expect((await Promise.all(calls)).every((o) => o.ok)).toBe(true);
  });

  it('rejects at once with BulkheadRejectedError, without calling fn, when slots and queue are full', async () => {
    const pool = bulkhead({ maxConcurrent: 2, maxQueue: 1 });
    const { job, finish } = gatedJobs();
    const calls = ['a', 'b', 'c'].map((id) => capture(pool.execute(job(id))));
    const fn = vi.fn(() => 'never');
    const error = await rejection(capture(pool.execute(fn)));
    expect(fn).not.toHaveBeenCalled();
    expect(error).toBeInstanceOf(BulkheadRejectedError);
    expect(error).toMatchObject({
      name: 'BulkheadRejectedError',
      code: 'ERR_BULWARK_BULKHEAD_REJECTED',
      active: 2,
      queued: 1,
    });
    expect((error as Error).message).toBe('Bulkhead is full (2 running, 1 queued)');
    expect(isBulwarkError(error, 'ERR_BULWARK_BULKHEAD_REJECTED')).toBe(true);
    expect(pool.queued).toBe(1);
    ['a', 'b', 'c'].forEach(finish);
    await Promise.all(calls);
  });

  it('rejects at once when full and maxQueue is 0', async () => {
    const pool = bulkhead({ maxConcurrent: 1, maxQueue: 0 });
    const { job, finish } = gatedJobs();
    const running = capture(pool.execute(job('a')));
    const error = await rejection(capture(pool.execute(() => 'b')));
    expect(error).toBeInstanceOf(BulkheadRejectedError);
    expect(error).toMatchObject({ active: 1, queued: 0 });
    expect(pool.queued).toBe(0);
    finish('a');
    await running;
    // The slot is free again.
    expect(await pool.execute(() => 'c')).toBe('c');
  });

  it('emits onRejected with the policy name and counts for each rejection, and stops after dispose', async () => {
    const pool = bulkhead({ maxConcurrent: 1, maxQueue: 1, name: 'reports' });
    const events: BulkheadRejectedEvent[] = [];
    const sub = pool.onRejected((e) => events.push(e));
    const { job, finish } = gatedJobs();
    const calls = [capture(pool.execute(job('a'))), capture(pool.execute(job('b')))];
    await rejection(capture(pool.execute(() => 'x')));
    await rejection(capture(pool.execute(() => 'y')));
    expect(events).toEqual([
      { policy: 'reports', active: 1, queued: 1, mode: 'enforce' },
      { policy: 'reports', active: 1, queued: 1, mode: 'enforce' },
    ]);
    sub.dispose();
    await rejection(capture(pool.execute(() => 'z')));
    expect(events).toHaveLength(2);
    finish('a');
    finish('b');
    await Promise.all(calls);
  });

  it('publishes rejections on the bulwark:bulkhead:rejected channel', async () => {
    const pool = bulkhead({ maxConcurrent: 1, name: 'chan' });
    const seen: unknown[] = [];
    const onMessage = (message: unknown): void => {
      seen.push(message);
    };
    subscribe(channelNames.bulkheadRejected, onMessage);
    try {
      const { job, finish } = gatedJobs();
      const running = capture(pool.execute(job('a')));
      await rejection(capture(pool.execute(() => 'b')));
      finish('a');
      await running;
    } finally {
      unsubscribe(channelNames.bulkheadRejected, onMessage);
    }
    expect(seen).toEqual([{ policy: 'chan', active: 1, queued: 0, mode: 'enforce' }]);
  });

  it('emits no rejection event for calls that run or queue', async () => {
    const pool = bulkhead({ maxConcurrent: 1, maxQueue: 1 });
    const listener = vi.fn();
    pool.onRejected(listener);
    const { job, finish } = gatedJobs();
    const calls = [capture(pool.execute(job('a'))), capture(pool.execute(job('b')))];
    finish('a');
    finish('b');
    await Promise.all(calls);
    expect(listener).not.toHaveBeenCalled();
  });

  it('frees the slot of a call whose fn rejects, so the next queued caller runs', async () => {
    const pool = bulkhead({ maxConcurrent: 1, maxQueue: 1 });
    const { started, job, fail, finish } = gatedJobs();
    const first = capture(pool.execute(job('a')));
    const second = capture(pool.execute(job('b')));
    const boom = new Error('boom');
    fail('a', boom);
    expect(await rejection(first)).toBe(boom);
    expect(started).toEqual(['a', 'b']);
    finish('b');
    expect(await second).toEqual({ ok: true, value: 'b' });
    expect(pool.active).toBe(0);
  });

  it('frees the slot of a call whose fn throws synchronously', async () => {
    const pool = bulkhead({ maxConcurrent: 1 });
    const boom = new Error('sync');
    await expect(
      pool.execute(() => {
        throw boom;
      }),
    ).rejects.toBe(boom);
    expect(pool.active).toBe(0);
    expect(await pool.execute(() => 'next')).toBe('next');
  });

  it('hands a queued fn the context of its caller', async () => {
    const pool = bulkhead({ maxConcurrent: 1, maxQueue: 1 });
    const { job, finish } = gatedJobs();
    const caller = new AbortController();
    const first = capture(pool.execute(job('a')));
    const second = pool.execute((ctx) => ({ signal: ctx.signal, attempt: ctx.attempt }), { signal: caller.signal });
    finish('a');
    await first;
    const seen = await second;
    expect(seen.signal).toBe(caller.signal);
    expect(seen.attempt).toBe(1);
  });

  describe('aborted waiters', () => {
    it('leave the queue at once and reject with the reason of their signal', async () => {
      const pool = bulkhead({ maxConcurrent: 1, maxQueue: 3 });
      const { started, job, finish } = gatedJobs();
      const running = capture(pool.execute(job('a')));
      const callers = [new AbortController(), new AbortController(), new AbortController()];
      const waiting = ['b', 'c', 'd'].map((id, i) =>
        capture(pool.execute(job(id), { signal: callers[i]!.signal })),
      );
      expect(pool.queued).toBe(3);
      const reason = new Error('caller left');
      callers[1]!.abort(reason);
      expect(pool.queued).toBe(2);
      expect(await rejection(waiting[1]!)).toBe(reason);
      expect(abortListeners(callers[1]!.signal)).toBe(0);

      finish('a');
      await running;
      expect(started).toEqual(['a', 'b']);
      finish('b');
      await waiting[0];
      expect(started).toEqual(['a', 'b', 'd']);
      finish('d');
      expect(await waiting[2]).toEqual({ ok: true, value: 'd' });
      expect(started).not.toContain('c');
      expect(pool.queued).toBe(0);
      expect(pool.active).toBe(0);
    });

    it('leave the queue from the head and from the tail without losing the others', async () => {
      const pool = bulkhead({ maxConcurrent: 1, maxQueue: 4 });
      const { started, job, finish } = gatedJobs();
      const running = capture(pool.execute(job('run')));
      const ids = ['h', 'm', 't'];
      const controllers = ids.map(() => new AbortController());
      const waiting = ids.map((id, i) => capture(pool.execute(job(id), { signal: controllers[i]!.signal })));
      controllers[0]!.abort('head');
      controllers[2]!.abort('tail');
      expect(pool.queued).toBe(1);
      expect(await rejection(waiting[0]!)).toBe('head');
      expect(await rejection(waiting[2]!)).toBe('tail');
      // A newcomer queues behind the remaining waiter.
      const late = capture(pool.execute(job('late')));
      expect(pool.queued).toBe(2);
      finish('run');
      await running;
      finish('m');
      await waiting[1];
      finish('late');
      await late;
      expect(started).toEqual(['run', 'm', 'late']);
    });

    it('remove their abort listener once they start', async () => {
      const pool = bulkhead({ maxConcurrent: 1, maxQueue: 1 });
      const { job, finish } = gatedJobs();
      const caller = new AbortController();
      const running = capture(pool.execute(job('a')));
      const queued = capture(pool.execute(job('b'), { signal: caller.signal }));
      // The queue's own handler, and execute()'s (which rejects at once on abort), behind the
      // signal's one shared listener.
      expect(abortListeners(caller.signal)).toBe(1);
      expect(abortHandlerCount(caller.signal)).toBe(2);
      finish('a');
      await running;
      expect(abortHandlerCount(caller.signal)).toBe(1);
      // Aborting now no longer touches the queue (the call is running): the caller gets its
      // reason at once, and the slot stays taken until the work itself ends.
      caller.abort('late');
      expect(pool.queued).toBe(0);
      expect(pool.active).toBe(1);
      expect(await queued).toEqual({ ok: false, error: 'late' });
      finish('b');
      await flush();
      expect(pool.active).toBe(0);
      expect(abortListeners(caller.signal)).toBe(0);
    });

    it('is rejected without queueing when the signal is already aborted', async () => {
      const pool = bulkhead({ maxConcurrent: 1, maxQueue: 2 });
      const { job, finish } = gatedJobs();
      const running = capture(pool.execute(job('a')));
      const caller = new AbortController();
      caller.abort('already');
      const fn = vi.fn(() => 'x');
      expect(await rejection(capture(pool.execute(fn, { signal: caller.signal })))).toBe('already');
      expect(pool.queued).toBe(0);
      expect(fn).not.toHaveBeenCalled();
      // The queue's own guard, reached without the check that execute() makes first.
      const direct = capture(pool[runSymbol](fn, new RootContext(caller.signal)));
      expect(pool.queued).toBe(0);
      expect(await rejection(direct)).toBe('already');
      expect(fn).not.toHaveBeenCalled();
      expect(abortListeners(caller.signal)).toBe(0);
      finish('a');
      await running;
    });

    it('is rejected without running when the signal is already aborted and a slot is free', async () => {
      const pool = bulkhead({ maxConcurrent: 1 });
      const fn = vi.fn(() => 'x');
      await expect(pool.execute(fn, { signal: AbortSignal.abort('gone') })).rejects.toBe('gone');
      expect(fn).not.toHaveBeenCalled();
      expect(pool.active).toBe(0);
    });
  });

  describe('with timeouts', () => {
    it('drops a queued caller from the queue when an outer timeout expires', async () => {
      const clock = new ManualClock();
      const pool = bulkhead({ maxConcurrent: 1, maxQueue: 2 });
      const policy = pipeline(timeout(50, { clock }), pool);
      const { started, job, finish } = gatedJobs();
      const running = capture(pool.execute(job('a')));
      const waiting = capture(policy.execute(job('b')));
      expect(pool.queued).toBe(1);
      await clock.advance(50);
      expect(pool.queued).toBe(0);
      expect(await rejection(waiting)).toBeInstanceOf(TimeoutError);
      finish('a');
      await running;
      expect(started).toEqual(['a']);
      expect(pool.active).toBe(0);
    });

    it('frees the slot of a call whose inner timeout expires, letting the next queued caller run', async () => {
      const clock = new ManualClock();
      const pool = bulkhead({ maxConcurrent: 1, maxQueue: 1 });
      const policy = pipeline(pool, timeout(50, { clock }));
      const { started, job, finish } = gatedJobs();
      const slow = capture(policy.execute(job('slow')));
      const next = capture(policy.execute(job('next')));
      expect(await status(next)).toBe('pending');
      await clock.advance(50);
      expect(await rejection(slow)).toBeInstanceOf(TimeoutError);
      expect(started).toEqual(['slow', 'next']);
      finish('next');
      expect(await next).toEqual({ ok: true, value: 'next' });
      finish('slow');
      await clock.advance(100);
    });
  });
});
