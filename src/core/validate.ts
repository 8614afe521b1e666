/** Largest delay Node's timers accept (2^31 − 1 ms, about 24.8 days). */
export const MAX_TIMER_MS = 2 ** 31 - 1;

/** Renders a bad value for an error message: strings quoted, numbers as written. */
export function show(value: unknown): string {
  if (typeof value === 'string') return JSON.stringify(value);
  if (typeof value === 'number') return Object.is(value, -0) ? '-0' : String(value);
  if (typeof value === 'bigint') return `${value}n`;
  if (typeof value === 'function') return 'a function';
  if (Array.isArray(value)) return 'an array';
  if (value === null) return 'null';
  if (typeof value === 'object') return 'an object';
  return String(value);
}

/**
 * Checks that `options` is undefined or a plain object whose keys are all known. Returns it as a
 * record (empty when undefined).
 */
export function checkOptions<T extends object>(
  owner: string,
  options: T | undefined,
  known: readonly string[],
): Partial<T> {
  if (options === undefined) return {};
  const proto = typeof options === 'object' && options !== null ? Object.getPrototypeOf(options) : undefined;
  if (proto !== Object.prototype && proto !== null) {
    // Arrays, Maps, Dates and class instances are not option bags: reading them as one would
    // silently drop whatever the caller meant.
    throw new TypeError(`${owner}: options must be an object, got ${show(options)}`);
  }
  for (const key of Object.keys(options)) {
    if (!known.includes(key)) {
      throw new TypeError(`${owner}: unknown option "${key}" (known options: ${known.join(', ')})`);
    }
  }
  return options;
}

function requireNumber(owner: string, name: string, value: unknown): number {
  if (typeof value !== 'number') {
    throw new TypeError(`${owner}: option "${name}" must be a number, got ${show(value)}`);
  }
  if (!Number.isFinite(value)) {
    throw new RangeError(`${owner}: option "${name}" must be a finite number, got ${show(value)}`);
  }
  return value;
}

/**
 * A duration in milliseconds: a finite number from `min` (default 0) to 2^31 − 1. Returns the
 * default when `value` is undefined.
 */
export function durationOption(
  owner: string,
  name: string,
  value: unknown,
  fallback: number,
  { min = 0, exclusiveMin = false }: { min?: number; exclusiveMin?: boolean } = {},
): number {
  if (value === undefined) return fallback;
  const n = requireNumber(owner, name, value);
  if (exclusiveMin ? n <= min : n < min) {
    throw new RangeError(
      `${owner}: option "${name}" must be ${exclusiveMin ? 'greater than' : 'at least'} ${min} ms, got ${show(value)}`,
    );
  }
  if (n > MAX_TIMER_MS) {
    throw new RangeError(`${owner}: option "${name}" must be at most ${MAX_TIMER_MS} ms (2^31 − 1), got ${show(value)}`);
  }
  return n;
}

/** A whole-number count from `min` (default 1) to `max` (default 2^31 − 1). */
export function countOption(
  owner: string,
  name: string,
  value: unknown,
  fallback: number,
  { min = 1, max = MAX_TIMER_MS }: { min?: number; max?: number } = {},
): number {
  if (value === undefined) return fallback;
  const n = requireNumber(owner, name, value);
  if (!Number.isInteger(n)) {
    throw new RangeError(`${owner}: option "${name}" must be a whole number, got ${show(value)}`);
  }
  if (n < min || n > max) {
    throw new RangeError(`${owner}: option "${name}" must be between ${min} and ${max}, got ${show(value)}`);
  }
  return n;
}

/** A ratio in (0, 1]. */
export function ratioOption(owner: string, name: string, value: unknown, fallback: number): number {
  if (value === undefined) return fallback;
  const n = requireNumber(owner, name, value);
  if (n <= 0 || n > 1) {
    throw new RangeError(`${owner}: option "${name}" must be a ratio greater than 0 and at most 1, got ${show(value)}`);
  }
  return n;
}

/** A positive finite number (not necessarily whole), such as a backoff factor. */
export function numberOption(
  owner: string,
  name: string,
  value: unknown,
  fallback: number,
  { min, exclusiveMin = false }: { min: number; exclusiveMin?: boolean },
): number {
  if (value === undefined) return fallback;
  const n = requireNumber(owner, name, value);
  if (exclusiveMin ? n <= min : n < min) {
    throw new RangeError(
      `${owner}: option "${name}" must be ${exclusiveMin ? 'greater than' : 'at least'} ${min}, got ${show(value)}`,
    );
  }
  return n;
}

/** A function, or the default when undefined. */
export function functionOption<F extends (...args: never[]) => unknown>(
  owner: string,
  name: string,
  value: unknown,
  fallback: F,
): F {
  if (value === undefined) return fallback;
  if (typeof value !== 'function') {
    throw new TypeError(`${owner}: option "${name}" must be a function, got ${show(value)}`);
  }
  return value as F;
}

/** A non-empty string, or the default when undefined. */
export function nameOption(owner: string, value: unknown, fallback: string): string {
  if (value === undefined) return fallback;
  if (typeof value !== 'string' || value.length === 0) {
    throw new TypeError(`${owner}: option "name" must be a non-empty string, got ${show(value)}`);
  }
  return value;
}

/** One of the listed string values. */
export function enumOption<V extends string>(
  owner: string,
  name: string,
  value: unknown,
  allowed: readonly V[],
  fallback: V,
): V {
  if (value === undefined) return fallback;
  if (typeof value !== 'string' || !(allowed as readonly string[]).includes(value)) {
    throw new TypeError(
      `${owner}: option "${name}" must be one of ${allowed.map((a) => JSON.stringify(a)).join(', ')}, got ${show(value)}`,
    );
  }
  return value as V;
}

/** A {@link Clock}-shaped object, or the default when undefined. */
export function clockOption<C extends { now(): number }>(owner: string, value: unknown, fallback: C): C {
  if (value === undefined) return fallback;
  const c = value as Record<string, unknown>;
  if (
    typeof value !== 'object' ||
    value === null ||
    typeof c.now !== 'function' ||
    typeof c.setTimeout !== 'function' ||
    typeof c.clearTimeout !== 'function'
  ) {
    throw new TypeError(`${owner}: option "clock" must have now(), setTimeout() and clearTimeout(), got ${show(value)}`);
  }
  return value as C;
}
