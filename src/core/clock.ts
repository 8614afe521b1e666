/** A timer handle as returned by {@link Clock.setTimeout}. */
export interface TimerHandle {
  ref(): unknown;
  unref(): unknown;
}

/**
 * The source of time for every policy: a monotonic `now()` in milliseconds and one-shot timers.
 * Inject a {@link ManualClock} in tests to drive time by hand.
 * @example
 * const clock = new ManualClock();
 * const breaker = circuitBreaker({ clock, halfOpenAfterMs: 1000 });
 */
export interface Clock {
  /** Monotonic milliseconds; only differences matter. */
  now(): number;
  setTimeout(callback: () => void, ms: number): TimerHandle;
  clearTimeout(handle: TimerHandle): void;
}

/**
 * The real clock: `performance.now()` and Node's timers.
 * @example
 * circuitBreaker({ clock: systemClock });
 */
export const systemClock: Clock = {
  now: performance.now.bind(performance),
  setTimeout: (callback, ms) => setTimeout(callback, ms),
  clearTimeout: (handle) => clearTimeout(handle as ReturnType<typeof setTimeout>),
};

/**
 * Wall-clock time (`Date.now()`) with Node's timers: what rate-limit and quota stores use, so
 * that windows line up with the Redis server's `TIME` and quota periods with the calendar.
 * Algorithms tolerate it stepping backwards.
 * @example
 * memoryStore({ clock: wallClock });
 */
export const wallClock: Clock = {
  now: Date.now,
  setTimeout: systemClock.setTimeout,
  clearTimeout: systemClock.clearTimeout,
};

interface ManualTimer extends TimerHandle {
  readonly at: number;
  readonly seq: number;
  readonly callback: () => void;
  cleared: boolean;
}

/**
 * A clock that only moves when told to, for tests. Timers fire in deadline order during
 * {@link ManualClock.advance}, with pending promise callbacks run between them.
 * @example
 * const clock = new ManualClock();
 * const p = retry({ clock, backoff: constant(100) }).execute(flaky);
 * await clock.advance(100);
 */
export class ManualClock implements Clock {
  #now: number;
  #seq = 0;
  #timers: ManualTimer[] = [];

  constructor(startMs = 0) {
    this.#now = startMs;
  }

  now(): number {
    return this.#now;
  }

  setTimeout(callback: () => void, ms: number): TimerHandle {
    const timer: ManualTimer = {
      at: this.#now + Math.max(0, ms),
      seq: this.#seq++,
      callback,
      cleared: false,
      ref: () => timer,
      unref: () => timer,
    };
    this.#timers.push(timer);
    return timer;
  }

  clearTimeout(handle: TimerHandle): void {
    (handle as ManualTimer).cleared = true;
    this.#timers = this.#timers.filter((t) => t !== handle);
  }

  /** Timers scheduled and not yet fired or cleared. */
  get pendingTimers(): number {
    return this.#timers.length;
  }

  /**
   * Moves time forward by `ms`, firing every timer that falls due, in order, and letting promise
   * callbacks settle after each.
   */
  async advance(ms: number): Promise<void> {
    const target = this.#now + ms;
    await flushMicrotasks();
    for (;;) {
      let next: ManualTimer | undefined;
      for (const t of this.#timers) {
        if (t.at <= target && (next === undefined || t.at < next.at || (t.at === next.at && t.seq < next.seq))) {
          next = t;
        }
      }
      if (next === undefined) break;
      this.#timers = this.#timers.filter((t) => t !== next);
      this.#now = Math.max(this.#now, next.at);
      next.callback();
      await flushMicrotasks();
    }
    this.#now = target;
    await flushMicrotasks();
  }
}

/** Lets already-queued promise callbacks run (a few rounds, then one macrotask turn). */
async function flushMicrotasks(): Promise<void> {
  for (let i = 0; i < 10; i++) await Promise.resolve();
  await new Promise<void>((resolve) => setImmediate(resolve));
}
