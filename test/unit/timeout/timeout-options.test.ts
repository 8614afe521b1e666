import { describe, expect, it } from 'vitest';
import { ManualClock, timeout } from '../../../src/index.js';
import { errorClass, type ErrorName } from '../../support/options.js';

const badMs = (
  [
  ['NaN', NaN, 'RangeError', 'NaN'],
  ['Infinity', Infinity, 'RangeError', 'Infinity'],
  ['-Infinity', -Infinity, 'RangeError', '-Infinity'],
  ['a negative duration', -1, 'RangeError', '-1'],
  ['a negative fraction', -0.5, 'RangeError', '-0.5'],
  ['zero', 0, 'RangeError', '0'],
  ['negative zero', -0, 'RangeError', '-0'],
  ['a numeric string', '100', 'TypeError', '"100"'],
  ['an empty string', '', 'TypeError', '""'],
  ['null', null, 'TypeError', 'null'],
  ['undefined', undefined, 'TypeError', 'undefined'],
  ['a boolean', true, 'TypeError', 'true'],
  ['a bigint', 100n, 'TypeError', '100n'],
  ['an object', { ms: 100 }, 'TypeError', 'an object'],
  ['2^31 ms', 2 ** 31, 'RangeError', String(2 ** 31)],
  ['a huge duration', 1e12, 'RangeError', '1000000000000'],
] as [string, unknown, ErrorName, string][]
).map(([label, value, error, shown]) => ({ label, value, error, shown }));

describe('timeout(ms) validation', () => {
  it.each(badMs)('rejects $label as ms with a $error naming the option and the value', ({ value, error, shown }) => {
    expect(() => timeout(value as number)).toThrow(errorClass[error]);
    expect(() => timeout(value as number)).toThrow('"ms"');
    expect(() => timeout(value as number)).toThrow(shown);
  });

  it.each([
    ['the smallest whole duration', 1],
    ['a fractional duration', 0.5],
    ['2^31 − 1 ms', 2 ** 31 - 1],
  ])('accepts %s', (_label, ms) => {
    expect(timeout(ms).timeoutMs).toBe(ms);
  });
});

const badOptions = (
  [
  ['an unknown strategy', { strategy: 'fast' }, 'TypeError', ['"strategy"', '"fast"']],
  ['a strategy in the wrong case', { strategy: 'Aggressive' }, 'TypeError', ['"strategy"', '"Aggressive"']],
  ['an empty strategy', { strategy: '' }, 'TypeError', ['"strategy"', '""']],
  ['a numeric strategy', { strategy: 1 }, 'TypeError', ['"strategy"', 'got 1']],
  ['a null strategy', { strategy: null }, 'TypeError', ['"strategy"', 'null']],
  ['an unknown key', { strategy: 'aggressive', timeoutMs: 5 }, 'TypeError', ['"timeoutMs"']],
  ['a misspelt key', { stratgy: 'cooperative' }, 'TypeError', ['"stratgy"']],
  ['an empty name', { name: '' }, 'TypeError', ['"name"', '""']],
  ['a numeric name', { name: 7 }, 'TypeError', ['"name"', '7']],
  ['a clock without timers', { clock: { now: () => 0 } }, 'TypeError', ['"clock"']],
  ['null options', null, 'TypeError', ['options', 'null']],
  ['string options', 'cooperative', 'TypeError', ['options', '"cooperative"']],
  ['numeric options', 5, 'TypeError', ['options', '5']],
  ['array options', ['cooperative'], 'TypeError', ['options', 'an array']],
] as [string, unknown, ErrorName, string[]][]
).map(([label, options, error, fragments]) => ({ label, options, error, fragments }));

describe('timeout(ms, options) validation', () => {
  it.each(badOptions)('rejects $label with a $error naming it', ({ options, error, fragments }) => {
    const build = (): unknown => timeout(100, options as never);
    expect(build).toThrow(errorClass[error]);
    for (const fragment of fragments) expect(build).toThrow(fragment);
  });

  it.each([
    ['no options', undefined, 'aggressive'],
    ['empty options', {}, 'aggressive'],
    ['aggressive', { strategy: 'aggressive' }, 'aggressive'],
    ['cooperative', { strategy: 'cooperative' }, 'cooperative'],
    ['an explicitly undefined strategy', { strategy: undefined }, 'aggressive'],
  ] as const)('accepts %s', (_label, options, strategy) => {
    expect(timeout(100, options).strategy).toBe(strategy);
  });

  it('accepts a name and a clock', () => {
    const policy = timeout(100, { name: 'upstream', clock: new ManualClock() });
    expect(policy.name).toBe('upstream');
  });
});
