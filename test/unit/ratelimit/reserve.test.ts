import { describe, expect, it } from 'vitest';
import { ManualClock } from '../../../src/index.js';
import type { RateLimitAlgorithm } from '../../../src/ratelimit/algorithm.js';
import { fixedWindow, gcra, slidingWindow } from '../../../src/ratelimit/algorithms/index.js';
import { memoryStore } from '../../../src/ratelimit/memory-store.js';
import { quota } from '../../../src/ratelimit/quota/quota.js';
import { rateLimiter } from '../../../src/ratelimit/rate-limiter.js';
import type { LimiterDecision, RateLimitStore } from '../../../src/ratelimit/store.js';

// A whole minute (a multiple of every window below), so each test starts at a window's start.
const START = 1_800_000_000_000 - (1_800_000_000_000 % 60_000);

const algorithms: [string, () => RateLimitAlgorithm][] = [
  ['gcra', () => gcra({ limit: 100, periodMs: 60_000 })],
  ['fixedWindow', () => fixedWindow({ limit: 100, windowMs: 60_000 })],
  ['slidingWindow', () => slidingWindow({ limit: 100, windowMs: 60_000 })],
];

/** Units `key` has left: a peek's `remaining` counts the unit it asks about as taken. */
async function left(limiter: { peek(key: string): Promise<LimiterDecision> }, key: string): Promise<number> {
  const d = await limiter.peek(key);
  return d.allowed ? d.remaining + 1 : d.remaining;
}

function setup(algorithm: RateLimitAlgorithm) {
  const clock = new ManualClock(START);
  const store = memoryStore({ clock });
  const limiter = rateLimiter({ name: 'llm', algorithm, store });
  return { clock, store, limiter };
}

describe.each(algorithms)('reserve and settle on the memory store, %s', (_name, make) => {
  it('holds the estimate until settled, then keeps only the actual cost', async () => {
    const { limiter } = setup(make());
    const r = await limiter.reserve('t', { cost: 40 });
    expect(r.allowed).toBe(true);
    expect(r.status).toBe('pending');
    expect(await left(limiter, 't')).toBe(60);
    await expect(r.settle(15)).resolves.toBe('settled');
    expect(r.status).toBe('settled');
    expect(await left(limiter, 't')).toBe(85);
  });

  it('charges an excess even past the limit, capped at one maxCost', async () => {
    const { limiter } = setup(make());
    const r = await limiter.reserve('t', 90);
    await r.settle(130); // 40 over the estimate: the key owes 30 past its limit
    const d = await limiter.peek('t');
    expect(d.allowed).toBe(false);
    expect(d.remaining).toBe(0);
    const huge = await limiter.reserve('u', 10);
    await huge.settle(10 + 1_000_000); // the excess is charged as 100 at most
    expect((await limiter.consume('u')).allowed).toBe(false);
  });

  it('cancel gives the whole estimate back; settle and cancel are idempotent', async () => {
    const { limiter } = setup(make());
    const r = await limiter.reserve('t', 50);
    await expect(r.cancel()).resolves.toBe('cancelled');
    expect(await left(limiter, 't')).toBe(100);
    await expect(r.settle(30)).resolves.toBe('cancelled'); // the first call counts
    await expect(r.cancel()).resolves.toBe('cancelled');
    expect(await left(limiter, 't')).toBe(100);
    const s = await limiter.reserve('t', 50);
    await s.settle(20);
    await s.settle(0);
    await s.cancel();
    expect(await left(limiter, 't')).toBe(80);
  });

  it('denies a reservation larger than what is left, holding nothing', async () => {
    const { limiter } = setup(make());
    await limiter.consume('t', 80);
    const r = await limiter.reserve('t', 30);
    expect(r.allowed).toBe(false);
    expect(r.decision.retryAfterMs).toBeGreaterThan(0);
    expect(r.status).toBe('denied');
    await expect(r.settle(10)).resolves.toBe('denied');
    expect(await left(limiter, 't')).toBe(20);
  });

  it('gives the units of a lease never settled back after leaseMs, and never twice', async () => {
    const { clock, limiter } = setup(make());
    const lost = await limiter.reserve('t', { cost: 60, leaseMs: 5_000 });
    await clock.advance(4_999);
    await (await limiter.reserve('other', 1)).cancel(); // sweeps: nothing has run out yet
    expect(await left(limiter, 't')).toBeLessThanOrEqual(50); // GCRA refills ~8 units in 5 s
    await clock.advance(1);
    await (await limiter.reserve('other', 1)).cancel(); // sweeps the lease that ran out
    expect(await left(limiter, 't')).toBeGreaterThanOrEqual(99);
    // The owner settles late: its units already went back, so the whole actual cost is charged.
    await expect(lost.settle(25)).resolves.toBe('expired');
    expect(lost.status).toBe('expired');
    const after = await left(limiter, 't');
    expect(after).toBeGreaterThanOrEqual(74);
    expect(after).toBeLessThanOrEqual(75);
  });
});

