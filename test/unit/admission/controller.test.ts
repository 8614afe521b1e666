import { subscribe, unsubscribe } from 'node:diagnostics_channel';
import { describe, expect, it } from 'vitest';
import {
  type Admission,
  admissionController,
  type AdmissionDecisionEvent,
  type AdmissionLimitEvent,
  aimd,
  channelNames,
  gradient2,
  ManualClock,
  type Permit,
} from '../../../src/index.js';
import { abortHandlerCount } from '../../../src/core/shared-abort.js';

function permit(a: Admission): Permit {
  if ('reason' in a) throw new Error(`expected a permit, got a rejection (${a.reason})`);
  return a;
}

function reasonOf(a: Admission): string | undefined {
  return 'reason' in a ? a.reason : undefined;
}

describe('admissionController options', () => {
  it('defaults to gradient2, no queue, enforce mode, named "admission"', () => {
    const c = admissionController();
    expect(c.algorithm?.kind).toBe('gradient2');
    expect(c.limit).toBe(20);
    expect(c.maxQueue).toBe(0);
    expect(c.mode).toBe('enforce');
    expect(c.snapshot()).toEqual({ name: 'admission', mode: 'enforce', limit: 20, inFlight: 0, queued: 0 });
  });

  it.each([
    [{ limit: 0 }, RangeError, /option "limit" must be between 1 and/],
    [{ limit: 1.5 }, RangeError, /option "limit" must be a whole number, got 1.5/],
    [{ limit: '10' }, TypeError, /option "limit" must be a whole number or a limit algorithm .* got "10"/],
    [{ limit: {} }, TypeError, /got an object/],
    [{ maxQueue: -1 }, RangeError, /option "maxQueue"/],
    [{ maxWaitMs: 0 }, RangeError, /option "maxWaitMs" must be greater than 0 ms, got 0/],
    [{ mode: 'dry-run' }, TypeError, /option "mode" must be "enforce" or "shadow", got "dry-run"/],
    [{ loadSignal: () => null }, TypeError, /option "loadSignal" must have a check\(\) method/],
    [{ fairness: 1 }, TypeError, /option "fairness" must be a boolean, got 1/],
    [{ queueFrom: 'urgent' }, TypeError, /option "queueFrom" must be one of 'sheddable', 'best-effort', 'degraded', 'critical' or a level 0–3, got "urgent"/],
    [{ queueFrom: 4 }, TypeError, /option "queueFrom" must be one of .* got 4/],
    [{ clock: { now: () => 0 } }, TypeError, /option "clock"/],
    [{ limits: 5 }, TypeError, /unknown option "limits"/],
  ])('refuses %o', (options, error, message) => {
    expect(() => admissionController(options as never)).toThrow(error);
    expect(() => admissionController(options as never)).toThrow(message);
  });

  it('refuses a bad mode set at run time and keeps the old one', () => {
    const c = admissionController({ limit: 1 });
    expect(() => {
      c.mode = 'off' as never;
    }).toThrow(/admissionController: "mode" must be "enforce" or "shadow"/);
    expect(c.mode).toBe('enforce');
  });

  it('checks requests: a priority must be a level 0–3, a tenant a string', () => {
    const c = admissionController({ limit: 1 });
    expect(() => c.tryAcquire({ priority: 'critical' as never })).toThrow(/request "priority" must be a level 0–3, got "critical"/);
    expect(() => c.tryAcquire({ priority: 4 as never })).toThrow(TypeError);
    expect(() => c.tryAcquire({ tenant: 7 as never })).toThrow(/request "tenant" must be a string, got 7/);
    expect(() => c.tryAcquire(null as never)).toThrow(/request must be an object, got null/);
    expect(c.inFlight).toBe(0);
  });
});

