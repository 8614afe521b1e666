import { describe, expect, it, vi } from 'vitest';
import * as one from '../../../src/core/errors.js';
import { HttpStatusError } from '../../../src/adapters/fetch/http-status-error.js';
import { RetryAfterError } from '../../../src/adapters/fetch/retry-after-error.js';
import type { BulwarkError, BulwarkErrorCode } from '../../../src/core/errors.js';

type Errors = typeof one & { HttpStatusError: typeof HttpStatusError; RetryAfterError: typeof RetryAfterError };
type Ctor = abstract new (...args: never[]) => BulwarkError;

/** A second, separately evaluated copy of the error classes: what the CJS build is next to the ESM one. */
async function secondCopy(): Promise<Errors> {
  vi.resetModules();
  const errors = await import('../../../src/core/errors.js');
  const fetchErrors = await import('../../../src/adapters/fetch/http-status-error.js');
  const pauseErrors = await import('../../../src/adapters/fetch/retry-after-error.js');
  return { ...errors, HttpStatusError: fetchErrors.HttpStatusError, RetryAfterError: pauseErrors.RetryAfterError };
}

const first: Errors = { ...one, HttpStatusError, RetryAfterError };
const decision = { allowed: false, limit: 10, remaining: 0, resetMs: 1_000, retryAfterMs: 500 } as const;

/** Every class with a way to make one of its errors, from either copy, with a cause. */
const classes: [string, BulwarkErrorCode, (e: Errors, cause?: unknown) => BulwarkError][] = [
  ['BrokenCircuitError', 'ERR_BULWARK_BROKEN_CIRCUIT', (e, cause) => new e.BrokenCircuitError(5, undefined, { cause })],
  ['IsolatedCircuitError', 'ERR_BULWARK_ISOLATED_CIRCUIT', (e, cause) => new e.IsolatedCircuitError({ cause })],
  ['TimeoutError', 'ERR_BULWARK_TIMEOUT', (e, cause) => new e.TimeoutError(5, { cause })],
  ['BulkheadRejectedError', 'ERR_BULWARK_BULKHEAD_REJECTED', (e, cause) => new e.BulkheadRejectedError(1, 2, { cause })],
  ['ConcurrencyLimitedError', 'ERR_BULWARK_CONCURRENCY_LIMITED', (e, cause) => new e.ConcurrencyLimitedError('limit', 4, 4, 10, { cause })],
  ['RateLimitedError', 'ERR_BULWARK_RATE_LIMITED', (e, cause) => new e.RateLimitedError(decision, { cause })],
  ['QuotaExceededError', 'ERR_BULWARK_QUOTA_EXCEEDED', (e, cause) => new e.QuotaExceededError(10, 0, 1_000, { cause })],
  ['StoreUnavailableError', 'ERR_BULWARK_STORE_UNAVAILABLE', (e, cause) => new e.StoreUnavailableError('redis', 'down', { cause })],
  [
    'RateLimitStoreUnavailableError',
    'ERR_BULWARK_RATE_LIMIT_STORE_UNAVAILABLE',
    (e, cause) => new e.RateLimitStoreUnavailableError('api', 2_000, { cause }),
  ],
  [
    'HttpStatusError',
    'ERR_BULWARK_HTTP_STATUS',
    (e, cause) => new e.HttpStatusError(new Response(null, { status: 503 }), 'http://127.0.0.1/', undefined, { cause }),
  ],
  ['RetryAfterError', 'ERR_BULWARK_RETRY_AFTER', (e, cause) => new e.RetryAfterError('http://127.0.0.1', 2_000, 503, { cause })],
];

const names = classes.map(([name]) => name);
const ctor = (e: Errors, name: string): Ctor => (e as unknown as Record<string, Ctor>)[name]!;

describe('instanceof across copies of bulwark', () => {
  // Regression (issue 12): an error from the CommonJS build failed `instanceof` against the ES
  // module's class (each build has its own classes), while the README's examples use instanceof.
  it.each(classes)('%s from either copy is instanceof the class of the other, and of its BulwarkError', async (name, code, make) => {
    const other = await secondCopy();
    expect(ctor(other, name)).not.toBe(ctor(first, name));
    for (const [from, to] of [
      [other, first],
      [first, other],
    ] as const) {
      const err = make(from);
      expect(err.code).toBe(code);
      expect(err instanceof ctor(to, name)).toBe(true);
      expect(err instanceof to.BulwarkError).toBe(true);
      expect(err instanceof Error).toBe(true);
      for (const otherName of names) if (otherName !== name) expect(err instanceof ctor(to, otherName), otherName).toBe(false);
    }
  });

  it('a subclass matches only its own code, in its own copy too', () => {
    const timeout = new first.TimeoutError(1);
    expect(timeout instanceof first.BulwarkError).toBe(true);
    expect(timeout instanceof first.TimeoutError).toBe(true);
    expect(timeout instanceof first.BrokenCircuitError).toBe(false);
    expect(new first.BulwarkError('m', 'ERR_BULWARK_TIMEOUT') instanceof first.BulwarkError).toBe(true);
  });

  it.each([
    ['undefined', undefined],
    ['null', null],
    ['a string', 'ERR_BULWARK_TIMEOUT'],
    ['a plain Error', new Error('x')],
    ['an Error with a bulwark code but no brand', Object.assign(new Error('x'), { code: 'ERR_BULWARK_TIMEOUT' })],
  ])('nothing unbranded passes: %s', (_label, value) => {
    expect(value instanceof first.BulwarkError).toBe(false);
    expect(value instanceof first.TimeoutError).toBe(false);
  });

  it('a class you derive keeps the ordinary instanceof: errors of the other copy do not match it', async () => {
    class SlowUpstreamError extends first.TimeoutError {}
    const other = await secondCopy();
    expect(new other.TimeoutError(1) instanceof SlowUpstreamError).toBe(false);
    expect(new first.TimeoutError(1) instanceof SlowUpstreamError).toBe(false);
    const own = new SlowUpstreamError(1);
    expect(own instanceof SlowUpstreamError).toBe(true);
    expect(own instanceof other.TimeoutError).toBe(true);
    expect(own instanceof other.BulwarkError).toBe(true);
  });

  it('narrows the type as an ordinary instanceof does', () => {
    const value: unknown = new first.RateLimitedError(decision);
    if (value instanceof first.RateLimitedError) {
      expect(value.retryAfterMs).toBe(500);
    } else {
      expect.unreachable();
    }
  });
});

describe('cause', () => {
  // Regression (issue 12): most constructors took no options, so a cause could not be given.
  it.each(classes)('%s takes the standard cause option', (_name, _code, make) => {
    const cause = new Error('root');
    const err = make(first, cause);
    expect(err.cause).toBe(cause);
    expect(Object.keys(err)).not.toContain('cause');
    expect(make(first).cause).toBeUndefined();
  });
});
