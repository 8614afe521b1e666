import { describe, expect, it } from 'vitest';
import { type Clock, ManualClock, type TimerHandle } from '../../../src/core/clock.js';
import { DeadlineQueue, type DeadlineEntry } from '../../../src/core/deadline-queue.js';

/** A timer as seen by the tracking clock: when it is due and whether it holds the process open. */
interface TrackedTimer {
  readonly at: number;
  refed: boolean;
  fired: boolean;
  cleared: boolean;
}

/**
 * A ManualClock that also records every timer it hands out and the ref/unref calls made on it,
 * since ManualClock's own handles treat ref/unref as no-ops.
 */
class TrackingClock implements Clock {
  readonly manual = new ManualClock();
  readonly timers: TrackedTimer[] = [];

  now(): number {
    return this.manual.now();
  }

  setTimeout(callback: () => void, ms: number): TimerHandle {
    const tracked: TrackedTimer = { at: this.manual.now() + Math.max(0, ms), refed: true, fired: false, cleared: false };
    this.timers.push(tracked);
    const inner = this.manual.setTimeout(() => {
      tracked.fired = true;
      callback();
    }, ms);
    const handle = {
      inner,
      tracked,
      ref: () => {
        tracked.refed = true;
        return handle;
      },
      unref: () => {
        tracked.refed = false;
        return handle;
      },
    };
    return handle;
  }

  clearTimeout(handle: TimerHandle): void {
    const h = handle as TimerHandle & { inner: TimerHandle; tracked: TrackedTimer };
    this.manual.clearTimeout(h.inner);
    h.tracked.cleared = true;
  }

  advance(ms: number): Promise<void> {
    return this.manual.advance(ms);
  }

  /** Timers not yet fired or cleared. */
  get live(): TrackedTimer[] {
    return this.timers.filter((t) => !t.fired && !t.cleared);
  }
}

/** A queue entry that records when it expired. */
class Entry implements DeadlineEntry {
  queuePrev: DeadlineEntry | undefined = undefined;
  queueNext: DeadlineEntry | undefined = undefined;
  queued = false;
  expiredAt: number[] = [];

  constructor(
    readonly label: string,
    public deadline: number,
    private readonly clock: Clock,
    private readonly log: string[],
    private readonly onExpire?: () => void,
  ) {}

  expire(): void {
    this.expiredAt.push(this.clock.now());
    this.log.push(this.label);
    this.onExpire?.();
  }
}

function setup(): {
  clock: TrackingClock;
  queue: DeadlineQueue;
  log: string[];
  entry: (label: string, deadline: number, onExpire?: () => void) => Entry;
} {
  const clock = new TrackingClock();
  const queue = new DeadlineQueue(clock);
  const log: string[] = [];
  return { clock, queue, log, entry: (label, deadline, onExpire) => new Entry(label, deadline, clock, log, onExpire) };
}

