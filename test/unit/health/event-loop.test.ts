import { afterEach, describe, expect, it } from 'vitest';
import { eventLoopDelayCheck, health, ManualClock, type Health } from '../../../src/index.js';

function block(ms: number): void {
  const end = performance.now() + ms;
  while (performance.now() < end) {
    // busy: the event loop is blocked
  }
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

describe('eventLoopDelayCheck', () => {
  let h: Health | undefined;
  afterEach(() => h?.dispose());

  it('passes on an idle loop and takes part in liveness and readiness by default', async () => {
    h = health({ checks: [eventLoopDelayCheck({ maxDelayMs: 200 })] });
    await sleep(30);
    const live = await h.liveness();
    expect(live.status).toBe('pass');
    expect(live.checks['event-loop']!.details).toMatchObject({ maxDelayMs: 200 });
    expect((await h.readiness()).checks['event-loop']!.status).toBe('pass');
  });

  it('reports a block on the very next probe, before its sampler has run, then recovers after windowMs', async () => {
    h = health({ checks: [eventLoopDelayCheck({ maxDelayMs: 150, windowMs: 300, sampleIntervalMs: 20 })] });
    await sleep(30);
    block(400);
    const r = await h.readiness();
    expect(r.status).toBe('fail');
    expect(r.checks['event-loop']!.failure).toBe('reported-fail');
    expect(Number(r.checks['event-loop']!.details!.delayMs)).toBeGreaterThanOrEqual(300);
    // Still reported by a probe that comes a little later, within the window.
    await sleep(50);
    expect((await h.liveness()).status).toBe('fail');
    await sleep(400);
    expect((await h.liveness()).status).toBe('pass');
  });

  it('keeps other checks and the shared run consistent across a block (no state corruption)', async () => {
    let calls = 0;
    h = health({
      checks: [
        eventLoopDelayCheck({ maxDelayMs: 100, windowMs: 200, sampleIntervalMs: 20, probes: ['live'] }),
        { name: 'db', timeoutMs: 100, check: () => { calls++; return sleep(30); } },
      ],
    });
    const during = Promise.all([h.readiness(), h.readiness()]);
    block(300);
    const [a, b] = await during;
    // The check's own timer and its timeout both fell due during the block: it ran once and its
    // result is whichever came first, the same for both callers.
    expect(calls).toBe(1);
    expect(a.checks.db).toBe(b.checks.db);
    expect((await h.liveness()).status).toBe('fail');
    const after = await h.readiness();
    expect(after.status).toBe('pass');
    expect(calls).toBe(2);
  });

  it('stops its sampler on health.dispose()', async () => {
    const clock = new ManualClock();
    const check = eventLoopDelayCheck({ clock, sampleIntervalMs: 50 });
    h = health({ clock, checks: [check] });
    expect(clock.pendingTimers).toBe(1);
    await clock.advance(200);
    expect(clock.pendingTimers).toBe(1);
    h.dispose();
    expect(clock.pendingTimers).toBe(0);
  });

  it('with a manual clock, a late sampler counts as a delay', async () => {
    const clock = new ManualClock();
    h = health({ clock, checks: [eventLoopDelayCheck({ clock, maxDelayMs: 1000, sampleIntervalMs: 100, windowMs: 5000 })] });
    // Time jumps without the sampler's timer getting a chance: like a 2 s block.
    (clock as unknown as { now: () => number }).now = () => 2_100;
    const r = await h.liveness();
    expect(r.status).toBe('fail');
    expect(r.checks['event-loop']!.details).toEqual({ delayMs: 2000, maxDelayMs: 1000 });
  });
});