describe('admissionController with a fixed limit', () => {
  it('admits up to the limit, then rejects on arrival with reason "limit"; a release frees a slot once', () => {
    const clock = new ManualClock(1_000);
    const c = admissionController({ limit: 2, clock });
    const a = permit(c.tryAcquire());
    const b = permit(c.tryAcquire());
    expect(a.startMs).toBe(1_000);
    expect(a.wouldReject).toBeUndefined();
    const third = c.tryAcquire();
    expect(reasonOf(third)).toBe('limit');
    expect('retryAfterMs' in third && third.retryAfterMs).toBeGreaterThanOrEqual(1);
    expect(c.inFlight).toBe(2);
    a.release('success');
    a.release('success');
    expect(c.inFlight).toBe(1);
    permit(c.tryAcquire());
    expect(reasonOf(c.tryAcquire())).toBe('limit');
    b.release('ignore');
    expect(c.inFlight).toBe(1);
  });

  it('answers retryAfterMs from the latency of released permits', async () => {
    const clock = new ManualClock();
    const c = admissionController({ limit: 1, clock });
    const p = permit(c.tryAcquire());
    await clock.advance(40);
    p.release('success');
    permit(c.tryAcquire());
    const r = c.tryAcquire();
    expect('retryAfterMs' in r && r.retryAfterMs).toBe(40);
  });
});

