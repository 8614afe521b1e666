// registerMetrics itself: options, the registry it is given (and no other), dispose, and two
// registrations side by side.
import diagnosticsChannel from 'node:diagnostics_channel';
import { Counter, register as globalRegistry, Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { channelNames, circuitBreaker, consecutive, retry } from '../../../src/index.js';
import { executeChannel } from '../../../src/core/diagnostics.js';
import { registerMetrics } from '../../../src/metrics/index.js';
import { Boom, ignore, setup, valueOf } from './support.js';

const allChannels = Object.values(channelNames).filter((n) => n !== channelNames.execute);

/** Channels (and the execute tracing channel) that have a subscriber now. */
function subscribed(): string[] {
  const names = allChannels.filter((n) => diagnosticsChannel.hasSubscribers(n));
  return executeChannel.hasSubscribers ? [channelNames.execute, ...names] : names;
}

const ALL_METRICS = [
  'bulwark_circuit_state',
  'bulwark_executions_total',
  'bulwark_execution_duration_seconds',
  'bulwark_circuit_transitions_total',
  'bulwark_circuit_rejections_total',
  'bulwark_retries_total',
  'bulwark_retry_give_ups_total',
  'bulwark_timeouts_total',
  'bulwark_bulkhead_rejections_total',
  'bulwark_fallbacks_total',
  'bulwark_hedges_total',
  'bulwark_ratelimit_decisions_total',
  'bulwark_ratelimit_store_errors_total',
  'bulwark_shedding_rejections_total',
  'bulwark_health_check_status',
  'bulwark_health_check_duration_seconds',
  'bulwark_fetch_failovers_total',
  'bulwark_fault_injections_total',
  'bulwark_throttle_rejections_total',
  'bulwark_fetch_pacing_total',

  'bulwark_rate_limit_settles_total',
  'bulwark_rate_limit_compound_decisions_total',
  'bulwark_callback_errors_total',
  'bulwark_admission_limit',
  'bulwark_admission_in_flight',
  'bulwark_admission_queued',
  'bulwark_admission_rejections_total',
];

describe('registerMetrics', () => {
  it('subscribes to nothing until it is called, then to every channel except the shutdown phases', () => {
    expect(subscribed()).toEqual([]);
    const { registration } = setup();
    expect(new Set(subscribed())).toEqual(new Set([channelNames.execute, ...allChannels.filter((n) => n !== channelNames.shutdownPhase)]));
    registration.dispose();
    expect(subscribed()).toEqual([]);
  });

  it('puts its metrics in the given registry and never in the global one', async () => {
    const before = globalRegistry.getMetricsAsArray().length;
    const { registry, registration } = setup();
    expect(registration.metricNames).toEqual(ALL_METRICS);
    expect(registry.getMetricsAsArray().map((m) => (m as unknown as { name: string }).name)).toEqual(ALL_METRICS);
    expect(globalRegistry.getMetricsAsArray()).toHaveLength(before);
    expect(await globalRegistry.metrics()).not.toContain('bulwark_');
  });

  it('dispose unsubscribes and removes its metrics, leaving the registry\'s others, and may be called again', async () => {
    const registry = new Registry();
    const mine = new Counter({ name: 'app_requests_total', help: 'app', registers: [registry] });
    mine.inc();
    const registration = registerMetrics(registry);
    registration.dispose();
    registration.dispose();
    expect(registry.getMetricsAsArray()).toEqual([mine]);
    expect(subscribed()).toEqual([]);
    // Events after dispose move nothing: a new registration starts from zero.
    const b = circuitBreaker({ name: 'x', breaker: consecutive(1) });
    await b.execute(() => Promise.reject(new Boom('down'))).catch(ignore);
    const again = registerMetrics(registry);
    try {
      expect(await valueOf(registry, 'bulwark_executions_total', { kind: 'circuit-breaker', policy: 'x', outcome: 'error' })).toBeUndefined();
      expect(await valueOf(registry, 'bulwark_circuit_state', { policy: 'x', state: 'open' })).toBeUndefined();
    } finally {
      again.dispose();
    }
  });

  it('is disposable with `using`', () => {
    const registry = new Registry();
    const registration = registerMetrics(registry);
    const dispose = (registration as unknown as Record<symbol, () => void>)[
      (Symbol as { dispose?: symbol }).dispose ?? Symbol.for('Symbol.dispose')
    ];
    expect(typeof dispose).toBe('function');
    dispose!();
    expect(registry.getMetricsAsArray()).toEqual([]);
    expect(subscribed()).toEqual([]);
  });

  it('refuses a second registration with the same prefix with its own error, and allows it after dispose', () => {
    const registry = new Registry();
    const first = registerMetrics(registry);
    expect(() => registerMetrics(registry)).toThrow(
      new RegExp(`registerMetrics: the registry already has a metric named "bulwark_circuit_state" \\(and ${ALL_METRICS.length - 1} more\\).*prefix "bulwark_"`),
    );
    expect(registry.getMetricsAsArray()).toHaveLength(ALL_METRICS.length);
    expect(subscribed()).toHaveLength(allChannels.length); // the failed call subscribed nothing
    first.dispose();
    registerMetrics(registry).dispose();
  });

  it('refuses a registry holding a metric of the same name as one of its own', () => {
    const registry = new Registry();
    new Counter({ name: 'bulwark_retries_total', help: 'someone else', registers: [registry] });
    expect(() => registerMetrics(registry)).toThrow('"bulwark_retries_total"');
  });

  it('runs two registrations with different prefixes on one registry, each counting', async () => {
    const registry = new Registry();
    const a = registerMetrics(registry);
    const b = registerMetrics(registry, { prefix: 'edge_' });
    try {
      await retry({ name: 'r', maxAttempts: 1 }).execute(() => 1);
      const labels = { kind: 'retry', policy: 'r', outcome: 'success' };
      expect(await valueOf(registry, 'bulwark_executions_total', labels)).toBe(1);
      expect(await valueOf(registry, 'edge_executions_total', labels)).toBe(1);
      a.dispose();
      expect(registry.getSingleMetric('bulwark_executions_total')).toBeUndefined();
      await retry({ name: 'r', maxAttempts: 1 }).execute(() => 1);
      expect(await valueOf(registry, 'edge_executions_total', labels)).toBe(2);
    } finally {
      a.dispose();
      b.dispose();
    }
  });

  it('takes an empty prefix', () => {
    const { registry } = setup({ prefix: '' });
    expect(registry.getSingleMetric('executions_total')).toBeDefined();
  });
});

describe('registerMetrics options', () => {
  const registry = new Registry();
  it.each<[string, unknown, ErrorConstructor, string]>([
    ['no registry', undefined, TypeError, 'the first argument must be a prom-client Registry, got undefined'],
    ['a plain object', {}, TypeError, 'the first argument must be a prom-client Registry, got an object'],
  ])('refuses %s', (_name, value, kind, message) => {
    expect(() => registerMetrics(value as Registry)).toThrow(kind);
    expect(() => registerMetrics(value as Registry)).toThrow(`registerMetrics: ${message}`);
  });

  it.each<[string, unknown, ErrorConstructor, string]>([
    ['an unknown key', { prefx: 'a_' }, TypeError, 'unknown option "prefx" (known options: prefix, durationBuckets, circuitBreakers, admission, maxLabelValues)'],
    ['an array as options', [], TypeError, 'options must be an object, got an array'],
    ['a numeric prefix', { prefix: 5 }, TypeError, 'option "prefix" must be a string, got 5'],
    ['a prefix with a dash', { prefix: 'my-app_' }, RangeError, 'option "prefix" must hold only letters, digits and underscores and not start with a digit, got "my-app_"'],
    ['a prefix with a colon', { prefix: 'a:b_' }, RangeError, 'option "prefix" must hold only letters, digits and underscores and not start with a digit, got "a:b_"'],
    ['a prefix starting with a digit', { prefix: '9a_' }, RangeError, 'option "prefix" must hold only letters, digits and underscores and not start with a digit, got "9a_"'],
    ['buckets that are not an array', { durationBuckets: 0.5 }, TypeError, 'option "durationBuckets" must be an array of seconds, got 0.5'],
    ['no buckets', { durationBuckets: [] }, RangeError, 'option "durationBuckets" must hold at least one bucket, got []'],
    ['a string bucket', { durationBuckets: [0.1, '1'] }, TypeError, 'option "durationBuckets[1]" must be a number of seconds, got "1"'],
    ['a zero bucket', { durationBuckets: [0] }, RangeError, 'option "durationBuckets[0]" must be a finite number of seconds above 0, got 0'],
    ['an infinite bucket', { durationBuckets: [1, Infinity] }, RangeError, 'option "durationBuckets[1]" must be a finite number of seconds above 0, got Infinity'],
    ['a NaN bucket', { durationBuckets: [Number.NaN] }, RangeError, 'option "durationBuckets[0]" must be a finite number of seconds above 0, got NaN'],
    ['decreasing buckets', { durationBuckets: [1, 0.5] }, RangeError, 'option "durationBuckets" must be strictly increasing, got 0.5 after 1 at index 1'],
    ['a repeated bucket', { durationBuckets: [1, 1] }, RangeError, 'option "durationBuckets" must be strictly increasing, got 1 after 1 at index 1'],
    ['a numeric-string label cap', { maxLabelValues: '5' }, TypeError, 'option "maxLabelValues" must be a number, got "5"'],
    ['a NaN label cap', { maxLabelValues: Number.NaN }, RangeError, 'option "maxLabelValues" must be a finite number, got NaN'],
    ['a label cap of 0', { maxLabelValues: 0 }, RangeError, 'option "maxLabelValues" must be between 1 and 10000, got 0'],
    ['a fractional label cap', { maxLabelValues: 2.5 }, RangeError, 'option "maxLabelValues" must be a whole number, got 2.5'],
    ['a label cap over 10,000', { maxLabelValues: 10_001 }, RangeError, 'option "maxLabelValues" must be between 1 and 10000, got 10001'],
    ['breakers that are not iterable', { circuitBreakers: 7 }, TypeError, 'option "circuitBreakers" must be an iterable of circuit breakers, got 7'],
    ['a string of breakers', { circuitBreakers: 'abc' }, TypeError, 'option "circuitBreakers" must be an iterable of circuit breakers, got "abc"'],
    [
      'a non-breaker among the breakers',
      { circuitBreakers: [circuitBreaker(), { name: 'x' }] },
      TypeError,
      'option "circuitBreakers" must hold circuit breakers (objects with "name" and "state"), got an object at index 1',
    ],
    [
      'two breakers of one name',
      { circuitBreakers: [circuitBreaker({ name: 'a' }), circuitBreaker({ name: 'a' })] },
      TypeError,
      'option "circuitBreakers" holds two breakers named "a": give each breaker its own "name"',
    ],
  ])('refuses %s, naming the option and the value', (_name, options, kind, message) => {
    expect(() => registerMetrics(registry, options as never)).toThrow(kind);
    expect(() => registerMetrics(registry, options as never)).toThrow(`registerMetrics: ${message}`);
    expect(registry.getMetricsAsArray()).toEqual([]);
    expect(subscribed()).toEqual([]);
  });
});
