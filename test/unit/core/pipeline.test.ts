import { describe, expect, it } from 'vitest';
import {
  bulkhead,
  circuitBreaker,
  consecutive,
  constant,
  type ExecuteOptions,
  type ExecutionContext,
  fallback,
  hedge,
  ManualClock,
  pipeline,
  PipelinePolicy,
  type Policy,
  type PolicyFunction,
  retry,
  timeout,
  TimeoutError,
} from '../../../src/index.js';
import { abortListeners, deferred, flush, stateOf } from '../../support/helpers.js';

/** A hand-written policy (not from bulwark) that records when it is entered and left. */
function recorder(name: string, log: string[]): Policy {
  return {
    name,
    async execute<T>(fn: PolicyFunction<T>, options?: ExecuteOptions): Promise<T> {
      log.push(`enter ${name}`);
      try {
        return await fn({ signal: options?.signal ?? new AbortController().signal, attempt: 1 });
      } finally {
        log.push(`exit ${name}`);
      }
    },
  };
}

describe('pipeline order', () => {
  it('runs the first policy outermost and the last innermost', async () => {
    const log: string[] = [];
    const p = pipeline(recorder('a', log), recorder('b', log), recorder('c', log));
    const result = await p.execute(() => {
      log.push('fn');
      return 'done';
    });
    expect(result).toBe('done');
    expect(log).toEqual(['enter a', 'enter b', 'enter c', 'fn', 'exit c', 'exit b', 'exit a']);
  });

  it('with a single policy behaves like that policy', async () => {
    const log: string[] = [];
    await expect(pipeline(recorder('only', log)).execute(() => 7)).resolves.toBe(7);
    expect(log).toEqual(['enter only', 'exit only']);
  });

  it('fallback outside retry lets every attempt run before the value replaces the last error', async () => {
    let calls = 0;
    const p = pipeline(fallback('fallback'), retry({ maxAttempts: 3, backoff: constant(0) }));
    const result = await p.execute(() => {
      calls++;
      throw new Error('down');
    });
    expect(result).toBe('fallback');
    expect(calls).toBe(3);
  });

  it('fallback inside retry turns the first failure into a success, so there is no retry', async () => {
    let calls = 0;
    const p = pipeline(retry({ maxAttempts: 3, backoff: constant(0) }), fallback('fallback'));
    const result = await p.execute(() => {
      calls++;
      throw new Error('down');
    });
    expect(result).toBe('fallback');
    expect(calls).toBe(1);
  });

  it('retry outside a breaker sees the breaker open and stops retrying its BrokenCircuitError', async () => {
    const clock = new ManualClock();
    let calls = 0;
    const p = pipeline(
      retry({ maxAttempts: 5, backoff: constant(0), clock }),
      circuitBreaker({ breaker: consecutive(2), clock }),
    );
    const err = await p
      .execute(() => {
        calls++;
        throw new Error('down');
      })
      .catch((e: unknown) => e);
    // Two failures open the breaker; the third attempt is rejected by it and is not retried.
    expect(calls).toBe(2);
    expect(err).toMatchObject({ code: 'ERR_BULWARK_BROKEN_CIRCUIT' });
  });
});