describe('admissionController queue', () => {
  it('queues when full and starts waiters highest class first, FIFO inside a class', async () => {
    const c = admissionController({ limit: 1, maxQueue: 4 });
    // Held by the top class: no class may borrow its slot.
    let current = permit(c.tryAcquire({ priority: 3 }));
    const order: string[] = [];
    const started: Permit[] = [];
    const wait = (name: string, priority: 0 | 1 | 2 | 3): Promise<void> =>
      Promise.resolve(c.acquire({ priority })).then((a) => {
        order.push(name);
        started.push(permit(a));
      });
    const waits = [wait('shed-1', 0), wait('crit-1', 3), wait('shed-2', 0), wait('crit-2', 3)];
    expect(c.queued).toBe(4);
    // tryAcquire never queues.
    expect(reasonOf(c.tryAcquire({ priority: 3 }))).toBe('limit');
    for (let i = 0; i < 4; i++) {
      current.release('success');
      await new Promise((r) => setImmediate(r));
      expect(c.inFlight).toBe(1);
      current = started[i]!;
    }
    current.release('success');
    await Promise.all(waits);
    expect(order).toEqual(['crit-1', 'crit-2', 'shed-1', 'shed-2']);
    expect(c.queued).toBe(0);
    expect(c.inFlight).toBe(0);
  });

  it('queueFrom: classes below it are decided on arrival even with queue room; it and above wait', async () => {
    const c = admissionController({ limit: 1, maxQueue: 4, queueFrom: 'degraded' });
    expect(c.queueFrom).toBe(2);
    const held = permit(c.tryAcquire({ priority: 3 }));
    // Below 'degraded': turned away at once, nothing queued.
    expect(reasonOf(c.acquire({ priority: 0 }) as Admission)).toBe('limit');
    expect(reasonOf(c.acquire({ priority: 1 }) as Admission)).toBe('limit');
    expect(c.queued).toBe(0);
    const critical = Promise.resolve(c.acquire({ priority: 3 }));
    const degraded = Promise.resolve(c.acquire({ priority: 2 }));
    expect(c.queued).toBe(2);
    held.release('success');
    const first = permit(await critical);
    first.release('success');
    permit(await degraded).release('success');
    expect(c.inFlight).toBe(0);
    // The default queues every class.
    expect(admissionController({ limit: 1, maxQueue: 1 }).queueFrom).toBe(0);
  });

  it('lends the slots a lower class holds to a higher class, never the other way, and queues only what cannot borrow', async () => {
    const c = admissionController({ limit: 2, maxQueue: 2 });
    const low = permit(c.tryAcquire({ priority: 0 }));
    const mid = permit(c.tryAcquire({ priority: 1 }));
    // Full for the lowest class; the top class counts only its own permits and those above it.
    expect(reasonOf(c.tryAcquire({ priority: 0 }))).toBe('limit');
    const top = [permit(c.tryAcquire({ priority: 3 })), permit(c.tryAcquire({ priority: 3 }))];
    expect(c.inFlight).toBe(4);
    // The middle class may borrow only the lowest class's slot: its own and the top class's hold 3.
    expect(reasonOf(c.tryAcquire({ priority: 1 }))).toBe('limit');
    expect(reasonOf(c.tryAcquire({ priority: 3 }))).toBe('limit');
    // A top-class waiter starts as soon as one of its own finishes, even with lower classes still in flight.
    const waiting = c.acquire({ priority: 3 });
    expect(c.queued).toBe(1);
    top[0]!.release('success');
    const started = permit(await waiting);
    expect(c.inFlight).toBe(4);
    for (const p of [low, mid, top[1]!, started]) p.release('success');
    expect(c.inFlight).toBe(0);
  });

  it('a full queue turns away its newest lowest-class waiter for a higher-class arrival, never for an equal one', async () => {
    const c = admissionController({ limit: 1, maxQueue: 2 });
    permit(c.tryAcquire());
    const low1 = c.acquire({ priority: 0 });
    const low2 = c.acquire({ priority: 0 });
    expect(reasonOf(c.acquire({ priority: 0 }) as Admission)).toBe('limit');
    const high = c.acquire({ priority: 2 });
    expect(reasonOf(await low2)).toBe('priority');
    expect(c.queued).toBe(2);
    expect(high).toBeInstanceOf(Promise);
    expect(low1).toBeInstanceOf(Promise);
  });

  it('a waiter whose signal aborts leaves at once, rejects with the reason and leaves no handler', async () => {
    const c = admissionController({ limit: 1, maxQueue: 3 });
    const held = permit(c.tryAcquire());
    const ac = new AbortController();
    const aborted = c.acquire({}, ac.signal) as Promise<Admission>;
    const kept = c.acquire({}) as Promise<Admission>;
    expect(abortHandlerCount(ac.signal)).toBe(1);
    ac.abort(new Error('client went away'));
    await expect(aborted).rejects.toThrow('client went away');
    expect(c.queued).toBe(1);
    expect(abortHandlerCount(ac.signal)).toBe(0);
    held.release('success');
    permit(await kept).release('success');
    expect(c.inFlight).toBe(0);
  });

  it('rejects at once, without queueing, for a signal already aborted', async () => {
    const c = admissionController({ limit: 1, maxQueue: 3 });
    permit(c.tryAcquire());
    await expect(c.acquire({}, AbortSignal.abort(new Error('gone')))).rejects.toThrow('gone');
    expect(c.queued).toBe(0);
  });

  it('turns a waiter away after maxWaitMs with "queueTimeout", with one timer for the controller', async () => {
    const clock = new ManualClock();
    const c = admissionController({ limit: 1, maxQueue: 5, maxWaitMs: 50, clock });
    const held = permit(c.tryAcquire());
    const a = c.acquire() as Promise<Admission>;
    await clock.advance(10);
    const b = c.acquire() as Promise<Admission>;
    expect(clock.pendingTimers).toBe(1);
    await clock.advance(40);
    expect(reasonOf(await a)).toBe('queueTimeout');
    expect(c.queued).toBe(1);
    held.release('success');
    permit(await b).release('success');
    expect(clock.pendingTimers).toBe(1);
    await clock.advance(100);
    expect(clock.pendingTimers).toBe(0);
  });
});

