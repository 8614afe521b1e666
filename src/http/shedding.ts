import { show } from '../core/validate.js';
import { LoadShedder, type LoadShedderOptions } from '../shedding/load-shedder.js';

/** A shedder given to an adapter, or the options to build one (which the adapter then owns). */
export type ShedderOrOptions = LoadShedder | LoadShedderOptions;

/** Whether `value` is a load shedder (from this copy of bulwark or another build of it). */
export function isShedder(value: unknown): value is LoadShedder {
  const v = value as Partial<LoadShedder> | null;
  return typeof v === 'object' && v !== null && typeof v.check === 'function' && typeof v.reject === 'function' && typeof v.retryAfter === 'string';
}

/** The shedder to use, and whether the adapter made it (and so must close it). */
export function shedderFrom(owner: string, value: ShedderOrOptions): { readonly shedder: LoadShedder; readonly owned: boolean } {
  // Duck-typed, so a shedder from the CommonJS build works with the ESM adapters and back.
  if (value instanceof LoadShedder || isShedder(value)) return { shedder: value as LoadShedder, owned: false };
  if (typeof value !== 'object' || value === null) {
    throw new TypeError(`${owner}: the argument must be a load shedder or loadShedder options, got ${show(value)}`);
  }
  return { shedder: new LoadShedder(value), owned: true };
}
