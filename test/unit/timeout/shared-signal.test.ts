import { describe, expect, it } from 'vitest';
import { bulkhead, constant, type ExecutionContext, hedge, ManualClock, pipeline, type Policy, retry, timeout } from '../../../src/index.js';
import { abortListeners, deferred, flush } from '../../support/helpers.js';

const CALLS = 20;

type Maker = (clock: ManualClock) => Policy;

const makers: [string, Maker][] = [
  ['timeout alone', (clock) => timeout(1_000, { clock })],
  ['hedge alone', (clock) => hedge({ delayMs: 10, clock })],
  ['pipeline(timeout, hedge)', (clock) => pipeline(timeout(1_000, { clock }), hedge({ delayMs: 10, clock }))],
];

/**
 * Starts CALLS concurrent calls on one request-scoped signal, every attempt reading its signal
 * (as a fetch would), with hedges started; returns the listener count seen meanwhile.
 */
async function concurrentCalls(make: Maker, settle: 'resolve' | 'abort'): Promise<{ during: number; after: number }> {
  const clock = new ManualClock();
  const policy = make(clock);
  const request = new AbortController();
  const attempts: { resolve: (value: string) => void; signal: AbortSignal }[] = [];
  const fn = ({ signal }: ExecutionContext): Promise<string> => {
    const d = deferred<string>();
    attempts.push({ resolve: d.resolve, signal });
    return d.promise;
  };
  const calls = Array.from({ length: CALLS }, () => policy.execute(fn, { signal: request.signal }));
  await clock.advance(10);
  expect(attempts.length).toBeGreaterThanOrEqual(CALLS);
  const during = abortListeners(request.signal);
  if (settle === 'resolve') {
    for (const a of attempts) a.resolve('ok');
    await expect(Promise.all(calls)).resolves.toHaveLength(CALLS);
  } else {
    const reason = new Error('client went away');
    request.abort(reason);
    expect(attempts.every((a) => a.signal.aborted && a.signal.reason === reason)).toBe(true);
    for (const call of calls) await expect(call).rejects.toBe(reason);
  }
  await flush();
  return { during, after: abortListeners(request.signal) };
}

describe("listeners on a caller's signal shared by concurrent calls", () => {
  // Regression (issue 12): every call added two abort listeners to the caller's signal (one in
  // execute(), one in the timeout or hedge), so six concurrent calls on a request's signal set off
  // MaxListenersExceededWarning. Now every call of a bulwark copy shares one listener per signal.
  it.each(makers)('%s: 20 calls add one listener between them, and leave none', async (_label, make) => {
    const { during, after } = await concurrentCalls(make, 'resolve');
    expect(during).toBe(1);
    expect(after).toBe(0);
  });

  it.each(makers)('%s: one abort of the shared signal reaches every attempt and every call', async (_label, make) => {
    const { during, after } = await concurrentCalls(make, 'abort');
    expect(during).toBe(1);
    expect(after).toBe(0);
  });

  it('a call whose function never reads its signal adds no listener beyond the shared one', async () => {
    const clock = new ManualClock();
    const request = new AbortController();
    const policy = pipeline(timeout(1_000, { clock }), hedge({ delayMs: 10, clock }));
    const pending = deferred<string>();
    const calls = Array.from({ length: CALLS }, () => policy.execute(() => pending.promise, { signal: request.signal }));
    await clock.advance(10);
    expect(abortListeners(request.signal)).toBe(1);
    pending.resolve('ok');
    await Promise.all(calls);
    expect(abortListeners(request.signal)).toBe(0);
  });
});

describe("listeners on a caller's signal while calls wait (retry back-off, bulkhead queue)", () => {
  // Regression (issue 12): a retry's sleep between attempts and a bulkhead's queued waiter each
  // added a listener of their own to the caller's signal, so twenty calls waiting on one request's
  // signal set off MaxListenersExceededWarning just as the timeout and hedge did.
  it('20 calls sleeping between retries share one listener, and leave none', async () => {
    const clock = new ManualClock();
    const policy = retry({ maxAttempts: 2, backoff: constant(1_000), clock });
    const request = new AbortController();
    let attempts = 0;
    const calls = Array.from({ length: CALLS }, () =>
      policy.execute(() => (++attempts <= CALLS ? Promise.reject(new Error('busy')) : Promise.resolve('ok')), { signal: request.signal }),
    );
    await flush();
    expect(attempts).toBe(CALLS);
    expect(abortListeners(request.signal)).toBe(1);
    await clock.advance(1_000);
    await expect(Promise.all(calls)).resolves.toHaveLength(CALLS);
    expect(abortListeners(request.signal)).toBe(0);
  });

  it('20 calls queued in a bulkhead share one listener; an abort rejects every one and leaves none', async () => {
    const policy = bulkhead({ maxConcurrent: 1, maxQueue: CALLS });
    const request = new AbortController();
    const running = deferred<string>();
    const first = policy.execute(() => running.promise);
    const queued = Array.from({ length: CALLS }, () => policy.execute(async () => 'late', { signal: request.signal }));
    await flush();
    expect(abortListeners(request.signal)).toBe(1);
    const reason = new Error('client went away');
    request.abort(reason);
    for (const call of queued) await expect(call).rejects.toBe(reason);
    running.resolve('ok');
    await expect(first).resolves.toBe('ok');
    expect(abortListeners(request.signal)).toBe(0);
  });
});
