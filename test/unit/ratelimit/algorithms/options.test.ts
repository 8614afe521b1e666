import { describe, expect, it } from 'vitest';
import type { RateLimitAlgorithm } from '../../../../src/ratelimit/algorithm.js';
import { fixedWindow, gcra, slidingWindow } from '../../../../src/ratelimit/algorithms/index.js';
import { badCounts, type ErrorClass, expectRejected, MAX_MS, type Row } from '../../../support/options.js';

/** How a bad value should appear in the message: strings quoted, numbers as written. */
function shown(value: unknown): string {
  return typeof value === 'string' ? JSON.stringify(value) : String(value);
}

/** Runs `build`, expecting `kind` with a message naming `"name"` and showing `value`. */
function expectNamed(build: () => unknown, name: string, value: unknown, kind: ErrorClass): void {
  expectRejected(build, kind, `"${name}"`, shown(value));
}



/** Bad values for a required duration in ms, greater than 0. */
function badDurations(option: string): Row[] {
  return [
    [option, undefined, TypeError],
    [option, NaN, RangeError],
    [option, Infinity, RangeError],
    [option, -Infinity, RangeError],
    [option, -1, RangeError],
    [option, 0, RangeError],
    [option, MAX_MS + 1, RangeError],
    [option, 2 ** 53, RangeError],
    [option, '1000', TypeError],
    [option, null, TypeError],
  ];
}

const good = {
  gcra: { limit: 10, periodMs: 1_000 },
  slidingWindow: { limit: 10, windowMs: 1_000 },
  fixedWindow: { limit: 10, windowMs: 1_000 },
} as const;

type Factory = (options: never) => RateLimitAlgorithm;
const factories: [keyof typeof good, Factory][] = [
  ['gcra', gcra as Factory],
  ['slidingWindow', slidingWindow as Factory],
  ['fixedWindow', fixedWindow as Factory],
];

function build(factory: Factory, options: unknown): RateLimitAlgorithm {
  return (factory as (options: unknown) => RateLimitAlgorithm)(options);
}

describe('gcra option validation', () => {
  it.each<Row>([
    ...badCounts('limit', { required: true }),
    ...badDurations('periodMs'),
    ...badCounts('burst'),
  ])('option "%s" = %s throws %O naming the option and the value', (option, value, kind) => {
    expectNamed(() => gcra({ ...good.gcra, [option]: value }), option, value, kind);
  });

  it.each<[number, number]>([
    [300_000, 1_000], // one unit every 3.33 µs: whole µs would be 20% slow
    [1_500, 1], // two thirds of a µs per unit
    [3, 0.000_1], // a period shorter than a µs
  ])('a rate whole microseconds cannot hold (limit %i per %s ms) throws a RangeError naming "limit"', (limit, periodMs) => {
    expectNamed(() => gcra({ limit, periodMs }), 'limit', limit, RangeError);
  });

  it('accepts rates whose interval is a whole number of µs, or long enough to round within 0.1%', () => {
    expect(gcra({ limit: 1_000_000, periodMs: 1_000 }).emissionIntervalUs).toBe(1);
    expect(gcra({ limit: 1_000, periodMs: 1 }).emissionIntervalUs).toBe(1);
    expect(gcra({ limit: 7, periodMs: 10 }).emissionIntervalUs).toBe(1_429);
    expect(gcra({ limit: 1, periodMs: 0.5 }).emissionIntervalUs).toBe(500);
    expect(gcra({ limit: 1, periodMs: MAX_MS }).emissionIntervalUs).toBe(MAX_MS * 1000);
    expect(gcra({ limit: MAX_MS, periodMs: MAX_MS }).emissionIntervalUs).toBe(1000);
  });

  it('a burst whose bucket would take over 2^42 µs to refill throws a RangeError naming "burst"', () => {
    expectNamed(() => gcra({ limit: 1, periodMs: 1_000_000, burst: 4_399 }), 'burst', 4_399, RangeError);
    expect(gcra({ limit: 1, periodMs: 1_000_000, burst: 4_398 }).burst).toBe(4_398);
    expect(gcra({ limit: 1, periodMs: MAX_MS, burst: 2 }).burst).toBe(2);
    expectNamed(() => gcra({ limit: 1, periodMs: MAX_MS, burst: 3 }), 'burst', 3, RangeError);
  });

  it('burst defaults to limit', () => {
    expect(gcra({ limit: 12, periodMs: 1_000 }).burst).toBe(12);
  });
});

