// bulwark/fetch's `adaptiveThrottle` option: one throttle per origin, inside the origin's breaker,
// judging what each attempt brought back.
import { describe, expect, it, vi } from 'vitest';
import { createFetch } from '../../../src/adapters/fetch.js';
import { constant, ManualClock, ThrottledError } from '../../../src/index.js';
import { capture, rejection } from '../../support/helpers.js';

/** A fetch answering each origin with its own status (or error), counting the requests that went out. */
function origins(answers: Record<string, number | Error>) {
  const sent: Record<string, number> = {};
  const fetch = (input: Parameters<typeof globalThis.fetch>[0]): Promise<Response> => {
    const origin = new URL(input instanceof Request ? input.url : String(input)).origin;
    sent[origin] = (sent[origin] ?? 0) + 1;
    const answer = answers[origin]!;
    return answer instanceof Error ? Promise.reject(answer) : Promise.resolve(new Response(`status ${answer}`, { status: answer }));
  };
  return { fetch: fetch as typeof globalThis.fetch, sent };
}

const busy = 'http://busy.test';
const fine = 'http://fine.test';

describe('createFetch({ adaptiveThrottle })', () => {
  it('keeps one throttle per origin: a refusing origin is throttled, another is not', async () => {
    const o = origins({ [busy]: 503, [fine]: 200 });
    const f = createFetch({
      fetch: o.fetch,
      retry: false,
      circuitBreaker: false,
      adaptiveThrottle: { minRequests: 10 },
      clock: new ManualClock(),
    });
    const outcomes: unknown[] = [];
    for (let i = 0; i < 200; i++) outcomes.push(await capture(f(`${busy}/x`)));
    for (let i = 0; i < 50; i++) expect((await f(`${fine}/x`)).status).toBe(200);
    const throttled = outcomes.filter((r) => (r as { ok: boolean; error?: unknown }).error instanceof ThrottledError).length;
    // After the first 10, about 90 % never leave the process.
    expect(throttled).toBeGreaterThan(150);
    expect(o.sent[busy]).toBe(200 - throttled);
    expect(o.sent[fine]).toBe(50);
    expect(f.adaptiveThrottle(busy)?.rejectionProbability).toBe(0.9);
    expect(f.adaptiveThrottle(fine)?.rejectionProbability).toBe(0);
    expect(f.adaptiveThrottle(`${busy}/other/path`)?.name).toBe(`fetch ${busy}`);
  });

  it('counts 429, 5xx, network errors as refused; other failed statuses (a 408) and successes as accepted', async () => {
    const networkError = new TypeError('fetch failed', { cause: new Error('ECONNREFUSED') });
    const answers = { 'http://a.test': 429, 'http://b.test': 502, 'http://c.test': networkError, 'http://d.test': 408, 'http://e.test': 200 } as const;
    const o = origins(answers);
    const f = createFetch({ fetch: o.fetch, retry: false, circuitBreaker: false, adaptiveThrottle: true, clock: new ManualClock() });
    for (const origin of Object.keys(answers)) await capture(f(`${origin}/x`));
    const accepts = Object.keys(answers).map((origin) => f.adaptiveThrottle(origin)?.window.accepts);
    expect(accepts).toEqual([0, 0, 0, 1, 1]);
  });

  it('a local rejection is not counted by the origin breaker, nor sent', async () => {
    // 429s: refused for the throttle, not counted by the breaker (about this client, not the origin's health).
    const o = origins({ [busy]: 429 });
    const draw = vi.spyOn(Math, 'random').mockReturnValue(0); // every draw below any probability > 0
    try {
      const f = createFetch({ fetch: o.fetch, retry: false, adaptiveThrottle: { minRequests: 0 }, clock: new ManualClock() });
      const first = await f(`${busy}/x`);
      expect(first.status).toBe(429);
      // Every later attempt is rejected locally: far more than the breaker's 5 consecutive failures.
      for (let i = 0; i < 20; i++) expect(await rejection(capture(f(`${busy}/x`)))).toBeInstanceOf(ThrottledError);
      expect(o.sent[busy]).toBe(1);
      expect(f.circuitBreaker(busy)?.state).toBe('closed');
    } finally {
      draw.mockRestore();
    }
  });

  it('a retry tries a throttled attempt again after its backoff, and the throttle counts each attempt', async () => {
    const o = origins({ [busy]: 429 });
    const draw = vi.spyOn(Math, 'random').mockReturnValue(0);
    try {
      const f = createFetch({ fetch: o.fetch, retry: { maxAttempts: 3, backoff: constant(0) }, adaptiveThrottle: { minRequests: 0 }, clock: new ManualClock() });
      expect(await rejection(capture(f(`${busy}/x`)))).toBeInstanceOf(ThrottledError);
      expect(o.sent[busy]).toBe(1); // the first attempt went out; the next two were throttled
      expect(f.adaptiveThrottle(busy)?.window).toEqual({ requests: 3, accepts: 0 });
    } finally {
      draw.mockRestore();
    }
  });

  it('is off by default, and validates its options at construction', () => {
    const f = createFetch({ fetch: origins({ [fine]: 200 }).fetch });
    expect(f.adaptiveThrottle(fine)).toBeUndefined();
    expect(() => createFetch({ adaptiveThrottle: { k: 0 } })).toThrow(new RangeError('adaptiveThrottle: option "k" must be at least 1, got 0'));
    expect(() => createFetch({ adaptiveThrottle: { isAccepted: () => true } as never })).toThrow(
      new TypeError('createFetch: option "adaptiveThrottle": unknown option "isAccepted" (known options: k, windowMs, maxRejectionProbability, minRequests, mode)'),
    );
  });
});
