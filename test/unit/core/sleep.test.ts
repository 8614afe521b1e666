import { describe, expect, it } from 'vitest';
import type { Clock, TimerHandle } from '../../../src/core/clock.js';
import { sleep } from '../../../src/core/sleep.js';
import { abortListeners, flush } from '../../support/helpers.js';

/** A clock whose timers fire only when the test says, at whatever time the test has set. */
function earlyClock() {
  let now = 1_000;
  const timers: { callback: () => void; ms: number; cleared: boolean }[] = [];
  const handle: TimerHandle = { ref: () => handle, unref: () => handle };
  const clock: Clock = {
    now: () => now,
    setTimeout: (callback, ms) => {
      timers.push({ callback, ms, cleared: false });
      return handle;
    },
    clearTimeout: () => {
      for (const t of timers) t.cleared = true;
    },
  };
  return {
    clock,
    timers,
    at: (ms: number) => {
      now = ms;
    },
    fireLast: () => timers.at(-1)!.callback(),
  };
}

describe('sleep', () => {
  // Regression: Node's timers can fire up to a millisecond early by the real clock, so a retry
  // that waited a limiter's retryAfterMs exactly was sometimes denied again ("retry after 1 ms").
  it('a timer that fires before the wait is over is set again for what is left', async () => {
    const c = earlyClock();
    let done = false;
    const waiting = sleep(c.clock, 50, undefined).then(() => {
      done = true;
    });
    expect(c.timers.map((t) => t.ms)).toEqual([50]);
    c.at(1_049.2); // fired 0.8 ms early
    c.fireLast();
    await flush();
    expect(done).toBe(false);
    expect(c.timers.map((t) => t.ms)).toEqual([50, 1]);
    c.at(1_050);
    c.fireLast();
    await waiting;
    expect(done).toBe(true);
  });

  it('a timer that fires on time resolves at once, and leaves no listener on the signal', async () => {
    const c = earlyClock();
    const controller = new AbortController();
    const waiting = sleep(c.clock, 50, controller.signal);
    expect(abortListeners(controller.signal)).toBe(1);
    c.at(1_050);
    c.fireLast();
    await waiting;
    expect(c.timers).toHaveLength(1);
    expect(abortListeners(controller.signal)).toBe(0);
  });

  it('an abort during the second timer rejects with the reason and clears it', async () => {
    const c = earlyClock();
    const controller = new AbortController();
    const waiting = sleep(c.clock, 50, controller.signal);
    c.at(1_049.5);
    c.fireLast();
    const reason = new Error('gone');
    controller.abort(reason);
    await expect(waiting).rejects.toBe(reason);
    expect(c.timers.every((t) => t.cleared)).toBe(true);
  });
});
