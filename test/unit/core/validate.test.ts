import { describe, expect, it } from 'vitest';
import { ManualClock, systemClock } from '../../../src/index.js';
import {
  checkOptions,
  clockOption,
  countOption,
  durationOption,
  enumOption,
  functionOption,
  MAX_TIMER_MS,
  nameOption,
  numberOption,
  ratioOption,
  show,
} from '../../../src/core/validate.js';

describe('show', () => {
  it.each([
    ['a string, quoted', 'abc', '"abc"'],
    ['a numeric string, quoted so it reads as a string', '100', '"100"'],
    ['the empty string', '', '""'],
    ['a string with quotes and a newline, escaped', 'a"b\nc', '"a\\"b\\nc"'],
    ['an integer', 42, '42'],
    ['a fraction', 1.5, '1.5'],
    ['a negative number', -3, '-3'],
    ['negative zero', -0, '-0'],
    ['zero', 0, '0'],
    ['NaN', NaN, 'NaN'],
    ['Infinity', Infinity, 'Infinity'],
    ['-Infinity', -Infinity, '-Infinity'],
    ['a large number', 2 ** 31, '2147483648'],
    ['a bigint', 10n, '10n'],
    ['true', true, 'true'],
    ['false', false, 'false'],
    ['undefined', undefined, 'undefined'],
    ['null', null, 'null'],
    ['a function', () => 1, 'a function'],
    ['a class', class Thing {}, 'a function'],
    ['an array', [1, 2], 'an array'],
    ['an empty array', [], 'an array'],
    ['a plain object', { a: 1 }, 'an object'],
    ['an object without a prototype', Object.create(null), 'an object'],
    ['a Date', new Date(0), 'an object'],
    ['a boxed number', Object(5), 'an object'],
    ['a symbol', Symbol('s'), 'Symbol(s)'],
  ])('formats %s', (_label, value, expected) => {
    expect(show(value)).toBe(expected);
  });

  it('never runs the value\'s own toString', () => {
    let called = false;
    const sneaky = {
      toString() {
        called = true;
        return 'sneaky';
      },
    };
    expect(show(sneaky)).toBe('an object');
    expect(called).toBe(false);
  });
});

describe('checkOptions', () => {
  it('returns an empty record for undefined', () => {
    expect(checkOptions('thing', undefined, ['a'])).toEqual({});
  });

  it('returns the options object itself when every key is known', () => {
    const options = { a: 1, b: undefined };
    expect(checkOptions('thing', options, ['a', 'b'])).toBe(options);
  });

  it.each([
    ['null', null, 'null'],
    ['a number', 1, '1'],
    ['a string', 'a', '"a"'],
    ['true', true, 'true'],
    ['an array', [], 'an array'],
    ['a function', () => ({}), 'a function'],
  ])('rejects %s with a TypeError naming the owner and showing the value', (_label, value, shown) => {
    const call = () => checkOptions('thing', value as object, ['a']);
    expect(call).toThrow(TypeError);
    expect(call).toThrow(`thing: options must be an object, got ${shown}`);
  });

  it('rejects an unknown key with a TypeError naming it and the known keys', () => {
    const call = () => checkOptions('thing', { a: 1, colour: 'red' }, ['a', 'b']);
    expect(call).toThrow(TypeError);
    expect(call).toThrow('thing: unknown option "colour" (known options: a, b)');
  });

  it('rejects an unknown key even when its value is undefined', () => {
    expect(() => checkOptions('thing', { typo: undefined }, ['a'])).toThrow('unknown option "typo"');
  });

  it('is case-sensitive about keys', () => {
    expect(() => checkOptions('thing', { A: 1 }, ['a'])).toThrow('unknown option "A"');
  });

  it('ignores symbol keys', () => {
    const withSymbol = { a: 1, [Symbol('meta')]: true };
    expect(() => checkOptions('thing', withSymbol, ['a'])).not.toThrow();
    expect(() => checkOptions('thing', Object.create(null) as object, ['a'])).not.toThrow();
  });

  it.each([
    ['a Map', new Map([['a', 1]])],
    ['a Date', new Date(0)],
    ['a class instance', new (class Options { a = 1; })()],
    ['an object with a custom prototype', Object.create({ a: 1 }) as object],
  ])('refuses %s, which is not a plain option object', (_what, value) => {
    expect(() => checkOptions('thing', value, ['a'])).toThrow(TypeError);
    expect(() => checkOptions('thing', value, ['a'])).toThrow(/thing: options must be an object/);
  });
});