describe.each(['slidingWindow', 'fixedWindow'] as const)('%s option validation', (name) => {
  const factory = name === 'slidingWindow' ? slidingWindow : fixedWindow;

  it.each<Row>([
    ...badCounts('limit', { required: true }),
    ...badDurations('windowMs'),
    ['windowMs', 1.5, RangeError],
    ['windowMs', 0.5, RangeError],
  ])(
    'option "%s" = %s throws %O naming the option and the value',
    (option, value, kind) => {
      expectNamed(() => factory({ ...good[name], [option]: value }), option, value, kind);
    },
  );

  it('accepts the edge values', () => {
    expect(factory({ limit: 1, windowMs: 1 }).windowMs).toBe(1);
    expect(factory({ limit: 2 ** 21, windowMs: MAX_MS }).limit).toBe(2 ** 21);
  });
});

describe('slidingWindow limits', () => {
  it('a limit × windowMs above 2^52 throws a RangeError naming "limit"', () => {
    expectNamed(() => slidingWindow({ limit: 2 ** 21 + 1, windowMs: MAX_MS }), 'limit', 2 ** 21 + 1, RangeError);
    expect(fixedWindow({ limit: MAX_MS, windowMs: MAX_MS }).limit).toBe(MAX_MS);
  });
});

describe.each(factories)('%s options', (name, factory) => {
  it.each(['limits', 'period', 'window', 'Burst', 'costMs', name === 'gcra' ? 'windowMs' : 'periodMs'])(
    'unknown option "%s" throws a TypeError naming it',
    (key) => {
      expect(() => build(factory, { ...good[name], [key]: 1 })).toThrow(TypeError);
      expect(() => build(factory, { ...good[name], [key]: 1 })).toThrow(`"${key}"`);
    },
  );

  if (name !== 'gcra') {
    it('burst is not an option of a window', () => {
      expect(() => build(factory, { ...good[name], burst: 5 })).toThrow(/unknown option "burst"/);
    });
  }

  it.each<[string, unknown]>([
    ['nothing', undefined],
    ['a number', 5],
    ['a string', 'fast'],
    ['null', null],
    ['an array', []],
    ['an empty object', {}],
  ])('options given as %s throw a TypeError', (_label, options) => {
    expect(() => build(factory, options)).toThrow(TypeError);
  });
});

describe.each(factories)('%s cost and time validation', (name, factory) => {
  const algorithm = build(factory, good[name]);
  const state = algorithm.consume(undefined, 0, 1).state;
  const operations = {
    consume: (cost: unknown, now = 0) => algorithm.consume(state, now, cost as number),
    peek: (cost: unknown, now = 0) => algorithm.peek(state, now, cost as number),
    refund: (cost: unknown, now = 0) => algorithm.refund(state, now, cost as number),
  };

  describe.each(Object.keys(operations) as (keyof typeof operations)[])('%s', (operation) => {
    const run = operations[operation];

    it.each<[unknown, ErrorClass]>([
      [NaN, RangeError],
      [0, RangeError],
      [-0, RangeError],
      [-1, RangeError],
      [0.5, RangeError],
      [1.5, RangeError],
      [Infinity, RangeError],
      [-Infinity, RangeError],
      ...(operation === 'refund'
        ? [] // a refund above the maximum is clamped to it (tested below)
        : ([
            [11, RangeError], // above the limit (or burst) of 10
            [2 ** 53, RangeError],
          ] as [unknown, ErrorClass][])),
      ['1', TypeError],
      [null, TypeError],
      [undefined, TypeError],
      [1n, TypeError],
    ])('a cost of %s throws %O naming "cost" and the value', (cost, kind) => {
      expectNamed(() => run(cost), 'cost', cost, kind);
    });

    it('accepts every whole cost from 1 to the maximum', () => {
      for (let cost = 1; cost <= 10; cost++) expect(() => run(cost)).not.toThrow();
    });

    if (operation === 'refund') {
      it.each([11, 2 ** 53])('clamps a refund of %s to the maximum: the key ends at full capacity', (cost) => {
        const taken = algorithm.consume(undefined, 0, 10);
        const refunded = algorithm.refund(taken.state, 0, cost);
        expect(refunded).toEqual(algorithm.refund(taken.state, 0, 10));
        expect(algorithm.peek(refunded.state, 0, 10).allowed).toBe(true);
      });
    }

    it.each([NaN, Infinity, -Infinity, 2 ** 52])('a clock reading of %s throws a RangeError naming "nowMs"', (now) => {
      expectNamed(() => run(1, now), 'nowMs', now, RangeError);
    });
  });
});
