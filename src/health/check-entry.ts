// A health check as `health()` keeps it: the user's check object, validated once and with its
// defaults applied, plus the run state (last result, the run in flight). Apart from health.ts so
// that the probe logic there stays about probes.
import { checkOptions, durationOption, show } from '../core/validate.js';
import type { CheckResult, HealthCheck, Probe } from './types.js';

const OWNER = 'health';

/** The probes a check may take part in, in the order reports list them. */
export const PROBES: readonly Probe[] = ['live', 'ready', 'startup'];

const CHECK_KEYS = ['name', 'check', 'timeoutMs', 'cacheMs', 'critical', 'probes', 'dispose', 'close'] as const;

/** Internal: one check of a {@link Health}, validated, with its run state. */
export interface Entry {
  readonly name: string;
  readonly run: HealthCheck['check'];
  readonly timeoutMs: number;
  readonly cacheMs: number;
  readonly critical: boolean;
  readonly probes: readonly Probe[];
  /** The check's `dispose` (or its deprecated `close`): what `health.dispose()` calls. */
  readonly release: (() => void) | undefined;
  last: { readonly result: CheckResult; readonly at: number } | undefined;
  inflight: Promise<CheckResult> | undefined;
  /** A run that was cut at its timeout and has not settled yet: no second one is started. */
  abandoned: boolean;
}

/**
 * Validates `checks[i]` and makes its entry; `timeoutMs` and `cacheMs` are the health's own,
 * for a check that sets none.
 * @example
 * const entry = toEntry({ name: 'db', check: () => true }, 0, 500, 0);
 */
export function toEntry(value: unknown, i: number, timeoutMs: number, cacheMs: number): Entry {
  const where = `checks[${i}]`;
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new TypeError(`${OWNER}: option "${where}" must be an object, got ${show(value)}`);
  }
  const c = checkOptions(`${OWNER}: ${where}`, value as HealthCheck, CHECK_KEYS);
  if (typeof c.name !== 'string' || c.name.length === 0) {
    throw new TypeError(`${OWNER}: option "${where}.name" must be a non-empty string, got ${show(c.name)}`);
  }
  if (typeof c.check !== 'function') {
    throw new TypeError(`${OWNER}: option "${where}.check" must be a function, got ${show(c.check)}`);
  }
  if (c.critical !== undefined && typeof c.critical !== 'boolean') {
    throw new TypeError(`${OWNER}: option "${where}.critical" must be a boolean, got ${show(c.critical)}`);
  }
  for (const key of ['dispose', 'close'] as const) {
    if (c[key] !== undefined && typeof c[key] !== 'function') {
      throw new TypeError(`${OWNER}: option "${where}.${key}" must be a function, got ${show(c[key])}`);
    }
  }
  const probes = c.probes ?? ['ready'];
  if (!Array.isArray(probes) || probes.length === 0 || !probes.every((p) => PROBES.includes(p as Probe))) {
    throw new TypeError(
      `${OWNER}: option "${where}.probes" must be a non-empty array of "live", "ready", "startup", got ${
        Array.isArray(probes) ? JSON.stringify(probes) : show(probes)
      }`,
    );
  }
  return {
    name: c.name,
    run: c.check,
    timeoutMs: durationOption(OWNER, `${where}.timeoutMs`, c.timeoutMs, timeoutMs, { exclusiveMin: true }),
    cacheMs: durationOption(OWNER, `${where}.cacheMs`, c.cacheMs, cacheMs),
    critical: c.critical ?? true,
    probes: [...probes],
    // A check with both (one built for this version and the last) is released once, by `dispose`.
    release: c.dispose ?? c.close,
    last: undefined,
    inflight: undefined,
    abandoned: false,
  };
}
