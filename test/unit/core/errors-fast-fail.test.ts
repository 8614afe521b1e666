import { afterEach, describe, expect, it } from 'vitest';
import {
  BrokenCircuitError,
  bulkhead,
  BulkheadRejectedError,
  ConcurrencyLimitedError,
  BulwarkError,
  circuitBreaker,
  consecutive,
  fixedWindow,
  IsolatedCircuitError,
  isBulwarkError,
  QuotaExceededError,
  rateLimit,
  RateLimitedError,
  rateLimiter,
  RateLimitStoreUnavailableError,
  StoreUnavailableError,
  TimeoutError,
} from '../../../src/index.js';
import { RetryAfterError } from '../../../src/adapters/fetch/retry-after-error.js';

// Issue 14 §2: the errors a call is refused with at request rate are made without capturing stack
// frames (most of what a rejection cost). Everything else about them stays.

const decision = { allowed: false, limit: 10, remaining: 0, resetMs: 1_000, retryAfterMs: 400 } as const;
const cause = new Error('root');

const fastFail: [string, () => BulwarkError, Record<string, unknown>][] = [
  ['BrokenCircuitError', () => new BrokenCircuitError(250, undefined, { cause }), { retryAfterMs: 250 }],
  ['IsolatedCircuitError', () => new IsolatedCircuitError({ cause }), {}],
  ['BulkheadRejectedError', () => new BulkheadRejectedError(3, 1, { cause }), { active: 3, queued: 1 }],
  ['ConcurrencyLimitedError', () => new ConcurrencyLimitedError('priority', 8, 7, 30, { cause }), { reason: 'priority', limit: 8, inFlight: 7, retryAfterMs: 30 }],
  ['RateLimitedError', () => new RateLimitedError(decision, { cause }), { retryAfterMs: 400, limit: 10, remaining: 0, resetMs: 1_000 }],
  ['QuotaExceededError', () => new QuotaExceededError(10, 0, 5_000, { cause }), { retryAfterMs: 5_000, resetMs: 5_000 }],
  ['RateLimitStoreUnavailableError', () => new RateLimitStoreUnavailableError('api', 2_000, { cause }), { retryAfterMs: 2_000, policy: 'api' }],
  ['StoreUnavailableError', () => new StoreUnavailableError('redis', 'down', { cause }), { store: 'redis' }],
  ['RetryAfterError', () => new RetryAfterError('http://127.0.0.1', 2_000, 503, { cause }), { retryAfterMs: 2_000, status: 503 }],
];

const limitAtStart = Error.stackTraceLimit;
afterEach(() => {
  Error.stackTraceLimit = limitAtStart;
});

describe('fast-fail errors', () => {
  it.each(fastFail)('%s has a one-line stack naming it, and keeps its fields, cause and instanceof', (name, make, fields) => {
    const err = make();
    expect(err.stack).toBe(`${name}: ${err.message}`);
    expect(err.name).toBe(name);
    expect(err.code).toMatch(/^ERR_BULWARK_/);
    expect(err.cause).toBe(cause);
    expect(err).toMatchObject(fields);
    expect(err).toBeInstanceOf(BulwarkError);
    expect(err).toBeInstanceOf(Error);
    expect(isBulwarkError(err, err.code)).toBe(true);
    expect(Object.keys(err)).toEqual(expect.arrayContaining(['code', 'name', ...Object.keys(fields)]));
  });

  it('leaves the stack limit as it found it, also when construction throws', () => {
    Error.stackTraceLimit = 7;
    new BrokenCircuitError(1);
    expect(Error.stackTraceLimit).toBe(7);
    const options = {
      get cause(): never {
        throw new Error('a cause that cannot be read');
      },
    };
    expect(() => new BulkheadRejectedError(1, 0, options)).toThrow('a cause that cannot be read');
    expect(Error.stackTraceLimit).toBe(7);
    expect(new Error('after').stack?.split('\n').length).toBeGreaterThan(1);
  });

  it('is still made, with its full stack, where the stack limit cannot be set', () => {
    // node --frozen-intrinsics freezes Error: assigning its stackTraceLimit throws (class code is strict).
    const original = Object.getOwnPropertyDescriptor(Error, 'stackTraceLimit')!;
    Object.defineProperty(Error, 'stackTraceLimit', { ...original, writable: false });
    try {
      const err = new BrokenCircuitError(5);
      expect(err).toMatchObject({ code: 'ERR_BULWARK_BROKEN_CIRCUIT', retryAfterMs: 5 });
      expect(err.stack).toMatch(/^BrokenCircuitError: Circuit breaker is open\n\s+at /);
    } finally {
      Object.defineProperty(Error, 'stackTraceLimit', original);
    }
  });

  it('keeps the usual stack on the other errors', () => {
    expect(new TimeoutError(5).stack).toMatch(/^TimeoutError: Operation timed out after 5 ms\n\s+at /);
    expect(new BulwarkError('m', 'ERR_BULWARK_TIMEOUT').stack).toMatch(/^BulwarkError: m\n\s+at /);
  });

  it('an open, isolated or half-open breaker rejects with one', async () => {
    const breaker = circuitBreaker({ breaker: consecutive(1), halfOpenAfterMs: 60_000 });
    await breaker.execute(() => Promise.reject(new Error('down'))).catch(() => undefined);
    const open = await breaker.execute(async () => 1).catch((e: unknown) => e);
    expect(open).toBeInstanceOf(BrokenCircuitError);
    expect(open).toMatchObject({ code: 'ERR_BULWARK_BROKEN_CIRCUIT', name: 'BrokenCircuitError' });
    expect((open as BrokenCircuitError).retryAfterMs).toBeGreaterThan(0);
    expect((open as BrokenCircuitError).stack).toBe('BrokenCircuitError: Circuit breaker is open');
    using _hold = breaker.isolate();
    const isolated = await breaker.execute(async () => 1).catch((e: unknown) => e);
    expect(isolated).toBeInstanceOf(IsolatedCircuitError);
    expect((isolated as IsolatedCircuitError).stack).toBe('IsolatedCircuitError: Circuit breaker is isolated');
  });

  it('a full bulkhead and a denied rate limit reject with one', async () => {
    const pool = bulkhead({ maxConcurrent: 1, maxQueue: 0 });
    let release!: () => void;
    const held = pool.execute(() => new Promise<void>((resolve) => (release = resolve)));
    const full = await pool.execute(async () => 1).catch((e: unknown) => e);
    release();
    await held;
    expect(full).toBeInstanceOf(BulkheadRejectedError);
    expect(full).toMatchObject({ active: 1, queued: 0, stack: 'BulkheadRejectedError: Bulkhead is full (1 running, 0 queued)' });

    const limited = rateLimit(rateLimiter({ algorithm: fixedWindow({ limit: 1, windowMs: 60_000 }) }), { key: 'k' });
    await limited.execute(async () => 1);
    const denied = await limited.execute(async () => 1).catch((e: unknown) => e);
    expect(denied).toBeInstanceOf(RateLimitedError);
    expect((denied as RateLimitedError).retryAfterMs).toBeGreaterThan(0);
    expect((denied as RateLimitedError).stack).toBe(`RateLimitedError: ${(denied as RateLimitedError).message}`);
  });
});
