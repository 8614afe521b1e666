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
import { isShortKey } from './keys.js';
import { type Entry, type MemoryNamespace, Namespace, newEntry, prefixLength } from './memory-entries.js';
import { forceCharge, lendingWindow, type SettleStatus, type StoreLease, type StoreReservation } from './reservation.js';
import type { LimiterDecision, RateLimitStore } from './store.js';

/** A reservation's lease as the memory store keeps it. */
interface MemoryLease extends StoreLease {
  readonly key: string;
  readonly algorithm: RateLimitAlgorithm;
  readonly expiresAt: number;
  /** The window that lent the units (see `lendingWindow`); undefined for GCRA. */
  readonly window: number | undefined;
}

/** Re-exported: rate-limiter.ts takes a limiter's namespace type from this module. */
export type { MemoryNamespace };

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
 *
 * Layout: one table per limiter (its namespace), keyed by the limiter's own keys, and one order of
 * all keys across the tables (the oldest first), kept as a ring of the entries themselves, which
 * eviction walks; `maxKeys` bounds the keys of all tables together.
 */
export class MemoryStore implements RateLimitStore {
  readonly name = 'memory';
  readonly maxKeys: number;
  private readonly clock: Clock;
  /** Store keys that belong to no limiter's namespace, by store key. */
  private readonly other = new Namespace('');
  /** The ring's anchor, never a key: `ring.next` is the oldest entry, `ring.prev` the newest. */
  private readonly ring: Entry;
  /** Entries in the ring: the keys held. */
  private count = 0;
  /** When the last sweep started; -Infinity before the first. */
  private lastSweep = -Infinity;
  /**
   * The sweep under way: the entry it looked at last (`ring` at its start; when that entry leaves
   * the ring, the one before it), and how many entries it has left to look at.
   */
  private sweepAt: Entry | undefined;
  private sweepLeft = 0;
  /** The CLOCK hand: the entry it looked at last, as `sweepAt`; undefined before the first eviction. */
  private hand: Entry | undefined;
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
   * Live leases, grouped by `leaseMs`: each group in order of making, which is also the order of
   * expiry, so a sweep stops at the first lease still live in each group.
   */
  private readonly leases = new Map<number, Set<MemoryLease>>();
  private leaseSeq = 0;
  /** What a fast consumption leaves to store; one for all calls (they never overlap). */
  private readonly out: FastOutcome = { keep: false, state: undefined, ttlMs: 0 };

  constructor(options?: MemoryStoreOptions) {
    const o = checkOptions('memoryStore', options, keys);
    this.maxKeys = countOption('memoryStore', 'maxKeys', o.maxKeys, 100_000, { max: 100_000_000 });
    this.clock = clockOption('memoryStore', o.clock, wallClock);
    const ring = newEntry(undefined, false, 0, '', this.other, undefined!);
    ring.prev = ring;
    ring.next = ring;
    this.ring = ring;
  }

  /** Keys held now (expired ones included until they are met or evicted). */
  get size(): number {
    return this.count;
  }

  consume(key: string, algorithm: RateLimitAlgorithm, cost: number): LimiterDecision {
    return this.consumeAt(key, algorithm, cost, this.clock.now());
  }

  /** `consume` at `now`. */
  private consumeAt(key: string, algorithm: RateLimitAlgorithm, cost: number, now: number): LimiterDecision {
    const at = prefixLength(key);
    // A limiter's store key: in its namespace (made now if no limiter has made it yet).
    const ns = at === 0 ? this.other : this[namespaceFor](key.slice(0, at));
    const short = at === 0 ? key : key.slice(at);
    return this.apply(ns, short, this.live(ns.table.get(short), now), undefined, algorithm, now, cost);
  }

  /**
   * `consume(ns.prefix + key, algorithm, cost)` for a limiter whose store keys are `ns.prefix +
   * key` (short keys, as `storeKey` builds them), without building that string: the same
   * decision, entries, order of keys and evictions.
   * @internal A fast-path hook (see fast-path.ts).
   */
  [consumeInNamespace](
    ns: MemoryNamespace,
    key: string,
    algorithm: RateLimitAlgorithm,
    cost: number,
  ): LimiterDecision | undefined {
    // A table holds short keys only, so a key found needs no check (see fast-path.ts).
    const entry = ns.table.get(key);
    if (entry === undefined && !isShortKey(key)) return undefined;
    const now = this.clock.now();
    if (entry === undefined) return this.apply(ns, key, undefined, undefined, algorithm, now, cost, true);
    if (entry.expiresAt > now) {
      entry.used = true;
      return this.apply(ns, key, entry, undefined, algorithm, now, cost);
    }
    // Expired: out of the order of keys, as live() drops it, and back in (at the end) only if
    // the algorithm keeps a state; meanwhile still in its table, so the object can be reused.
    this.unlink(entry);
    try {
      return this.apply(ns, key, undefined, entry, algorithm, now, cost);
    } finally {
      if (entry.next === undefined) ns.table.delete(key); // not stored again
    }
  }