describe('DeadlineQueue', () => {
  it('expires entries in deadline order, each exactly at its deadline', async () => {
    const { clock, queue, log, entry } = setup();
    const a = entry('a', 100);
    const b = entry('b', 130);
    const c = entry('c', 160);
    queue.push(a);
    await clock.advance(30);
    queue.push(b);
    await clock.advance(30);
    queue.push(c);

    await clock.advance(39); // t = 99
    expect(log).toEqual([]);
    await clock.advance(1); // t = 100
    expect(log).toEqual(['a']);
    await clock.advance(60); // t = 160
    expect(log).toEqual(['a', 'b', 'c']);
    expect(a.expiredAt).toEqual([100]);
    expect(b.expiredAt).toEqual([130]);
    expect(c.expiredAt).toEqual([160]);
    expect(queue.size).toBe(0);
  });

  it('expires entries that share a deadline in the order they were pushed', async () => {
    const { clock, queue, log, entry } = setup();
    for (const label of ['a', 'b', 'c', 'd']) queue.push(entry(label, 50));
    await clock.advance(50);
    expect(log).toEqual(['a', 'b', 'c', 'd']);
  });

  it('uses one timer however many entries are queued', () => {
    const { clock, queue, entry } = setup();
    for (let i = 0; i < 100; i++) queue.push(entry(`e${i}`, 100));
    expect(queue.size).toBe(100);
    expect([queue.countUpTo(0), queue.countUpTo(1), queue.countUpTo(2), queue.countUpTo(500)]).toEqual([0, 1, 2, 100]);
    expect(clock.timers).toHaveLength(1);
    expect(clock.manual.pendingTimers).toBe(1);
  });

  it('marks entries as queued while in the queue and unmarks them when removed or expired', async () => {
    const { clock, queue, entry } = setup();
    const a = entry('a', 10);
    const b = entry('b', 20);
    queue.push(a);
    queue.push(b);
    expect(a.queued).toBe(true);
    expect(b.queued).toBe(true);
    queue.remove(b);
    expect(b.queued).toBe(false);
    expect(b.queuePrev).toBeUndefined();
    expect(b.queueNext).toBeUndefined();
    await clock.advance(10);
    expect(a.queued).toBe(false);
  });

  it('never expires a removed middle entry and still expires its neighbours', async () => {
    const { clock, queue, log, entry } = setup();
    const a = entry('a', 100);
    const b = entry('b', 110);
    const c = entry('c', 120);
    queue.push(a);
    queue.push(b);
    queue.push(c);
    queue.remove(b);
    expect(queue.size).toBe(2);
    await clock.advance(200);
    expect(log).toEqual(['a', 'c']);
    expect(c.expiredAt).toEqual([120]);
  });

  it('re-arms for the new head when the head is removed before its deadline', async () => {
    const { clock, queue, log, entry } = setup();
    const a = entry('a', 100);
    const b = entry('b', 150);
    queue.push(a);
    queue.push(b);
    queue.remove(a);
    await clock.advance(100); // the timer armed for a fires, finds nothing due, re-arms
    expect(log).toEqual([]);
    expect(clock.live.map((t) => t.at)).toEqual([150]);
    await clock.advance(49);
    expect(log).toEqual([]);
    await clock.advance(1);
    expect(log).toEqual(['b']);
    expect(b.expiredAt).toEqual([150]);
  });

  it('never expires a removed tail entry', async () => {
    const { clock, queue, log, entry } = setup();
    const a = entry('a', 100);
    const b = entry('b', 150);
    queue.push(a);
    queue.push(b);
    queue.remove(b);
    await clock.advance(500);
    expect(log).toEqual(['a']);
    expect(queue.size).toBe(0);
  });

  it('keeps working when entries are pushed after a tail removal', async () => {
    const { clock, queue, log, entry } = setup();
    const a = entry('a', 100);
    const b = entry('b', 110);
    const c = entry('c', 120);
    queue.push(a);
    queue.push(b);
    queue.remove(b);
    queue.push(c);
    expect(queue.size).toBe(2);
    await clock.advance(200);
    expect(log).toEqual(['a', 'c']);
  });

  it('treats removing an entry twice, or one never pushed, as a no-op', async () => {
    const { clock, queue, log, entry } = setup();
    const a = entry('a', 100);
    const b = entry('b', 100);
    const stranger = entry('x', 100);
    queue.push(a);
    queue.push(b);
    queue.remove(a);
    queue.remove(a);
    queue.remove(stranger);
    expect(queue.size).toBe(1);
    await clock.advance(100);
    expect(log).toEqual(['b']);
  });

  it('treats removing an already expired entry as a no-op', async () => {
    const { clock, queue, log, entry } = setup();
    const a = entry('a', 100);
    const b = entry('b', 200);
    queue.push(a);
    queue.push(b);
    await clock.advance(100);
    queue.remove(a);
    expect(queue.size).toBe(1);
    await clock.advance(100);
    expect(log).toEqual(['a', 'b']);
  });

  it('calls expire once per entry', async () => {
    const { clock, queue, entry } = setup();
    const a = entry('a', 10);
    queue.push(a);
    await clock.advance(10);
    await clock.advance(1_000);
    expect(a.expiredAt).toEqual([10]);
  });

  it('arms the timer for the next head after expiring the due ones', async () => {
    const { clock, queue, entry } = setup();
    queue.push(entry('a', 100));
    await clock.advance(40);
    queue.push(entry('b', 140));
    expect(clock.timers.map((t) => t.at)).toEqual([100]);
    await clock.advance(60); // t = 100
    expect(clock.live.map((t) => t.at)).toEqual([140]);
    await clock.advance(40);
    expect(clock.live).toEqual([]);
  });

  it('keeps the timer ref’d only while something is queued', () => {
    const { clock, queue, entry } = setup();
    const a = entry('a', 100);
    const b = entry('b', 100);
    queue.push(a);
    const timer = clock.timers[0]!;
    expect(timer.refed).toBe(true);
    queue.push(b);
    queue.remove(a);
    expect(timer.refed).toBe(true);
    queue.remove(b);
    expect(timer.refed).toBe(false);
    // A new entry reuses the pending timer and refs it again instead of making another.
    const c = entry('c', 100);
    queue.push(c);
    expect(clock.timers).toHaveLength(1);
    expect(timer.refed).toBe(true);
    queue.remove(c);
    expect(timer.refed).toBe(false);
  });

  it('does not re-arm once the queue is empty when the timer fires', async () => {
    const { clock, queue, entry } = setup();
    const a = entry('a', 100);
    queue.push(a);
    queue.remove(a);
    await clock.advance(100);
    expect(clock.timers).toHaveLength(1);
    expect(clock.manual.pendingTimers).toBe(0);
  });

  it('does not re-arm after expiring the last entry', async () => {
    const { clock, queue, entry } = setup();
    queue.push(entry('a', 100));
    await clock.advance(100);
    expect(clock.manual.pendingTimers).toBe(0);
    expect(clock.timers).toHaveLength(1);
  });

  it('arms a fresh timer for an entry pushed after the queue went idle', async () => {
    const { clock, queue, log, entry } = setup();
    queue.push(entry('a', 100));
    await clock.advance(100);
    queue.push(entry('b', 300));
    expect(clock.live.map((t) => t.at)).toEqual([300]);
    expect(clock.live[0]!.refed).toBe(true);
    await clock.advance(200);
    expect(log).toEqual(['a', 'b']);
  });

  it('fires at once for an entry whose deadline has already passed', async () => {
    const { clock, queue, log, entry } = setup();
    await clock.advance(50);
    queue.push(entry('late', 20));
    await clock.advance(0);
    expect(log).toEqual(['late']);
  });

  it('lets an expiring entry remove a later entry', async () => {
    const { clock, queue, log, entry } = setup();
    const b = entry('b', 100);
    const a = entry('a', 100, () => queue.remove(b));
    queue.push(a);
    queue.push(b);
    await clock.advance(100);
    expect(log).toEqual(['a']);
    expect(queue.size).toBe(0);
  });

  it('still expires queued entries on time when an expiring entry pushes a new one', async () => {
    // Regression: a push made from inside expire() used to arm the timer for the new entry's
    // deadline, so entries already queued between the two were expired late.
    const { clock, queue, log, entry } = setup();
    const a = entry('a', 100, () => queue.push(entry('c', clock.now() + 100)));
    queue.push(a);
    await clock.advance(50);
    const b = entry('b', 150);
    queue.push(b);

    await clock.advance(50); // t = 100: a expires and pushes c (deadline 200)
    expect(log).toEqual(['a']);
    await clock.advance(50); // t = 150
    expect(log).toEqual(['a', 'b']);
    expect(b.expiredAt).toEqual([150]);
    await clock.advance(50); // t = 200
    expect(log).toEqual(['a', 'b', 'c']);
    expect(clock.manual.pendingTimers).toBe(0);
  });

  it('lets an expiring entry push itself again (as a hedge does)', async () => {
    const { clock, queue, entry } = setup();
    let rounds = 0;
    const a: Entry = entry('a', 100, () => {
      if (++rounds < 3) {
        a.deadline = clock.now() + 100;
        queue.push(a);
      }
    });
    queue.push(a);
    await clock.advance(300);
    expect(a.expiredAt).toEqual([100, 200, 300]);
    expect(queue.size).toBe(0);
  });
});
