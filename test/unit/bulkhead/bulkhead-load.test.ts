// RELIABILITY.md row L5: bulkhead 10 + queue 5 under 1,000 calls, some callers abort, some time
// out. Driven by a ManualClock so every run sees the same schedule.
import { describe, expect, it } from 'vitest';
import {
  bulkhead,
  BulkheadRejectedError,
  type ExecutionContext,
  ManualClock,
  pipeline,
  timeout,
  TimeoutError,
} from '../../../src/index.js';
import { abortListeners, capture, type Outcome } from '../../support/helpers.js';

describe('bulkhead under load (L5)', () => {
  it('keeps at most 10 in flight and 5 queued over 1,000 calls while callers abort and calls time out', async () => {
    const clock = new ManualClock();
    const pool = bulkhead({ maxConcurrent: 10, maxQueue: 5 });
    const policy = pipeline(pool, timeout(40, { clock }));

    let inFlight = 0;
    let maxInFlight = 0;
    let maxQueued = 0;
    const started = new Set<number>();
    const startOrder: number[] = [];

    // Every 13th call hangs until its timeout aborts it; every 11th fails on its own; the rest
    // succeed after 1-8 ms. Each fn counts itself in flight until it really stops.
    const work =
      (id: number) =>
      ({ signal }: ExecutionContext): Promise<number> =>
        new Promise<number>((resolve, reject) => {
          started.add(id);
          startOrder.push(id);
          inFlight++;
          maxInFlight = Math.max(maxInFlight, inFlight);
          if (id % 13 === 0) {
            signal.addEventListener(
              'abort',
              () => {
                inFlight--;
                reject(signal.reason);
              },
              { once: true },
            );
            return;
          }
          clock.setTimeout(
            () => {
              inFlight--;
              if (id % 11 === 0) reject(new Error(`failed ${id}`));
              else resolve(id);
            },
            1 + (id % 8),
          );
        });

    const outcomes: Promise<Outcome>[] = [];
    const controllers: AbortController[] = [];
    const reasons = new Map<number, Error>();
    const queuedIds: number[] = [];
    let toAbort: number[] = [];

    const checkBounds = (): void => {
      expect(pool.active).toBeLessThanOrEqual(10);
      expect(pool.queued).toBeLessThanOrEqual(5);
      expect(inFlight).toBeLessThanOrEqual(10);
      maxQueued = Math.max(maxQueued, pool.queued);
    };

    for (let id = 0; id < 1_000; id++) {
      const controller = new AbortController();
      controllers.push(controller);
      const queuedBefore = pool.queued;
      outcomes.push(capture(policy.execute(work(id), { signal: controller.signal })));
      checkBounds();
      if (!started.has(id) && pool.queued === queuedBefore + 1) {
        queuedIds.push(id);
        if (id % 7 === 0) toAbort.push(id);
      }

      if (id % 5 === 4) {
        await clock.advance(1);
        checkBounds();
        // Callers that give up while still waiting for a slot.
        for (const victim of toAbort) {
          if (started.has(victim)) continue;
          const before = pool.queued;
          const reason = new Error(`caller ${victim} gave up`);
          reasons.set(victim, reason);
          controllers[victim]!.abort(reason);
          expect(pool.queued).toBe(before - 1);
          expect(abortListeners(controllers[victim]!.signal)).toBe(0);
        }
        toAbort = [];
      }
    }
    await clock.advance(1_000);

    const results = await Promise.all(outcomes);
    let ran = 0;
    let rejected = 0;
    let aborted = 0;
    let timedOut = 0;
    let failed = 0;
    results.forEach((outcome, id) => {
      if (reasons.has(id)) {
        aborted++;
        expect(outcome).toEqual({ ok: false, error: reasons.get(id) });
        expect(started.has(id)).toBe(false);
        return;
      }
      if (!started.has(id)) {
        rejected++;
        expect(outcome.ok).toBe(false);
        const error = (outcome as { error: unknown }).error;
        expect(error).toBeInstanceOf(BulkheadRejectedError);
        expect(error).toMatchObject({ active: 10, queued: 5 });
        return;
      }
      ran++;
      if (id % 13 === 0) {
        timedOut++;
        expect((outcome as { error: unknown }).error).toBeInstanceOf(TimeoutError);
      } else if (id % 11 === 0) {
        failed++;
        expect((outcome as { error: Error }).error.message).toBe(`failed ${id}`);
      } else {
        expect(outcome).toEqual({ ok: true, value: id });
      }
    });

    // Nothing is lost: every call ran, was rejected at the door, or was abandoned by its caller.
    expect(ran + rejected + aborted).toBe(1_000);
    // No starvation: every queued caller that did not abort got to run, in arrival order.
    const survivors = queuedIds.filter((id) => !reasons.has(id));
    expect(survivors.every((id) => started.has(id))).toBe(true);
    expect(startOrder.filter((id) => queuedIds.includes(id))).toEqual(survivors);

    expect(maxInFlight).toBe(10);
    expect(maxQueued).toBe(5);
    expect(aborted).toBeGreaterThan(0);
    expect(timedOut).toBeGreaterThan(0);
    expect(failed).toBeGreaterThan(0);
    expect(rejected).toBeGreaterThan(0);
    expect(survivors.length).toBeGreaterThan(0);

    expect(inFlight).toBe(0);
    expect(pool.active).toBe(0);
    expect(pool.queued).toBe(0);
    for (const c of controllers) expect(abortListeners(c.signal)).toBe(0);
  });

  it('starts the last waiter as soon as a slot frees when every waiter ahead of it aborted', async () => {
    const pool = bulkhead({ maxConcurrent: 1, maxQueue: 5 });
    let release!: () => void;
    const running = capture(pool.execute(() => new Promise<void>((resolve) => (release = resolve))));
    const controllers = Array.from({ length: 5 }, () => new AbortController());
    const ran: number[] = [];
    const waiting = controllers.map((c, i) =>
      capture(
        pool.execute(
          () => {
            ran.push(i);
            return i;
          },
          { signal: c.signal },
        ),
      ),
    );
    for (const i of [0, 2, 1, 3]) controllers[i]!.abort(`abort ${i}`);
    expect(pool.queued).toBe(1);
    release();
    await running;
    expect(await waiting[4]).toEqual({ ok: true, value: 4 });
    expect(ran).toEqual([4]);
    for (const i of [0, 1, 2, 3]) expect(await waiting[i]).toEqual({ ok: false, error: `abort ${i}` });
  });

  it('leaves the bulkhead idle when every waiter aborts before a slot frees', async () => {
    const pool = bulkhead({ maxConcurrent: 2, maxQueue: 5 });
    const gates: (() => void)[] = [];
    const running = [0, 1].map(() => capture(pool.execute(() => new Promise<void>((r) => gates.push(r)))));
    const controllers = Array.from({ length: 5 }, () => new AbortController());
    const waiting = controllers.map((c) => capture(pool.execute(() => 'never', { signal: c.signal })));
    controllers.forEach((c) => c.abort());
    expect(pool.queued).toBe(0);
    gates.forEach((g) => g());
    await Promise.all(running);
    expect(pool.active).toBe(0);
    expect((await Promise.all(waiting)).every((o) => !o.ok)).toBe(true);
    // Fresh calls are admitted normally afterwards.
    expect(await pool.execute(() => 'fresh')).toBe('fresh');
  });
});
