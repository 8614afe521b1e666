// Helpers shared by the option-validation tests (not a test file itself).
import { expect } from 'vitest';

/** The longest duration a timer takes: 2^31 − 1 ms. */
export const MAX_MS = 2 ** 31 - 1;

/** One millisecond more than a timer takes. */
export const tooLong = MAX_MS + 1;

/** The error classes a bad option throws. */
export type ErrorClass = typeof TypeError | typeof RangeError;

/** The same classes by name, for tables that show the name in the test title. */
export type ErrorName = 'TypeError' | 'RangeError';
export const errorClass = { TypeError, RangeError } as const;

/** Runs `make`, expecting it to throw `kind` with a message naming `option` and showing `shown`. */
export function expectRejected(make: () => unknown, kind: ErrorClass, option: string, shown: string): void {
  let thrown: unknown;
  try {
    make();
  } catch (error) {
    thrown = error;
  }
  expect(thrown, 'should have thrown').toBeInstanceOf(kind);
  const message = (thrown as Error).message;
  expect(message).toContain(option);
  expect(message).toContain(shown);
}

/** Rows of [option, bad value, expected error class]. */
export type Row = [string, unknown, ErrorClass];

/**
 * Bad values for a whole-number count option of at least 1 and at most `max`; with `required`,
 * leaving it out (undefined) is bad too.
 */
export function badCounts(option: string, { max = MAX_MS, required = false }: { max?: number; required?: boolean } = {}): Row[] {
  return [
    ...(required ? ([[option, undefined, TypeError]] as Row[]) : []),
    [option, NaN, RangeError],
    [option, Infinity, RangeError],
    [option, -Infinity, RangeError],
    [option, -1, RangeError],
    [option, 0, RangeError],
    [option, 1.5, RangeError],
    [option, max + 1, RangeError],
    [option, '3', TypeError],
    [option, null, TypeError],
    [option, true, TypeError],
  ];
}
