import { describe, expect, it } from 'vitest';
import { constant, exponential, ManualClock, retry, retryBudget, RetryBudget } from '../../../src/index.js';
import { type ErrorClass, expectRejected, tooLong } from '../../support/options.js';

const noop = (): number => 0;

describe('retry options', () => {
  it.each<[string, unknown, ErrorClass, string]>([
    ['NaN', Number.NaN, RangeError, 'NaN'],
    ['Infinity', Infinity, RangeError, 'Infinity'],
    ['-Infinity', -Infinity, RangeError, '-Infinity'],
    ['negative', -1, RangeError, '-1'],
    ['zero', 0, RangeError, '0'],
    ['a fraction', 2.5, RangeError, '2.5'],
    ['a numeric string', '3', TypeError, '"3"'],
    ['above 1000', 1_001, RangeError, '1001'],
    ['above 2^31 − 1', tooLong, RangeError, String(tooLong)],
    ['null', null, TypeError, 'null'],
    ['a boolean', true, TypeError, 'true'],
  ])('rejects maxAttempts that is %s', (_label, value, kind, shown) => {
    expectRejected(() => retry({ maxAttempts: value as number }), kind, '"maxAttempts"', shown);
  });

  it.each<[string, unknown, ErrorClass, string]>([
    ['NaN', Number.NaN, RangeError, 'NaN'],
    ['Infinity', Infinity, RangeError, 'Infinity'],
    ['-Infinity', -Infinity, RangeError, '-Infinity'],
    ['negative', -5, RangeError, '-5'],
    ['a numeric string', '1000', TypeError, '"1000"'],
    ['above 2^31 − 1 ms', tooLong, RangeError, String(tooLong)],
    ['null', null, TypeError, 'null'],
  ])('rejects maxDelayMs that is %s', (_label, value, kind, shown) => {
    expectRejected(() => retry({ maxDelayMs: value as number, backoff: constant(0) }), kind, '"maxDelayMs"', shown);
  });

  it.each<[string, () => unknown, string, string]>([
    ['the default backoff’s 100 ms', () => retry({ maxDelayMs: 50 }), '50', '100'],
    ['zero against the default backoff', () => retry({ maxDelayMs: 0 }), '0', '100'],
    ['an exponential initialMs', () => retry({ maxDelayMs: 999, backoff: exponential({ initialMs: 1_000 }) }), '999', '1000'],
    ['a constant delay', () => retry({ maxDelayMs: 10, backoff: constant(20) }), '10', '20'],
  ])('rejects maxDelayMs below %s, showing both values', (_label, make, shownMax, shownInitial) => {
    expectRejected(make, RangeError, '"maxDelayMs"', shownMax);
    expectRejected(make, RangeError, 'initial', shownInitial);
  });

  it.each<[string, unknown, string]>([
    ['a number', 100, '100'],
    ['a string', 'exponential', '"exponential"'],
    ['null', null, 'null'],
    ['an empty object', {}, 'an object'],
    ['a function', () => 100, 'a function'],
    ['an object without next()', { initialMs: 100 }, 'an object'],
    ['an object without initialMs', { next: noop }, 'an object'],
    ['an object whose initialMs is NaN', { initialMs: Number.NaN, next: noop }, 'an object'],
    ['an object whose initialMs is Infinity', { initialMs: Infinity, next: noop }, 'an object'],
    ['an object whose initialMs is negative', { initialMs: -1, next: noop }, 'an object'],
  ])('rejects a backoff that is %s', (_label, value, shown) => {
    expectRejected(() => retry({ backoff: value as never }), TypeError, '"backoff"', shown);
  });

  it.each<[string, string, unknown, string]>(
    ['handle', 'handleResult'].flatMap((option) => [
      [option, 'a boolean', true, 'true'],
      [option, 'a string', 'all', '"all"'],
      [option, 'null', null, 'null'],
    ]),
  )('rejects a %s that is %s', (option, _label, value, shown) => {
    expectRejected(() => retry({ [option]: value as never }), TypeError, `"${option}"`, shown);
  });

  it.each<[string, unknown, string]>([
    ['a plain object', { ratio: 0.2 }, 'an object'],
    ['a number', 0.2, '0.2'],
    ['a string', 'budget', '"budget"'],
    ['null', null, 'null'],
    ['an object faking the methods', { recordCall: noop, tryRetry: () => true, available: 1 }, 'an object'],
  ])('rejects a budget that is %s, not one from retryBudget()', (_label, value, shown) => {
    expectRejected(() => retry({ budget: value as never }), TypeError, '"budget"', shown);
  });

  it.each<[string, unknown, string]>([
    ['empty', '', '""'],
    ['a number', 7, '7'],
  ])('rejects a name that is %s', (_label, value, shown) => {
    expectRejected(() => retry({ name: value as never }), TypeError, '"name"', shown);
  });

  it.each<[string, unknown, string]>([
    ['an empty object', {}, 'an object'],
    ['a function', () => 0, 'a function'],
    ['an object with now() only', { now: () => 0 }, 'an object'],
  ])('rejects a clock that is %s', (_label, value, shown) => {
    expectRejected(() => retry({ clock: value as never }), TypeError, '"clock"', shown);
  });

  it.each(['maxRetries', 'attempts', 'delayMs', 'signal'])('rejects the unknown option key %s', (key) => {
    expectRejected(() => retry({ [key]: 1 } as never), TypeError, `"${key}"`, 'unknown option');
  });

  it.each<[string, unknown, string]>([
    ['null', null, 'null'],
    ['a number', 3, '3'],
    ['a string', 'fast', '"fast"'],
    ['an array', [], 'an array'],
  ])('rejects options that are %s', (_label, value, shown) => {
    expectRejected(() => retry(value as never), TypeError, 'options', shown);
  });

  // Regression: `backoff: null` used to be replaced by the default backoff without a word.
  it('rejects backoff: null instead of silently using the default backoff', () => {
    expect(() => retry({ backoff: null as never })).toThrow(TypeError);
    expect(() => retry({ backoff: null as never })).toThrow(/"backoff".*null/);
  });

  it('accepts the edges: 1 and 1000 attempts, maxDelayMs equal to the initial delay and 2^31 − 1', () => {
    expect(retry({ maxAttempts: 1 }).maxAttempts).toBe(1);
    expect(retry({ maxAttempts: 1_000 }).maxAttempts).toBe(1_000);
    expect(retry({ maxDelayMs: 100 }).maxDelayMs).toBe(100);
    expect(retry({ maxDelayMs: 0, backoff: constant(0) }).maxDelayMs).toBe(0);
    expect(retry({ maxDelayMs: 2 ** 31 - 1 }).maxDelayMs).toBe(2 ** 31 - 1);
  });

  it('accepts every option at once, and undefined for each', () => {
    const clock = new ManualClock();
    const policy = retry({
      maxAttempts: 4,
      backoff: exponential({ initialMs: 10, maxMs: 100 }),
      handle: () => true,
      maxDelayMs: 1_000,
      budget: retryBudget({ clock }),
      name: 'all',
      clock,
    });
    expect(policy.name).toBe('all');
    expect(retry({ maxAttempts: undefined, backoff: undefined, maxDelayMs: undefined }).maxAttempts).toBe(3);
  });

  it('defaults maxDelayMs to 30 s, or to the backoff’s initial delay when that is longer', () => {
    expect(retry().maxDelayMs).toBe(30_000);
    expect(retry({ backoff: constant(60_000) }).maxDelayMs).toBe(60_000);
  });
});

