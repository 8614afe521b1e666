import { describe, expect, it } from 'vitest';
import {
  periodBounds,
  quotaPeriods,
  validateQuotaPeriod,
  validateTimeZone,
  validateWeekStartsOn,
  type QuotaPeriod,
} from '../../../../src/ratelimit/quota/index.js';
import { errorClass, type ErrorName, expectRejected } from '../../../support/options.js';

const t = Date.UTC(2026, 10, 22, 14, 5);

const badPeriods = (
  [
    ['an unknown period', 'year', '"year"'],
    ['a period in the wrong case', 'Day', '"Day"'],
    ['a plural period', 'days', '"days"'],
    ['an empty string', '', '""'],
    ['undefined', undefined, 'undefined'],
    ['null', null, 'null'],
    ['a number', 86_400_000, '86400000'],
    ['an object', { period: 'day' }, 'an object'],
    ['an array', ['day'], 'an array'],
  ] as [string, unknown, string][]
).map(([label, value, shown]) => ({ label, value, shown }));

describe('period validation', () => {
  it.each(badPeriods)('rejects $label with a TypeError naming "period" and the value', ({ value, shown }) => {
    expectRejected(() => periodBounds(value as QuotaPeriod, 'UTC', t), TypeError, '"period"', shown);
    expectRejected(() => validateQuotaPeriod('quota', 'period', value), TypeError, 'quota: option "period"', shown);
  });

  it.each(quotaPeriods)('accepts %s', (period) => {
    expect(validateQuotaPeriod('quota', 'period', period)).toBe(period);
    expect(periodBounds(period, 'UTC', t).start).toBeLessThanOrEqual(t);
  });
});

const badZones = (
  [
    ['an unknown zone', 'Mars/Olympus', 'RangeError', '"Mars/Olympus"'],
    ['a city that is no zone', 'Europe/Springfield', 'RangeError', '"Europe/Springfield"'],
    ['an empty string', '', 'RangeError', '""'],
    ['a zone with a trailing space', 'Europe/Berlin ', 'RangeError', '"Europe/Berlin "'],
    ['a bare offset', '+01:00', 'RangeError', '"+01:00"'],
    ['a negative bare offset', '-05:00', 'RangeError', '"-05:00"'],
    ['a compact offset', '+0530', 'RangeError', '"+0530"'],
    ['a military letter', 'Z', 'RangeError', '"Z"'],
    ['a number', 1, 'TypeError', 'got 1'],
    ['undefined', undefined, 'TypeError', 'undefined'],
    ['null', null, 'TypeError', 'null'],
    ['an object', { timeZone: 'UTC' }, 'TypeError', 'an object'],
    ['an Intl.DateTimeFormat', new Intl.DateTimeFormat('en-US', { timeZone: 'UTC' }), 'TypeError', 'an object'],
  ] as [string, unknown, ErrorName, string][]
).map(([label, value, error, shown]) => ({ label, value, error, shown }));

describe('time zone validation', () => {
  it.each(badZones)('rejects $label with a $error naming the option and the value', ({ value, error, shown }) => {
    expectRejected(() => validateTimeZone('quota', 'timeZone', value), errorClass[error], 'quota: option "timeZone"', shown);
    expectRejected(() => periodBounds('day', value as string, t), errorClass[error], '"timeZone"', shown);
  });

  it.each([
    ['UTC', 'UTC'],
    ['a region zone', 'Europe/Berlin'],
    ['a three-level zone', 'America/Argentina/Buenos_Aires'],
    ['a zone in another case', 'europe/berlin'],
    ['a backward-compatible alias', 'Asia/Calcutta'],
    ['an Etc zone', 'Etc/GMT+5'],
    ['a zone with a 45-minute offset', 'Asia/Kathmandu'],
  ])('accepts %s (%s) and returns it as given', (_label, zone) => {
    expect(validateTimeZone('quota', 'timeZone', zone)).toBe(zone);
    expect(periodBounds('day', zone, t).end).toBeGreaterThan(t);
  });

  it('gives the same periods for a zone however it is spelt', () => {
    expect(periodBounds('day', 'europe/berlin', t)).toEqual(periodBounds('day', 'Europe/Berlin', t));
    expect(periodBounds('hour', 'Asia/Calcutta', t)).toEqual(periodBounds('hour', 'Asia/Kolkata', t));
  });
});

