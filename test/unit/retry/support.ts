// Small helpers shared by the retry tests (not a test file itself).

/** Captures how a promise settles, attaching the handler at once so no rejection goes unhandled. */
export { capture as outcome } from '../../support/helpers.js';

/** A function that fails with the given errors in turn, then returns `value`; counts its calls. */
export function failing<T>(errors: unknown[], value?: T): { fn: (ctx: { attempt: number }) => Promise<T>; calls: number[] } {
  const calls: number[] = [];
  let i = 0;
  const fn = async (ctx: { attempt: number }): Promise<T> => {
    calls.push(ctx.attempt);
    if (i < errors.length) throw errors[i++];
    return value as T;
  };
  return { fn, calls };
}

/** A function that always rejects with `error` (a fresh Error when none is given); counts its calls. */
export function alwaysFailing(...args: [] | [error: unknown]): { fn: () => Promise<never>; calls: () => number } {
  const error = args.length === 0 ? new Error('down') : args[0];
  let n = 0;
  return {
    fn: async () => {
      n++;
      throw error;
    },
    calls: () => n,
  };
}

/** A deterministic source of numbers in [0, 1) (a small linear congruential generator). */
export function seeded(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
    return state / 2 ** 32;
  };
}
