import diagnosticsChannel from 'node:diagnostics_channel';
import { afterEach, describe, expect, it, vi } from 'vitest';
import {
  bulkhead,
  channelNames,
  circuitBreaker,
  consecutive,
  constant,
  type ExecuteMessage,
  fallback,
  hedge,
  ManualClock,
  pipeline,
  retry,
  timeout,
  TimeoutError,
} from '../../../src/index.js';
import { executeChannel, withHasSubscribers } from '../../../src/core/diagnostics.js';
import { deferred, flush } from '../../support/helpers.js';

afterEach(() => {
  vi.restoreAllMocks();
});

/** Collects what is published on `name` while `body` runs; always unsubscribes. */
async function collect(name: string, body: () => Promise<void>): Promise<unknown[]> {
  const messages: unknown[] = [];
  const listener = (message: unknown): void => {
    messages.push(message);
  };
  diagnosticsChannel.subscribe(name, listener);
  try {
    await body();
  } finally {
    diagnosticsChannel.unsubscribe(name, listener);
  }
  return messages;
}

type TraceRecord = [event: string, message: ExecuteMessage & { error?: unknown; result?: unknown }];

/** Collects every event of the `bulwark:execute` tracing channel while `body` runs. */
async function trace(body: () => Promise<void>, only?: (keyof diagnosticsChannel.TracingChannelSubscribers<object>)[]) {
  const records: TraceRecord[] = [];
  const all = ['start', 'end', 'asyncStart', 'asyncEnd', 'error'] as const;
  const handlers = Object.fromEntries(
    all
      .filter((e) => only === undefined || only.includes(e))
      .map((e) => [e, (message: unknown) => records.push([e, { ...(message as TraceRecord[1]) }])]),
  ) as unknown as diagnosticsChannel.TracingChannelSubscribers<object>;
  const channel = diagnosticsChannel.tracingChannel(channelNames.execute);
  channel.subscribe(handlers);
  try {
    await body();
  } finally {
    channel.unsubscribe(handlers);
  }
  return records;
}

describe('channel names', () => {
  it('names every channel under the bulwark: prefix, once each', () => {
    const names = Object.values(channelNames);
    expect(new Set(names).size).toBe(names.length);
    for (const name of names) expect(name).toMatch(/^bulwark:/);
    expect(channelNames).toMatchObject({
      execute: 'bulwark:execute',
      circuitState: 'bulwark:circuit:state',
      retryAttempt: 'bulwark:retry:attempt',
      timeout: 'bulwark:timeout:expired',
      bulkheadRejected: 'bulwark:bulkhead:rejected',
      fallback: 'bulwark:fallback:used',
      hedge: 'bulwark:hedge:attempt',
    });
  });
});

