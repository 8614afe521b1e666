import { subscribe, unsubscribe } from 'node:diagnostics_channel';
import { describe, expect, it } from 'vitest';
import { channelNames, ManualClock, QuotaExceededError } from '../../../../src/index.js';
import { memoryStore } from '../../../../src/ratelimit/memory-store.js';
import { quota } from '../../../../src/ratelimit/quota/quota.js';
import { rateLimit } from '../../../../src/ratelimit/rate-limit-policy.js';

// 30 Nov 2026, 23:30 in Berlin (UTC+1): half an hour before the December period begins.
const lateNovemberBerlin = Date.UTC(2026, 10, 30, 22, 30);
const decemberBerlin = Date.UTC(2026, 10, 30, 23, 0);

function monthly(limit = 100, start = lateNovemberBerlin) {
  const clock = new ManualClock(start);
  const q = quota({ limit, period: 'month', timeZone: 'Europe/Berlin', store: memoryStore({ clock }) });
  return { clock, q };
}

describe('quota', () => {
  it('publishes its decisions as a quota, under its name, without the tenant', async () => {
    const { q } = monthly(100);
    const seen: unknown[] = [];
    const listener = (m: unknown) => seen.push(m);
    subscribe(channelNames.rateLimitDecision, listener);
    try {
      await q.consume('tenant-secret', { cost: 5 });
    } finally {
      unsubscribe(channelNames.rateLimitDecision, listener);
    }
    expect(seen).toEqual([{ kind: 'quota', policy: 'quota', decision: expect.objectContaining({ allowed: true, remaining: 95 }), mode: 'enforce' }]);
    expect(JSON.stringify(seen)).not.toContain('tenant-secret');
  });

  it('counts weighted units per key until the period is used up, and says when it resets', async () => {
    const { q } = monthly(100);
    await expect(q.consume('tenant-a', { cost: 60 })).resolves.toMatchObject({ allowed: true, remaining: 40 });
    await expect(q.consume('tenant-a', { cost: 50 })).resolves.toMatchObject({
      allowed: false,
      remaining: 40,
      resetMs: decemberBerlin - lateNovemberBerlin,
      retryAfterMs: decemberBerlin - lateNovemberBerlin,
    });
    await expect(q.consume('tenant-a', { cost: 40 })).resolves.toMatchObject({ allowed: true, remaining: 0 });
    await expect(q.consume('tenant-b', { cost: 1 })).resolves.toMatchObject({ allowed: true, remaining: 99 });
  });

  it('starts afresh when the calendar period turns over in its time zone', async () => {
    const { clock, q } = monthly(10);
    await q.consume('t', { cost: 10 });
    await expect(q.consume('t')).resolves.toMatchObject({ allowed: false });
    await clock.advance(decemberBerlin - lateNovemberBerlin - 1);
    await expect(q.consume('t')).resolves.toMatchObject({ allowed: false, resetMs: 1 });
    await clock.advance(1);
    const december = await q.consume('t');
    expect(december).toMatchObject({ allowed: true, remaining: 9 });
    // December in Berlin has 31 days.
    expect(december.resetMs).toBe(31 * 24 * 3_600_000);
  });

  it('refund gives units back to the current period; peek takes nothing', async () => {
    const { q } = monthly(10);
    await q.consume('t', { cost: 10 });
    await q.refund('t', 4);
    await expect(q.peek('t', { cost: 4 })).resolves.toMatchObject({ allowed: true, remaining: 0 });
    await expect(q.peek('t', { cost: 5 })).resolves.toMatchObject({ allowed: false });
    await q.refund('t', 100);
    await expect(q.peek('t')).resolves.toMatchObject({ remaining: 9 });
  });

  it('a clock that steps back into the previous period does not hand out its units again', async () => {
    // A store clock that can be set by hand, as a wall clock stepped back by NTP or a failover.
    let now = decemberBerlin + 60_000;
    const clock = { now: () => now, setTimeout: () => ({ ref() {}, unref() {} }), clearTimeout: () => {} };
    const q = quota({ limit: 5, period: 'month', timeZone: 'Europe/Berlin', store: memoryStore({ clock }) });
    await expect(q.consume('t', { cost: 5 })).resolves.toMatchObject({ allowed: true, remaining: 0 });
    now = decemberBerlin - 120_000; // back into November
    // December's usage is kept (and its reset time), instead of a fresh November allowance.
    const decision = await q.consume('t');
    expect(decision).toMatchObject({ allowed: false, remaining: 0 });
    expect(decision.resetMs).toBe(31 * 24 * 3_600_000 + 120_000);
  });

  it('many concurrent weighted consumers never take more than the limit', async () => {
    const { q } = monthly(1_000);
    let seed = 7;
    const rand = () => ((seed = (seed * 1_103_515_245 + 12_345) % 2 ** 31) / 2 ** 31);
    const costs = Array.from({ length: 2_000 }, () => 1 + Math.floor(rand() * 9));
    const decisions = await Promise.all(costs.map((cost) => q.consume('shared', { cost })));
    const admitted = decisions.reduce((sum, d, i) => sum + (d.allowed ? costs[i]! : 0), 0);
    expect(admitted).toBeLessThanOrEqual(1_000);
    expect(admitted).toBeGreaterThan(990); // and it is used, not wasted
    expect(decisions.every((d) => d.remaining >= 0 && Number.isFinite(d.resetMs))).toBe(true);
  });

  it('the rateLimit policy turns a denial into QuotaExceededError with the reset time', async () => {
    const { q } = monthly(1);
    const policy = rateLimit(q, { key: 'tenant' });
    await expect(policy.execute(() => 'ok')).resolves.toBe('ok');
    const error = await policy.execute(() => 'no').catch((e: unknown) => e);
    expect(error).toBeInstanceOf(QuotaExceededError);
    expect(error).toMatchObject({ code: 'ERR_BULWARK_QUOTA_EXCEEDED', limit: 1, resetMs: decemberBerlin - lateNovemberBerlin });
  });

  it.each([
    [undefined, TypeError, /options must be an object/],
    [{ period: 'month' }, TypeError, /"limit"/],
    [{ limit: 0, period: 'month' }, RangeError, /"limit".*0/],
    [{ limit: 10, period: 'year' }, TypeError, /"period".*"year"/],
    [{ limit: 10, period: 'day', timeZone: 'Mars/Olympus' }, RangeError, /"timeZone".*"Mars\/Olympus"/],
    [{ limit: 10, period: 'week', weekStartsOn: 7 }, RangeError, /"weekStartsOn"/],
    [{ limit: 10, period: 'day', tz: 'UTC' }, TypeError, /unknown option "tz"/],
  ])('rejects bad options (%#)', (options, kind, message) => {
    expect(() => quota(options as never)).toThrow(kind);
    expect(() => quota(options as never)).toThrow(message);
  });

  it('rejects a cost above the limit, which could never be admitted', async () => {
    const { q } = monthly(10);
    await expect(q.consume('t', { cost: 11 })).rejects.toThrow(/"cost" must not exceed the limit \(10\)/);
  });
});
