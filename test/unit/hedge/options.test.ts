import { describe, expect, it } from 'vitest';
import { hedge, type HedgeOptions, ManualClock } from '../../../src/index.js';
import { MAX_MS } from '../../support/options.js';

const make = (options: unknown) => (): unknown => hedge(options as HedgeOptions);

describe('hedge options', () => {
  it('accepts delayMs from 0 to 2^31 - 1 ms and maxHedges from 1 to 100', () => {
    expect(hedge({ delayMs: 0 }).delayMs).toBe(0);
    expect(hedge({ delayMs: 12.5 }).delayMs).toBe(12.5);
    expect(hedge({ delayMs: MAX_MS }).delayMs).toBe(MAX_MS);
    expect(hedge({ delayMs: 1, maxHedges: 1 }).maxHedges).toBe(1);
    expect(hedge({ delayMs: 1, maxHedges: 100 }).maxHedges).toBe(100);
    expect(hedge({ delayMs: 1, name: 'reads', clock: new ManualClock() }).name).toBe('reads');
  });

  it('treats optional options set to undefined as their defaults', () => {
    const policy = hedge({ delayMs: 5, maxHedges: undefined, name: undefined, clock: undefined });
    expect(policy.maxHedges).toBe(1);
    expect(policy.name).toBe('hedge');
  });

  it('requires an options object, naming delayMs when it is missing', () => {
    expect(() => (hedge as () => unknown)()).toThrow(TypeError);
    expect(() => (hedge as () => unknown)()).toThrow('hedge: options must be an object with "delayMs", got undefined');
  });

  it.each([
    ['null', null, 'null'],
    ['a number', 50, '50'],
    ['a string', '50', '"50"'],
    ['an array', [50], 'an array'],
    ['a function', () => 50, 'a function'],
  ])('rejects %s as the options with a TypeError showing it', (_label, options, shown) => {
    expect(make(options)).toThrow(TypeError);
    expect(make(options)).toThrow(`hedge: options must be an object, got ${shown}`);
  });

  it('rejects options without delayMs with a TypeError naming delayMs', () => {
    expect(make({})).toThrow(TypeError);
    expect(make({})).toThrow('hedge: option "delayMs" must be a number, got undefined');
    expect(make({ maxHedges: 2 })).toThrow('option "delayMs"');
    expect(make({ delayMs: undefined })).toThrow('option "delayMs" must be a number, got undefined');
  });

  it.each([
    ['NaN', NaN, RangeError, 'NaN'],
    ['Infinity', Infinity, RangeError, 'Infinity'],
    ['-Infinity', -Infinity, RangeError, '-Infinity'],
    ['a negative number', -1, RangeError, '-1'],
    ['a small negative fraction', -0.5, RangeError, '-0.5'],
    ['more than 2^31 - 1 ms', MAX_MS + 1, RangeError, String(MAX_MS + 1)],
    ['a huge number', 1e20, RangeError, '100000000000000000000'],
    ['a numeric string', '100', TypeError, '"100"'],
    ['an empty string', '', TypeError, '""'],
    ['null', null, TypeError, 'null'],
    ['a boolean', true, TypeError, 'true'],
    ['a bigint', 100n, TypeError, '100n'],
    ['an object', { valueOf: () => 100 }, TypeError, 'an object'],
  ])('rejects delayMs set to %s, naming the option and showing the value', (_label, delayMs, type, shown) => {
    expect(make({ delayMs })).toThrow(type);
    expect(make({ delayMs })).toThrow(/hedge: option "delayMs" must be/);
    expect(make({ delayMs })).toThrow(`got ${shown}`);
  });

  it.each([
    ['zero', 0, RangeError, '0'],
    ['a negative count', -1, RangeError, '-1'],
    ['a fraction', 1.5, RangeError, '1.5'],
    ['NaN', NaN, RangeError, 'NaN'],
    ['Infinity', Infinity, RangeError, 'Infinity'],
    ['-Infinity', -Infinity, RangeError, '-Infinity'],
    ['more than 100', 101, RangeError, '101'],
    ['more than 2^31 - 1', MAX_MS + 1, RangeError, String(MAX_MS + 1)],
    ['a numeric string', '2', TypeError, '"2"'],
    ['null', null, TypeError, 'null'],
    ['a boolean', false, TypeError, 'false'],
  ])('rejects maxHedges set to %s, naming the option and showing the value', (_label, maxHedges, type, shown) => {
    expect(make({ delayMs: 10, maxHedges })).toThrow(type);
    expect(make({ delayMs: 10, maxHedges })).toThrow(/hedge: option "maxHedges" must be/);
    expect(make({ delayMs: 10, maxHedges })).toThrow(`got ${shown}`);
  });

  it.each([
    ['the empty string', '', '""'],
    ['a number', 7, '7'],
    ['null', null, 'null'],
  ])('rejects name set to %s with a TypeError naming "name"', (_label, name, shown) => {
    expect(make({ delayMs: 10, name })).toThrow(TypeError);
    expect(make({ delayMs: 10, name })).toThrow(`hedge: option "name" must be a non-empty string, got ${shown}`);
  });

  it.each([
    ['an empty object', {}, 'an object'],
    ['an object with only now()', { now: (): number => 0 }, 'an object'],
    ['Date', Date, 'a function'],
    ['null', null, 'null'],
    ['a number', 0, '0'],
  ])('rejects clock set to %s with a TypeError naming "clock"', (_label, clock, shown) => {
    expect(make({ delayMs: 10, clock })).toThrow(TypeError);
    expect(make({ delayMs: 10, clock })).toThrow(
      `hedge: option "clock" must have now(), setTimeout() and clearTimeout(), got ${shown}`,
    );
  });

  it.each([['delay'], ['delayms'], ['maxAttempts'], ['hedges'], ['signal']])(
    'rejects the unknown option %s with a TypeError naming it and the known ones',
    (key) => {
      expect(make({ delayMs: 10, [key]: 1 })).toThrow(TypeError);
      expect(make({ delayMs: 10, [key]: 1 })).toThrow(
        `hedge: unknown option "${key}" (known options: delayMs, maxHedges, name, clock)`,
      );
    },
  );

  it('names an unknown key before complaining that delayMs is missing', () => {
    expect(make({ delay: 10 })).toThrow('unknown option "delay"');
  });
});