describe('pipeline context', () => {
  it("passes retry's attempt numbers through a breaker and a timeout to the innermost function", async () => {
    const clock = new ManualClock();
    const attempts: number[] = [];
    const p = pipeline(
      retry({ maxAttempts: 3, backoff: constant(10), clock }),
      circuitBreaker({ clock }),
      timeout(1_000, { clock }),
    );
    const call = p.execute(({ attempt }) => {
      attempts.push(attempt);
      if (attempt < 3) throw new Error(`fail ${attempt}`);
      return attempt;
    });
    await clock.advance(10);
    await clock.advance(10);
    await expect(call).resolves.toBe(3);
    expect(attempts).toEqual([1, 2, 3]);
  });

  it('enters an inner layer only when the layer around it runs its function, once per run', async () => {
    // The untraced path composes the inner layers before the outer one runs: composing must start
    // nothing. An isolated breaker runs nothing inside it; a retry runs the inside once per attempt.
    const clock = new ManualClock();
    const breaker = circuitBreaker({ clock });
    const inner = timeout(1_000, { clock });
    const isolation = breaker.isolate();
    let runs = 0;
    await expect(pipeline(breaker, inner).execute(() => ++runs)).rejects.toThrow();
    expect(runs).toBe(0);
    expect(inner.queue.size).toBe(0);
    isolation[Symbol.dispose]();
    const retried = pipeline(retry({ maxAttempts: 3, backoff: constant(10), clock }), inner);
    const call = retried.execute(({ attempt }) => {
      runs++;
      expect(inner.queue.size).toBe(1);
      if (attempt < 3) throw new Error(`fail ${attempt}`);
      return attempt;
    });
    await clock.advance(10);
    await clock.advance(10);
    await expect(call).resolves.toBe(3);
    expect(runs).toBe(3);
    expect(inner.queue.size).toBe(0);
  });

  it("reaches the innermost function from a hedge's delayed attempt, through the layers inside it", async () => {
    // A composed call finds its function from whatever context the layers pass in: here a hedge's
    // second attempt (a context of its own), then a breaker and a timeout's call inside it.
    const clock = new ManualClock();
    const first = deferred<string>();
    const seen: string[] = [];
    const p = pipeline(hedge({ delayMs: 10, clock }), circuitBreaker({ clock }), timeout(1_000, { clock }));
    const call = p.execute(({ signal }) => {
      seen.push(signal.aborted ? 'aborted' : 'live');
      return seen.length === 1 ? first.promise : 'second';
    });
    await clock.advance(10);
    await expect(call).resolves.toBe('second');
    expect(seen).toEqual(['live', 'live']);
    first.resolve('late');
  });

  it("hands the timeout's signal to the function, aborting it with a TimeoutError at the deadline", async () => {
    const clock = new ManualClock();
    const p = pipeline(retry({ maxAttempts: 1, clock }), timeout(100, { clock }));
    let seen: AbortSignal | undefined;
    const call = p.execute(({ signal }) => {
      seen = signal;
      return new Promise<never>(() => {});
    });
    const outcome = call.catch((e: unknown) => e);
    await flush();
    expect(seen?.aborted).toBe(false);
    await clock.advance(100);
    expect(seen?.aborted).toBe(true);
    expect(seen?.reason).toBeInstanceOf(TimeoutError);
    expect(await outcome).toBeInstanceOf(TimeoutError);
  });

  it("follows the caller's signal through every layer", async () => {
    const clock = new ManualClock();
    const controller = new AbortController();
    const p = pipeline(circuitBreaker({ clock }), timeout(1_000, { clock }));
    const started = deferred<AbortSignal>();
    const call = p.execute(
      ({ signal }) => {
        started.resolve(signal);
        return new Promise<never>((_, reject) => signal.addEventListener('abort', () => reject(signal.reason)));
      },
      { signal: controller.signal },
    );
    const signal = await started.promise;
    controller.abort(new Error('caller gave up'));
    expect(signal.aborted).toBe(true);
    await expect(call).rejects.toThrow('caller gave up');
    expect(abortListeners(controller.signal)).toBe(0);
    await clock.advance(1_000);
  });

  it('runs nested pipelines as one, in order, with the context flowing into the inner one', async () => {
    const log: string[] = [];
    const clock = new ManualClock();
    const inner = pipeline(recorder('inner-a', log), timeout(1_000, { clock }));
    const outer = pipeline(retry({ maxAttempts: 2, backoff: constant(0), clock }), recorder('outer-b', log), inner);
    expect(outer).toBeInstanceOf(PipelinePolicy);
    const attempts: number[] = [];
    const result = await outer.execute(({ attempt }) => {
      attempts.push(attempt);
      log.push('fn');
      if (attempt === 1) throw new Error('once');
      return 'ok';
    });
    expect(result).toBe('ok');
    expect(log).toEqual([
      'enter outer-b',
      'enter inner-a',
      'fn',
      'exit inner-a',
      'exit outer-b',
      'enter outer-b',
      'enter inner-a',
      'fn',
      'exit inner-a',
      'exit outer-b',
    ]);
    expect(attempts).toEqual([1, 2]);
  });
});

