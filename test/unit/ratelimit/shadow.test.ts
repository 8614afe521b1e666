// Shadow mode on rate limiters and quotas (issue 15 §3): decisions are made, counted and published
// as in enforce mode, but the `rateLimit` policy lets a denied call run.
import { describe, expect, it } from 'vitest';
import {
  channelNames,
  gcra,
  ManualClock,
  QuotaExceededError,
  RateLimitedError,
  type RateLimitDecisionMessage,
  type RateLimitStore,
  slidingWindow,
} from '../../../src/index.js';
import { memoryStore } from '../../../src/ratelimit/memory-store.js';
import { quota } from '../../../src/ratelimit/quota/quota.js';
import { rateLimit } from '../../../src/ratelimit/rate-limit-policy.js';
import { rateLimiter } from '../../../src/ratelimit/rate-limiter.js';
import { messagesDuring, seeded } from '../../support/shadow.js';

/** The decision messages published while `run` runs. */
const decisionsDuring = (run: () => Promise<void>) => messagesDuring<RateLimitDecisionMessage>(channelNames.rateLimitDecision, run);

function limiterOf(mode: 'enforce' | 'shadow', limit = 2) {
  const clock = new ManualClock(1_000_000);
  const limiter = rateLimiter({ name: 'partner', mode, algorithm: gcra({ limit, periodMs: 1_000 }), store: memoryStore({ clock }) });
  return { clock, limiter, policy: rateLimit(limiter, { key: 'partner' }) };
}

describe('rateLimiter and quota: mode', () => {
  it('default to enforce, take shadow as an option and refuse anything else, naming the option and the value', () => {
    expect(rateLimiter({ algorithm: gcra({ limit: 1, periodMs: 1_000 }) }).mode).toBe('enforce');
    expect(rateLimiter({ name: 'b', algorithm: gcra({ limit: 1, periodMs: 1_000 }), mode: 'shadow' }).mode).toBe('shadow');
    expect(quota({ limit: 1, period: 'day', mode: 'shadow' }).mode).toBe('shadow');
    expect(() => rateLimiter({ name: 'c', algorithm: gcra({ limit: 1, periodMs: 1_000 }), mode: 'dry-run' as never })).toThrow(
      new TypeError('rateLimiter: option "mode" must be "enforce" or "shadow", got "dry-run"'),
    );
    expect(() => quota({ name: 'd', limit: 1, period: 'day', mode: 1 as never })).toThrow(
      new TypeError('quota: option "mode" must be "enforce" or "shadow", got 1'),
    );
  });

  it('refuse an invalid mode assigned at run time, naming it, and keep the one they had', () => {
    const limiter = rateLimiter({ name: 'e', algorithm: gcra({ limit: 1, periodMs: 1_000 }), mode: 'shadow' });
    const monthly = quota({ name: 'f', limit: 1, period: 'month' });
    expect(() => {
      limiter.mode = 'audit' as never;
    }).toThrow(new TypeError('rateLimiter: "mode" must be "enforce" or "shadow", got "audit"'));
    expect(() => {
      monthly.mode = undefined as never;
    }).toThrow(new TypeError('quota: "mode" must be "enforce" or "shadow", got undefined'));
    expect(limiter.mode).toBe('shadow');
    expect(monthly.mode).toBe('enforce');
  });
});