describe('durationOption', () => {
  it('returns the default for undefined and the value when valid', () => {
    expect(durationOption('o', 'waitMs', undefined, 7)).toBe(7);
    expect(durationOption('o', 'waitMs', 0, 7)).toBe(0);
    expect(durationOption('o', 'waitMs', 12.5, 7)).toBe(12.5);
    expect(durationOption('o', 'waitMs', MAX_TIMER_MS, 7)).toBe(MAX_TIMER_MS);
  });

  it('uses 2^31 - 1 ms as the largest timer delay', () => {
    expect(MAX_TIMER_MS).toBe(2_147_483_647);
  });

  it.each([
    ['a numeric string', '10', TypeError, 'o: option "waitMs" must be a number, got "10"'],
    ['null', null, TypeError, 'o: option "waitMs" must be a number, got null'],
    ['a boolean', true, TypeError, 'o: option "waitMs" must be a number, got true'],
    ['a bigint', 10n, TypeError, 'o: option "waitMs" must be a number, got 10n'],
    ['NaN', NaN, RangeError, 'o: option "waitMs" must be a finite number, got NaN'],
    ['Infinity', Infinity, RangeError, 'o: option "waitMs" must be a finite number, got Infinity'],
    ['-Infinity', -Infinity, RangeError, 'o: option "waitMs" must be a finite number, got -Infinity'],
    ['a negative number', -1, RangeError, 'o: option "waitMs" must be at least 0 ms, got -1'],
    ['over 2^31 - 1', MAX_TIMER_MS + 1, RangeError, 'o: option "waitMs" must be at most 2147483647 ms'],
  ])('rejects %s, naming the option and showing the value', (_label, value, type, message) => {
    const call = () => durationOption('o', 'waitMs', value, 0);
    expect(call).toThrow(type);
    expect(call).toThrow(message);
  });

  it('shows the value in the over-the-limit message', () => {
    expect(() => durationOption('o', 'waitMs', 3e9, 0)).toThrow('got 3000000000');
  });

  it('honours a minimum, inclusive or exclusive', () => {
    expect(durationOption('o', 'ms', 5, 0, { min: 5 })).toBe(5);
    expect(() => durationOption('o', 'ms', 4, 0, { min: 5 })).toThrow('o: option "ms" must be at least 5 ms, got 4');
    expect(() => durationOption('o', 'ms', 0, 1, { min: 0, exclusiveMin: true })).toThrow(
      'o: option "ms" must be greater than 0 ms, got 0',
    );
    expect(durationOption('o', 'ms', 0.001, 1, { min: 0, exclusiveMin: true })).toBe(0.001);
  });
});

describe('countOption', () => {
  it('returns the default for undefined and whole numbers within range', () => {
    expect(countOption('o', 'size', undefined, 3)).toBe(3);
    expect(countOption('o', 'size', 1, 3)).toBe(1);
    expect(countOption('o', 'size', MAX_TIMER_MS, 3)).toBe(MAX_TIMER_MS);
    expect(countOption('o', 'size', 0, 3, { min: 0 })).toBe(0);
    expect(countOption('o', 'size', 10, 3, { max: 10 })).toBe(10);
  });

  it.each([
    ['a numeric string', '3', TypeError, 'o: option "size" must be a number, got "3"'],
    ['null', null, TypeError, 'o: option "size" must be a number, got null'],
    ['NaN', NaN, RangeError, 'o: option "size" must be a finite number, got NaN'],
    ['Infinity', Infinity, RangeError, 'o: option "size" must be a finite number, got Infinity'],
    ['a fraction', 2.5, RangeError, 'o: option "size" must be a whole number, got 2.5'],
    ['zero (default minimum 1)', 0, RangeError, 'o: option "size" must be between 1 and 2147483647, got 0'],
    ['a negative count', -2, RangeError, 'o: option "size" must be between 1 and 2147483647, got -2'],
    ['over 2^31 - 1', MAX_TIMER_MS + 1, RangeError, 'got 2147483648'],
  ])('rejects %s, naming the option and showing the value', (_label, value, type, message) => {
    const call = () => countOption('o', 'size', value, 1);
    expect(call).toThrow(type);
    expect(call).toThrow(message);
  });

  it('names a custom range in its message', () => {
    expect(() => countOption('o', 'size', 11, 1, { min: 2, max: 10 })).toThrow(
      'o: option "size" must be between 2 and 10, got 11',
    );
  });
});

describe('ratioOption', () => {
  it('accepts values in (0, 1] and the default for undefined', () => {
    expect(ratioOption('o', 'rate', undefined, 0.5)).toBe(0.5);
    expect(ratioOption('o', 'rate', 1, 0.5)).toBe(1);
    expect(ratioOption('o', 'rate', 0.01, 0.5)).toBe(0.01);
  });

  it.each([
    ['zero', 0, RangeError, 'got 0'],
    ['a negative ratio', -0.1, RangeError, 'got -0.1'],
    ['more than 1', 1.5, RangeError, 'got 1.5'],
    ['NaN', NaN, RangeError, 'got NaN'],
    ['Infinity', Infinity, RangeError, 'got Infinity'],
    ['a numeric string', '0.5', TypeError, 'got "0.5"'],
  ])('rejects %s, naming the option and showing the value', (_label, value, type, shown) => {
    const call = () => ratioOption('o', 'rate', value, 0.5);
    expect(call).toThrow(type);
    expect(call).toThrow(/^o: option "rate" must be/);
    expect(call).toThrow(shown);
  });
});

