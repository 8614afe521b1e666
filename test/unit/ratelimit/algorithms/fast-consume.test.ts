// The algorithms keep scratch state between calls (the rolled state, the window last computed)
// and carry a fast consume for the memory store. Neither may change an answer: every output must
// equal that of a freshly built algorithm, which has seen no earlier call, and the fast consume
// must return what `{ ...consume().decision, store }` would, storing the same state.
import { describe, expect, it } from 'vitest';
import type { AlgorithmState, RateLimitAlgorithm } from '../../../../src/ratelimit/algorithm.js';
import { fixedWindow, gcra, slidingWindow } from '../../../../src/ratelimit/algorithms/index.js';
import { type FastOutcome, fastConsume, type MaybeFastAlgorithm } from '../../../../src/ratelimit/fast-path.js';
import { between, seededRandom } from './support.js';

const cases: { name: string; make: () => RateLimitAlgorithm }[] = [
  { name: 'gcra({ limit: 5, periodMs: 700, burst: 3 })', make: () => gcra({ limit: 5, periodMs: 700, burst: 3 }) },
  { name: 'fixedWindow({ limit: 4, windowMs: 250 })', make: () => fixedWindow({ limit: 4, windowMs: 250 }) },
  { name: 'slidingWindow({ limit: 4, windowMs: 250 })', make: () => slidingWindow({ limit: 4, windowMs: 250 }) },
];

/** A settled call: its value or its error. */
function settle<T>(run: () => T): T | { error: string; message: string } {
  try {
    return run();
  } catch (error) {
    return { error: (error as Error).constructor.name, message: (error as Error).message };
  }
}

describe.each(cases)('$name', ({ make }) => {
  it.each([1, 2, 3])('answers as a fresh algorithm would, and its fast consume as consume (seed %i)', (seed) => {
    const random = seededRandom(seed);
    const algorithm = make();
    const fast = (algorithm as MaybeFastAlgorithm)[fastConsume]!;
    expect(fast).toBeTypeOf('function');
    const limit = algorithm.kind === 'gcra' ? 3 : 4;
    // Times around zero (negative ones too) and far from it, in steps that cross window edges
    // and sometimes go back.
    let t = random() < 0.5 ? -2_000 : 1_700_000_000_000;
    let state: AlgorithmState | undefined;
    for (let step = 0; step < 5_000; step++) {
      t += random() < 0.1 ? -between(random, 0, 300) : between(random, 0, 120);
      const now = random() < 0.2 ? t + random() : t; // fractional readings too
      const cost = random() < 0.03 ? limit + 1 : between(random, 1, limit);
      const op = random();
      if (op < 0.5) {
        const want = settle(() => make().consume(state, now, cost));
        const got = settle(() => algorithm.consume(state, now, cost));
        expect(got, `step ${step}`).toEqual(want);
        // The fast consume, on a copy it may update in place, says the same.
        const copy = state === undefined ? undefined : [...state];
        const out: FastOutcome = { keep: false, state: undefined, ttlMs: 0 };
        const fastGot = settle(() => ({ decision: fast(copy, now, cost, 'memory', out, random() < 0.5), out }));
        if ('error' in want) {
          expect(fastGot, `step ${step}`).toEqual(want);
        } else {
          expect('decision' in fastGot && Object.keys(fastGot.decision)).toEqual([...Object.keys(want.decision), 'store']);
          expect(fastGot).toEqual({
            decision: { ...want.decision, store: 'memory' },
            out: { keep: want.state !== state, state: want.state === state ? copy : want.state, ttlMs: want.ttlMs },
          });
          state = want.state;
        }
      } else if (op < 0.75) {
        expect(settle(() => algorithm.peek(state, now, cost)), `step ${step}`).toEqual(settle(() => make().peek(state, now, cost)));
      } else {
        const want = settle(() => make().refund(state, now, cost));
        expect(settle(() => algorithm.refund(state, now, cost)), `step ${step}`).toEqual(want);
        if (!('error' in want)) state = want.state;
      }
    }
  });
});
