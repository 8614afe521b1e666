// bulwark/fetch's `faultInjection` option against a real node:http server on loopback: injected
// statuses and network errors take the place of the request, are retried and counted by the
// origin's breaker as real ones are, and injected latency is cut by the attempt timeout.
import { afterEach, describe, expect, it } from 'vitest';
import { createFetch } from '../../src/adapters/fetch.js';
import { constant, consecutive, faultInjection, TimeoutError } from '../../src/index.js';
import { refedTrackedTimers } from '../support/timer-tracker.js';
import { loopbackServers } from './support/fetch-servers.js';

const servers = loopbackServers();
afterEach(() => servers.closeAll());

/** A server answering 200 'real', and how many requests reached it. */
async function upstream(): Promise<{ url: string; hits: () => number }> {
  let hits = 0;
  const url = await servers.serve((_req, res) => {
    hits++;
    res.end('real');
  });
  return { url, hits: () => hits };
}

/** A random source playing back `values` (then 0.99: no more injections). */
const draws =
  (...values: number[]) =>
  (): number =>
    values.shift() ?? 0.99;

describe('createFetch({ faultInjection })', () => {
  it('answers an injected attempt with the status, which is retried like a real one; the server sees only the retry', async () => {
    const { url, hits } = await upstream();
    const f = createFetch({ retry: { maxAttempts: 2, backoff: constant(0) }, faultInjection: { rate: 0.5, status: 503, random: draws(0.1) } });
    const retried: unknown[] = [];
    f.onRetry(({ error }) => retried.push((error as { status?: number }).status));
    const res = await f(`${url}/x`);
    expect(res.status).toBe(200);
    expect(await res.text()).toBe('real');
    expect(retried).toEqual([503]);
    expect(hits()).toBe(1);
  });

  it('returns the injected response, with a problem body, when attempts run out', async () => {
    const { url, hits } = await upstream();
    const f = createFetch({ retry: false, faultInjection: { rate: 1, status: 500 } });
    const res = await f(url);
    expect(res.status).toBe(500);
    expect(res.headers.get('content-type')).toBe('application/problem+json');
    expect(JSON.parse(await res.text())).toMatchObject({ type: 'urn:bulwark:problem:fault-injected', status: 500 });
    expect(hits()).toBe(0);
  });

  it("counts injected failures on the origin's breaker, which opens as for a failing server", async () => {
    const { url, hits } = await upstream();
    const f = createFetch({ retry: false, circuitBreaker: { breaker: consecutive(2), halfOpenAfterMs: 60_000 }, faultInjection: { rate: 1, networkError: true } });
    for (let i = 0; i < 2; i++) await expect(f(url)).rejects.toMatchObject({ name: 'TypeError', message: 'fetch failed', cause: { code: 'ECONNRESET' } });
    expect(f.circuitBreaker(url)?.state).toBe('open');
    await expect(f(url)).rejects.toMatchObject({ code: 'ERR_BULWARK_BROKEN_CIRCUIT' });
    expect(hits()).toBe(0);
  });

  it('fails over to the standby endpoint when the primary gets injected faults on its attempts', async () => {
    const primary = await upstream();
    const standby = await upstream();
    // `when` keeps the faults to first attempts, which go to the primary.
    const f = createFetch({
      endpoints: [primary.url, standby.url],
      retry: { maxAttempts: 2, backoff: constant(0) },
      faultInjection: { rate: 1, status: 503, when: ({ attempt }) => attempt === 1 },
    });
    expect((await f('/q')).status).toBe(200);
    expect([primary.hits(), standby.hits()]).toEqual([0, 1]);
  });

  it('cuts injected latency at the attempt timeout, leaving no timer behind', async () => {
    const { url, hits } = await upstream();
    const f = createFetch({ retry: false, attemptTimeoutMs: 50, faultInjection: { rate: 1, latencyMs: 60_000 } });
    const started = performance.now();
    await expect(f(url)).rejects.toBeInstanceOf(TimeoutError);
    expect(performance.now() - started).toBeLessThan(2_000);
    expect(hits()).toBe(0);
    await new Promise((resolve) => setImmediate(resolve));
    expect(refedTrackedTimers().filter((origin) => origin.includes('sleep') || origin.includes('fault-injection'))).toEqual([]);
  });

  it("cuts injected latency at once when the caller aborts, with the caller's reason", async () => {
    const { url } = await upstream();
    const f = createFetch({ retry: false, attemptTimeoutMs: false, faultInjection: { rate: 1, latencyMs: 60_000 } });
    const caller = new AbortController();
    const pending = f(url, { signal: caller.signal });
    const reason = new Error('gave up');
    setTimeout(() => caller.abort(reason), 20);
    await expect(pending).rejects.toBe(reason);
  });

  it('delays the real request by the injected latency', async () => {
    const { url, hits } = await upstream();
    const f = createFetch({ retry: false, faultInjection: { rate: 1, latencyMs: 80 } });
    const started = performance.now();
    expect(await (await f(url)).text()).toBe('real');
    expect(performance.now() - started).toBeGreaterThanOrEqual(70);
    expect(hits()).toBe(1);
  });

  it('takes a faultInjection() policy, switched at run time', async () => {
    const { url, hits } = await upstream();
    const chaos = faultInjection({ rate: 1, outcome: () => new Response('chaos', { status: 502 }), enabled: false });
    const f = createFetch({ retry: false, faultInjection: chaos });
    expect(await (await f(url)).text()).toBe('real');
    chaos.enabled = true;
    expect((await f(url)).status).toBe(502);
    expect(hits()).toBe(1);
  });

  it.each([
    { label: 'both status and networkError', option: { rate: 1, status: 503, networkError: true }, fragment: '"status" and "networkError" both end the attempt' },
    { label: 'a 200 status', option: { rate: 1, status: 200 }, fragment: '"status" must be between 400 and 599' },
    { label: 'no rate', option: { status: 503 }, fragment: '"rate" must be a number' },
    { label: 'nothing to inject', option: { rate: 1 }, fragment: 'at least one of' },
    { label: 'an unknown key', option: { rate: 1, status: 503, outcome: 1 }, fragment: 'unknown option "outcome"' },
    { label: 'a number', option: 0.5, fragment: 'must be a faultInjection() policy or its options, got 0.5' },
  ])('refuses $label at construction', ({ option, fragment }) => {
    expect(() => createFetch({ faultInjection: option as never })).toThrow(fragment);
  });
});
