import { describe, expect, it } from 'vitest';
import {
  circuitBreaker,
  type CircuitBreakerOptions,
  consecutive,
  countWindow,
  type CountWindowOptions,
  exponential,
  ManualClock,
  timeWindow,
  type TimeWindowOptions,
} from '../../../src/index.js';
import { badCounts, type ErrorClass, expectRejected, MAX_MS, type Row } from '../../support/options.js';

/** How a bad value should appear in the message: strings quoted, numbers as written. */
function shown(value: unknown): string {
  return typeof value === 'string' ? JSON.stringify(value) : String(value);
}


/** Bad values for a duration option; `zeroIsBad` when 0 ms makes no sense for it. */
function badDurations(option: string, zeroIsBad: boolean): Row[] {
  const rows: Row[] = [
    [option, NaN, RangeError],
    [option, Infinity, RangeError],
    [option, -Infinity, RangeError],
    [option, -1, RangeError],
    [option, -0.5, RangeError],
    [option, MAX_MS + 1, RangeError],
    [option, 2 ** 53, RangeError],
    [option, '1000', TypeError],
    [option, null, TypeError],
  ];
  if (zeroIsBad) rows.push([option, 0, RangeError]);
  return rows;
}

/** Bad values for a ratio in (0, 1]. */
function badRatios(option: string): Row[] {
  return [
    [option, NaN, RangeError],
    [option, Infinity, RangeError],
    [option, -Infinity, RangeError],
    [option, 0, RangeError],
    [option, -0.1, RangeError],
    [option, 1.0001, RangeError],
    [option, 2, RangeError],
    [option, '0.5', TypeError],
    [option, null, TypeError],
  ];
}

/** Runs `build`, expecting it to throw `kind` with a message naming `"option"` and showing `value`. */
function expectNamed(build: () => unknown, option: string, value: unknown, kind: ErrorClass): void {
  expectRejected(build, kind, `"${option}"`, shown(value));
}

describe('circuitBreaker option validation', () => {
  const clock = new ManualClock();

  it.each<Row>([
    ...badDurations('halfOpenAfterMs', false),
    ...badCounts('halfOpenMaxCalls', { max: 1_000_000 }),
    ...badDurations('probeTimeoutMs', true),
  ])('option "%s" = %s throws %O naming the option and the value', (option, value, kind) => {
    expectNamed(() => circuitBreaker({ clock, [option]: value } as CircuitBreakerOptions), option, value, kind);
  });

  it.each<[string, unknown]>([
    ['breaker', 5],
    ['breaker', 'consecutive'],
    ['breaker', {}],
    ['breaker', null],
    ['halfOpenAfterMs', { next: () => 1 }], // no initialMs: not a backoff
    ['handle', 'all'],
    ['handle', {}],
    ['handleResult', 'all'],
    ['handleResult', null],
    ['handleResult', true],
    ['name', ''],
    ['name', 42],
    ['clock', {}],
    ['clock', { now: () => 0 }],
    ['clock', 'system'],
  ])('option "%s" = %O throws a TypeError naming the option', (option, value) => {
    expect(() => circuitBreaker({ [option]: value } as CircuitBreakerOptions)).toThrow(TypeError);
    expect(() => circuitBreaker({ [option]: value } as CircuitBreakerOptions)).toThrow(`"${option}"`);
  });

  it.each(['halfOpenAfter', 'threshold', 'timeout', 'HalfOpenAfterMs'])('unknown option "%s" throws a TypeError naming it', (key) => {
    expect(() => circuitBreaker({ [key]: 1 } as CircuitBreakerOptions)).toThrow(TypeError);
    expect(() => circuitBreaker({ [key]: 1 } as CircuitBreakerOptions)).toThrow(`"${key}"`);
  });

  it.each<[string, unknown]>([
    ['a number', 5],
    ['a string', 'fast'],
    ['null', null],
    ['an array', []],
  ])('options given as %s throw a TypeError', (_label, options) => {
    expect(() => circuitBreaker(options as CircuitBreakerOptions)).toThrow(TypeError);
  });

  it('accepts the edge values', () => {
    expect(() => circuitBreaker({ halfOpenAfterMs: MAX_MS, probeTimeoutMs: MAX_MS, halfOpenMaxCalls: 1_000_000 })).not.toThrow();
    expect(() => circuitBreaker({ halfOpenAfterMs: 0, probeTimeoutMs: 0.5, halfOpenMaxCalls: 1 })).not.toThrow();
    expect(() => circuitBreaker(undefined)).not.toThrow();
    expect(() => circuitBreaker({})).not.toThrow();
    expect(() => circuitBreaker({ halfOpenAfterMs: undefined, breaker: undefined })).not.toThrow();
  });

  it('accepts a backoff for halfOpenAfterMs', () => {
    expect(() => circuitBreaker({ halfOpenAfterMs: exponential({ initialMs: 10 }) })).not.toThrow();
  });

  it('with halfOpenAfterMs 0 the next call after opening is a probe', async () => {
    const breaker = circuitBreaker({ breaker: consecutive(1), halfOpenAfterMs: 0, clock });
    await expect(breaker.execute(() => Promise.reject(new Error('down')))).rejects.toThrow('down');
    expect(breaker.state).toBe('half-open');
    await expect(breaker.execute(() => 'up')).resolves.toBe('up');
    expect(breaker.state).toBe('closed');
  });
});

