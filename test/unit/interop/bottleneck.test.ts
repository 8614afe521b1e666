import { AsyncLocalStorage } from 'node:async_hooks';
import diagnosticsChannel from 'node:diagnostics_channel';
import Bottleneck from 'bottleneck';
import { afterEach, describe, expect, it, vi } from 'vitest';
import {
  BulkheadRejectedError,
  channelNames,
  constant,
  type ExecuteMessage,
  isBulwarkError,
  pipeline,
  retry,
  timeout,
  TimeoutError,
} from '../../../src/index.js';
import { bulkheadRejectedChannel } from '../../../src/core/diagnostics.js';
import { type BottleneckRejectedEvent, BottleneckPolicy, fromBottleneck } from '../../../src/interop/bottleneck.js';
import { abortListeners, capture, deferred, rejection, status } from '../../support/helpers.js';
import { delay, listen, newLimiter, shutDownEngines, unlistenAll } from './support.js';

afterEach(async () => {
  vi.restoreAllMocks();
  unlistenAll();
  await shutDownEngines();
});

/** Jobs that record when they start and end when the test says so. */
function gates(): { started: string[]; job: (id: string) => () => Promise<string>; finish: (id: string) => void } {
  const started: string[] = [];
  const pending = new Map<string, ReturnType<typeof deferred<string>>>();
  const gate = (id: string): ReturnType<typeof deferred<string>> => {
    let d = pending.get(id);
    if (d === undefined) pending.set(id, (d = deferred<string>()));
    return d;
  };
  return {
    started,
    job: (id) => () => {
      started.push(id);
      return gate(id).promise;
    },
    finish: (id) => gate(id).resolve(id),
  };
}

/** Waits until `check` holds (bottleneck moves jobs on with 0 ms timers). */
async function until(check: () => boolean, withinMs = 2_000): Promise<void> {
  const end = Date.now() + withinMs;
  while (!check()) {
    if (Date.now() > end) throw new Error('condition not met in time');
    await delay(2);
  }
}

