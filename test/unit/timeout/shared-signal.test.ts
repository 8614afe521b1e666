import { describe, expect, it } from 'vitest';
import { type ExecutionContext, hedge, ManualClock, pipeline, type Policy, timeout } from '../../../src/index.js';
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