describe('reserve: windows', () => {
  it('gives nothing back to a window other than the one that lent the units', async () => {
    for (const algorithm of [fixedWindow({ limit: 100, windowMs: 60_000 }), slidingWindow({ limit: 100, windowMs: 60_000 })]) {
      const { clock, limiter } = setup(algorithm);
      await clock.advance(59_000);
      const r = await limiter.reserve('t', 80);
      await clock.advance(2_000); // the next window
      await limiter.consume('t', algorithm.kind === 'fixed-window' ? 100 : 1);
      const before = await limiter.peek('t');
      await r.settle(0);
      expect(await limiter.peek('t')).toEqual(before);
    }
  });

  it('a settle in a later window charges its excess to that window', async () => {
    const { clock, limiter } = setup(fixedWindow({ limit: 100, windowMs: 60_000 }));
    await clock.advance(59_000);
    const r = await limiter.reserve('t', 10);
    await clock.advance(2_000);
    await r.settle(25);
    expect(await left(limiter, 't')).toBe(85);
  });
});

describe('reserve: quotas', () => {
  it('reserves and settles against the period, and leases expire', async () => {
    const clock = new ManualClock(Date.UTC(2026, 11, 7, 10));
    const monthly = quota({ limit: 1_000, period: 'month', store: memoryStore({ clock }) });
    const r = await monthly.reserve('tenant', { cost: 400 });
    expect(await left(monthly, 'tenant')).toBe(600);
    await r.settle(120);
    expect(await left(monthly, 'tenant')).toBe(880);
    await monthly.reserve('tenant', { cost: 500, leaseMs: 1_000 });
    await clock.advance(1_000);
    const s = await monthly.reserve('tenant', 1);
    await s.settle(2_000); // past the limit: charged, capped at the limit
    const d = await monthly.peek('tenant');
    expect(d.allowed).toBe(false);
    expect(d.remaining).toBe(0);
  });

  it('names the quota in its errors', async () => {
    const monthly = quota({ limit: 10, period: 'day' });
    await expect(monthly.reserve('t', { cost: 0 })).rejects.toThrow(/^quota\.reserve: option "cost"/);
  });
});

describe('reserve: argument checks', () => {
  const { limiter } = setup(gcra({ limit: 100, periodMs: 60_000 }));

  it('checks cost, leaseMs, signal and unknown options like consume, naming option and value', async () => {
    await expect(limiter.reserve('t', 0)).rejects.toThrow(RangeError);
    await expect(limiter.reserve('t', { cost: 1.5 })).rejects.toThrow(/option "cost".*1\.5/);
    await expect(limiter.reserve('t', { cost: 101 })).rejects.toThrow(/"cost".*101/);
    await expect(limiter.reserve('t', { leaseMs: 0 })).rejects.toThrow(/option "leaseMs".*0/);
    await expect(limiter.reserve('t', { leaseMs: 2.5 })).rejects.toThrow(/option "leaseMs".*2\.5/);
    await expect(limiter.reserve('t', { leaseMs: '5' as unknown as number })).rejects.toThrow(TypeError);
    await expect(limiter.reserve('t', { costs: 1 } as never)).rejects.toThrow(/unknown option "costs"/);
    await expect(limiter.reserve('t', { signal: {} as AbortSignal })).rejects.toThrow(/"signal"/);
    await expect(limiter.reserve('t', { signal: AbortSignal.abort(new Error('gone')) })).rejects.toThrow('gone');
    await expect(limiter.reserve('', 1)).rejects.toThrow(/key/);
    expect(await left(limiter, 't')).toBe(100);
  });

  it('checks the actual cost of a settle, and a bad one settles nothing', async () => {
    const r = await limiter.reserve('a', 10);
    await expect(r.settle(-1)).rejects.toThrow(/"actualCost".*-1/);
    await expect(r.settle(2.5)).rejects.toThrow(RangeError);
    await expect(r.settle('3' as unknown as number)).rejects.toThrow(TypeError);
    expect(r.status).toBe('pending');
    await expect(r.settle(3)).resolves.toBe('settled');
    expect(await left(limiter, 'a')).toBe(97);
  });

  it('refuses a store without reservations, and a disposed limiter', async () => {
    const plain: RateLimitStore = {
      name: 'custom',
      consume: (): LimiterDecision => ({ allowed: true, limit: 1, remaining: 0, resetMs: 0, retryAfterMs: 0, store: 'custom' }),
      peek: (): LimiterDecision => ({ allowed: true, limit: 1, remaining: 0, resetMs: 0, retryAfterMs: 0, store: 'custom' }),
      refund: () => undefined,
      reset: () => undefined,
    };
    const custom = rateLimiter({ algorithm: gcra({ limit: 1, periodMs: 1_000 }), store: plain });
    await expect(custom.reserve('t')).rejects.toThrow(/"custom" does not hold reservations/);
    const gone = rateLimiter({ name: 'gone', algorithm: gcra({ limit: 1, periodMs: 1_000 }) });
    gone.dispose();
    await expect(gone.reserve('t')).rejects.toThrow(/disposed/);
  });
});
