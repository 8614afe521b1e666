import { describe, expect, it } from 'vitest';
import { fallback, type FallbackOptions } from '../../../src/index.js';

const make = (options: unknown) => (): unknown => fallback('v', options as FallbackOptions);

describe('fallback options', () => {
  it('accepts no options, an empty object, and valid handle and name', () => {
    expect(() => fallback('v')).not.toThrow();
    expect(() => fallback('v', {})).not.toThrow();
    expect(() => fallback('v', undefined)).not.toThrow();
    expect(fallback('v', { handle: () => true, name: 'prices' }).name).toBe('prices');
  });

  it('treats an option set to undefined as its default', () => {
    expect(fallback('v', { handle: undefined, name: undefined }).name).toBe('fallback');
  });

  it.each([
    ['null', null, 'null'],
    ['a number', 5, '5'],
    ['a string', 'handle', '"handle"'],
    ['an array', [], 'an array'],
    ['a function', () => true, 'a function'],
    ['true', true, 'true'],
  ])('rejects %s as the options with a TypeError showing it', (_label, options, shown) => {
    expect(make(options)).toThrow(TypeError);
    expect(make(options)).toThrow(`fallback: options must be an object, got ${shown}`);
  });

  it.each([
    ['a string', 'yes', '"yes"'],
    ['a number', 1, '1'],
    ['NaN', NaN, 'NaN'],
    ['true', true, 'true'],
    ['null', null, 'null'],
    ['an object', {}, 'an object'],
    ['an array', [], 'an array'],
  ])('rejects handle set to %s with a TypeError naming "handle"', (_label, handle, shown) => {
    expect(make({ handle })).toThrow(TypeError);
    expect(make({ handle })).toThrow(`fallback: option "handle" must be a function, got ${shown}`);
  });

  it.each([
    ['the empty string', '', '""'],
    ['a number', 42, '42'],
    ['NaN', NaN, 'NaN'],
    ['Infinity', Infinity, 'Infinity'],
    ['null', null, 'null'],
    ['an object', { toString: () => 'x' }, 'an object'],
    ['a function', () => 'x', 'a function'],
  ])('rejects name set to %s with a TypeError naming "name"', (_label, name, shown) => {
    expect(make({ name })).toThrow(TypeError);
    expect(make({ name })).toThrow(`fallback: option "name" must be a non-empty string, got ${shown}`);
  });

  it.each([['delayMs'], ['value'], ['Handle'], ['onFallback'], ['fallback']])(
    'rejects the unknown option %s with a TypeError naming it and the known ones',
    (key) => {
      expect(make({ [key]: 1 })).toThrow(TypeError);
      expect(make({ [key]: 1 })).toThrow(`fallback: unknown option "${key}" (known options: handle, name)`);
    },
  );

  it('rejects an unknown option even when it is set to undefined', () => {
    expect(make({ handel: undefined })).toThrow('unknown option "handel"');
  });
});
