import { createServer } from 'node:http';
import { describe, expect, it } from 'vitest';
import { eventLoopDelayCheck, gracefulShutdown, health, healthHandler } from '../../../src/index.js';
import { healthMiddleware } from '../../../src/adapters/express.js';
import { redisCheck } from '../../../src/ratelimit/redis/index.js';
import { expectRejected } from '../../support/options.js';

const check = { name: 'a', check: () => undefined };

describe('health() options', () => {
  it.each([
    ['timeoutMs', { timeoutMs: 0 }, RangeError, '0'],
    ['timeoutMs', { timeoutMs: NaN }, RangeError, 'NaN'],
    ['timeoutMs', { timeoutMs: '100' }, TypeError, '"100"'],
    ['cacheMs', { cacheMs: -1 }, RangeError, '-1'],
    ['cacheMs', { cacheMs: Infinity }, RangeError, 'Infinity'],
    ['waitForStarted', { waitForStarted: 'yes' }, TypeError, '"yes"'],
    ['checks', { checks: check }, TypeError, 'an object'],
    ['timeout', { timeout: 5 }, TypeError, 'timeout'],
    ['clock', { clock: { now: () => 0 } }, TypeError, 'an object'],
    ['checks[0]', { checks: [null] }, TypeError, 'null'],
    ['checks[0].name', { checks: [{ ...check, name: '' }] }, TypeError, '""'],
    ['checks[0].check', { checks: [{ ...check, check: 'ping' }] }, TypeError, '"ping"'],
    ['checks[0].timeoutMs', { checks: [{ ...check, timeoutMs: -5 }] }, RangeError, '-5'],
    ['checks[0].cacheMs', { checks: [{ ...check, cacheMs: 2 ** 31 }] }, RangeError, String(2 ** 31)],
    ['checks[0].critical', { checks: [{ ...check, critical: 1 }] }, TypeError, '1'],
    ['checks[0].probes', { checks: [{ ...check, probes: ['alive'] }] }, TypeError, '["alive"]'],
    ['checks[0].probes', { checks: [{ ...check, probes: [] }] }, TypeError, '[]'],
    ['checks[0].close', { checks: [{ ...check, close: true }] }, TypeError, 'true'],
    ['timeoutms', { checks: [{ ...check, timeoutms: 5 }] }, TypeError, 'timeoutms'],
    ['checks[1].name', { checks: [check, check] }, TypeError, '"a"'],
  ] as const)('rejects a bad %s, naming it and the value', (option, options, kind, shown) => {
    expectRejected(() => health(options as never), kind, option, shown);
  });

  it('rejects options that are not a plain object', () => {
    expectRejected(() => health([] as never), TypeError, 'options', 'an array');
  });
});

describe('eventLoopDelayCheck() options', () => {
  it.each([
    ['maxDelayMs', { maxDelayMs: 0 }, RangeError, '0'],
    ['windowMs', { windowMs: -1 }, RangeError, '-1'],
    ['sampleIntervalMs', { sampleIntervalMs: 0 }, RangeError, '0'],
    ['name', { name: '' }, TypeError, '""'],
    ['critical', { critical: 'no' }, TypeError, '"no"'],
    ['interval', { interval: 5 }, TypeError, 'interval'],
  ] as const)('rejects a bad %s', (option, options, kind, shown) => {
    expectRejected(() => eventLoopDelayCheck(options as never), kind, option, shown);
  });
});

describe('HTTP handler options', () => {
  const h = health();
  it.each([
    ['prefix', { prefix: 'ops' }, '"ops"'],
    ['prefix', { prefix: '/ops/' }, '"/ops/"'],
    ['prefix', { prefix: 5 }, '5'],
    ['verbose', { verbose: true }, 'true'],
    ['verbose', { verbose: 'sometimes' }, '"sometimes"'],
    ['paths', { paths: {} }, 'paths'],
  ] as const)('rejects a bad %s', (option, options, shown) => {
    expectRejected(() => healthHandler(h, options as never), TypeError, option, shown);
    expectRejected(() => healthMiddleware(h, options as never), TypeError, option, shown);
  });

  it('rejects something that is not a health()', () => {
    expectRejected(() => healthHandler({} as never), TypeError, 'health', 'an object');
    expectRejected(() => healthMiddleware(undefined as never), TypeError, 'health', 'undefined');
  });
});

describe('gracefulShutdown() options', () => {
  it.each([
    ['drainDelayMs', { drainDelayMs: -1 }, RangeError, '-1'],
    ['closeTimeoutMs', { closeTimeoutMs: NaN }, RangeError, 'NaN'],
    ['hookTimeoutMs', { hookTimeoutMs: 0 }, RangeError, '0'],
    ['signals', { signals: 'SIGTERM' }, TypeError, '"SIGTERM"'],
    ['signals', { signals: ['SIGKILL'] }, TypeError, 'SIGKILL'],
    ['signals', { signals: ['sigterm'] }, TypeError, 'sigterm'],
    ['hooks', { hooks: [1] }, TypeError, 'an array'],
    ['onSecondSignal', { onSecondSignal: 'exit' }, TypeError, '"exit"'],
    ['exit', { exit: 0 }, TypeError, '0'],
    ['processExit', { processExit: 1 }, TypeError, '1'],
    ['log', { log: console }, TypeError, 'an object'],
    ['health', { health: {} }, TypeError, 'an object'],
    ['timeout', { timeout: 1 }, TypeError, 'timeout'],
  ] as const)('rejects a bad %s', (option, options, kind, shown) => {
    const server = createServer();
    expectRejected(() => gracefulShutdown(server, { signals: [], ...(options as object) } as never), kind, option, shown);
    expect(server.listenerCount('request')).toBe(0);
  });

  it('rejects a target that is neither a server nor a Fastify instance', () => {
    expectRejected(() => gracefulShutdown({} as never, { signals: [] }), TypeError, 'server', 'an object');
    expectRejected(() => gracefulShutdown(undefined as never, { signals: [] }), TypeError, 'server', 'undefined');
    expectRejected(() => gracefulShutdown((() => {}) as never, { signals: [] }), TypeError, 'app.listen()', 'a function');
  });
});

describe('redisCheck() options', () => {
  const client = { ping: async () => 'PONG' };
  it.each([
    ['name', { name: '' }, '""'],
    ['host', { host: 'x' }, 'host'],
  ] as const)('rejects a bad %s', (option, options, shown) => {
    expectRejected(() => redisCheck(client, options as never), TypeError, option, shown);
  });

  it('rejects something that is neither a client nor a store, and lets health() check the durations', () => {
    expectRejected(() => redisCheck({} as never), TypeError, 'redis', 'an object');
    expectRejected(() => health({ checks: [redisCheck(client, { timeoutMs: 0 })] }), RangeError, 'timeoutMs', '0');
  });
});
