/**
 * How the memory store lays out its keys: the entry of one key, the per-limiter table that holds
 * it (a namespace), and the test that tells which table a store key belongs to. Used by
 * memory-store.ts only.
 */
import type { AlgorithmState } from './algorithm.js';
import { isShortKey } from './keys.js';

export interface Entry {
  state: AlgorithmState | undefined;
  /**
   * Whether `state` was made by a built-in algorithm's fast consumption and has not been handed to
   * other code since: then only this store holds it, and the next fast consumption may update it
   * in place rather than allocate a new one.
   */
  owned: boolean;
  expiresAt: number;
  /** Set on every use; cleared when eviction passes over the entry (a second chance). */
  used: boolean;
  /** The entry's key in its namespace's table: its store key is `ns.prefix + key`. */
  key: string;
  /** The namespace whose table holds the entry. */
  ns: Namespace;
  /** The neighbours in the store's order of keys (oldest first): a ring through the store's `ring`. */
  prev: Entry;
  next: Entry;
}

/**
 * The keys of one limiter in a store: the store keys `prefix + key` (short keys, as `storeKey`
 * builds them), held in `table` under the key as the caller gives it, so a limiter finds its entry
 * without building the store key, and a new key costs one table insertion. Every other store key
 * (a hashed key, one not built by `storeKey`) is held in the store's namespace with prefix ''.
 * Which table holds a store key is a function of the key alone (`prefixLength`), so a call by
 * store key and a limiter's call by its short key reach the same entry.
 * @internal
 */
export class Namespace {
  readonly table = new Map<string, Entry>();
  constructor(readonly prefix: string) {}
}

/** A new entry, unused, its neighbours both `around` (every entry and the ring share one shape). */
export function newEntry(
  state: AlgorithmState | undefined,
  owned: boolean,
  expiresAt: number,
  key: string,
  ns: Namespace,
  around: Entry,
): Entry {
  return { state, owned, expiresAt, used: false, key, ns, prev: around, next: around };
}

/** A limiter's handle on its short keys in a memory store. @internal */
export type MemoryNamespace = Namespace;

/**
 * The length of the `${n}:${name}:k:` that `storeKey` puts before a short key (keys.ts), when
 * `key` starts so and a short key follows (`isShortKey`); else 0. For every limiter name and short key,
 * `prefixLength(shortKeyPrefix(name) + key) === shortKeyPrefix(name).length`.
 */
export function prefixLength(key: string): number {
  const colon = key.indexOf(':');
  if (colon < 1 || colon > 9) return 0;
  let n = 0;
  for (let i = 0; i < colon; i++) {
    const digit = key.charCodeAt(i) - 48;
    if (digit < 0 || digit > 9) return 0;
    n = n * 10 + digit;
  }
  const end = colon + 1 + n; // where the name ends
  if (key.length <= end + 3 || key.charCodeAt(end) !== 58 || key.charCodeAt(end + 1) !== 107 || key.charCodeAt(end + 2) !== 58) {
    return 0; // not followed by ':k:' and a key
  }
  // Only a short key, as a limiter would pass it: a namespace's table holds nothing else.
  return isShortKey(key.slice(end + 3)) ? end + 3 : 0;
}
