// Types for benchmarks/driver.mjs, so that its unit test (test/unit/bench-driver.test.ts) type-checks.

export interface Part {
  readonly name: string;
  readonly script: string;
  readonly node: readonly string[];
  readonly needs: readonly string[];
  readonly optional: readonly (readonly [tool: string, cost: string])[];
  readonly seconds: { readonly full: number; readonly quick: number };
}

/** One verdict as a part prints it; `met` is null when the target was not measured. */
export interface Target {
  name: string;
  met: boolean | null;
  value?: string;
  target?: string;
}

export interface PartResult {
  part: string;
  exitCode: number;
  signal?: string | null;
  targets: Target[] | undefined;
}

export const EXIT: { readonly OK: 0; readonly MISSED: 1; readonly FAILED: 2 };
export const PARTS: readonly Part[];
export const USAGE: string;
export const TARGETS_MARKER: string;
export class UsageError extends Error {}

export function printTargets(targets: Target[]): void;
export function parseDriverArgs(argv: readonly string[]): { quick: boolean; parts: Part[]; help: boolean };
export function checkPrerequisites(
  parts: readonly Part[],
  searchPath?: string,
): { ok: boolean; missing: { tool: string; parts: string[] }[]; notes: string[]; message?: string };
export function formatDuration(seconds: number): string;
export function planLines(parts: readonly Part[], quick: boolean): string[];
export function partArgv(part: Part, quick: boolean, dir: string): string[];
export function parseTargets(output: string): Target[] | undefined;
export function summarize(
  results: readonly PartResult[],
  quick?: boolean,
): { lines: string[]; exitCode: number; met: number; missed: number; notMeasured: number; failed: number };
