import { type Clock, wallClock } from '../core/clock.js';
import { checkOptions, clockOption, countOption } from '../core/validate.js';
import type { AlgorithmState, RateLimitAlgorithm } from './algorithm.js';
import {
  consumeInNamespace,
  type EvictionCounters,
  evictionCounters,
  fastConsume,
  type FastOutcome,
  type MaybeFastAlgorithm,
  namespaceFor,
} from './fast-path.js';
import type { LimiterDecision, RateLimitStore } from './store.js';

/** Options of {@link memoryStore}. */
export interface MemoryStoreOptions {
  /**
   * Most keys held at once. Past it, each new key makes room: expired keys found by a sweep (one
   * pass over the keys at most once a second, a few keys per insertion) go first, then the least
   * recently used (approximately). @default 100000
   */
  readonly maxKeys?: number;
  /** Time source, in epoch ms. @default wallClock */
  readonly clock?: Clock;
}

interface Entry {
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
  /** The entry's key in `entries` (the store key). */
  readonly key: string;
  /** The namespace whose index also holds this entry, under `indexKey`; undefined when none does. */
  ns: Namespace | undefined;
  indexKey: string;
}

/**
 * One limiter's short keys in a store (the keys `storeKey` turns into `prefix + key`), indexed by
 * the key as the caller gives it, so that a limiter finds its entry without building the store key
 * on every call. Only an index: `entries` stays the one place that says which keys exist, in what
 * order. Invariant: an entry is in `index` under `indexKey` exactly while it is in `entries` under
 * `prefix + indexKey` with `ns` set to this namespace (or, within one call, while an expired entry
 * waits to be stored again or dropped; see `consumeInNamespace`).
 * @internal
 */
class Namespace {
  readonly index = new Map<string, Entry>();
  constructor(readonly prefix: string) {}
}

/** A limiter's handle on its short keys in a memory store. @internal */
export type MemoryNamespace = Namespace;

const keys = ['maxKeys', 'clock'] as const;
/** Least time between the starts of two sweeps for expired keys. */
const SWEEP_INTERVAL_MS = 1_000;
/** Keys a sweep looks at per insertion at capacity: bounds what one insertion costs. */
const SWEEP_STEP = 16;

/**
 * Limiter state in this process's memory. Bounded: at `maxKeys`, an insertion first evicts
 * expired keys, then the least recently used (approximated with the CLOCK second-chance scheme,
 * so a hit costs a flag, not a reordering). No timer at all: expired keys are dropped when met,
 * and by a sweep spread over insertions at capacity. Every insertion at capacity costs amortised
 * O(1), however many keys are held: see `evict`. Built by {@link memoryStore}.
 */
export class MemoryStore implements RateLimitStore {
  readonly name = 'memory';
  readonly maxKeys: number;
  private readonly clock: Clock;
  private readonly entries = new Map<string, Entry>();
  /** When the last sweep started; -Infinity before the first. */
  private lastSweep = -Infinity;
  /** The sweep under way: where it is in `entries`, and how many entries it has left to look at. */
  private sweep: IterableIterator<Entry> | undefined;
  private sweepLeft = 0;
  /** The CLOCK hand: where eviction goes on from, kept between insertions. */
  private hand: IterableIterator<Entry> | undefined;
  /** @internal A fast-path hook for tests (see fast-path.ts). */
  readonly [evictionCounters]: EvictionCounters = { examined: 0, walks: 0 };
  /**
   * Namespaces by prefix, held weakly: one is dropped once no limiter and no entry refers to it,
   * so limiters made and dropped by the thousand do not each leave one behind.
   */
  private readonly namespaces = new Map<string, WeakRef<Namespace>>();
  private readonly forgetNamespace = new FinalizationRegistry<string>((prefix) => {
    if (this.namespaces.get(prefix)?.deref() === undefined) this.namespaces.delete(prefix);
  });
  /**
   * Entries held in no namespace's index (stored by a direct `consume` with a store key). While
   * there are none, a key a namespace does not index is not held at all, and a limiter's first
   * decision on it skips looking up its store key.
   */
  private unindexed = 0;
  /** What a fast consumption leaves to store; one for all calls (they never overlap). */
  private readonly out: FastOutcome = { keep: false, state: undefined, ttlMs: 0 };

  constructor(options?: MemoryStoreOptions) {
    const o = checkOptions('memoryStore', options, keys);
    this.maxKeys = countOption('memoryStore', 'maxKeys', o.maxKeys, 100_000, { max: 100_000_000 });
    this.clock = clockOption('memoryStore', o.clock, wallClock);
  }

  /** Keys held now (expired ones included until they are met or evicted). */
  get size(): number {
    return this.entries.size;
  }

  consume(key: string, algorithm: RateLimitAlgorithm, cost: number): LimiterDecision {
    const now = this.clock.now();
    return this.apply(key, this.live(key, now), undefined, undefined, algorithm, now, cost);
  }