describe('diagnostics channels', () => {
  it('publishes each circuit breaker state change on circuitState', async () => {
    const clock = new ManualClock();
    const breaker = circuitBreaker({ breaker: consecutive(1), halfOpenAfterMs: 100, clock, name: 'db' });
    const messages = await collect(channelNames.circuitState, async () => {
      await breaker.execute(() => Promise.reject(new Error('down'))).catch(() => {});
      await clock.advance(100);
      await breaker.execute(() => 'probe ok');
    });
    expect(messages).toEqual([
      { policy: 'db', from: 'closed', to: 'open', reason: 'failures' },
      { policy: 'db', from: 'open', to: 'half-open', reason: 'half-open-due' },
      { policy: 'db', from: 'half-open', to: 'closed', reason: 'probes-succeeded' },
    ]);
  });

  it('publishes a rejection by an open breaker on circuitRejected', async () => {
    const clock = new ManualClock();
    const breaker = circuitBreaker({ breaker: consecutive(1), clock });
    await breaker.execute(() => Promise.reject(new Error('down'))).catch(() => {});
    const messages = await collect(channelNames.circuitRejected, async () => {
      await breaker.execute(() => 1).catch(() => {});
    });
    expect(messages).toEqual([{ policy: 'circuit-breaker', state: 'open' }]);
  });

  it('publishes each retry on retryAttempt and the end of retrying on retryGiveUp', async () => {
    const clock = new ManualClock();
    const policy = retry({ maxAttempts: 3, backoff: constant(10), clock, name: 'api' });
    const errors = [new Error('e1'), new Error('e2'), new Error('e3')];
    let n = 0;
    let gaveUp: unknown[] = [];
    const attempts = await collect(channelNames.retryAttempt, async () => {
      gaveUp = await collect(channelNames.retryGiveUp, async () => {
        const call = policy.execute(() => Promise.reject(errors[n++]));
        const outcome = call.catch((e: unknown) => e);
        await clock.advance(10);
        await clock.advance(10);
        expect(await outcome).toBe(errors[2]);
      });
    });
    expect(attempts).toEqual([
      { policy: 'api', attempt: 1, delayMs: 10, error: errors[0] },
      { policy: 'api', attempt: 2, delayMs: 10, error: errors[1] },
    ]);
    expect(gaveUp).toEqual([{ policy: 'api', attempts: 3, reason: 'attempts', error: errors[2] }]);
  });

  it('publishes an expiry on timeout', async () => {
    const clock = new ManualClock();
    const policy = timeout(50, { clock, name: 'slow' });
    const messages = await collect(channelNames.timeout, async () => {
      const call = policy.execute(() => new Promise<never>(() => {}));
      const outcome = call.catch((e: unknown) => e);
      await clock.advance(50);
      expect(await outcome).toBeInstanceOf(TimeoutError);
    });
    expect(messages).toEqual([{ policy: 'slow', timeoutMs: 50 }]);
  });

  it('publishes a rejection on bulkheadRejected', async () => {
    const pool = bulkhead({ maxConcurrent: 1, maxQueue: 1, name: 'pool' });
    const gate = deferred();
    const messages = await collect(channelNames.bulkheadRejected, async () => {
      const running = pool.execute(() => gate.promise);
      const waiting = pool.execute(() => 'queued');
      await expect(pool.execute(() => 'rejected')).rejects.toMatchObject({ code: 'ERR_BULWARK_BULKHEAD_REJECTED' });
      gate.resolve();
      await running;
      await waiting;
    });
    expect(messages).toEqual([{ policy: 'pool', active: 1, queued: 1, mode: 'enforce' }]);
  });

  it('publishes each use of a fallback on fallback, and nothing when the call succeeds', async () => {
    const policy = fallback('v', { name: 'cache' });
    const error = new Error('down');
    const messages = await collect(channelNames.fallback, async () => {
      await policy.execute(() => 'fine');
      await policy.execute(() => Promise.reject(error));
    });
    expect(messages).toEqual([{ policy: 'cache', error }]);
  });

  it('publishes each extra attempt on hedge with its number and trigger', async () => {
    const clock = new ManualClock();
    const policy = hedge({ delayMs: 10, maxHedges: 2, clock, name: 'replicas' });
    const first = deferred<string>();
    let n = 0;
    const messages = await collect(channelNames.hedge, async () => {
      const call = policy.execute(() => {
        n++;
        if (n === 1) return first.promise;
        if (n === 2) return Promise.reject(new Error('second failed'));
        return new Promise<string>(() => {});
      });
      await clock.advance(10);
      first.resolve('first');
      await expect(call).resolves.toBe('first');
    });
    expect(messages).toEqual([
      { policy: 'replicas', attempt: 2, trigger: 'delay' },
      { policy: 'replicas', attempt: 3, trigger: 'failure' },
    ]);
    await clock.advance(10);
  });

  it('delivers the same payload object to the event listener and the channel', async () => {
    const policy = fallback('v');
    let fromEvent: unknown;
    policy.onFallback((e) => (fromEvent = e));
    const messages = await collect(channelNames.fallback, async () => {
      await policy.execute(() => Promise.reject(new Error('x')));
    });
    expect(messages[0]).toBe(fromEvent);
  });

  it('stops publishing to a listener once it has unsubscribed', async () => {
    const policy = fallback('v');
    const messages = await collect(channelNames.fallback, async () => {
      await policy.execute(() => Promise.reject(new Error('seen')));
    });
    await policy.execute(() => Promise.reject(new Error('not seen')));
    expect(messages).toHaveLength(1);
  });
});

