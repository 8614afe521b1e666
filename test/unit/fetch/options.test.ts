import { describe, expect, it } from 'vitest';
import { createFetch } from '../../../src/adapters/fetch.js';
import { consecutive, exponential, rateLimiter, gcra } from '../../../src/index.js';
import { expectRejected } from '../../support/options.js';

describe('createFetch: options', () => {
  it('works with no options, and exposes its name and endpoints', () => {
    const f = createFetch();
    expect(typeof f).toBe('function');
    expect(f.name).toBe('fetch');
    expect(f.endpoints).toEqual([]);
    const g = createFetch({ name: 'prices', endpoints: ['http://a:1/v1/', 'http://b:2'] });
    expect(g.name).toBe('prices');
    expect(g.endpoints).toEqual(['http://a:1/v1', 'http://b:2']);
    expect(g.circuitBreaker('http://a:1')?.name).toBe('prices http://a:1');
    expect(g.circuitBreaker('http://c:3')).toBeUndefined();
    expect(g.circuitBreaker('not a url')).toBeUndefined();
  });

  it('accepts every documented option', () => {
    const limiter = rateLimiter({ name: 'x', algorithm: gcra({ limit: 10, periodMs: 1_000 }) });
    expect(() =>
      createFetch({
        attemptTimeoutMs: 500,
        timeoutMs: 2_000,
        retry: { maxAttempts: 4, backoff: exponential({ initialMs: 10 }), maxDelayMs: 1_000 },
        retryOn: [503],
        circuitBreaker: { breaker: consecutive(3), halfOpenAfterMs: 1_000, halfOpenMaxCalls: 2, probeTimeoutMs: 5_000 },
        maxOrigins: 10,
        serverBackoff: 'wait',
        hedge: { delayMs: 50, maxHedges: 2 },
        rateLimit: { limiter, key: (url) => url.hostname, cost: 2 },
        fetch: globalThis.fetch,
        name: 'n',
      }),
    ).not.toThrow();
    expect(() => createFetch({ attemptTimeoutMs: false, timeoutMs: false, retry: false, circuitBreaker: false })).not.toThrow();
  });

  const rows: [string, () => unknown, typeof TypeError | typeof RangeError, string, string][] = [
    ['an unknown key', () => createFetch({ retries: 3 } as never), TypeError, 'retries', 'known options'],
    ['options that are not an object', () => createFetch([] as never), TypeError, 'options', 'an array'],
    ['a zero attempt timeout', () => createFetch({ attemptTimeoutMs: 0 }), RangeError, 'attemptTimeoutMs', '0'],
    ['a string attempt timeout', () => createFetch({ attemptTimeoutMs: '5' as never }), TypeError, 'attemptTimeoutMs', '"5"'],
    ['attemptTimeoutMs: true', () => createFetch({ attemptTimeoutMs: true as never }), TypeError, 'attemptTimeoutMs', 'true'],
    ['a negative total timeout', () => createFetch({ timeoutMs: -1 }), RangeError, 'timeoutMs', '-1'],
    ['an infinite total timeout', () => createFetch({ timeoutMs: Infinity }), RangeError, 'timeoutMs', 'Infinity'],
    ['an unknown retry key', () => createFetch({ retry: { handle: () => true } as never }), TypeError, 'handle', 'retry'],
    ['zero attempts', () => createFetch({ retry: { maxAttempts: 0 } }), RangeError, 'maxAttempts', '0'],
    ['retry: true', () => createFetch({ retry: true as never }), TypeError, 'retry', 'true'],
    ['retryOn not an array', () => createFetch({ retryOn: 503 as never }), TypeError, 'retryOn', '503'],
    ['a status out of range', () => createFetch({ retryOn: [503, 99] }), RangeError, 'retryOn[1]', '99'],
    ['a fractional status', () => createFetch({ retryOn: [503.5] }), RangeError, 'retryOn[0]', '503.5'],
    ['an unknown breaker key', () => createFetch({ circuitBreaker: { name: 'x' } as never }), TypeError, 'name', 'circuitBreaker'],
    ['a bad breaker strategy', () => createFetch({ circuitBreaker: { breaker: 5 as never } }), TypeError, 'breaker', '5'],
    ['a negative half-open delay', () => createFetch({ circuitBreaker: { halfOpenAfterMs: -1 } }), RangeError, 'halfOpenAfterMs', '-1'],
    ['zero origins', () => createFetch({ maxOrigins: 0 }), RangeError, 'maxOrigins', '0'],
    ['an unknown serverBackoff', () => createFetch({ serverBackoff: 'later' as never }), TypeError, 'serverBackoff', 'later'],
    ['a non-boolean failoverKeyedRequests', () => createFetch({ endpoints: ['http://a'], failoverKeyedRequests: 'yes' as never }), TypeError, 'failoverKeyedRequests', 'yes'],
    ['failoverKeyedRequests without endpoints', () => createFetch({ failoverKeyedRequests: true }), TypeError, 'failoverKeyedRequests', 'true'],
    ['a null serverBackoff', () => createFetch({ serverBackoff: null as never }), TypeError, 'serverBackoff', 'null'],
    ['maxOrigins with endpoints', () => createFetch({ endpoints: ['http://a'], maxOrigins: 5 }), TypeError, 'maxOrigins', '5'],
    ['hedge without delayMs', () => createFetch({ hedge: {} as never }), TypeError, 'delayMs', 'undefined'],
    ['hedge: null', () => createFetch({ hedge: null as never }), TypeError, 'hedge', 'null'],
    ['an unknown hedge key', () => createFetch({ hedge: { delayMs: 1, when: 'x' } as never }), TypeError, 'when', 'hedge'],
    ['a rate limit without limiter', () => createFetch({ rateLimit: {} as never }), TypeError, 'rateLimit.limiter', 'undefined'],
    ['a rate-limit key that is a string', () => createFetch({ rateLimit: { limiter: rateLimiter({ algorithm: gcra({ limit: 1, periodMs: 1 }) }), key: 'k' as never } }), TypeError, 'rateLimit.key', '"k"'],
    ['a zero rate-limit cost', () => createFetch({ rateLimit: { limiter: rateLimiter({ algorithm: gcra({ limit: 1, periodMs: 1 }) }), cost: 0 } }), RangeError, 'rateLimit.cost', '0'],
    ['fetch that is not a function', () => createFetch({ fetch: 'x' as never }), TypeError, 'fetch', '"x"'],
    ['an empty name', () => createFetch({ name: '' }), TypeError, 'name', '""'],
    ['a bad clock', () => createFetch({ clock: {} as never }), TypeError, 'clock', 'an object'],
    ['endpoints that are not an array', () => createFetch({ endpoints: 'http://a' as never }), TypeError, 'endpoints', '"http://a"'],
    ['a relative endpoint', () => createFetch({ endpoints: ['/x'] }), TypeError, 'endpoints[0]', '"/x"'],
  ];
  it.each(rows)('refuses %s, naming the option and the value', (_name, make, kind, option, shown) => {
    expectRejected(make, kind, option, shown);
  });

  it('rejects (as fetch does) a relative URL, an absolute path with endpoints, or a Request with endpoints', async () => {
    const f = createFetch({ fetch: () => Promise.resolve(new Response('x')) });
    await expect(f('/relative')).rejects.toThrow(TypeError);
    const g = createFetch({ endpoints: ['http://a'], fetch: () => Promise.resolve(new Response('x')) });
    await expect(g('http://evil/x')).rejects.toThrow(/path/);
    await expect(g(new Request('http://a/x'))).rejects.toThrow(/a Request/);
    await expect(g('/x', 5 as never)).rejects.toThrow(/init/);
  });

  it('rejects, never throws, a signal that is not an AbortSignal, sending nothing', async () => {
    let calls = 0;
    const fetch = (): Promise<Response> => (calls++, Promise.resolve(new Response('x')));
    for (const options of [{ fetch }, { fetch, retry: false as const }, { fetch, retry: false as const, circuitBreaker: false as const, attemptTimeoutMs: false as const }]) {
      const f = createFetch(options);
      let result: Promise<Response> | undefined;
      expect(() => (result = f('http://a.test/', { signal: {} as never }))).not.toThrow();
      await expect(result).rejects.toThrow(TypeError);
    }
    expect(calls).toBe(0);
  });

  it('takes a null init as none, as fetch does', async () => {
    const f = createFetch({ fetch: () => Promise.resolve(new Response('x')) });
    expect((await f('http://a.test/', null as never)).status).toBe(200);
  });

  it('refuses a listener that is not a function', () => {
    const f = createFetch();
    expect(() => f.onRetry('x' as never)).toThrow(TypeError);
    expect(() => f.onFailover('x' as never)).toThrow(TypeError);
    expect(() => createFetch({ retry: false }).onRetry(1 as never)).toThrow(TypeError);
  });
});