  /**
   * `consume(ns.prefix + key, algorithm, cost)` for a limiter whose store keys are `ns.prefix +
   * key` (short keys, as `storeKey` builds them), without building that string unless the key is
   * not indexed yet: the same decision, entries, order of keys and evictions.
   * @internal A fast-path hook (see fast-path.ts).
   */
  [consumeInNamespace](ns: MemoryNamespace, key: string, algorithm: RateLimitAlgorithm, cost: number): LimiterDecision {
    const now = this.clock.now();
    const entry = ns.index.get(key);
    if (entry !== undefined) {
      if (entry.expiresAt > now) {
        entry.used = true;
        return this.apply(entry.key, entry, undefined, ns, algorithm, now, cost);
      }
      // Expired: dropped from `entries`, as live() does, and stored anew (at the end) only if the
      // algorithm keeps a state; meanwhile still indexed, so the object can be reused for that.
      this.entries.delete(entry.key);
      try {
        return this.apply(entry.key, undefined, entry, ns, algorithm, now, cost);
      } finally {
        if (this.entries.get(entry.key) !== entry) this.unlink(entry);
      }
    }
    // Not indexed: a new key, or one stored by a direct consume() with its store key (only
    // looked for when some entry is not indexed).
    const fullKey = ns.prefix + key;
    const found = this.unindexed === 0 ? undefined : this.live(fullKey, now);
    if (found !== undefined) {
      this.unindexed--;
      this.link(found, ns, key);
    }
    return this.apply(fullKey, found, undefined, ns, algorithm, now, cost, key);
  }

  /**
   * The namespace of the store keys `prefix + key`: one object per prefix while anything refers to
   * it, so limiters sharing a name share an index as they share entries.
   * @internal A fast-path hook (see fast-path.ts).
   */
  [namespaceFor](prefix: string): MemoryNamespace {
    let ns = this.namespaces.get(prefix)?.deref();
    if (ns === undefined) {
      ns = new Namespace(prefix);
      this.namespaces.set(prefix, new WeakRef(ns));
      this.forgetNamespace.register(ns, prefix);
    }
    return ns;
  }

  /**
   * Runs `algorithm.consume` on `entry` (live, or undefined for none) and stores what it returns:
   * in `entry`, or else in a new entry under `key` (the `expired` one reused if given, still
   * indexed), indexed in `ns` when `ns` is given (under `shortKey`, the caller's key, if given).
   */
  private apply(
    key: string,
    entry: Entry | undefined,
    expired: Entry | undefined,
    ns: Namespace | undefined,
    algorithm: RateLimitAlgorithm,
    now: number,
    cost: number,
    shortKey?: string,
  ): LimiterDecision {
    const before = entry === undefined ? undefined : entry.state;
    const fast = (algorithm as MaybeFastAlgorithm)[fastConsume];
    if (fast !== undefined) {
      // A built-in algorithm: the decision comes with `store` in it, no outcome object, and the
      // state is updated in place when this store alone holds it.
      const out = this.out;
      const decision = fast(before, now, cost, this.name, out, entry !== undefined && entry.owned);
      if (out.keep) {
        if (entry !== undefined) {
          entry.state = out.state;
          entry.owned = true;
          entry.expiresAt = now + out.ttlMs;
        } else {
          this.insert(key, out.state, true, now + out.ttlMs, ns, expired, shortKey);
        }
      }
      out.state = undefined;
      return decision;
    }
    if (entry !== undefined) entry.owned = false; // handed to code that may keep it
    const outcome = algorithm.consume(before, now, cost);
    if (outcome.state !== before) {
      if (entry !== undefined) {
        entry.state = outcome.state;
        entry.expiresAt = now + outcome.ttlMs;
      } else {
        this.insert(key, outcome.state, false, now + outcome.ttlMs, ns, expired, shortKey);
      }
    }
    return { ...outcome.decision, store: this.name };
  }

  peek(key: string, algorithm: RateLimitAlgorithm, cost: number): LimiterDecision {
    const now = this.clock.now();
    const entry = this.live(key, now);
    if (entry !== undefined) entry.owned = false; // handed to code that may keep it
    return { ...algorithm.peek(entry?.state, now, cost), store: this.name };
  }

  refund(key: string, algorithm: RateLimitAlgorithm, cost: number): void {
    const now = this.clock.now();
    const entry = this.live(key, now);
    if (entry === undefined) return; // nothing was taken that is still counted
    entry.owned = false; // handed to code that may keep it
    const outcome = algorithm.refund(entry.state, now, cost);
    entry.state = outcome.state;
    entry.expiresAt = now + outcome.ttlMs;
  }

  reset(key: string): void {
    const entry = this.entries.get(key);
    if (entry === undefined) return;
    this.entries.delete(key);
    this.unlink(entry);
  }

  /** Drops every key. */
  clear(): void {
    this.entries.clear();
    this.unindexed = 0;
    this.sweep = undefined;
    this.hand = undefined;
    for (const ref of this.namespaces.values()) ref.deref()?.index.clear();
  }

  /** The entry for `key` if it has not expired (an expired one is dropped). */
  private live(key: string, now: number): Entry | undefined {
    const entry = this.entries.get(key);
    if (entry === undefined) return undefined;
    if (entry.expiresAt <= now) {
      this.entries.delete(key);
      this.unlink(entry);
      return undefined;
    }
    entry.used = true;
    return entry;
  }