describe('execute tracing channel', () => {
  it('sees start, end, asyncStart and asyncEnd around a successful execute, with kind and policy name', async () => {
    const policy = retry({ name: 'outbound' });
    const records = await trace(async () => {
      await expect(policy.execute(async () => 'ok')).resolves.toBe('ok');
    });
    expect(records.map(([event]) => event)).toEqual(['start', 'end', 'asyncStart', 'asyncEnd']);
    expect(records[0]![1]).toMatchObject({ kind: 'retry', policy: 'outbound' });
    expect(records[3]![1]).toMatchObject({ kind: 'retry', policy: 'outbound', result: 'ok' });
  });

  it('sees error, then asyncEnd, for a failed execute, with the error on the message', async () => {
    const policy = fallback('v', { handle: () => false });
    const failure = new Error('boom');
    const records = await trace(async () => {
      await expect(policy.execute(() => Promise.reject(failure))).rejects.toBe(failure);
    });
    const events = records.map(([event]) => event);
    expect(events[0]).toBe('start');
    expect(events).toContain('error');
    expect(events.at(-1)).toBe('asyncEnd');
    expect(events.indexOf('error')).toBeLessThan(events.indexOf('asyncEnd'));
    const error = records.find(([event]) => event === 'error')!;
    expect(error[1]).toMatchObject({ kind: 'fallback', policy: 'fallback', error: failure });
  });

  it('traces every layer of a pipeline, outermost first', async () => {
    const clock = new ManualClock();
    const p = pipeline(retry({ clock }), circuitBreaker({ clock }), timeout(100, { clock }));
    const records = await trace(
      async () => {
        await p.execute(() => 1);
      },
      ['start'],
    );
    expect(records.map(([, m]) => m.kind)).toEqual(['pipeline', 'retry', 'circuit-breaker', 'timeout']);
    await clock.advance(100);
  });

  it('traces a rejection by the policy itself as an error', async () => {
    const clock = new ManualClock();
    const breaker = circuitBreaker({ breaker: consecutive(1), clock, name: 'b' });
    await breaker.execute(() => Promise.reject(new Error('down'))).catch(() => {});
    const records = await trace(async () => {
      await breaker.execute(() => 1).catch(() => {});
    });
    const error = records.find(([event]) => event === 'error');
    expect(error?.[1]).toMatchObject({ kind: 'circuit-breaker', policy: 'b', error: { code: 'ERR_BULWARK_BROKEN_CIRCUIT' } });
  });

  it('does not enter the tracing channel when nobody subscribed to it', async () => {
    const spy = vi.spyOn(executeChannel, 'tracePromise');
    await retry().execute(() => 1);
    await pipeline(retry(), timeout(1_000)).execute(() => 2);
    expect(spy).not.toHaveBeenCalled();
  });
});

describe('with no subscribers', () => {
  const names = [
    channelNames.circuitState,
    channelNames.circuitRejected,
    channelNames.retryAttempt,
    channelNames.retryGiveUp,
    channelNames.timeout,
    channelNames.bulkheadRejected,
    channelNames.fallback,
    channelNames.hedge,
  ];

  it('publishes nothing while every policy goes through its events', async () => {
    const spies = names.map((name) => {
      const channel = diagnosticsChannel.channel(name);
      expect(channel.hasSubscribers).toBe(false);
      return vi.spyOn(channel, 'publish');
    });
    const clock = new ManualClock();

    const breaker = circuitBreaker({ breaker: consecutive(1), halfOpenAfterMs: 10, clock });
    await breaker.execute(() => Promise.reject(new Error('x'))).catch(() => {});
    await breaker.execute(() => 1).catch(() => {});
    await clock.advance(10);
    await expect(breaker.execute(() => 'closed again')).resolves.toBe('closed again');

    const r = retry({ maxAttempts: 2, backoff: constant(1), clock }).execute(() => Promise.reject(new Error('r')));
    const rOutcome = r.catch((e: unknown) => e);
    await clock.advance(1);
    expect(await rOutcome).toMatchObject({ message: 'r' });

    const t = timeout(5, { clock }).execute(() => new Promise<never>(() => {}));
    const tOutcome = t.catch((e: unknown) => e);
    await clock.advance(5);
    expect(await tOutcome).toBeInstanceOf(TimeoutError);

    const pool = bulkhead({ maxConcurrent: 1 });
    const gate = deferred();
    const running = pool.execute(() => gate.promise);
    await expect(pool.execute(() => 1)).rejects.toMatchObject({ code: 'ERR_BULWARK_BULKHEAD_REJECTED' });
    gate.resolve();
    await running;

    await expect(fallback('v').execute(() => Promise.reject(new Error('f')))).resolves.toBe('v');

    const h = hedge({ delayMs: 1, clock });
    let n = 0;
    const hCall = h.execute(() => (++n === 1 ? new Promise<string>(() => {}) : 'hedged'));
    await clock.advance(1);
    await expect(hCall).resolves.toBe('hedged');
    await flush();

    for (const spy of spies) expect(spy).not.toHaveBeenCalled();
  });
});

describe('withHasSubscribers', () => {
  it('adds hasSubscribers, read from the five sub-channels, to a tracing channel that lacks it (Node < 20.13)', () => {
    const part = () => ({ hasSubscribers: false });
    const old = { start: part(), end: part(), asyncStart: part(), asyncEnd: part(), error: part() };
    const channel = withHasSubscribers(old);
    expect(channel.hasSubscribers).toBe(false);
    old.error.hasSubscribers = true; // a subscriber to `error` alone counts
    expect(channel.hasSubscribers).toBe(true);
    old.error.hasSubscribers = false;
    old.asyncEnd.hasSubscribers = true;
    expect(channel.hasSubscribers).toBe(true);
  });

  it("leaves a channel with Node's own getter untouched", () => {
    const own = diagnosticsChannel.tracingChannel('bulwark:test:own-getter');
    expect(withHasSubscribers(own)).toBe(own);
    expect(Object.getOwnPropertyDescriptor(own, 'hasSubscribers')).toBeUndefined();
    expect(executeChannel.hasSubscribers).toBe(false);
  });
});