describe('consecutive option validation', () => {
  it.each<[unknown, ErrorClass]>([
    [undefined, TypeError],
    [NaN, RangeError],
    [Infinity, RangeError],
    [-Infinity, RangeError],
    [-1, RangeError],
    [0, RangeError],
    [2.5, RangeError],
    [MAX_MS + 1, RangeError],
    ['5', TypeError],
    [null, TypeError],
  ])('consecutive(%s) throws %O naming "threshold" and the value', (value, kind) => {
    expectNamed(() => consecutive(value as number), 'threshold', value, kind);
  });

  it('accepts 1 and 2^31 - 1', () => {
    expect(consecutive(1).kind).toBe('consecutive');
    expect(consecutive(MAX_MS).kind).toBe('consecutive');
  });
});

describe('countWindow option validation', () => {
  it.each<Row>([
    ...badCounts('size', { max: 1_000_000 }),
    ...badRatios('failureRateThreshold'),
    ...badCounts('minimumCalls'),
    ...badDurations('slowCallMs', true),
  ])('option "%s" = %s throws %O naming the option and the value', (option, value, kind) => {
    expectNamed(() => countWindow({ [option]: value } as CountWindowOptions), option, value, kind);
  });

  it.each<Row>(badRatios('slowCallRateThreshold'))(
    'option "%s" = %s (with slowCallMs) throws %O naming the option and the value',
    (option, value, kind) => {
      expectNamed(() => countWindow({ slowCallMs: 100, [option]: value } as CountWindowOptions), option, value, kind);
    },
  );

  it('minimumCalls above size throws a RangeError naming "minimumCalls" and the value', () => {
    expectNamed(() => countWindow({ size: 10, minimumCalls: 11 }), 'minimumCalls', 11, RangeError);
    expect(() => countWindow({ size: 10, minimumCalls: 10 })).not.toThrow();
  });

  it('slowCallRateThreshold without slowCallMs throws a TypeError naming both options', () => {
    expect(() => countWindow({ slowCallRateThreshold: 0.5 })).toThrow(TypeError);
    expect(() => countWindow({ slowCallRateThreshold: 0.5 })).toThrow(/"slowCallRateThreshold".*"slowCallMs"/);
    expectNamed(() => countWindow({ slowCallRateThreshold: 0.5 }), 'slowCallRateThreshold', 0.5, TypeError);
  });

  it.each(['window', 'windowMs', 'threshold', 'minCalls'])('unknown option "%s" throws a TypeError naming it', (key) => {
    expect(() => countWindow({ [key]: 1 } as CountWindowOptions)).toThrow(TypeError);
    expect(() => countWindow({ [key]: 1 } as CountWindowOptions)).toThrow(`"${key}"`);
  });

  it.each<unknown>([5, 'big', null, []])('options given as %O throw a TypeError', (options) => {
    expect(() => countWindow(options as CountWindowOptions)).toThrow(TypeError);
  });

  it('accepts the edge values', () => {
    expect(() => countWindow({ size: 1, minimumCalls: 1, failureRateThreshold: 1 })).not.toThrow();
    expect(() => countWindow({ size: 1_000_000, failureRateThreshold: 1e-9 })).not.toThrow();
    expect(() => countWindow({ slowCallMs: MAX_MS, slowCallRateThreshold: 1 })).not.toThrow();
    expect(() => countWindow()).not.toThrow();
  });
});

describe('timeWindow option validation', () => {
  it.each<Row>([
    ...badDurations('windowMs', true),
    ['windowMs', 9, RangeError], // fewer ms than buckets
    ...badRatios('failureRateThreshold'),
    ...badCounts('minimumCalls'),
    ...badDurations('slowCallMs', true),
  ])('option "%s" = %s throws %O naming the option and the value', (option, value, kind) => {
    expectNamed(() => timeWindow({ [option]: value } as TimeWindowOptions), option, value, kind);
  });

  it.each<Row>(badRatios('slowCallRateThreshold'))(
    'option "%s" = %s (with slowCallMs) throws %O naming the option and the value',
    (option, value, kind) => {
      expectNamed(() => timeWindow({ slowCallMs: 100, [option]: value } as TimeWindowOptions), option, value, kind);
    },
  );

  it('slowCallRateThreshold without slowCallMs throws a TypeError naming both options', () => {
    expect(() => timeWindow({ slowCallRateThreshold: 0.5 })).toThrow(/"slowCallRateThreshold".*"slowCallMs"/);
    expectNamed(() => timeWindow({ slowCallRateThreshold: 0.5 }), 'slowCallRateThreshold', 0.5, TypeError);
  });

  it.each(['size', 'window', 'bucketMs', 'threshold'])('unknown option "%s" throws a TypeError naming it', (key) => {
    expect(() => timeWindow({ [key]: 1 } as TimeWindowOptions)).toThrow(TypeError);
    expect(() => timeWindow({ [key]: 1 } as TimeWindowOptions)).toThrow(`"${key}"`);
  });

  it.each<unknown>([5, 'long', null, []])('options given as %O throw a TypeError', (options) => {
    expect(() => timeWindow(options as TimeWindowOptions)).toThrow(TypeError);
  });

  it('accepts the edge values', () => {
    expect(() => timeWindow({ windowMs: 10, minimumCalls: 1 })).not.toThrow();
    expect(() => timeWindow({ windowMs: MAX_MS, minimumCalls: MAX_MS })).not.toThrow();
    expect(() => timeWindow()).not.toThrow();
  });
});