describe('fromBottleneck: calls', () => {
  it('passes results, thrown values and rejections through unchanged', async () => {
    const policy = fromBottleneck(newLimiter());
    const failure = new Error('boom');
    expect(await policy.execute(async () => 'async')).toBe('async');
    expect(await policy.execute(() => 'sync')).toBe('sync');
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

  it('runs no more calls at once than the limiter’s maxConcurrent', async () => {
    const policy = fromBottleneck(newLimiter({ maxConcurrent: 2 }));
    let running = 0;
    let most = 0;
    const calls = Array.from({ length: 8 }, (_, i) =>
      policy.execute(async () => {
        running++;
        most = Math.max(most, running);
        await delay(5);
        running--;
        return i;
      }),
    );
    expect(await Promise.all(calls)).toEqual([0, 1, 2, 3, 4, 5, 6, 7]);
    expect(most).toBe(2);
  });

  it('shares the limiter with jobs scheduled on it directly', async () => {
    const limiter = newLimiter({ maxConcurrent: 1 });
    const policy = fromBottleneck(limiter);
    const { started, job, finish } = gates();
    const direct = limiter.schedule(job('direct'));
    const wrapped = policy.execute(job('wrapped'));
    await until(() => started.length === 1);
    await delay(10);
    expect(started).toEqual(['direct']);
    expect(policy.active).toBe(1);
    expect(policy.queued).toBe(1);
    finish('direct');
    await until(() => started.length === 2);
    finish('wrapped');
    expect(await Promise.all([direct, wrapped])).toEqual(['direct', 'wrapped']);
  });

  it('schedules calls with the priority it was given', async () => {
    const limiter = newLimiter({ maxConcurrent: 1 });
    const low = fromBottleneck(limiter, { priority: 9 });
    const high = fromBottleneck(limiter, { priority: 0 });
    const { started, job, finish } = gates();
    const first = low.execute(job('first'));
    await until(() => started.length === 1);
    const later = low.execute(job('low'));
    const urgent = high.execute(job('high'));
    await until(() => limiter.queued() === 2);
    finish('first');
    await until(() => started.length === 2);
    expect(started[1]).toBe('high');
    finish('high');
    finish('low');
    await Promise.all([first, later, urgent]);
    expect(started).toEqual(['first', 'high', 'low']);
  });

  it('announces each execution on the bulwark:execute tracing channel', async () => {
    const policy = fromBottleneck(newLimiter({ id: 'crawler' }));
    const starts: ExecuteMessage[] = [];
    const handlers = { start: (m: unknown) => starts.push({ ...(m as ExecuteMessage) }) };
    const channel = diagnosticsChannel.tracingChannel(channelNames.execute);
    channel.subscribe(handlers as unknown as diagnosticsChannel.TracingChannelSubscribers<object>);
    try {
      await policy.execute(() => 1);
    } finally {
      channel.unsubscribe(handlers as unknown as diagnosticsChannel.TracingChannelSubscribers<object>);
    }
    expect(starts).toEqual([{ kind: 'bottleneck', policy: 'crawler' }]);
  });
});

describe('fromBottleneck: async context', () => {
  it("runs each waiting job in its own caller's context, not in the one of the job that freed the slot", async () => {
    // Bottleneck starts a waiting job from the continuation of the job before it: without the
    // caller's context kept, B and C would see A's AsyncLocalStorage store (and trace span).
    const als = new AsyncLocalStorage<string>();
    try {
      const policy = fromBottleneck(newLimiter({ maxConcurrent: 1 }));
      const gate = deferred<void>();
      const seen: (string | undefined)[] = [];
      const a = als.run('A', () => policy.execute(() => gate.promise));
      const b = als.run('B', () => policy.execute(() => seen.push(als.getStore())));
      const c = als.run('C', () => policy.execute(() => seen.push(als.getStore())));
      await delay(20);
      gate.resolve();
      await Promise.all([a, b, c]);
      expect(seen).toEqual(['B', 'C']);
    } finally {
      als.disable();
    }
  });
});

describe('fromBottleneck: dropped jobs', () => {
  it('rejects a dropped call with BulkheadRejectedError, bottleneck’s error as cause, and publishes it', async () => {
    const limiter = newLimiter({ maxConcurrent: 1, highWater: 1, strategy: Bottleneck.strategy.OVERFLOW });
    const policy = fromBottleneck(limiter, { name: 'crawler' });
    const published = listen(channelNames.bulkheadRejected);
    const typed: BottleneckRejectedEvent[] = [];
    policy.onRejected((e) => typed.push(e));
    const { started, job, finish } = gates();
    const running = policy.execute(job('running'));
    await until(() => started.length === 1);
    const waiting = policy.execute(job('waiting'));
    await until(() => limiter.queued() === 1);
    const error = await rejection(capture(policy.execute(job('dropped'))));
    expect(error).toBeInstanceOf(BulkheadRejectedError);
    expect(isBulwarkError(error, 'ERR_BULWARK_BULKHEAD_REJECTED')).toBe(true);
    expect(error).toMatchObject({ active: 1, queued: 1 });
    expect((error as Error).cause).toBeInstanceOf(Bottleneck.BottleneckError);
    expect(published).toEqual([{ policy: 'crawler', active: 1, queued: 1, mode: 'enforce' }]);
    expect(typed).toEqual([{ policy: 'crawler', active: 1, queued: 1, mode: 'enforce' }]);
    finish('running');
    finish('waiting');
    expect(await Promise.all([running, waiting])).toEqual(['running', 'waiting']);
    expect(started).toEqual(['running', 'waiting']);
  });

  it('rejects a dropped call even when the limiter was told not to (rejectOnDrop: false)', async () => {
    const limiter = newLimiter({ maxConcurrent: 1, highWater: 0, strategy: Bottleneck.strategy.OVERFLOW, rejectOnDrop: false });
    const policy = fromBottleneck(limiter);
    const { started, job, finish } = gates();
    const running = policy.execute(job('running'));
    await until(() => started.length === 1);
    const dropped = capture(policy.execute(job('dropped')));
    await until(() => limiter.counts().RECEIVED === 0);
    const error = await rejection(dropped);
    expect(error).toBeInstanceOf(BulkheadRejectedError);
    expect((error as Error).cause).toBeUndefined();
    finish('running');
    await running;
  });

  it('rejects the calls still waiting when the limiter is stopped', async () => {
    const limiter = newLimiter({ maxConcurrent: 1 });
    const policy = fromBottleneck(limiter);
    const { started, job, finish } = gates();
    const running = capture(policy.execute(job('running')));
    await until(() => started.length === 1);
    const waiting = capture(policy.execute(job('waiting')));
    await until(() => limiter.queued() === 1);
    const stopped = limiter.stop({ dropWaitingJobs: true });
    const error = await rejection(waiting);
    expect(error).toBeInstanceOf(BulkheadRejectedError);
    expect((error as Error).cause).toMatchObject({ message: 'This limiter has been stopped.' });
    finish('running');
    expect(await running).toEqual({ ok: true, value: 'running' });
    await stopped;
  });

  it('publishes a drop of a job scheduled on the limiter directly under the limiter’s id', async () => {
    const limiter = newLimiter({ id: 'mailer', maxConcurrent: 1, highWater: 0, strategy: Bottleneck.strategy.OVERFLOW });
    fromBottleneck(limiter);
    const published = listen(channelNames.bulkheadRejected);
    const { started, job, finish } = gates();
    const running = limiter.schedule(job('running'));
    await until(() => started.length === 1);
    await expect(limiter.schedule(job('direct'))).rejects.toBeInstanceOf(Bottleneck.BottleneckError);
    expect(published).toEqual([{ policy: 'mailer', active: 1, queued: 0, mode: 'enforce' }]);
    finish('running');
    await running;
  });

  it('retries a dropped call in a pipeline, as bulwark’s retry does a bulkhead rejection', async () => {
    const limiter = newLimiter({ maxConcurrent: 1, highWater: 0, strategy: Bottleneck.strategy.OVERFLOW });
    const policy = fromBottleneck(limiter);
    const { started, job, finish } = gates();
    const running = policy.execute(job('running'));
    await until(() => started.length === 1);
    const retried = pipeline(retry({ maxAttempts: 5, backoff: constant(20) }), policy).execute(() => 'done');
    await delay(30);
    finish('running');
    expect(await retried).toBe('done');
    await running;
  });

  it('publishes nothing while no channel has subscribers', async () => {
    const spy = vi.spyOn(bulkheadRejectedChannel, 'publish');
    const limiter = newLimiter({ maxConcurrent: 1, highWater: 0, strategy: Bottleneck.strategy.OVERFLOW });
    const policy = fromBottleneck(limiter);
    const { started, job, finish } = gates();
    const running = policy.execute(job('running'));
    await until(() => started.length === 1);
    expect(await rejection(capture(policy.execute(job('dropped'))))).toBeInstanceOf(BulkheadRejectedError);
    await expect(limiter.schedule(job('direct'))).rejects.toBeInstanceOf(Bottleneck.BottleneckError);
    expect(spy).not.toHaveBeenCalled();
    finish('running');
    await running;
  });

  it('stops calling a typed listener once it is disposed', async () => {
    const limiter = newLimiter({ maxConcurrent: 1, highWater: 0, strategy: Bottleneck.strategy.OVERFLOW });
    const policy = fromBottleneck(limiter);
    const seen: BottleneckRejectedEvent[] = [];
    const sub = policy.onRejected((e) => seen.push(e));
    const { started, job, finish } = gates();
    const running = policy.execute(job('running'));
    await until(() => started.length === 1);
    await capture(policy.execute(job('one')));
    sub.dispose();
    await capture(policy.execute(job('two')));
    expect(seen).toHaveLength(1);
    finish('running');
    await running;
  });
});

/** A one-slot limiter whose slot is taken by the call 'running', started and held open. */
async function oneRunning() {
  const limiter = newLimiter({ maxConcurrent: 1 });
  const policy = fromBottleneck(limiter);
  const { started, job, finish } = gates();
  const running = policy.execute(job('running'));
  await until(() => started.length === 1);
  return { limiter, policy, started, job, finish, running };
}

describe('fromBottleneck: cancellation', () => {
  it('rejects a waiting call at once when its signal aborts, never runs it, and moves the queue on', async () => {
    const { limiter, policy, started, job, finish, running } = await oneRunning();
    const controller = new AbortController();
    const cancelled = capture(policy.execute(job('cancelled'), { signal: controller.signal }));
    const next = policy.execute(job('next'));
    await until(() => limiter.queued() === 2);
    const reason = new Error('caller gave up');
    controller.abort(reason);
    expect(await status(cancelled)).toBe('rejected');
    expect(await rejection(cancelled)).toBe(reason);
    expect(abortListeners(controller.signal)).toBe(0);
    finish('running');
    await until(() => started.length === 2);
    expect(started).toEqual(['running', 'next']);
    finish('next');
    expect(await Promise.all([running, next])).toEqual(['running', 'next']);
  });

  it('rejects a waiting call when a cooperative timeout around it expires', async () => {
    const { limiter, policy, started, job, finish, running } = await oneRunning();
    const t0 = Date.now();
    const error = await rejection(capture(pipeline(timeout(20, { strategy: 'cooperative' }), policy).execute(job('late'))));
    expect(error).toBeInstanceOf(TimeoutError);
    expect(Date.now() - t0).toBeLessThan(500);
    finish('running');
    await running;
    await until(() => limiter.counts().RECEIVED + limiter.counts().QUEUED === 0);
    expect(started).toEqual(['running']);
  });

  it('rejects at once, scheduling nothing, when the signal has already aborted', async () => {
    const limiter = newLimiter();
    const policy = fromBottleneck(limiter);
    const reason = new Error('too late');
    const error = await rejection(capture(policy.execute(() => 'x', { signal: AbortSignal.abort(reason) })));
    expect(error).toBe(reason);
    expect(limiter.counts()).toMatchObject({ RECEIVED: 0, QUEUED: 0, RUNNING: 0, EXECUTING: 0 });
  });

  it('20 calls queued on one signal share one abort listener (no MaxListeners warning)', async () => {
    const { limiter, policy, job, finish, running } = await oneRunning();
    const controller = new AbortController();
    const queued = Array.from({ length: 20 }, (_, i) => capture(policy.execute(job(`q${i}`), { signal: controller.signal })));
    await until(() => limiter.queued() === 20);
    expect(abortListeners(controller.signal)).toBe(1);
    const reason = new Error('caller gave up');
    controller.abort(reason);
    for (const call of queued) expect(await rejection(call)).toBe(reason);
    expect(abortListeners(controller.signal)).toBe(0);
    finish('running');
    expect(await running).toBe('running');
  });

  it('leaves no abort listener behind once a call has run', async () => {
    const policy = fromBottleneck(newLimiter());
    const controller = new AbortController();
    expect(await policy.execute(() => 'ok', { signal: controller.signal })).toBe('ok');
    expect(abortListeners(controller.signal)).toBe(0);
  });
});

describe('fromBottleneck: inputs', () => {
  it('takes its name from the limiter’s id, else "bottleneck"', () => {
    expect(fromBottleneck(newLimiter({ id: 'search' })).name).toBe('search');
    expect(fromBottleneck(newLimiter()).name).toBe('bottleneck');
    const policy = fromBottleneck(newLimiter(), { name: 'mine', priority: 2, weight: 3 });
    expect(policy).toBeInstanceOf(BottleneckPolicy);
    expect(policy).toMatchObject({ kind: 'bottleneck', name: 'mine', priority: 2, weight: 3 });
  });

  it('throws a TypeError naming the option and the value for something that is not a limiter', () => {
    const limiter = newLimiter();
    const group = new Bottleneck.Group({ maxConcurrent: 1 });
    for (const value of [undefined, null, 1, 'limiter', {}, { schedule() {} }, group, () => {}]) {
      expect(() => fromBottleneck(value as never)).toThrow(TypeError);
    }
    expect(() => fromBottleneck(group as never)).toThrow('fromBottleneck: option "limiter" must be a Bottleneck limiter, got an object');
    expect(() => fromBottleneck(1 as never)).toThrow('fromBottleneck: option "limiter" must be a Bottleneck limiter, got 1');
    expect(() => fromBottleneck(limiter)).not.toThrow();
  });

  it('rejects unknown and bad options, naming the option and the value', () => {
    const limiter = newLimiter();
    expect(() => fromBottleneck(limiter, { priorty: 1 } as never)).toThrow(
      'fromBottleneck: unknown option "priorty" (known options: priority, weight, name)',
    );
    expect(() => fromBottleneck(limiter, { priority: 10 })).toThrow('fromBottleneck: option "priority" must be between 0 and 9, got 10');
    expect(() => fromBottleneck(limiter, { priority: 1.5 })).toThrow('option "priority" must be a whole number, got 1.5');
    expect(() => fromBottleneck(limiter, { weight: -1 })).toThrow(/option "weight" must be between 0 and .*, got -1/);
    expect(() => fromBottleneck(limiter, { weight: '1' as never })).toThrow('option "weight" must be a number, got "1"');
    expect(() => fromBottleneck(limiter, { name: '' })).toThrow('fromBottleneck: option "name" must be a non-empty string, got ""');
  });
});
