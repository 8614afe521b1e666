// These tests use the real clock on purpose: they check what happens to Node's own timers.
// They assert outcomes and timer counts, never elapsed time.
import { describe, expect, it } from 'vitest';
import { timeout, TimeoutError } from '../../../src/index.js';
import { abortListeners } from '../../support/helpers.js';
import { refedTrackedTimers } from '../../support/timer-tracker.js';

describe('timeout on the real clock', () => {
  it('leaves no ref’d timer behind once a call has settled', async () => {
    const before = refedTrackedTimers().length;
    const policy = timeout(60_000);
    expect(await policy.execute(async () => 'done')).toBe('done');
    expect(await policy.execute(() => 'sync')).toBe('sync');
    expect(policy.queue.size).toBe(0);
    expect(refedTrackedTimers().length).toBe(before);
    // The setup guard also fails this test if a ref'd timer is left running.
  });

  it('holds one ref’d timer while calls are pending, however many there are', async () => {
    const before = refedTrackedTimers().length;
    const policy = timeout(60_000);
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    const calls = Array.from({ length: 20 }, (_, i) => policy.execute(() => gate.then(() => i)));
    expect(refedTrackedTimers().length).toBe(before + 1);
    release();
    expect(await Promise.all(calls)).toEqual(Array.from({ length: 20 }, (_, i) => i));
    expect(refedTrackedTimers().length).toBe(before);
  });

  it('rejects a pending call with TimeoutError at the deadline', async () => {
    const policy = timeout(20);
    let signal!: AbortSignal;
    const error = await policy
      .execute(({ signal: s }) => {
        signal = s;
        return new Promise<never>(() => {});
      })
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(TimeoutError);
    expect((error as TimeoutError).timeoutMs).toBe(20);
    expect(signal.reason).toBe(error);
    expect(policy.queue.size).toBe(0);
  });

  it('rejects a cooperative call whose fn honours the signal with TimeoutError', async () => {
    const policy = timeout(20, { strategy: 'cooperative' });
    const caller = new AbortController();
    const error = await policy
      .execute(
        ({ signal }) =>
          new Promise<never>((_, reject) => {
            signal.addEventListener('abort', () => reject(signal.reason), { once: true });
          }),
        { signal: caller.signal },
      )
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(TimeoutError);
    expect(abortListeners(caller.signal)).toBe(0);
  });

  it('times out calls started at different moments, each with its own TimeoutError', async () => {
    const policy = timeout(15);
    const first = policy.execute(() => new Promise<never>(() => {})).catch((e: unknown) => e);
    await new Promise((resolve) => setImmediate(resolve));
    const second = policy.execute(() => new Promise<never>(() => {})).catch((e: unknown) => e);
    const [a, b] = await Promise.all([first, second]);
    expect(a).toBeInstanceOf(TimeoutError);
    expect(b).toBeInstanceOf(TimeoutError);
    expect(a).not.toBe(b);
    expect(policy.queue.size).toBe(0);
  });
});
