import type { Clock } from './clock.js';
import { offAbort, onAbort as whenAborted } from './shared-abort.js';

/**
 * Waits `ms` on the given clock: at least `ms` by the clock's `now()`. Rejects with
 * `signal.reason` as soon as the signal aborts, and leaves no timer or listener behind either
 * way. Follows the signal through its one shared listener: many calls sleeping on one request's
 * signal add no listener each.
 *
 * Node's timers can fire up to a millisecond early by the real clock (libuv measures from the
 * loop time cached when the iteration began), and a wait that honours a limiter's
 * `retryAfterMs` to the millisecond would then be denied again. A timer that fires early is set
 * again for what is left.
 */
export function sleep(clock: Clock, ms: number, signal: AbortSignal | undefined): Promise<void> {
  if (signal?.aborted) return Promise.reject(signal.reason);
  if (ms <= 0) return Promise.resolve();
  return new Promise<void>((resolve, reject) => {
    const due = clock.now() + ms;
    const onAbort = (): void => {
      clock.clearTimeout(timer);
      reject(signal!.reason);
    };
    const fire = (): void => {
      const left = due - clock.now();
      if (left > 0) {
        timer = clock.setTimeout(fire, Math.ceil(left));
        return;
      }
      if (signal !== undefined) offAbort(signal, onAbort);
      resolve();
    };
    let timer = clock.setTimeout(fire, ms);
    if (signal !== undefined) whenAborted(signal, onAbort);
  });
}
