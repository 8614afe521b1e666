import { describe, expect, it } from 'vitest';
import { ManualClock } from '../../../src/core/clock.js';
import { RateLimitedError } from '../../../src/index.js';
import { ADVISED_SHARE, Pacer, type PacingMessage, type SharedPaceStore } from '../../../src/adapters/fetch/pacing/pacer.js';

function pacer(maxWaitMs: number, store?: SharedPaceStore) {
  const clock = new ManualClock();
  const messages: PacingMessage[] = [];
  const p = new Pacer({ name: 'f', maxWaitMs, clock, store, maxKeys: 10, publish: (m) => messages.push(m) });
  return { p, clock, messages };
}
const advertised = (policy: string, extra: Record<string, string> = {}) => new Headers({ 'ratelimit-policy': policy, ...extra });

describe('Pacer (local)', () => {
  it('spaces slots at 98 % of the advertised rate and refuses one beyond maxWaitMs', async () => {
    const { p, clock } = pacer(500);
    p.learn('o', 200, advertised('"p";q=10;w=1'));
    const gap = 1000 / (10 * ADVISED_SHARE);
    const granted: number[] = [];
    const calls = [0, 1, 2, 3, 4].map(() => p.acquire('o', undefined).then(() => granted.push(clock.now())));
    const refused = await p.acquire('o', undefined).catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(RateLimitedError);
    expect((refused as RateLimitedError).retryAfterMs).toBeGreaterThan(500);
    await clock.advance(1_000);
    await Promise.all(calls);
    expect(granted.map((t) => Math.round(t))).toEqual([0, 1, 2, 3, 4].map((i) => Math.round(i * gap)));
  });

  it('a Retry-After blocks every slot until it ends', async () => {
    const { p, clock } = pacer(10_000);
    p.learn('o', 429, new Headers({ 'retry-after': '2' }));
    let at = -1;
    const call = p.acquire('o', undefined).then(() => (at = clock.now()));
    await clock.advance(2_000);
    await call;
    expect(at).toBe(2_000);
  });

  it('AIMD without headers: a 429 halves the rate calls went at, at most once a second; successes add 1/s per second', async () => {
    const { p, clock, messages } = pacer(60_000);
    for (let i = 0; i < 20; i++) await p.acquire('o', undefined); // 20 calls in the first 100 ms: 200/s
    await clock.advance(100);
    p.learn('o', 429, new Headers());
    p.learn('o', 429, new Headers()); // the same overshoot: no second halving
    expect(messages.filter((m) => m.decision === 'learned').map((m) => m.ratePerSec)).toEqual([100]);
    await clock.advance(1_000);
    p.learn('o', 200, new Headers());
    expect(messages.at(-1)!.ratePerSec).toBe(101);
  });

  it('paced at the advertised rate and still refused: halves its share (no store)', () => {
    const { p, messages } = pacer(1_000);
    p.learn('o', 200, advertised('"p";q=10;w=1'));
    p.learn('o', 429, advertised('"p";q=10;w=1'));
    expect(messages.at(-1)!.ratePerSec).toBeCloseTo(10 * ADVISED_SHARE * 0.5);
  });

  it('with a store: its slot decides; a store that cannot answer leaves it to the process', async () => {
    const calls: string[] = [];
    const store: SharedPaceStore = {
      acquire: (key) => {
        calls.push(key);
        return Promise.resolve(key === 'down' ? undefined : { wait: -300, rate: 5 });
      },
      learn: () => {},
      blockedFor: () => Promise.resolve(0),
    };
    const { p } = pacer(100, store);
    const refused = await p.acquire('up', undefined).catch((e: unknown) => e);
    expect(refused).toMatchObject({ retryAfterMs: 300 });
    await expect(p.acquire('down', undefined)).resolves.toBeUndefined();
    expect(calls).toEqual(['up', 'down']);
  });
});
