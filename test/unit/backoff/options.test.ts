import { describe, expect, it } from 'vitest';
import { constant, exponential } from '../../../src/index.js';
import { type ErrorClass, expectRejected, tooLong } from '../../support/options.js';

describe('constant options', () => {
  it.each<[string, unknown, ErrorClass, string]>([
    ['NaN', Number.NaN, RangeError, 'NaN'],
    ['Infinity', Infinity, RangeError, 'Infinity'],
    ['-Infinity', -Infinity, RangeError, '-Infinity'],
    ['negative', -1, RangeError, '-1'],
    ['a numeric string', '100', TypeError, '"100"'],
    ['above 2^31 − 1 ms', tooLong, RangeError, String(tooLong)],
    ['undefined', undefined, TypeError, 'undefined'],
    ['null', null, TypeError, 'null'],
    ['an object', { ms: 100 }, TypeError, 'an object'],
  ])('rejects a delay that is %s', (_label, value, kind, shown) => {
    expectRejected(() => constant(value as number), kind, '"ms"', shown);
  });
});

describe('exponential options', () => {
  it.each<[string, unknown, ErrorClass, string]>([
    ['NaN', Number.NaN, RangeError, 'NaN'],
    ['Infinity', Infinity, RangeError, 'Infinity'],
    ['-Infinity', -Infinity, RangeError, '-Infinity'],
    ['negative', -100, RangeError, '-100'],
    // Regression: 0 was accepted, giving a schedule of zeros (and NaN once factor^n overflowed).
    ['zero', 0, RangeError, '0'],
    ['a numeric string', '100', TypeError, '"100"'],
    ['above 2^31 − 1 ms', tooLong, RangeError, String(tooLong)],
    ['null', null, TypeError, 'null'],
  ])('rejects initialMs that is %s', (_label, value, kind, shown) => {
    expectRejected(() => exponential({ initialMs: value as number }), kind, '"initialMs"', shown);
  });

  it.each<[string, unknown, ErrorClass, string]>([
    ['NaN', Number.NaN, RangeError, 'NaN'],
    ['Infinity', Infinity, RangeError, 'Infinity'],
    ['-Infinity', -Infinity, RangeError, '-Infinity'],
    ['negative', -1, RangeError, '-1'],
    ['a numeric string', '30000', TypeError, '"30000"'],
    ['above 2^31 − 1 ms', tooLong, RangeError, String(tooLong)],
  ])('rejects maxMs that is %s', (_label, value, kind, shown) => {
    expectRejected(() => exponential({ maxMs: value as number }), kind, '"maxMs"', shown);
  });

  it.each<[string, number, number]>([
    ['below an explicit initialMs', 50, 100],
    ['zero', 0, 100],
    ['just below initialMs', 999, 1_000],
  ])('rejects maxMs %s, showing both values', (_label, maxMs, initialMs) => {
    const make = (): unknown => exponential({ initialMs, maxMs });
    expectRejected(make, RangeError, '"maxMs"', String(maxMs));
    expectRejected(make, RangeError, '"initialMs"', String(initialMs));
  });

  it('rejects a maxMs below the default initialMs of 100', () => {
    expectRejected(() => exponential({ maxMs: 99 }), RangeError, '"maxMs"', '99');
  });

  it.each<[string, unknown, ErrorClass, string]>([
    ['NaN', Number.NaN, RangeError, 'NaN'],
    ['Infinity', Infinity, RangeError, 'Infinity'],
    ['-Infinity', -Infinity, RangeError, '-Infinity'],
    ['negative', -2, RangeError, '-2'],
    ['zero', 0, RangeError, '0'],
    ['below 1', 0.5, RangeError, '0.5'],
    // Regression: the documented "(> 1)" was not enforced; 1 was accepted.
    ['exactly 1', 1, RangeError, '1'],
    ['a numeric string', '2', TypeError, '"2"'],
  ])('rejects factor that is %s', (_label, value, kind, shown) => {
    expectRejected(() => exponential({ factor: value as number }), kind, '"factor"', shown);
  });

  it.each<[string, unknown, string]>([
    ['an unknown name', 'equal', '"equal"'],
    ['empty', '', '""'],
    ['upper case', 'FULL', '"FULL"'],
    ['a number', 1, '1'],
    ['a boolean', true, 'true'],
    ['null', null, 'null'],
  ])('rejects jitter that is %s', (_label, value, shown) => {
    expectRejected(() => exponential({ jitter: value as never }), TypeError, '"jitter"', shown);
  });

  it.each<[string, unknown, string]>([
    ['a number', 0.5, '0.5'],
    ['a string', 'Math.random', '"Math.random"'],
    ['null', null, 'null'],
  ])('rejects random that is %s', (_label, value, shown) => {
    expectRejected(() => exponential({ random: value as never }), TypeError, '"random"', shown);
  });

  it.each(['initialDelayMs', 'base', 'cap', 'maxDelayMs'])('rejects the unknown option key %s', (key) => {
    expectRejected(() => exponential({ [key]: 100 } as never), TypeError, `"${key}"`, 'unknown option');
  });

  it.each<[string, unknown, string]>([
    ['null', null, 'null'],
    ['a number', 100, '100'],
    ['a string', 'full', '"full"'],
    ['an array', [100, 200], 'an array'],
  ])('rejects options that are %s', (_label, value, shown) => {
    expectRejected(() => exponential(value as never), TypeError, 'options', shown);
  });

  it('accepts the edges: a factor just above 1, maxMs equal to initialMs and 2^31 − 1 ms', () => {
    expect(exponential({ factor: 1.0001, jitter: 'none' }).next(2, 0)).toBeCloseTo(100.01, 6);
    expect(exponential({ initialMs: 500, maxMs: 500, jitter: 'none' }).next(9, 0)).toBe(500);
    expect(exponential({ initialMs: 2 ** 31 - 1, maxMs: 2 ** 31 - 1, jitter: 'none' }).next(3, 0)).toBe(2 ** 31 - 1);
    expect(exponential({ initialMs: 0.5, jitter: 'none' }).next(2, 0)).toBe(1);
  });
});
