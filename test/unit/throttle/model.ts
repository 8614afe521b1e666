// A modelled upstream and an open-loop client for the adaptive throttle's figures (issue 16 §2),
// on a clock the model moves itself: deterministic, and fast enough to run minutes of traffic.
import type { AdaptiveThrottlePolicy, Clock, TimerHandle } from '../../../src/index.js';

/** A clock whose time the test sets; the throttle sets no timers, so these are never used. */
export class SteppedClock implements Clock {
  ms = 0;
  now(): number {
    return this.ms;
  }
  setTimeout(): TimerHandle {
    throw new Error('the throttle should set no timer');
  }
  clearTimeout(): void {}
}

/** A seeded source of numbers in [0, 1) (a linear congruential generator): the same run every time. */
export function seeded(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1_664_525) + 1_013_904_223) >>> 0;
    return s / 2 ** 32;
  };
}

/** What an upstream does with a call that reaches it at `ms`: true to accept, false to refuse. */
export type Upstream = (ms: number) => boolean;

/** An upstream accepting at most `perSecond` calls in each second (a fixed window) and refusing the rest. */
export function capacity(perSecond: number): Upstream {
  let second = -1;
  let used = 0;
  return (ms) => {
    const s = Math.floor(ms / 1000);
    if (s !== second) {
      second = s;
      used = 0;
    }
    return used++ < perSecond;
  };
}

/** Per second of a run: calls offered, locally rejected, sent to the upstream, accepted by it. */
export interface Second {
  offered: number;
  rejected: number;
  sent: number;
  accepted: number;
}

/** Upstream refusal, as a 429 or 503 would be seen. */
export class Refused extends Error {
  override name = 'Refused';
}

/**
 * Offers `perSecond` calls a second, evenly spaced, through `throttle` to the upstream `decide`
 * gives for each moment, from `fromMs` for `seconds`; each call settles at once. Returns each
 * second's counts.
 */
export async function drive(
  throttle: AdaptiveThrottlePolicy,
  clock: SteppedClock,
  perSecond: number,
  seconds: number,
  decide: Upstream,
  fromMs = clock.ms,
): Promise<Second[]> {
  const out: Second[] = Array.from({ length: seconds }, () => ({ offered: 0, rejected: 0, sent: 0, accepted: 0 }));
  const total = perSecond * seconds;
  for (let i = 0; i < total; i++) {
    clock.ms = fromMs + (i * 1000) / perSecond;
    const second = out[Math.floor(i / perSecond)]!;
    second.offered++;
    let reached = false;
    let ok = false;
    try {
      await throttle.execute(() => {
        reached = true;
        ok = decide(clock.ms);
        if (!ok) throw new Refused('refused');
        return ok;
      });
    } catch {
      // Refused upstream, or rejected locally: told apart below.
    }
    if (!reached) second.rejected++;
    else {
      second.sent++;
      if (ok) second.accepted++;
    }
  }
  clock.ms = fromMs + seconds * 1000;
  return out;
}

/** Mean of one field over seconds. */
export function mean(seconds: readonly Second[], field: keyof Second): number {
  return seconds.reduce((sum, s) => sum + s[field], 0) / seconds.length;
}