describe('pipeline with policies that are not from bulwark', () => {
  it('runs a plain object with an execute method as the outermost layer', async () => {
    const log: string[] = [];
    const p = pipeline(recorder('plain', log), retry({ maxAttempts: 2, backoff: constant(0) }));
    const attempts: number[] = [];
    const result = await p.execute(({ attempt }) => {
      attempts.push(attempt);
      if (attempt === 1) throw new Error('once');
      return 'ok';
    });
    expect(result).toBe('ok');
    expect(attempts).toEqual([1, 2]);
    expect(log).toEqual(['enter plain', 'exit plain']);
  });

  it('runs a plain object with an execute method between bulwark policies', async () => {
    const clock = new ManualClock();
    const log: string[] = [];
    const p = pipeline(
      retry({ maxAttempts: 3, backoff: constant(0), clock }),
      recorder('plain', log),
      timeout(1_000, { clock }),
    );
    const attempts: number[] = [];
    const result = await p.execute(({ attempt, signal }) => {
      attempts.push(attempt);
      expect(signal).toBeInstanceOf(AbortSignal);
      if (attempt < 3) throw new Error('again');
      return attempt;
    });
    expect(result).toBe(3);
    expect(attempts).toEqual([1, 2, 3]);
    expect(log.filter((l) => l === 'enter plain')).toHaveLength(3);
  });

  it('runs a plain object with an execute method as the innermost layer', async () => {
    const log: string[] = [];
    const p = pipeline(retry({ maxAttempts: 1 }), recorder('plain', log));
    await expect(p.execute(() => 'inner')).resolves.toBe('inner');
    expect(log).toEqual(['enter plain', 'exit plain']);
  });

  it("hands a plain policy the caller's signal when the caller gave one", async () => {
    const controller = new AbortController();
    let given: AbortSignal | undefined;
    const plain: Policy = {
      name: 'plain',
      execute<T>(fn: PolicyFunction<T>, options?: ExecuteOptions): Promise<T> {
        given = options?.signal;
        return Promise.resolve(fn({ signal: options!.signal!, attempt: 1 }));
      },
    };
    await pipeline(plain).execute(() => 1, { signal: controller.signal });
    expect(given).toBe(controller.signal);
  });

  it('gives a proper context to what runs inside a plain policy that calls its function without one', async () => {
    const bare: Policy = {
      name: 'bare',
      execute<T>(fn: PolicyFunction<T>): Promise<T> {
        return Promise.resolve((fn as () => T | PromiseLike<T>)());
      },
    };
    const clock = new ManualClock();
    const p = pipeline(retry({ maxAttempts: 2, backoff: constant(0), clock }), bare, timeout(1_000, { clock }));
    const seen: ExecutionContext[] = [];
    const result = await p.execute((ctx) => {
      seen.push(ctx);
      if (ctx.attempt === 1) throw new Error('once');
      return ctx.signal.aborted;
    });
    expect(result).toBe(false);
    expect(seen.map((c) => c.attempt)).toEqual([1, 2]);
  });
});

describe('pipeline context across a policy that is not from bulwark (regression)', () => {
  it('lets the layers inside a plain policy follow the signal that policy passes on', async () => {
    const own = new AbortController();
    const plain: Policy = {
      name: 'plain',
      execute<T>(fn: PolicyFunction<T>): Promise<T> {
        return Promise.resolve(fn({ signal: own.signal, attempt: 1 }));
      },
    };
    const clock = new ManualClock();
    const started = deferred<AbortSignal>();
    const p = pipeline(plain, timeout(1_000, { clock }));
    const call = p.execute(({ signal }) => {
      started.resolve(signal);
      return new Promise<never>((_, reject) => signal.addEventListener('abort', () => reject(signal.reason)));
    });
    const inner = await started.promise;
    own.abort(new Error('plain policy cancelled'));
    expect(inner.aborted).toBe(true);
    await expect(call).rejects.toThrow('plain policy cancelled');
    expect(abortListeners(own.signal)).toBe(0);
    await clock.advance(1_000);
  });

  it("keeps the attempt number of a plain policy's own retries, and ours when it only says 1", async () => {
    const seen: number[] = [];
    const twice: Policy = {
      name: 'twice',
      async execute<T>(fn: PolicyFunction<T>): Promise<T> {
        await fn({ signal: new AbortController().signal, attempt: 1 });
        return fn({ signal: new AbortController().signal, attempt: 2 });
      },
    };
    await pipeline(twice, circuitBreaker()).execute(({ attempt }) => {
      seen.push(attempt);
    });
    expect(seen).toEqual([1, 2]);

    const seenUnderRetry: number[] = [];
    const ones: Policy = {
      name: 'ones',
      execute<T>(fn: PolicyFunction<T>): Promise<T> {
        return Promise.resolve(fn({ signal: new AbortController().signal, attempt: 1 }));
      },
    };
    await pipeline(retry({ maxAttempts: 3, backoff: constant(0) }), ones).execute(({ attempt }) => {
      seenUnderRetry.push(attempt);
      if (attempt < 3) throw new Error('again');
    });
    expect(seenUnderRetry).toEqual([1, 2, 3]);
  });

  it('rejects rather than throws when a plain outermost policy throws synchronously', async () => {
    const broken: Policy = {
      name: 'broken',
      execute(): Promise<never> {
        throw new Error('sync throw in execute');
      },
    };
    const p = pipeline(broken, retry());
    let call: Promise<unknown> | undefined;
    expect(() => {
      call = p.execute(() => 1);
    }).not.toThrow();
    await expect(call).rejects.toThrow('sync throw in execute');
  });

  it('returns a native promise when a plain outermost policy returns a bare value or a foreign thenable', async () => {
    const bare = {
      name: 'bare',
      execute: (fn: PolicyFunction<unknown>) => fn({ signal: new AbortController().signal, attempt: 1 }),
    } as unknown as Policy;
    const thenable = {
      name: 'thenable',
      execute: () => ({ then: (resolve: (v: string) => void) => resolve('from thenable') }),
    } as unknown as Policy;
    const a = pipeline(bare).execute(() => 'value');
    const b = pipeline(thenable).execute(() => 'ignored');
    expect(a).toBeInstanceOf(Promise);
    expect(b).toBeInstanceOf(Promise);
    await expect(a).resolves.toBe('value');
    await expect(b).resolves.toBe('from thenable');
  });

  it('ignores an attempt or signal of the wrong type passed on by a plain policy', async () => {
    const odd: Policy = {
      name: 'odd',
      execute<T>(fn: PolicyFunction<T>): Promise<T> {
        return Promise.resolve(fn({ signal: 'nope', attempt: '7' } as unknown as ExecutionContext));
      },
    };
    const ctx = await pipeline(odd).execute((c) => ({ attempt: c.attempt, signal: c.signal }));
    expect(ctx.attempt).toBe(1);
    expect(ctx.signal).toBeInstanceOf(AbortSignal);
  });
});

