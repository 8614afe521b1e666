import { describe, expect, expectTypeOf, it } from 'vitest';
import { faultInjection, FaultInjectionPolicy } from '../../../src/index.js';
import { errorClass, type ErrorName } from '../../support/options.js';

const fault = new Error('x');

describe('faultInjection option validation', () => {
  it.each<[string, unknown, ErrorName, string]>([
    ['missing', undefined, 'TypeError', 'undefined'],
    ['zero', 0, 'RangeError', '0'],
    ['negative', -0.1, 'RangeError', '-0.1'],
    ['over 1', 1.01, 'RangeError', '1.01'],
    ['NaN', NaN, 'RangeError', 'NaN'],
    ['Infinity', Infinity, 'RangeError', 'Infinity'],
    ['a numeric string', '0.5', 'TypeError', '"0.5"'],
    ['null', null, 'TypeError', 'null'],
  ])('rejects a rate that is %s with a %s naming "rate" and the value', (_label, rate, error, shown) => {
    const build = (): unknown => faultInjection({ rate, fault } as never);
    expect(build).toThrow(errorClass[error]);
    expect(build).toThrow('"rate"');
    expect(build).toThrow(shown);
  });

  it.each<[string, unknown, ErrorName, string]>([
    ['negative', -1, 'RangeError', '-1'],
    ['NaN', NaN, 'RangeError', 'NaN'],
    ['over 2^31 − 1', 2 ** 31, 'RangeError', String(2 ** 31)],
    ['a numeric string', '10', 'TypeError', '"10"'],
    ['null', null, 'TypeError', 'null'],
  ])('rejects a latencyMs that is %s with a %s naming it', (_label, latencyMs, error, shown) => {
    const build = (): unknown => faultInjection({ rate: 0.5, latencyMs } as never);
    expect(build).toThrow(errorClass[error]);
    expect(build).toThrow('"latencyMs"');
    expect(build).toThrow(shown);
  });

  it.each([
    { label: 'no fault at all', options: { rate: 0.5 }, fragment: 'at least one of "fault", "outcome" or "latencyMs"' },
    { label: 'both fault and outcome', options: { rate: 0.5, fault, outcome: 1 }, fragment: '"fault" and "outcome" both end the call' },
    { label: 'a fault that is a string', options: { rate: 0.5, fault: 'boom' }, fragment: '"fault" must be an Error or a function returning one, got "boom"' },
    { label: 'a fault that is an error-like object', options: { rate: 0.5, fault: { message: 'x' } }, fragment: '"fault" must be an Error' },
    { label: 'enabled as a string', options: { rate: 0.5, fault, enabled: 'false' }, fragment: '"enabled" must be a boolean, got "false"' },
    { label: 'when that is not a function', options: { rate: 0.5, fault, when: true }, fragment: '"when" must be a function' },
    { label: 'random that is not a function', options: { rate: 0.5, fault, random: 0.3 }, fragment: '"random" must be a function' },
    { label: 'an empty name', options: { rate: 0.5, fault, name: '' }, fragment: '"name"' },
    { label: 'a clock without timers', options: { rate: 0.5, fault, clock: { now: () => 0 } }, fragment: '"clock"' },
    { label: 'an unknown key', options: { rate: 0.5, fault, injectionRate: 0.1 }, fragment: 'unknown option "injectionRate"' },
    { label: 'a misspelt key', options: { rate: 0.5, latency: 100 }, fragment: 'unknown option "latency"' },
  ])('rejects $label with a TypeError naming it', ({ options, fragment }) => {
    const build = (): unknown => faultInjection(options as never);
    expect(build).toThrow(TypeError);
    expect(build).toThrow(fragment);
  });

  it.each([
    { label: 'undefined', options: undefined, fragment: 'options must be an object' },
    { label: 'null', options: null, fragment: 'options must be an object, got null' },
    { label: 'a number', options: 0.5, fragment: 'got 0.5' },
    { label: 'an array', options: [0.5], fragment: 'got an array' },
  ])('rejects $label as options with a TypeError', ({ options, fragment }) => {
    const build = (): unknown => faultInjection(options as never);
    expect(build).toThrow(TypeError);
    expect(build).toThrow(fragment);
  });

  it('accepts the bounds: rate 1, latency 0 and 2^31 − 1 ms, and reports its settings', () => {
    expect(faultInjection({ rate: 1, latencyMs: 0 }).rate).toBe(1);
    const policy = faultInjection({ rate: Number.MIN_VALUE, latencyMs: 2 ** 31 - 1, name: 'chaos' });
    expect(policy).toBeInstanceOf(FaultInjectionPolicy);
    expect(policy).toMatchObject({ name: 'chaos', kind: 'fault-injection', enabled: true, rate: Number.MIN_VALUE });
  });

  it('types the result of an outcome-injecting policy as the function’s result or the outcome', () => {
    // Disabled, so the calls below (expectTypeOf evaluates its argument) inject nothing: an
    // injected fault here would be an unhandled rejection in one run of ten.
    const none = faultInjection({ rate: 0.1, fault, enabled: false });
    expectTypeOf(none.execute(() => 'a')).toEqualTypeOf<Promise<string>>();
    const numbers = faultInjection({ rate: 0.1, outcome: 42, enabled: false });
    expectTypeOf(numbers.execute(() => 'a')).toEqualTypeOf<Promise<string | number>>();
    const responses = faultInjection({ rate: 0.1, outcome: () => new Response(null, { status: 503 }), enabled: false });
    expectTypeOf(responses.execute(() => new Response())).toEqualTypeOf<Promise<Response>>();
  });
});