describe('rateLimit over a limiter in shadow mode', () => {
  it('runs a denied call and publishes the denial with mode "shadow"; the denial takes nothing', async () => {
    const { limiter, policy } = limiterOf('shadow');
    let ran = 0;
    const seen = await decisionsDuring(async () => {
      for (let i = 0; i < 4; i++) await expect(policy.execute(() => ++ran)).resolves.toBe(i + 1);
    });
    expect(ran).toBe(4);
    expect(seen.map((m) => [m.decision.allowed, m.mode])).toEqual([
      [true, 'shadow'],
      [true, 'shadow'],
      [false, 'shadow'],
      [false, 'shadow'],
    ]);
    // consume answers as enforcing would: the bucket holds what two admitted calls left.
    expect((await limiter.peek('partner')).allowed).toBe(false);
  });

  it('switched to enforce, rejects at once from the counters it kept; switched back, lets through again', async () => {
    const { limiter, policy, clock } = limiterOf('shadow');
    await policy.execute(() => 1);
    await policy.execute(() => 2);
    await policy.execute(() => 3); // would have been denied
    limiter.mode = 'enforce';
    await expect(policy.execute(() => 4)).rejects.toBeInstanceOf(RateLimitedError);
    limiter.mode = 'shadow';
    await expect(policy.execute(() => 5)).resolves.toBe(5);
    await clock.advance(500); // one unit back
    limiter.mode = 'enforce';
    await expect(policy.execute(() => 6)).resolves.toBe(6);
  });

  it('runs the call when the store fails closed, publishing the denial with mode "shadow"', async () => {
    const decision = { allowed: false, limit: 5, remaining: 0, resetMs: 1_000, retryAfterMs: 1_000, store: 'fail-closed' };
    const down: RateLimitStore = { name: 'down', consume: () => decision, peek: () => decision, refund: () => {}, reset: () => {} };
    const limiter = rateLimiter({ name: 'outage', algorithm: gcra({ limit: 5, periodMs: 1_000 }), store: down, mode: 'shadow' });
    const seen = await decisionsDuring(async () => {
      await expect(rateLimit(limiter, { key: 'k' }).execute(() => 'ran')).resolves.toBe('ran');
    });
    expect(seen).toEqual([{ kind: 'rate-limiter', policy: 'outage', decision, mode: 'shadow' }]);
  });

  it('runs a call a quota in shadow mode denies', async () => {
    const clock = new ManualClock(Date.UTC(2026, 11, 7));
    const daily = quota({ name: 'daily', limit: 3, period: 'day', store: memoryStore({ clock }), mode: 'shadow' });
    const policy = rateLimit(daily, { key: 'tenant', cost: 2 });
    await expect(policy.execute(() => 'a')).resolves.toBe('a');
    await expect(policy.execute(() => 'b')).resolves.toBe('b');
    daily.mode = 'enforce';
    await expect(policy.execute(() => 'c')).rejects.toBeInstanceOf(QuotaExceededError);
  });
});

// Replay equality: the same seeded traffic through a policy over an enforcing limiter and one in
// shadow mode. A denial takes no units in either mode, so the counters are the same at every step
// and the would-deny count equals the enforce-mode rejections.

interface Request {
  readonly gapMs: number;
  readonly key: string;
  readonly cost: number;
}

/** Bursty arrivals over four keys, with costs of 1 to 3 units. */
function traffic(seed: number, count: number): Request[] {
  const next = seeded(seed);
  return Array.from({ length: count }, () => ({
    gapMs: next() < 0.1 ? Math.floor(next() * 600) : Math.floor(next() * 10),
    key: `client-${Math.floor(next() * 4)}`,
    cost: 1 + Math.floor(next() * 3),
  }));
}

type Kind = 'gcra' | 'sliding' | 'quota';

async function replay(kind: Kind, mode: 'enforce' | 'shadow', requests: readonly Request[]) {
  const clock = new ManualClock(Date.UTC(2026, 11, 31, 23, 59)); // the quota's day ends a minute in
  const store = memoryStore({ clock });
  const decider =
    kind === 'quota'
      ? quota({ name: 'replay', limit: 400, period: 'day', store, mode })
      : rateLimiter({
          name: 'replay',
          mode,
          store,
          algorithm: kind === 'gcra' ? gcra({ limit: 10, periodMs: 1_000, burst: 5 }) : slidingWindow({ limit: 10, windowMs: 1_000 }),
        });
  let rejected = 0;
  let ran = 0;
  const seen = await decisionsDuring(async () => {
    for (const request of requests) {
      await clock.advance(request.gapMs);
      await rateLimit(decider, { key: request.key, cost: request.cost })
        .execute(() => ran++)
        .catch((error: unknown) => {
          if (error instanceof RateLimitedError || error instanceof QuotaExceededError) rejected++;
          else throw error;
        });
    }
  });
  const wouldReject = seen.filter((m) => m.mode === 'shadow' && !m.decision.allowed).length;
  return { rejected, wouldReject, ran, remaining: seen.map((m) => m.decision.remaining) };
}

describe('rateLimit: replaying traffic in both modes', () => {
  const requests = traffic(15, 2_000);

  it.each<Kind>(['gcra', 'sliding', 'quota'])('%s: the would-deny count in shadow mode equals the rejections in enforce mode', async (kind) => {
    const enforce = await replay(kind, 'enforce', requests);
    const shadow = await replay(kind, 'shadow', requests);
    expect(enforce.rejected).toBeGreaterThan(100);
    expect(enforce.rejected).toBeLessThan(requests.length - 100);
    expect(shadow.rejected).toBe(0);
    expect(shadow.ran).toBe(requests.length);
    expect(shadow.wouldReject).toBe(enforce.rejected);
    expect(shadow.remaining).toEqual(enforce.remaining);
  });
});
