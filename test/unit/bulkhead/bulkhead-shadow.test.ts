import { describe, expect, it } from 'vitest';
import { bulkhead, BulkheadRejectedError, type BulkheadRejectedEvent } from '../../../src/index.js';
import { deferred } from '../../support/helpers.js';

describe('bulkhead shadow mode', () => {
  it('runs a call it would have rejected, without a slot, and reports it with mode "shadow"', async () => {
    const pool = bulkhead({ maxConcurrent: 1, mode: 'shadow', name: 'pool' });
    expect(pool.mode).toBe('shadow');
    const events: BulkheadRejectedEvent[] = [];
    pool.onRejected((e) => events.push(e));
    const gate = deferred<string>();
    const first = pool.execute(() => gate.promise);
    expect(await pool.execute(() => 'ran anyway')).toBe('ran anyway');
    expect(pool.active).toBe(1);
    expect(events).toEqual([{ policy: 'pool', active: 1, queued: 0, mode: 'shadow' }]);
    gate.resolve('first');
    expect(await first).toBe('first');
    expect(pool.active).toBe(0);
  });

  it('never makes a call wait: one that would have queued runs at once', async () => {
    const pool = bulkhead({ maxConcurrent: 1, maxQueue: 1, mode: 'shadow' });
    const gate = deferred();
    const first = pool.execute(() => gate.promise);
    const started: string[] = [];
    const second = pool.execute(() => void started.push('second'));
    expect(started).toEqual(['second']);
    expect(pool.queued).toBe(0);
    await second;
    gate.resolve();
    await first;
  });

  it('switches at run time without losing its slots; enforce then rejects as usual', async () => {
    const pool = bulkhead({ maxConcurrent: 1 });
    const gate = deferred();
    const held = pool.execute(() => gate.promise);
    pool.mode = 'shadow';
    expect(await pool.execute(() => 1)).toBe(1);
    pool.mode = 'enforce';
    await expect(pool.execute(() => 1)).rejects.toBeInstanceOf(BulkheadRejectedError);
    expect(() => {
      pool.mode = 'off' as never;
    }).toThrow(/bulkhead: "mode" must be "enforce" or "shadow", got "off"/);
    gate.resolve();
    await held;
  });

  it('would-reject count in shadow mode equals the rejection count in enforce mode for the same traffic', async () => {
    const replay = async (mode: 'enforce' | 'shadow'): Promise<number> => {
      const pool = bulkhead({ maxConcurrent: 3, mode });
      let rejected = 0;
      pool.onRejected(() => rejected++);
      const gates = Array.from({ length: 40 }, () => deferred());
      const calls: Promise<unknown>[] = [];
      for (let i = 0; i < 40; i++) {
        calls.push(pool.execute(() => gates[i]!.promise).catch(() => {}));
        if (i % 4 === 3) {
          gates[i - 3]!.resolve();
          await Promise.resolve();
          await Promise.resolve();
        }
      }
      for (const g of gates) g.resolve();
      await Promise.all(calls);
      return rejected;
    };
    const enforced = await replay('enforce');
    expect(enforced).toBeGreaterThan(0);
    expect(await replay('shadow')).toBe(enforced);
  });
});