  /**
   * The namespace of the store keys `prefix + key`: one object per prefix while anything refers to
   * it, so limiters sharing a name share a table as they share entries.
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
   * in `entry`, or else under `key` in `ns` (in the `expired` entry if given, still in its table;
   * `given` when `key` is the caller's own string, see `insert`).
   */
  private apply(
    ns: Namespace,
    key: string,
    entry: Entry | undefined,
    expired: Entry | undefined,
    algorithm: RateLimitAlgorithm,
    now: number,
    cost: number,
    given = false,
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
          this.insert(ns, key, out.state, true, now + out.ttlMs, expired, given);
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
        this.insert(ns, key, outcome.state, false, now + outcome.ttlMs, expired, given);
      }
    }
    return { ...outcome.decision, store: this.name };
  }

  peek(key: string, algorithm: RateLimitAlgorithm, cost: number): LimiterDecision {
    const now = this.clock.now();
    const entry = this.live(this.stored(key), now);
    if (entry !== undefined) entry.owned = false; // handed to code that may keep it
    return { ...algorithm.peek(entry?.state, now, cost), store: this.name };
  }

  refund(key: string, algorithm: RateLimitAlgorithm, cost: number): void {
    const now = this.clock.now();
    const entry = this.live(this.stored(key), now);
    if (entry === undefined) return; // nothing was taken that is still counted
    entry.owned = false; // handed to code that may keep it
    const outcome = algorithm.refund(entry.state, now, cost);
    entry.state = outcome.state;
    entry.expiresAt = now + outcome.ttlMs;
  }

  /**
   * `consume`, and a lease on the units taken (see `RateLimitStore.reserve`). Leases that ran out
   * are swept (their units given back) by every `reserve` and `settle` on this store.
   */
  reserve(key: string, algorithm: RateLimitAlgorithm, cost: number, leaseMs: number): StoreReservation {
    const now = this.clock.now();
    this.sweepLeases(now);
    // The same time for the decision and the lease: both in one window.
    const decision = this.consumeAt(key, algorithm, cost, now);
    if (!decision.allowed) return { decision, lease: undefined };
    const lease: MemoryLease = {
      id: `m${++this.leaseSeq}`,
      units: cost,
      leaseMs,
      key,
      algorithm,
      expiresAt: now + leaseMs,
      window: lendingWindow(algorithm, now),
    };
    let group = this.leases.get(leaseMs);
    if (group === undefined) this.leases.set(leaseMs, (group = new Set()));
    group.add(lease);
    return { decision, lease };
  }

  /** Ends a lease made by `reserve` (see `RateLimitStore.settle`). */
  settle(key: string, algorithm: RateLimitAlgorithm, lease: StoreLease, actual: number, maxCharge: number): SettleStatus {
    const now = this.clock.now();
    this.sweepLeases(now);
    const held = lease as MemoryLease;
    // Only a lease of this store's that has not run out is still in its group.
    const live = this.leases.get(held.leaseMs)?.delete(held) === true;
    const units = live ? held.units : 0;
    if (actual < units) this.giveBack(held, units - actual, now);
    else if (actual > units) this.charge(key, algorithm, Math.min(actual - units, maxCharge), now);
    return live ? 'settled' : 'expired';
  }

  /** Gives back the units of every lease that ran out by `now`. */
  private sweepLeases(now: number): void {
    for (const group of this.leases.values()) {
      for (const lease of group) {
        if (lease.expiresAt > now) break;
        group.delete(lease);
        this.giveBack(lease, lease.units, now);
      }
    }
  }

  /** Gives `units` of `lease` back to its key, if the window that lent them is still the key's. */
  private giveBack(lease: MemoryLease, units: number, now: number): void {
    if (lease.window !== undefined && lendingWindow(lease.algorithm, now) !== lease.window) return;
    this.refund(lease.key, lease.algorithm, units);
  }

  /** Charges `cost` units to `key` whatever the limit (a settle's excess). */
  private charge(key: string, algorithm: RateLimitAlgorithm, cost: number, now: number): void {
    const entry = this.live(this.stored(key), now);
    const outcome = forceCharge(algorithm, entry?.state, now, cost);
    if (entry !== undefined) {
      entry.state = outcome.state;
      entry.owned = false;
      entry.expiresAt = now + outcome.ttlMs;
      return;
    }
    const at = prefixLength(key);
    const ns = at === 0 ? this.other : this[namespaceFor](key.slice(0, at));
    this.insert(ns, at === 0 ? key : key.slice(at), outcome.state, false, now + outcome.ttlMs, undefined, false);
  }

  reset(key: string): void {
    const entry = this.stored(key);
    if (entry !== undefined) this.drop(entry);
  }

  /** Drops every key. */
  clear(): void {
    this.leases.clear();
    this.ring.next = this.ring;
    this.ring.prev = this.ring;
    this.count = 0;
    this.sweepAt = undefined;
    this.sweepLeft = 0;
    this.hand = undefined;
    this.other.table.clear();
    for (const ref of this.namespaces.values()) ref.deref()?.table.clear();
  }

  /** The entry of the store key `key`, expired or not. */
  private stored(key: string): Entry | undefined {
    const at = prefixLength(key);
    if (at === 0) return this.other.table.get(key);
    return this.namespaces.get(key.slice(0, at))?.deref()?.table.get(key.slice(at));
  }

  /** `entry` if it has not expired (an expired one is dropped). */
  private live(entry: Entry | undefined, now: number): Entry | undefined {
    if (entry === undefined) return undefined;
    if (entry.expiresAt <= now) {
      this.drop(entry);
      return undefined;
    }
    entry.used = true;
    return entry;
  }

  /**
   * Adds `key` to `ns`, as the newest key (making room first at `maxKeys`): the `expired` entry,
   * when given, is reused (it is `key`'s, out of the order, still in the table); else a new entry.
   */
  private insert(
    ns: Namespace,
    key: string,
    state: AlgorithmState | undefined,
    owned: boolean,
    expiresAt: number,
    expired: Entry | undefined,
    given: boolean,
  ): void {
    if (this.count >= this.maxKeys) this.evict(this.clock.now());
    let entry = expired;
    if (entry !== undefined) {
      entry.state = state;
      entry.owned = owned;
      entry.expiresAt = expiresAt;
      entry.used = false;
    } else {
      // A table key must hold on to nothing more than the store needs. The caller's key may have
      // been cut from a much larger string and hold on to all of it, so a key of 13 characters or
      // more is copied (the concatenation is flattened by the slice, which then points into it).
      // A shorter one is used as it is: V8 copies substrings and concatenations that short (it
      // makes sliced and cons strings only from 13 characters on), and it comes already hashed.
      const own = given && key.length >= 13 ? (ns.prefix + key).slice(ns.prefix.length) : key;
      entry = newEntry(state, owned, expiresAt, own, ns, this.ring);
      ns.table.set(own, entry);
    }
    this.append(entry);
  }

  /** Puts `entry` (in no order) at the end of the order, as the newest key. */
  private append(entry: Entry): void {
    const ring = this.ring;
    const last = ring.prev;
    entry.prev = last;
    entry.next = ring;
    last.next = entry;
    ring.prev = entry;
    this.count++;
  }

  /**
   * Takes `entry` out of the order of keys (not out of its table); an eviction walk that looked
   * at it last goes on from the entry before it, so it next looks at the one after it, as a Map
   * iterator does when its current entry is deleted.
   */
  private unlink(entry: Entry): void {
    const prev = entry.prev;
    const next = entry.next;
    prev.next = next;
    next.prev = prev;
    if (this.hand === entry) this.hand = prev;
    if (this.sweepAt === entry) this.sweepAt = prev;
    (entry as { next: Entry | undefined }).next = undefined; // out of the order (see consumeInNamespace)
    this.count--;
  }

  /** Drops `entry` from the store: out of the order and out of its table. */
  private drop(entry: Entry): void {
    this.unlink(entry);
    entry.ns.table.delete(entry.key);
  }

  /**
   * Frees at least one slot, in amortised O(1) time.
   *
   * Both walks go on from where they stopped, the entry each looked at last kept between calls,
   * so no eviction restarts from the oldest key (restarting cost time in proportion to the keys
   * evicted since: tens of µs per decision at 100k keys under key rotation).
   *
   * Expired keys first: once a second at most, a sweep looks at every entry held when it started,
   * SWEEP_STEP entries per call, and drops the expired ones. Then, if no slot is free yet, the CLOCK
   * hand: entries in order, each used one given a second chance (flag cleared, moved to the back),
   * the first unused or expired one dropped. Each second chance is paid for by the use that set
   * the flag, so the hand's steps are amortised O(1) per eviction.
   */
  private evict(now: number): void {
    const counters = this[evictionCounters];
    const ring = this.ring;
    if (this.sweepAt === undefined && (now - this.lastSweep >= SWEEP_INTERVAL_MS || now < this.lastSweep)) {
      this.lastSweep = now;
      this.sweepAt = ring;
      this.sweepLeft = this.count;
      counters.walks++;
    }
    if (this.sweepAt !== undefined) {
      for (let step = 0; step < SWEEP_STEP && this.sweepLeft > 0; step++) {
        const entry: Entry = this.sweepAt.next;
        if (entry === ring) {
          this.sweepLeft = 0;
          break;
        }
        this.sweepAt = entry;
        this.sweepLeft--;
        counters.examined++;
        if (entry.expiresAt <= now) this.drop(entry);
      }
      if (this.sweepLeft === 0) this.sweepAt = undefined;
      if (this.count < this.maxKeys) return;
    }
    for (;;) {
      let entry = this.hand === undefined ? ring : this.hand.next;
      if (entry === ring) {
        // Past the newest entry (or never started): from the oldest again. The store is full, so
        // there is one.
        counters.walks++;
        entry = ring.next;
        if (entry === ring) return;
      }
      this.hand = entry;
      counters.examined++;
      if (entry.expiresAt > now && entry.used) {
        entry.used = false;
        // A second chance: to the back of the order, the same entry, still in its table.
        this.unlink(entry);
        this.append(entry);
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