describe('retryBudget options', () => {
  it.each<[string, unknown, ErrorClass, string]>([
    ['zero', 0, RangeError, '0'],
    ['negative', -0.1, RangeError, '-0.1'],
    ['above 1', 1.5, RangeError, '1.5'],
    ['NaN', Number.NaN, RangeError, 'NaN'],
    ['Infinity', Infinity, RangeError, 'Infinity'],
    ['-Infinity', -Infinity, RangeError, '-Infinity'],
    ['a numeric string', '0.2', TypeError, '"0.2"'],
    ['null', null, TypeError, 'null'],
  ])('rejects ratio that is %s', (_label, value, kind, shown) => {
    expectRejected(() => retryBudget({ ratio: value as number }), kind, '"ratio"', shown);
  });

  it.each<[string, unknown, ErrorClass, string]>([
    ['negative', -1, RangeError, '-1'],
    ['NaN', Number.NaN, RangeError, 'NaN'],
    ['Infinity', Infinity, RangeError, 'Infinity'],
    ['-Infinity', -Infinity, RangeError, '-Infinity'],
    ['a numeric string', '10', TypeError, '"10"'],
  ])('rejects minRetriesPerSecond that is %s', (_label, value, kind, shown) => {
    expectRejected(() => retryBudget({ minRetriesPerSecond: value as number }), kind, '"minRetriesPerSecond"', shown);
  });

  it.each<[string, unknown, ErrorClass, string]>([
    ['zero', 0, RangeError, '0'],
    ['negative', -1_000, RangeError, '-1000'],
    ['shorter than its 10 buckets', 5, RangeError, '5'],
    ['NaN', Number.NaN, RangeError, 'NaN'],
    ['Infinity', Infinity, RangeError, 'Infinity'],
    ['-Infinity', -Infinity, RangeError, '-Infinity'],
    ['a numeric string', '10000', TypeError, '"10000"'],
    ['above 2^31 − 1 ms', tooLong, RangeError, String(tooLong)],
  ])('rejects windowMs that is %s', (_label, value, kind, shown) => {
    expectRejected(() => retryBudget({ windowMs: value as number }), kind, '"windowMs"', shown);
  });

  it('rejects an unknown option key, naming it', () => {
    expectRejected(() => retryBudget({ percent: 20 } as never), TypeError, '"percent"', 'unknown option');
  });

  it('rejects a clock without timers', () => {
    expectRejected(() => retryBudget({ clock: { now: () => 0 } as never }), TypeError, '"clock"', 'an object');
  });

  it.each<[string, unknown, string]>([
    ['null', null, 'null'],
    ['a number', 0.2, '0.2'],
  ])('rejects options that are %s', (_label, value, shown) => {
    expectRejected(() => retryBudget(value as never), TypeError, 'options', shown);
  });

  it('accepts the edges: ratio 1, a tiny ratio, zero minimum retries and a 10 ms window', () => {
    const budget = retryBudget({ ratio: 1, minRetriesPerSecond: 0, windowMs: 10 });
    expect(budget).toBeInstanceOf(RetryBudget);
    expect(retryBudget({ ratio: 1e-9 }).ratio).toBe(1e-9);
    expect(retryBudget({ windowMs: 2 ** 31 - 1 }).windowMs).toBe(2 ** 31 - 1);
  });
});
