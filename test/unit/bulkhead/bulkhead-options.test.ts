import { describe, expect, it } from 'vitest';
import { bulkhead } from '../../../src/index.js';
import { errorClass, type ErrorName } from '../../support/options.js';

/** Bad values for a count option, with the error and how the message shows the value. */
const badCounts: [string, unknown, ErrorName, string][] = [
  ['NaN', NaN, 'RangeError', 'NaN'],
  ['Infinity', Infinity, 'RangeError', 'Infinity'],
  ['-Infinity', -Infinity, 'RangeError', '-Infinity'],
  ['a negative count', -1, 'RangeError', '-1'],
  ['a fraction', 1.5, 'RangeError', '1.5'],
  ['a tiny fraction', 0.1, 'RangeError', '0.1'],
  ['a numeric string', '10', 'TypeError', '"10"'],
  ['null', null, 'TypeError', 'null'],
  ['a boolean', true, 'TypeError', 'true'],
  ['a bigint', 10n, 'TypeError', '10n'],
  ['an array', [10], 'TypeError', 'an array'],
  ['2^31', 2 ** 31, 'RangeError', String(2 ** 31)],
];

const rows = (option: 'maxConcurrent' | 'maxQueue', extra: [string, unknown, ErrorName, string][]) =>
  [...badCounts, ...extra].map(([label, value, error, shown]) => ({ option, label, value, error, shown }));

const badMaxConcurrent = rows('maxConcurrent', [
  ['zero', 0, 'RangeError', '0'],
  ['negative zero', -0, 'RangeError', '-0'],
]);
const badMaxQueue = rows('maxQueue', []);

describe('bulkhead option validation', () => {
  it.each([...badMaxConcurrent, ...badMaxQueue])(
    'rejects $label as $option with a $error naming the option and the value',
    ({ option, value, error, shown }) => {
      const build = (): unknown => bulkhead({ [option]: value } as never);
      expect(build).toThrow(errorClass[error]);
      expect(build).toThrow(`"${option}"`);
      expect(build).toThrow(shown);
    },
  );

  it.each([
    { label: 'an unknown key', options: { maxConcurrent: 2, limit: 3 }, fragment: '"limit"' },
    { label: 'a misspelt key', options: { maxConcurent: 2 }, fragment: '"maxConcurent"' },
    { label: 'a key from another policy', options: { timeoutMs: 100 }, fragment: '"timeoutMs"' },
    { label: 'an empty name', options: { name: '' }, fragment: '"name"' },
    { label: 'a numeric name', options: { name: 1 }, fragment: '"name"' },
  ])('rejects $label with a TypeError naming it', ({ options, fragment }) => {
    const build = (): unknown => bulkhead(options as never);
    expect(build).toThrow(TypeError);
    expect(build).toThrow(fragment);
  });

  it.each([
    { label: 'null', options: null, shown: 'null' },
    { label: 'a number', options: 10, shown: '10' },
    { label: 'a string', options: '10', shown: '"10"' },
    { label: 'an array', options: [10, 5], shown: 'an array' },
  ])('rejects $label as options with a TypeError', ({ options, shown }) => {
    const build = (): unknown => bulkhead(options as never);
    expect(build).toThrow(TypeError);
    expect(build).toThrow('options');
    expect(build).toThrow(shown);
  });

  it.each([
    { label: 'the smallest pool with no queue', options: { maxConcurrent: 1, maxQueue: 0 } },
    { label: 'the largest counts', options: { maxConcurrent: 2 ** 31 - 1, maxQueue: 2 ** 31 - 1 } },
    { label: 'explicitly undefined counts', options: { maxConcurrent: undefined, maxQueue: undefined } },
    { label: 'empty options', options: {} },
  ])('accepts $label', ({ options }) => {
    const pool = bulkhead(options);
    expect(pool.maxConcurrent).toBe(options.maxConcurrent ?? 10);
    expect(pool.maxQueue).toBe(options.maxQueue ?? 0);
  });

  it('accepts a name', () => {
    expect(bulkhead({ name: 'reports' }).name).toBe('reports');
  });
});
