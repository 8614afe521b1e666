import { show } from '../core/validate.js';
import type { AdmissionMode } from './types.js';

/**
 * Checks a `mode` given as an option (`where` is `'option "mode"'`) or assigned at run time
 * (`'"mode"'`): `'enforce'` or `'shadow'`, else a TypeError naming the owner and the value.
 * Undefined is the default, `'enforce'`, only for an option; an assignment must name a mode.
 * @example
 * this.shadow = checkMode('circuitBreaker', 'option "mode"', o.mode) === 'shadow';
 */
export function checkMode(owner: string, where: string, value: unknown, optional = true): AdmissionMode {
  if (value === undefined && optional) return 'enforce';
  if (value !== 'enforce' && value !== 'shadow') {
    throw new TypeError(`${owner}: ${where} must be "enforce" or "shadow", got ${show(value)}`);
  }
  return value;
}