describe('admissionController shadow mode', () => {
  it('admits everything, names what it would have rejected, and does not count those against the limit', () => {
    const c = admissionController({ limit: 1, mode: 'shadow' });
    const a = permit(c.tryAcquire());
    const b = permit(c.tryAcquire());
    expect(a.wouldReject).toBeUndefined();
    expect(b.wouldReject).toBe('limit');
    expect(c.inFlight).toBe(1);
    b.release('success');
    expect(c.inFlight).toBe(1);
    a.release('success');
    expect(c.inFlight).toBe(0);
  });

  it('switches at run time without losing state; would-rejections are reported with mode "shadow"', () => {
    const c = admissionController({ limit: 1, name: 'db' });
    const events: AdmissionDecisionEvent[] = [];
    const sub = c.onDecision((e) => events.push(e));
    const held = permit(c.tryAcquire({ priority: 1 }));
    expect(reasonOf(c.tryAcquire({ priority: 1 }))).toBe('limit');
    c.mode = 'shadow';
    expect(c.inFlight).toBe(1);
    expect(permit(c.tryAcquire({ priority: 1 })).wouldReject).toBe('limit');
    c.mode = 'enforce';
    expect(reasonOf(c.tryAcquire({ priority: 1 }))).toBe('limit');
    held.release('success');
    sub.dispose();
    expect(events.map((e) => e.mode)).toEqual(['enforce', 'shadow', 'enforce']);
    expect(events[1]).toEqual({ policy: 'db', mode: 'shadow', reason: 'limit', priority: 1, limit: 1, inFlight: 1, queued: 0 });
  });

  it('gives the same would-reject count as enforce mode gives rejections for the same traffic', () => {
    const replay = (mode: 'enforce' | 'shadow'): number => {
      const c = admissionController({ limit: 3, mode });
      const held: Permit[] = [];
      let rejected = 0;
      for (let i = 0; i < 200; i++) {
        const a = c.tryAcquire({ priority: (i % 4) as 0 | 1 | 2 | 3, tenant: `t${i % 3}` });
        if ('reason' in a) rejected++;
        else if (a.wouldReject !== undefined) {
          // What enforce mode rejected ends at once here.
          rejected++;
          a.release('success');
        } else held.push(a);
        if (i % 3 === 0) held.shift()?.release('success');
      }
      return rejected;
    };
    const enforced = replay('enforce');
    expect(enforced).toBeGreaterThan(0);
    expect(replay('shadow')).toBe(enforced);
  });
});

describe('admissionController events and channels', () => {
  it('publishes rejections on bulwark:admission:rejected only while subscribed', () => {
    const c = admissionController({ limit: 1, name: 'api' });
    const seen: unknown[] = [];
    const listener = (m: unknown): void => void seen.push(m);
    permit(c.tryAcquire({ priority: 3 }));
    c.tryAcquire();
    subscribe(channelNames.admissionRejected, listener);
    try {
      c.tryAcquire({ priority: 3 });
    } finally {
      unsubscribe(channelNames.admissionRejected, listener);
    }
    c.tryAcquire();
    expect(seen).toEqual([{ policy: 'api', mode: 'enforce', reason: 'limit', priority: 3, limit: 1, inFlight: 1, queued: 0 }]);
  });

  it('reports limit changes on onLimitChange and bulwark:admission:limit', async () => {
    const clock = new ManualClock();
    const c = admissionController({ limit: aimd({ initialLimit: 4, windowMs: 10, minSamples: 1 }), clock, name: 'up' });
    const events: AdmissionLimitEvent[] = [];
    const published: unknown[] = [];
    const listener = (m: unknown): void => void published.push(m);
    const sub = c.onLimitChange((e) => events.push(e));
    subscribe(channelNames.admissionLimit, listener);
    try {
      const held = [0, 1, 2, 3].map(() => permit(c.tryAcquire()));
      await clock.advance(20);
      for (const p of held) p.release('success');
    } finally {
      unsubscribe(channelNames.admissionLimit, listener);
      sub.dispose();
    }
    // Slow start: no congestion with the limit in use doubles it.
    expect(events).toEqual([{ policy: 'up', from: 4, to: 8 }]);
    expect(published).toEqual(events);
    expect(c.limit).toBe(8);
  });

  it('a listener that throws does not break the decision', () => {
    const c = admissionController({ limit: gradient2({ initialLimit: 1 }) });
    c.onDecision(() => {
      throw new Error('listener bug');
    });
    permit(c.tryAcquire());
    const errors: unknown[] = [];
    const onError = (m: unknown): void => void errors.push(m);
    subscribe(channelNames.callbackError, onError);
    try {
      expect(reasonOf(c.tryAcquire())).toBe('limit');
    } finally {
      unsubscribe(channelNames.callbackError, onError);
    }
    expect(errors).toHaveLength(1);
  });
});
