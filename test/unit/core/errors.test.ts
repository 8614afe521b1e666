import { describe, expect, expectTypeOf, it } from 'vitest';
import {
  BrokenCircuitError,
  BulkheadRejectedError,
  ConcurrencyLimitedError,
  BulwarkError,
  type BulwarkErrorCode,
  IsolatedCircuitError,
  isBulwarkError,
  QuotaExceededError,
  RateLimitedError,
  TimeoutError,
} from '../../../src/index.js';

const decision = { allowed: false, limit: 100, remaining: 0, resetMs: 30_000, retryAfterMs: 1_500 } as const;

const cases: [string, () => BulwarkError, string, BulwarkErrorCode][] = [
  ['BrokenCircuitError', () => new BrokenCircuitError(250), 'BrokenCircuitError', 'ERR_BULWARK_BROKEN_CIRCUIT'],
  ['IsolatedCircuitError', () => new IsolatedCircuitError(), 'IsolatedCircuitError', 'ERR_BULWARK_ISOLATED_CIRCUIT'],
  ['TimeoutError', () => new TimeoutError(500), 'TimeoutError', 'ERR_BULWARK_TIMEOUT'],
  ['BulkheadRejectedError', () => new BulkheadRejectedError(10, 5), 'BulkheadRejectedError', 'ERR_BULWARK_BULKHEAD_REJECTED'],
  ['ConcurrencyLimitedError', () => new ConcurrencyLimitedError('limit', 10, 10, 20), 'ConcurrencyLimitedError', 'ERR_BULWARK_CONCURRENCY_LIMITED'],
  ['RateLimitedError', () => new RateLimitedError(decision), 'RateLimitedError', 'ERR_BULWARK_RATE_LIMITED'],
  ['QuotaExceededError', () => new QuotaExceededError(1_000, 0, 3_600_000), 'QuotaExceededError', 'ERR_BULWARK_QUOTA_EXCEEDED'],
];

describe('error classes', () => {
  it.each(cases)('%s has its stable code and name and is a BulwarkError and an Error', (_label, make, name, code) => {
    const err = make();
    expect(err.code).toBe(code);
    expect(err.name).toBe(name);
    expect(err).toBeInstanceOf(BulwarkError);
    expect(err).toBeInstanceOf(Error);
    expect(typeof err.message).toBe('string');
    expect(err.message.length).toBeGreaterThan(0);
    expect(String(err)).toBe(`${name}: ${err.message}`);
    expect(err.stack).toContain(name);
  });

  it.each(cases)('%s is recognised by isBulwarkError with and without its code', (_label, make, _name, code) => {
    const err = make();
    expect(isBulwarkError(err)).toBe(true);
    expect(isBulwarkError(err, code)).toBe(true);
    const other: BulwarkErrorCode = code === 'ERR_BULWARK_TIMEOUT' ? 'ERR_BULWARK_RATE_LIMITED' : 'ERR_BULWARK_TIMEOUT';
    expect(isBulwarkError(err, other)).toBe(false);
  });

  it('gives every class a distinct code', () => {
    const codes = cases.map(([, make]) => make().code);
    expect(new Set(codes).size).toBe(codes.length);
  });

  it('keeps the standard cause on the base class', () => {
    const cause = new Error('root');
    const err = new BulwarkError('wrapped', 'ERR_BULWARK_TIMEOUT', { cause });
    expect(err.cause).toBe(cause);
    expect(err.name).toBe('BulwarkError');
    expect(err.message).toBe('wrapped');
    expect(err.code).toBe('ERR_BULWARK_TIMEOUT');
  });

  it('keeps the cause of a TimeoutError and its timeoutMs', () => {
    const cause = new Error('socket hang up');
    const err = new TimeoutError(1_250, { cause });
    expect(err.cause).toBe(cause);
    expect(err.timeoutMs).toBe(1_250);
    expect(err.message).toBe('Operation timed out after 1250 ms');
    expect(new TimeoutError(5).cause).toBeUndefined();
  });

  it('keeps a non-Error cause as it is', () => {
    expect(new BulwarkError('m', 'ERR_BULWARK_TIMEOUT', { cause: 'text' }).cause).toBe('text');
    expect('cause' in new BulwarkError('m', 'ERR_BULWARK_TIMEOUT')).toBe(false);
  });

  it('RateLimitedError carries the decision fields', () => {
    const err = new RateLimitedError(decision);
    expect(err).toMatchObject({ limit: 100, remaining: 0, resetMs: 30_000, retryAfterMs: 1_500 });
    expect(err.message).toContain('1500');
  });

  it('BrokenCircuitError carries retryAfterMs, and a custom message when given', () => {
    const err = new BrokenCircuitError(4_000);
    expect(err.retryAfterMs).toBe(4_000);
    expect(err.message).toBe('Circuit breaker is open');
    const half = new BrokenCircuitError(0, 'Circuit breaker is half-open');
    expect(half.retryAfterMs).toBe(0);
    expect(half.message).toBe('Circuit breaker is half-open');
  });

  it('BulkheadRejectedError carries the running and queued counts', () => {
    const err = new BulkheadRejectedError(10, 5);
    expect(err.active).toBe(10);
    expect(err.queued).toBe(5);
    expect(err.message).toBe('Bulkhead is full (10 running, 5 queued)');
  });

  it('QuotaExceededError carries the limit, what remains, and resetMs as its retryAfterMs', () => {
    const err = new QuotaExceededError(1_000, 0, 3_600_000);
    expect(err).toMatchObject({ limit: 1_000, remaining: 0, resetMs: 3_600_000, retryAfterMs: 3_600_000 });
  });

  it('keeps the brand off the enumerable properties', () => {
    // The brand is inherited from the prototype (issue 14 §2: no defineProperty per error), so a
    // spread or JSON copy of an error does not carry it, and no object on the chain lists it.
    const err = new TimeoutError(1);
    const brand = Symbol.for('bulwark.error');
    expect((err as unknown as Record<symbol, unknown>)[brand]).toBe(true);
    expect(Object.getOwnPropertySymbols({ ...err })).not.toContain(brand);
    for (let o: object | null = err; o !== null; o = Object.getPrototypeOf(o) as object | null) {
      expect(Object.prototype.propertyIsEnumerable.call(o, brand)).toBe(false);
    }
  });
});

