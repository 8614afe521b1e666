// Work that a policy starts later — a queued bulkhead call, a delayed hedge, a retry after its
// wait, a timeout's event — runs in its own caller's async context, not in the context of
// whichever other call happened to free the slot or arm the shared timer. Tracing depends on it
// (the active span is kept in AsyncLocalStorage), and so does any request-scoped logging.
import { AsyncLocalStorage } from 'node:async_hooks';
import { afterEach, describe, expect, it } from 'vitest';
import { bulkhead, constant, hedge, ManualClock, retry, timeout } from '../../../src/index.js';
import { capture, deferred } from '../../support/helpers.js';

const als = new AsyncLocalStorage<string>();
afterEach(() => {
  als.disable();
});

describe('bulkhead', () => {
  it('starts a queued call in its own caller context, not in the one of the call that freed the slot', async () => {
    // Regression: the waiter was started from the finishing call's continuation, so it ran with
    // that caller's AsyncLocalStorage stores (and its trace span).
    const pool = bulkhead({ maxConcurrent: 1, maxQueue: 2 });
    const gate = deferred<string>();
    const seen: (string | undefined)[] = [];
    const a = als.run('A', () => pool.execute(() => gate.promise));
    const b = als.run('B', () => pool.execute(() => seen.push(als.getStore())));
    const c = als.run('C', () => pool.execute(() => seen.push(als.getStore())));
    expect(pool.queued).toBe(2);
    gate.resolve('a');
    await Promise.all([a, b, c]);
    expect(seen).toEqual(['B', 'C']);
  });

  it('keeps the caller context for code after the queued call settles', async () => {
    const pool = bulkhead({ maxConcurrent: 1, maxQueue: 1 });
    const gate = deferred<void>();
    const a = als.run('A', () => pool.execute(() => gate.promise));
    const b = als.run('B', async () => {
      await pool.execute(() => 'b');
      return als.getStore();
    });
    gate.resolve();
    await a;
    expect(await b).toBe('B');
  });
});

describe('hedge', () => {
  it('starts a delayed hedge in its own caller context, not the timer owner’s (manual clock)', async () => {
    // Regression: one shared timer serves every call's hedge delay, and it fires in the context of
    // the call that armed it (here: of the test, which advances the clock).
    const clock = new ManualClock();
    const policy = hedge({ delayMs: 50, clock });
    const seen: [attempt: number, store: string | undefined][] = [];
    const call = (name: string): Promise<string> =>
      als.run(name, () => {
        let attempts = 0;
        return policy.execute(({ signal }) => {
          seen.push([++attempts, als.getStore()]);
          return attempts === 1
            ? new Promise<string>((_, reject) => signal.addEventListener('abort', () => reject(signal.reason)))
            : `${name} hedged`;
        });
      });
    const a = call('A');
    const b = call('B');
    await clock.advance(50);
    expect(await a).toBe('A hedged');
    expect(await b).toBe('B hedged');
    expect(seen).toEqual([
      [1, 'A'],
      [1, 'B'],
      [2, 'A'],
      [2, 'B'],
    ]);
  });

  it('starts a delayed hedge in its own caller context when another call armed the timer (system clock)', async () => {
    const policy = hedge({ delayMs: 10 });
    // A arms the shared timer and finishes at once; B, queued behind that timer, is hedged from it.
    const a = als.run('A', () => policy.execute(() => 'a'));
    await a;
    const seen: (string | undefined)[] = [];
    const b = als.run('B', () => {
      let attempts = 0;
      return policy.execute(({ signal }) => {
        seen.push(als.getStore());
        return ++attempts === 1
          ? new Promise<string>((_, reject) => signal.addEventListener('abort', () => reject(signal.reason)))
          : 'b hedged';
      });
    });
    expect(await b).toBe('b hedged');
    expect(seen).toEqual(['B', 'B']);
  });
});

describe('retry', () => {
  it('runs each attempt after a wait in the caller context', async () => {
    const policy = retry({ maxAttempts: 3, backoff: constant(2) });
    const attempt = (name: string): Promise<(string | undefined)[]> =>
      als.run(name, async () => {
        const seen: (string | undefined)[] = [];
        await capture(
          policy.execute(() => {
            seen.push(als.getStore());
            return Promise.reject(new Error('again'));
          }),
        );
        return seen;
      });
    const [a, b] = await Promise.all([attempt('A'), attempt('B')]);
    expect(a).toEqual(['A', 'A', 'A']);
    expect(b).toEqual(['B', 'B', 'B']);
  });
});

describe('timeout', () => {
  it('tells timeout listeners in the context of the call that timed out', async () => {
    // Regression: the shared timer expired every call in the context of the call that armed it.
    const clock = new ManualClock();
    const policy = timeout(100, { clock });
    const seen: (string | undefined)[] = [];
    using _ = policy.onTimeout(() => seen.push(als.getStore()));
    const never = (): Promise<never> => new Promise(() => {});
    const a = als.run('A', () => capture(policy.execute(never)));
    const b = als.run('B', () => capture(policy.execute(never)));
    await clock.advance(100);
    await Promise.all([a, b]);
    expect(seen).toEqual(['A', 'B']);
  });

  it("runs a function's abort listeners in its own caller's context, with nobody listening for timeouts", async () => {
    // The expiry aborts each timed-out call's signal from the shared timer; a listener the
    // function added must see its own caller's stores, not those of the call that armed the timer.
    const clock = new ManualClock();
    const policy = timeout(100, { clock });
    const seen: (string | undefined)[] = [];
    const work = ({ signal }: { signal: AbortSignal }): Promise<never> => {
      signal.addEventListener('abort', () => seen.push(als.getStore()));
      return new Promise(() => {});
    };
    const a = als.run('A', () => capture(policy.execute(work)));
    const b = als.run('B', () => capture(policy.execute(work)));
    const c = als.run('C', () => capture(policy.execute(() => new Promise<never>(() => {})))); // never reads its signal
    await clock.advance(100);
    await Promise.all([a, b, c]);
    expect(seen).toEqual(['A', 'B']);
  });
});
