import { describe, expect, it } from 'vitest';
import {
  adaptiveConcurrency,
  aimd,
  ConcurrencyLimitedError,
  isBulwarkError,
  ManualClock,
  pipeline,
  retry,
  timeout,
  TimeoutError,
  withAdmissionScope,
} from '../../../src/index.js';
import { deferred } from '../../support/helpers.js';

describe('adaptiveConcurrency', () => {
  it('runs calls within the limit and rejects the next at once with ConcurrencyLimitedError', async () => {
    const policy = adaptiveConcurrency({ name: 'db', limit: 2 });
    const gate = deferred<string>();
    const a = policy.execute(() => gate.promise);
    const b = policy.execute(() => gate.promise);
    expect(policy.inFlight).toBe(2);
    const err = await policy.execute(() => 'never').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ConcurrencyLimitedError);
    expect(isBulwarkError(err, 'ERR_BULWARK_CONCURRENCY_LIMITED')).toBe(true);
    expect(err).toMatchObject({ reason: 'limit', limit: 2, inFlight: 2, name: 'ConcurrencyLimitedError' });
    expect((err as ConcurrencyLimitedError).retryAfterMs).toBeGreaterThanOrEqual(1);
    expect((err as Error).stack).toBe('ConcurrencyLimitedError: Concurrency limited (limit; limit 2, 2 in flight)');
    gate.resolve('ok');
    expect(await Promise.all([a, b])).toEqual(['ok', 'ok']);
    expect(policy.inFlight).toBe(0);
    expect(policy.name).toBe('db');
    expect(policy.kind).toBe('adaptive-concurrency');
  });

  it('defaults to gradient2 named "adaptive-concurrency"', () => {
    const policy = adaptiveConcurrency();
    expect(policy.controller.algorithm?.kind).toBe('gradient2');
    expect(policy.snapshot()).toMatchObject({ name: 'adaptive-concurrency', limit: 20, mode: 'enforce' });
  });

  it('refuses bad options, naming them', () => {
    expect(() => adaptiveConcurrency({ priority: 'urgent' as never })).toThrow(/adaptiveConcurrency: option "priority" must be one of .* got "urgent"/);
    expect(() => adaptiveConcurrency({ tenant: 5 as never })).toThrow(/option "tenant" must be a string or a function, got 5/);
    expect(() => adaptiveConcurrency({ isDropped: true as never })).toThrow(/option "isDropped" must be a function/);
    expect(() => adaptiveConcurrency({ limit: -1 })).toThrow(/admissionController: option "limit"/);
    expect(() => adaptiveConcurrency({ queue: 1 } as never)).toThrow(/adaptiveConcurrency: unknown option "queue"/);
  });

  it('reads the class from the admission scope, else degraded; a fixed or computed priority wins', async () => {
    const seen: number[] = [];
    const policy = adaptiveConcurrency({ limit: 1 });
    policy.onDecision((e) => seen.push(e.priority));
    const gate = deferred();
    const held = policy.execute(() => gate.promise);
    await policy.execute(() => 1).catch(() => {});
    await withAdmissionScope({ priority: 'sheddable' }, () => policy.execute(() => 1)).catch(() => {});
    const fixed = adaptiveConcurrency({ limit: 1, priority: 'critical' });
    fixed.onDecision((e) => seen.push(e.priority));
    const held2 = fixed.execute(() => gate.promise);
    await withAdmissionScope({ priority: 'sheddable' }, () => fixed.execute(() => 1)).catch(() => {});
    const computed = adaptiveConcurrency({ limit: 1, priority: () => 1 });
    computed.onDecision((e) => seen.push(e.priority));
    const held3 = computed.execute(() => gate.promise);
    await computed.execute(() => 1).catch(() => {});
    gate.resolve();
    await Promise.all([held, held2, held3]);
    expect(seen).toEqual([2, 0, 3, 1]);
  });

  it('a priority callback that throws or answers garbage fails that call only', async () => {
    const throwing = adaptiveConcurrency({ priority: () => {
      throw new Error('resolver bug');
    } });
    await expect(throwing.execute(() => 1)).rejects.toThrow('resolver bug');
    const garbage = adaptiveConcurrency({ priority: () => 'urgent' as never });
    await expect(garbage.execute(() => 1)).rejects.toThrow(/a priority must be one of/);
    expect(throwing.inFlight + garbage.inFlight).toBe(0);
  });

  it('tells the limit a timeout is a drop and another error nothing (isDropped configurable)', async () => {
    const clock = new ManualClock();
    const make = (isDropped?: (e: unknown) => boolean) =>
      adaptiveConcurrency({ limit: aimd({ initialLimit: 10, windowMs: 10, minSamples: 1 }), clock, ...(isDropped ? { isDropped } : {}) });
    // AIMD: a window with a drop multiplies the limit by 0.9, one without adds 1 (or doubles in slow start).
    const timedOut = make();
    await timedOut.execute(() => Promise.reject(new TimeoutError(5))).catch(() => {});
    await clock.advance(20);
    await timedOut.execute(() => Promise.reject(new TimeoutError(5))).catch(() => {});
    expect(timedOut.limit).toBe(9);
    const other = make();
    await other.execute(() => Promise.reject(new Error('404'))).catch(() => {});
    await clock.advance(20);
    await other.execute(() => Promise.reject(new Error('404'))).catch(() => {});
    expect(other.limit).toBe(10);
    const custom = make((e) => (e as Error).message === '503');
    await custom.execute(() => Promise.reject(new Error('503'))).catch(() => {});
    await clock.advance(20);
    await custom.execute(() => Promise.reject(new Error('503'))).catch(() => {});
    expect(custom.limit).toBe(9);
  });

  it('works inside a pipeline, and the queue honours the caller signal', async () => {
    const policy = adaptiveConcurrency({ limit: 1, maxQueue: 1 });
    const p = pipeline(retry({ maxAttempts: 1 }), policy, timeout(1_000));
    const gate = deferred<number>();
    const first = p.execute(() => gate.promise);
    const ac = new AbortController();
    const queued = p.execute(() => 2, { signal: ac.signal });
    expect(policy.controller.queued).toBe(1);
    ac.abort(new Error('caller gone'));
    await expect(queued).rejects.toThrow('caller gone');
    expect(policy.controller.queued).toBe(0);
    gate.resolve(1);
    expect(await first).toBe(1);
    expect(await p.execute(() => 3)).toBe(3);
  });

  it('in shadow mode runs everything and counts what it would have rejected; switchable at run time', async () => {
    const policy = adaptiveConcurrency({ limit: 1, mode: 'shadow' });
    const would: string[] = [];
    policy.onDecision((e) => would.push(`${e.mode}:${e.reason}`));
    const gate = deferred();
    const a = policy.execute(() => gate.promise);
    expect(await policy.execute(() => 'ran')).toBe('ran');
    policy.mode = 'enforce';
    await expect(policy.execute(() => 'no')).rejects.toBeInstanceOf(ConcurrencyLimitedError);
    gate.resolve();
    await a;
    expect(would).toEqual(['shadow:limit', 'enforce:limit']);
    expect(policy.mode).toBe('enforce');
  });
});