describe('numberOption', () => {
  it('accepts finite numbers from the minimum, inclusive or exclusive', () => {
    expect(numberOption('o', 'factor', undefined, 2, { min: 1 })).toBe(2);
    expect(numberOption('o', 'factor', 1, 2, { min: 1 })).toBe(1);
    expect(numberOption('o', 'factor', 1.25, 2, { min: 1, exclusiveMin: true })).toBe(1.25);
  });

  it.each([
    ['below the minimum', 0.5, { min: 1 }, RangeError, 'o: option "factor" must be at least 1, got 0.5'],
    ['at an exclusive minimum', 1, { min: 1, exclusiveMin: true }, RangeError, 'must be greater than 1, got 1'],
    ['NaN', NaN, { min: 1 }, RangeError, 'must be a finite number, got NaN'],
    ['-Infinity', -Infinity, { min: 1 }, RangeError, 'got -Infinity'],
    ['a numeric string', '2', { min: 1 }, TypeError, 'must be a number, got "2"'],
  ])('rejects a value %s, naming the option and showing the value', (_label, value, range, type, message) => {
    const call = () => numberOption('o', 'factor', value, 2, range);
    expect(call).toThrow(type);
    expect(call).toThrow(message);
  });
});

describe('functionOption', () => {
  it('returns the default for undefined and the function when given one', () => {
    const fallback = (): boolean => true;
    const given = (): boolean => false;
    expect(functionOption('o', 'handle', undefined, fallback)).toBe(fallback);
    expect(functionOption('o', 'handle', given, fallback)).toBe(given);
  });

  it.each([
    ['a string', 'fn', '"fn"'],
    ['null', null, 'null'],
    ['an object', {}, 'an object'],
    ['a number', 0, '0'],
  ])('rejects %s with a TypeError naming the option and showing the value', (_label, value, shown) => {
    const call = () => functionOption('o', 'handle', value, () => true);
    expect(call).toThrow(TypeError);
    expect(call).toThrow(`o: option "handle" must be a function, got ${shown}`);
  });
});

describe('nameOption', () => {
  it('returns the default for undefined and a non-empty string as it is', () => {
    expect(nameOption('o', undefined, 'o')).toBe('o');
    expect(nameOption('o', 'payments', 'o')).toBe('payments');
  });

  it.each([
    ['the empty string', '', '""'],
    ['a number', 1, '1'],
    ['null', null, 'null'],
    ['an array', ['a'], 'an array'],
  ])('rejects %s with a TypeError naming "name" and showing the value', (_label, value, shown) => {
    const call = () => nameOption('o', value, 'o');
    expect(call).toThrow(TypeError);
    expect(call).toThrow(`o: option "name" must be a non-empty string, got ${shown}`);
  });
});

describe('enumOption', () => {
  const allowed = ['aggressive', 'cooperative'] as const;

  it('returns the default for undefined and an allowed value as it is', () => {
    expect(enumOption('o', 'strategy', undefined, allowed, 'aggressive')).toBe('aggressive');
    expect(enumOption('o', 'strategy', 'cooperative', allowed, 'aggressive')).toBe('cooperative');
  });

  it.each([
    ['an unknown string', 'lazy', '"lazy"'],
    ['a string in another case', 'Aggressive', '"Aggressive"'],
    ['a number', 1, '1'],
    ['null', null, 'null'],
  ])('rejects %s with a TypeError listing the allowed values', (_label, value, shown) => {
    const call = () => enumOption('o', 'strategy', value, allowed, 'aggressive');
    expect(call).toThrow(TypeError);
    expect(call).toThrow(`o: option "strategy" must be one of "aggressive", "cooperative", got ${shown}`);
  });
});

describe('clockOption', () => {
  it('returns the default for undefined and a clock-shaped object as it is', () => {
    const clock = new ManualClock();
    expect(clockOption('o', undefined, systemClock)).toBe(systemClock);
    expect(clockOption('o', clock, systemClock)).toBe(clock);
    const custom = { now: () => 0, setTimeout: () => ({ ref() {}, unref() {} }), clearTimeout: () => {} };
    expect(clockOption('o', custom, systemClock)).toBe(custom);
  });

  it.each([
    ['null', null, 'null'],
    ['a number', 5, '5'],
    ['an object without timers', { now: (): number => 0 }, 'an object'],
    ['an object without clearTimeout', { now: (): number => 0, setTimeout: (): object => ({}) }, 'an object'],
    ['a function', () => 0, 'a function'],
  ])('rejects %s with a TypeError naming "clock" and showing the value', (_label, value, shown) => {
    const call = () => clockOption('o', value, systemClock);
    expect(call).toThrow(TypeError);
    expect(call).toThrow(`o: option "clock" must have now(), setTimeout() and clearTimeout(), got ${shown}`);
  });
});