describe('pipeline with real policies', () => {
  it('retries through a hedge and a bulkhead without leaking slots', async () => {
    const clock = new ManualClock();
    const pool = bulkhead({ maxConcurrent: 1 });
    const p = pipeline(retry({ maxAttempts: 2, backoff: constant(0), clock }), pool, hedge({ delayMs: 50, clock }));
    let calls = 0;
    const result = await p.execute(() => {
      calls++;
      if (calls === 1) throw new Error('first');
      return 'ok';
    });
    // The hedge retries the failed first attempt at once (trigger 'failure'), so retry never needs to.
    expect(result).toBe('ok');
    expect(calls).toBe(2);
    expect(pool.active).toBe(0);
    await clock.advance(50);
    expect(clock.pendingTimers).toBe(0);
  });

  it('leaves no call pending and no timer behind after a timed-out attempt is retried', async () => {
    const clock = new ManualClock();
    const p = pipeline(retry({ maxAttempts: 2, backoff: constant(0), clock }), timeout(10, { clock }));
    const first = deferred<string>();
    let calls = 0;
    const call = p.execute(() => {
      calls++;
      return calls === 1 ? first.promise : 'second';
    });
    expect(await stateOf(call)).toBe('pending');
    await clock.advance(10);
    await expect(call).resolves.toBe('second');
    first.resolve('late');
    await clock.advance(10);
    expect(clock.pendingTimers).toBe(0);
  });
});

describe('pipeline arguments', () => {
  it('throws a TypeError when given no policies', () => {
    expect(() => (pipeline as () => unknown)()).toThrow(TypeError);
    expect(() => (pipeline as () => unknown)()).toThrow(/at least one policy/);
  });

  it.each([
    ['a number', [retry(), 5], 2, '5'],
    ['null', [null], 1, 'null'],
    ['undefined', [timeout(5), retry(), undefined], 3, 'undefined'],
    ['a string', ['retry'], 1, '"retry"'],
    ['a bare function', [() => 1], 1, 'a function'],
    ['an object without execute', [retry(), { name: 'x' }], 2, 'an object'],
    ['an object whose execute is not a function', [{ execute: true }], 1, 'an object'],
  ])('throws a TypeError naming the argument position for %s', (_label, args, position, shown) => {
    const call = (): unknown => (pipeline as (...a: unknown[]) => unknown)(...args);
    expect(call).toThrow(TypeError);
    expect(call).toThrow(`argument ${position} must be a policy, got ${shown}`);
  });

  it('rejects a non-function passed to execute with a TypeError instead of throwing', async () => {
    const p = pipeline(retry());
    await expect(p.execute(42 as unknown as PolicyFunction<number>)).rejects.toThrow(TypeError);
  });

  it('rejects at once with the reason when the caller signal is already aborted, running nothing', async () => {
    const controller = new AbortController();
    controller.abort(new Error('too late'));
    let ran = false;
    const p = pipeline(retry(), timeout(1_000));
    await expect(
      p.execute(
        () => {
          ran = true;
        },
        { signal: controller.signal },
      ),
    ).rejects.toThrow('too late');
    expect(ran).toBe(false);
  });

  it('reports its kind and name, and keeps its policies outermost first', () => {
    const r = retry();
    const t = timeout(5);
    const p = pipeline(r, t);
    expect(p.kind).toBe('pipeline');
    expect(p.name).toBe('pipeline');
    expect(p.policies).toEqual([r, t]);
  });

  it('copies the argument list, so later changes to an array spread into it do not matter', async () => {
    const list: Policy[] = [retry({ maxAttempts: 1 })];
    const p = pipeline(...list);
    list.push(fallback('x') as Policy);
    await expect(p.execute(() => Promise.reject(new Error('no fallback')))).rejects.toThrow('no fallback');
  });
});
