import type { AsyncResource } from 'node:async_hooks';
import type { Clock, TimerHandle } from './clock.js';

/** An item waiting for a deadline; policies embed these fields in their per-call objects. */
export interface DeadlineEntry {
  deadline: number;
  queuePrev: DeadlineEntry | undefined;
  queueNext: DeadlineEntry | undefined;
  queued: boolean;
  /**
   * The async context to expire in. The shared timer fires in the context of whichever call armed
   * it, so an entry whose expiry runs user code or publishes telemetry captures its caller's
   * context when it is queued; undefined runs `expire` in the timer's context.
   */
  scope?: AsyncResource | undefined;
  /** Called once when the deadline passes while the entry is still queued. */
  expire(): void;
}

/**
 * Deadlines that all lie the same distance after their start (one timeout policy, one hedge
 * delay) arrive in order, so one FIFO and one timer serve every call: no timer per call. The timer
 * is armed for the oldest deadline, keeps the process alive only while something is queued, and
 * is not re-armed once the queue is empty.
 */
export class DeadlineQueue {
  private head: DeadlineEntry | undefined = undefined;
  private tail: DeadlineEntry | undefined = undefined;
  private timer: TimerHandle | undefined = undefined;
  private refed = false;

  constructor(private readonly clock: Clock) {}

  /** Adds an entry whose deadline is at or after every queued one. */
  push(entry: DeadlineEntry): void {
    entry.queued = true;
    entry.queueNext = undefined;
    entry.queuePrev = this.tail;
    if (this.tail === undefined) this.head = entry;
    else this.tail.queueNext = entry;
    this.tail = entry;
    if (this.timer === undefined) {
      // No timer means the queue was empty, or we are inside fire() (an expiring entry pushed
      // again); in the latter case older entries may still be queued, so arm for the head.
      this.arm(this.head!.deadline - this.clock.now());
    } else if (!this.refed) {
      this.timer.ref();
      this.refed = true;
    }
  }

  /** Removes a settled entry (no-op when already gone). */
  remove(entry: DeadlineEntry): void {
    if (!entry.queued) return;
    entry.queued = false;
    const { queuePrev: prev, queueNext: next } = entry;
    if (prev === undefined) this.head = next;
    else prev.queueNext = next;
    if (next === undefined) this.tail = prev;
    else next.queuePrev = prev;
    entry.queuePrev = entry.queueNext = undefined;
    if (this.head === undefined && this.refed) {
      this.timer!.unref();
      this.refed = false;
    }
  }

  /** Entries waiting (for tests and diagnostics; walks the whole queue). */
  get size(): number {
    return this.countUpTo(Infinity);
  }

  /** Entries waiting, counted up to `max` at most: what a hot path may ask (no walk past `max`). */
  countUpTo(max: number): number {
    let n = 0;
    for (let e = this.head; e !== undefined && n < max; e = e.queueNext) n++;
    return n;
  }

  private arm(delayMs: number): void {
    this.timer = this.clock.setTimeout(this.fire, Math.max(0, delayMs));
    this.refed = true;
  }

  private readonly fire = (): void => {
    this.timer = undefined;
    this.refed = false;
    const now = this.clock.now();
    let entry = this.head;
    while (entry !== undefined && entry.deadline <= now) {
      this.remove(entry);
      const scope = entry.scope;
      if (scope === undefined) entry.expire();
      else scope.runInAsyncScope(entry.expire, entry);
      entry = this.head;
    }
    if (this.head !== undefined && this.timer === undefined) this.arm(this.head.deadline - now);
  };
}
