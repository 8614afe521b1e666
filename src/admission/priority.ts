import { show } from '../core/validate.js';

/**
 * A request's traffic class, from most to least important. Under overload bulwark sheds
 * `sheddable` first, then `best-effort`, then `degraded`; `critical` goes last.
 * @example
 * const priority: PriorityClass = req.path.startsWith('/checkout') ? 'critical' : 'sheddable';
 */
export type PriorityClass = 'critical' | 'degraded' | 'best-effort' | 'sheddable';

/**
 * A traffic class by name, or the same as a level: 3 = critical, 2 = degraded, 1 = best-effort,
 * 0 = sheddable (a higher level is more important).
 * @example
 * const p: Priority = 3; // the same as 'critical'
 */
export type Priority = PriorityClass | PriorityLevel;

/** A priority as a number: 3 = critical … 0 = sheddable. */
export type PriorityLevel = 0 | 1 | 2 | 3;

/** The classes by level, index = level. */
export const PRIORITY_CLASSES: readonly PriorityClass[] = ['sheddable', 'best-effort', 'degraded', 'critical'];

/** The level of a request that names no priority. */
export const DEFAULT_PRIORITY_LEVEL: PriorityLevel = 2;

/** The level of a valid priority, or `undefined` when `value` is not one (for headers and callbacks). */
export function parsePriority(value: unknown): PriorityLevel | undefined {
  if (typeof value === 'number') return value === 0 || value === 1 || value === 2 || value === 3 ? value : undefined;
  if (typeof value !== 'string') return undefined;
  const level = PRIORITY_CLASSES.indexOf(value as PriorityClass);
  return level < 0 ? undefined : (level as PriorityLevel);
}

/** The level of `value`, or a TypeError naming `owner`, `name` and the value. */
export function priorityLevel(owner: string, name: string, value: unknown): PriorityLevel {
  const level = parsePriority(value);
  if (level === undefined) {
    throw new TypeError(`${owner}: ${name} must be one of ${PRIORITY_CLASSES.map((c) => `'${c}'`).join(', ')} or a level 0–3, got ${show(value)}`);
  }
  return level;
}
