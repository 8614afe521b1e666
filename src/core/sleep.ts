import type { Clock } from './clock.js';
import { offAbort, onAbort as whenAborted } from './shared-abort.js';

/**
 * Waits `ms` on the given clock. Rejects with `signal.reason` as soon as the signal aborts, and
 * leaves no timer or listener behind either way. Follows the signal through its one shared
 * listener: many calls sleeping on one request's signal add no listener each.
 */
export function sleep(clock: Clock, ms: number, signal: AbortSignal | undefined): Promise<void> {
  if (signal?.aborted) return Promise.reject(signal.reason);
  if (ms <= 0) return Promise.resolve();
  return new Promise<void>((resolve, reject) => {
    const onAbort = (): void => {
      clock.clearTimeout(timer);
      reject(signal!.reason);
    };
    const timer = clock.setTimeout(() => {
      if (signal !== undefined) offAbort(signal, onAbort);
      resolve();
    }, ms);
    if (signal !== undefined) whenAborted(signal, onAbort);
  });
}
