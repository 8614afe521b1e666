import { describe, expect, it } from 'vitest';
import { timeout } from '../../../src/index.js';
import { refedTrackedTimers } from '../../support/timer-tracker.js';

describe('the test guard', () => {
  it('sees timers that a test leaves running', () => {
    const before = refedTrackedTimers().length;
    const t = setTimeout(() => {}, 10_000);
    expect(refedTrackedTimers().length).toBe(before + 1);
    clearTimeout(t);
  });

  it('a settled timeout call keeps no timer holding the process open', async () => {
    const policy = timeout(60_000);
    await policy.execute(() => 'done');
    await new Promise((resolve) => setImmediate(resolve));
    // The shared deadline timer is unref'd once nothing is in flight; the guard in setup.ts
    // would fail this test otherwise.
    expect(await policy.execute(async () => 42)).toBe(42);
  });
});
