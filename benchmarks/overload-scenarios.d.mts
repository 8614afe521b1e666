// Types for benchmarks/overload-scenarios.mjs, so that test/service/overload.test.ts type-checks.

/** Limit samples: [ms from the start of the load, limit, in flight]. */
export type LimitSample = readonly [number, number, number];

/** The records of one load run (or the part of them a judging function reads). */
export interface LoadRecords {
  readonly arrival: ArrayLike<number>;
  readonly cls: ArrayLike<number>;
  readonly status: ArrayLike<number>;
  readonly latency?: ArrayLike<number>;
  readonly lag?: ArrayLike<number>;
  readonly ends?: readonly number[];
}

export function percentile(values: ArrayLike<number>, p: number): number;
export function median(values: ArrayLike<number>): number;
export function settleSeconds(
  limit: readonly LimitSample[],
  fromMs: number,
  endMs: number,
  options?: { band?: number; minSlots?: number; finalMs?: number },
): { seconds: number | undefined; final: number | undefined };
export function secondsUntilAtLeast(limit: readonly LimitSample[], fromMs: number, level: number): number | undefined;
export function creep(limit: readonly LimitSample[], settleFromMs: number, settleToMs: number, endMs: number, windowMs?: number): { settled: number; highest: number; ratio: number };
export function cleanIntervalShare(run: LoadRecords, fromMs: number, toMs: number, binMs?: number): { share: number; intervals: number; dirty: number };

/** Judging functions by scenario kind; figures are plain objects with printable `lines`. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Judge = (...args: any[]) => any;
export const analyse: {
  readonly unloaded: Judge;
  readonly step: Judge;
  readonly halve: Judge;
  readonly slow: Judge;
  readonly priority: Judge;
  readonly targets: Judge;
  readonly summary: Judge;
};
export const RUN_SCENARIOS: { readonly full: readonly string[]; readonly quick: readonly string[] };
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export const schedules: { readonly [name: string]: (mode: 'full' | 'quick', capacity: number, workers?: number) => any };