const badWeekStarts = (
  [
    ['7', 7, 'RangeError', 'got 7'],
    ['a negative day', -1, 'RangeError', '-1'],
    ['a fraction', 1.5, 'RangeError', '1.5'],
    ['NaN', NaN, 'RangeError', 'NaN'],
    ['Infinity', Infinity, 'RangeError', 'Infinity'],
    ['a numeric string', '1', 'TypeError', '"1"'],
    ['a day name', 'monday', 'TypeError', '"monday"'],
    ['null', null, 'TypeError', 'null'],
    ['a boolean', true, 'TypeError', 'true'],
  ] as [string, unknown, ErrorName, string][]
).map(([label, value, error, shown]) => ({ label, value, error, shown }));

describe('weekStartsOn validation', () => {
  it.each(badWeekStarts)('rejects $label with a $error naming the option and the value', ({ value, error, shown }) => {
    const options = { weekStartsOn: value } as unknown as { weekStartsOn: 0 };
    expectRejected(() => periodBounds('week', 'UTC', t, options), errorClass[error], '"weekStartsOn"', shown);
    expectRejected(() => validateWeekStartsOn('quota', 'weekStartsOn', value), errorClass[error], '"weekStartsOn"', shown);
  });

  it('is checked for every period, not only weeks', () => {
    expectRejected(() => periodBounds('day', 'UTC', t, { weekStartsOn: 9 as 0 }), RangeError, '"weekStartsOn"', '9');
  });

  it.each([0, 1, 2, 3, 4, 5, 6] as const)('accepts %d', (day) => {
    expect(validateWeekStartsOn('quota', 'weekStartsOn', day)).toBe(day);
    const b = periodBounds('week', 'UTC', t, { weekStartsOn: day });
    expect(new Date(b.start).getUTCDay()).toBe(day);
  });

  it('defaults to Monday', () => {
    expect(validateWeekStartsOn('quota', 'weekStartsOn', undefined)).toBe(1);
    expect(periodBounds('week', 'UTC', t, {})).toBe(periodBounds('week', 'UTC', t));
  });
});

const badOptions = (
  [
    ['an unknown key', { weekStart: 0 }, ['"weekStart"']],
    ['a misspelt key', { weekStartOn: 0 }, ['"weekStartOn"']],
    ['null options', null, ['options', 'null']],
    ['numeric options', 1, ['options', 'got 1']],
    ['array options', [0], ['options', 'an array']],
  ] as [string, unknown, string[]][]
).map(([label, options, fragments]) => ({ label, options, fragments }));

describe('periodBounds options and arguments', () => {
  it.each(badOptions)('rejects $label with a TypeError', ({ options, fragments }) => {
    const call = () => periodBounds('week', 'UTC', t, options as { weekStartsOn: 0 });
    expect(call).toThrow(TypeError);
    for (const fragment of fragments) expect(call).toThrow(fragment);
  });

  it.each(
    (
      [
        ['NaN', NaN, 'RangeError', 'NaN'],
        ['Infinity', Infinity, 'RangeError', 'Infinity'],
        ['a time past the Date range', 8.64e15 + 1, 'RangeError', '8640000000000001'],
        ['a time before the Date range', -8.64e15 - 1, 'RangeError', '-8640000000000001'],
        ['a string', '2026-11-22', 'TypeError', '"2026-11-22"'],
        ['a Date', new Date(t), 'TypeError', 'an object'],
        ['a bigint', 1n, 'TypeError', '1n'],
        ['undefined', undefined, 'TypeError', 'undefined'],
      ] as [string, unknown, ErrorName, string][]
    ).map(([label, value, error, shown]) => ({ label, value, error, shown })),
  )('rejects $label as epochMs with a $error', ({ value, error, shown }) => {
    expectRejected(() => periodBounds('day', 'UTC', value as number), errorClass[error], '"epochMs"', shown);
  });
});