describe('isBulwarkError', () => {
  it.each([
    ['undefined', undefined],
    ['null', null],
    ['a string', 'ERR_BULWARK_TIMEOUT'],
    ['a number', 42],
    ['a plain Error', new Error('x')],
    ['an Error with a matching code but no brand', Object.assign(new Error('x'), { code: 'ERR_BULWARK_TIMEOUT' })],
    ['an object whose brand is not exactly true', { [Symbol.for('bulwark.error')]: 'true', code: 'ERR_BULWARK_TIMEOUT' }],
    ['an object with a brand under a local symbol', { [Symbol('bulwark.error')]: true }],
  ])('is false for %s', (_label, value) => {
    expect(isBulwarkError(value)).toBe(false);
    expect(isBulwarkError(value, 'ERR_BULWARK_TIMEOUT')).toBe(false);
  });

  it('recognises an error from another copy of bulwark by the shared brand', () => {
    // What a second copy (say the CJS build next to the ESM one) produces: not our class, same brand.
    class ForeignBulwarkError extends Error {
      readonly code = 'ERR_BULWARK_RATE_LIMITED';
      constructor() {
        super('from the other copy');
        Object.defineProperty(this, Symbol.for('bulwark.error'), { value: true });
      }
    }
    const foreign = new ForeignBulwarkError();
    // instanceof holds across copies too (issue 12), by the same brand and code.
    expect(foreign).toBeInstanceOf(BulwarkError);
    expect(foreign).toBeInstanceOf(RateLimitedError);
    expect(foreign).not.toBeInstanceOf(TimeoutError);
    expect(isBulwarkError(foreign)).toBe(true);
    expect(isBulwarkError(foreign, 'ERR_BULWARK_RATE_LIMITED')).toBe(true);
    expect(isBulwarkError(foreign, 'ERR_BULWARK_TIMEOUT')).toBe(false);
  });

  it('recognises a plain object carrying the brand', () => {
    const plain = { [Symbol.for('bulwark.error')]: true, code: 'ERR_BULWARK_TIMEOUT' };
    expect(isBulwarkError(plain)).toBe(true);
    expect(isBulwarkError(plain, 'ERR_BULWARK_TIMEOUT')).toBe(true);
    expect(isBulwarkError(plain, 'ERR_BULWARK_QUOTA_EXCEEDED')).toBe(false);
  });

  it('narrows the type to BulwarkError', () => {
    const value: unknown = new TimeoutError(1);
    if (isBulwarkError(value)) {
      expectTypeOf(value).toEqualTypeOf<BulwarkError>();
      expect(value.code).toBe('ERR_BULWARK_TIMEOUT');
    } else {
      expect.unreachable();
    }
  });
});
