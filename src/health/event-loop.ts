import { systemClock, type Clock, type TimerHandle } from '../core/clock.js';
import { checkOptions, clockOption, durationOption, nameOption, show } from '../core/validate.js';
import type { HealthCheck, Probe } from './types.js';

/**
 * Options of {@link eventLoopDelayCheck}.
 * @example
 * const options: EventLoopDelayCheckOptions = { maxDelayMs: 500, windowMs: 5000, probes: ['ready'] };
 */
export interface EventLoopDelayCheckOptions {
  /** The check's name. @default 'event-loop' */
  readonly name?: string;
  /** A delay longer than this fails the check. @default 1000 */
  readonly maxDelayMs?: number;
  /** How long a delay that was seen keeps failing the check, so that a probe arriving later still sees it. @default 10000 */
  readonly windowMs?: number;
  /** How often the sampler's (unref'd) timer looks at the loop. @default 100 */
  readonly sampleIntervalMs?: number;
  /** The probes this check takes part in. @default ['live', 'ready'] */
  readonly probes?: readonly Probe[];
  /** Whether a fail fails its probes. @default true */
  readonly critical?: boolean;
  /** Source of time and timers. @default systemClock */
  readonly clock?: Clock;
}

/**
 * A built-in check that fails when the event loop has been blocked for longer than `maxDelayMs`
 * within the last `windowMs` (or is late right now). One self-rearming, unref'd timer samples the
 * loop; `health.dispose()` stops it (the check's own `dispose`, which that calls).
 * @example
 * const h = health({ checks: [eventLoopDelayCheck({ maxDelayMs: 1000, probes: ['ready'] })] });
 */
export function eventLoopDelayCheck(options?: EventLoopDelayCheckOptions): HealthCheck {
  const owner = 'eventLoopDelayCheck';
  const o = checkOptions(owner, options, ['name', 'maxDelayMs', 'windowMs', 'sampleIntervalMs', 'probes', 'critical', 'clock']);
  const name = nameOption(owner, o.name, 'event-loop');
  const maxDelayMs = durationOption(owner, 'maxDelayMs', o.maxDelayMs, 1000, { exclusiveMin: true });
  const windowMs = durationOption(owner, 'windowMs', o.windowMs, 10_000);
  const intervalMs = durationOption(owner, 'sampleIntervalMs', o.sampleIntervalMs, 100, { exclusiveMin: true });
  const clock = clockOption(owner, o.clock, systemClock);
  if (o.critical !== undefined && typeof o.critical !== 'boolean') {
    throw new TypeError(`${owner}: option "critical" must be a boolean, got ${show(o.critical)}`);
  }

  let expectedAt = clock.now() + intervalMs;
  let worstMs = 0;
  let worstAt = -Infinity;
  let timer: TimerHandle | undefined;
  let disposed = false;

  const note = (delayMs: number, at: number): void => {
    if (delayMs <= maxDelayMs) return;
    worstMs = at - worstAt < windowMs ? Math.max(worstMs, delayMs) : delayMs;
    worstAt = at;
  };
  const tick = (): void => {
    const now = clock.now();
    note(now - expectedAt, now);
    expectedAt = now + intervalMs;
    arm();
  };
  const arm = (): void => {
    if (disposed) return;
    timer = clock.setTimeout(tick, intervalMs);
    timer.unref();
  };
  arm();
  const dispose = (): void => {
    disposed = true;
    if (timer !== undefined) clock.clearTimeout(timer);
  };

  return {
    name,
    probes: o.probes ?? ['live', 'ready'],
    critical: o.critical ?? true,
    check: () => {
      const now = clock.now();
      // The sampler may not have run yet after a long block: its lateness counts too.
      const lateMs = Math.max(0, now - expectedAt);
      note(lateMs, now);
      const recent = now - worstAt < windowMs ? worstMs : 0;
      const delayMs = Math.max(recent, lateMs);
      const details = { delayMs: Math.round(delayMs), maxDelayMs };
      return { status: delayMs > maxDelayMs ? 'fail' : 'pass', details };
    },
    dispose,
    // For code that calls the check's old name itself; `health` calls `dispose` only.
    close: dispose,
  };
}