  /**
   * Adds a key (making room first at `maxKeys`): the `expired` entry, when given, is reused (it is
   * `key`'s, and still indexed); else a new entry, indexed in `ns` if `ns` is given (see `link`
   * for `shortKey`).
   */
  private insert(
    key: string,
    state: AlgorithmState | undefined,
    owned: boolean,
    expiresAt: number,
    ns: Namespace | undefined,
    expired: Entry | undefined,
    shortKey?: string,
  ): void {
    if (this.entries.size >= this.maxKeys) this.evict(this.clock.now());
    if (expired !== undefined) {
      expired.state = state;
      expired.owned = owned;
      expired.expiresAt = expiresAt;
      expired.used = false;
      this.entries.set(key, expired);
      return;
    }
    const entry: Entry = { state, owned, expiresAt, used: false, key, ns: undefined, indexKey: '' };
    this.entries.set(key, entry);
    if (ns !== undefined) this.link(entry, ns, shortKey);
    else this.unindexed++;
  }

  /**
   * Indexes `entry` (whose key is `ns.prefix` + a short key) in `ns`; `given` is the short key as
   * the caller passed it, when it did.
   */
  private link(entry: Entry, ns: Namespace, given?: string): void {
    // An index key must hold on to nothing more than the store key already does. The caller's key
    // may have been cut from a much larger string and hold on to all of it, so the short key is
    // cut from the entry's own key instead, unless the caller's is shorter than 13 characters: V8
    // copies substrings and concatenations that short (it makes sliced and cons strings only from
    // 13 characters on), so such a string holds nothing else, and it comes already hashed (the
    // index was just searched with it), which spares a string and a hash per new key.
    const indexKey =
      given !== undefined && given.length < 13 ? given : entry.key.slice(ns.prefix.length);
    entry.ns = ns;
    entry.indexKey = indexKey;
    ns.index.set(indexKey, entry);
  }

  /** Takes a dropped entry out of its namespace's index, if it is in one. */
  private unlink(entry: Entry): void {
    const ns = entry.ns;
    if (ns === undefined) {
      this.unindexed--;
      return;
    }
    ns.index.delete(entry.indexKey);
    entry.ns = undefined;
    entry.indexKey = '';
  }

  /** Drops `entry` from the store and from its namespace's index. */
  private drop(entry: Entry): void {
    this.entries.delete(entry.key);
    this.unlink(entry);
  }

  /**
   * Frees at least one slot, in amortised O(1) time.
   *
   * Both walks go on from where they stopped, with iterators kept between calls: a Map iterator
   * steps over the holes that deletions leave at the front of the table, so restarting a walk from
   * the oldest entry on every eviction cost time in proportion to the keys evicted since the table
   * was last compacted (tens of µs per decision at 100k keys under key rotation).
   *
   * Expired keys first: once a second at most, a sweep looks at every entry held when it started,
   * SWEEP_STEP entries per call, and drops the expired ones. Then, if no slot is free yet, the CLOCK
   * hand: entries in insertion order, each used one given a second chance (flag cleared, moved to
   * the back), the first unused or expired one dropped. Each second chance is paid for by the use
   * that set the flag, so the hand's steps are amortised O(1) per eviction.
   */
  private evict(now: number): void {
    const counters = this[evictionCounters];
    if (this.sweep === undefined && (now - this.lastSweep >= SWEEP_INTERVAL_MS || now < this.lastSweep)) {
      this.lastSweep = now;
      this.sweep = this.entries.values();
      this.sweepLeft = this.entries.size;
      counters.walks++;
    }
    if (this.sweep !== undefined) {
      for (let step = 0; step < SWEEP_STEP && this.sweepLeft > 0; step++) {
        const next = this.sweep.next();
        if (next.done === true) {
          this.sweepLeft = 0;
          break;
        }
        this.sweepLeft--;
        counters.examined++;
        if (next.value.expiresAt <= now) this.drop(next.value);
      }
      if (this.sweepLeft === 0) this.sweep = undefined;
      if (this.entries.size < this.maxKeys) return;
    }
    for (;;) {
      let next = this.hand?.next();
      if (next === undefined || next.done === true) {
        // Past the newest entry (or never started): from the oldest again. The store is full, so
        // there is one.
        this.hand = this.entries.values();
        counters.walks++;
        next = this.hand.next();
        if (next.done === true) return;
      }
      counters.examined++;
      const entry = next.value;
      if (entry.expiresAt > now && entry.used) {
        entry.used = false;
        // A second chance: to the back of the order, the same entry, still indexed.
        this.entries.delete(entry.key);
        this.entries.set(entry.key, entry);
      } else {
        this.drop(entry);
        return;
      }
    }
  }
}

/**
 * Creates an in-memory store for rate limiters and quotas.
 * @example
 * const limiter = rateLimiter({ algorithm: gcra({ limit: 100, periodMs: 60_000 }), store: memoryStore({ maxKeys: 50_000 }) });
 */
export function memoryStore(options?: MemoryStoreOptions): MemoryStore {
  return new MemoryStore(options);
}
