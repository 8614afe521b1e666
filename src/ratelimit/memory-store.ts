import { type Clock, wallClock } from '../core/clock.js';
import { checkOptions, clockOption, countOption } from '../core/validate.js';
import type { AlgorithmState, RateLimitAlgorithm } from './algorithm.js';
import type { LimiterDecision, RateLimitStore } from './store.js';

/** Options of {@link memoryStore}. */
export interface MemoryStoreOptions {
  /** Most keys held at once; past it, expired keys go first, then the least recently used. @default 100000 */
  readonly maxKeys?: number;
  /** Time source, in epoch ms. @default wallClock */
  readonly clock?: Clock;
}

interface Entry {
  state: AlgorithmState | undefined;
  expiresAt: number;
  /** Set on every use; cleared when eviction passes over the entry (a second chance). */
  used: boolean;
}

const keys = ['maxKeys', 'clock'] as const;
/** Least time between two full sweeps for expired keys. */
const SWEEP_INTERVAL_MS = 1_000;

/**
 * Limiter state in this process's memory. Bounded: at `maxKeys`, an insertion first evicts
 * expired keys, then the least recently used (approximated with the CLOCK second-chance scheme,
 * so a hit costs a flag, not a reordering). No timer per key: expired keys are dropped when met
 * and during eviction. Built by {@link memoryStore}.
 */
export class MemoryStore implements RateLimitStore {
  readonly name = 'memory';
  readonly maxKeys: number;
  private readonly clock: Clock;
  private readonly entries = new Map<string, Entry>();
  private lastSweep = -Infinity;

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
    const entry = this.live(key, now);
    const outcome = algorithm.consume(entry?.state, now, cost);
    if (outcome.state !== entry?.state) this.save(key, entry, outcome.state, now + outcome.ttlMs);
    return { ...outcome.decision, store: this.name };
  }

  peek(key: string, algorithm: RateLimitAlgorithm, cost: number): LimiterDecision {
    const now = this.clock.now();
    return { ...algorithm.peek(this.live(key, now)?.state, now, cost), store: this.name };
  }

  refund(key: string, algorithm: RateLimitAlgorithm, cost: number): void {
    const now = this.clock.now();
    const entry = this.live(key, now);
    if (entry === undefined) return; // nothing was taken that is still counted
    const outcome = algorithm.refund(entry.state, now, cost);
    this.save(key, entry, outcome.state, now + outcome.ttlMs);
  }

  reset(key: string): void {
    this.entries.delete(key);
  }

  /** Drops every key. */
  clear(): void {
    this.entries.clear();
  }

  /** The entry for `key` if it has not expired (an expired one is dropped). */
  private live(key: string, now: number): Entry | undefined {
    const entry = this.entries.get(key);
    if (entry === undefined) return undefined;
    if (entry.expiresAt <= now) {
      this.entries.delete(key);
      return undefined;
    }
    entry.used = true;
    return entry;
  }

  private save(key: string, entry: Entry | undefined, state: AlgorithmState | undefined, expiresAt: number): void {
    if (entry !== undefined) {
      entry.state = state;
      entry.expiresAt = expiresAt;
      return;
    }
    if (this.entries.size >= this.maxKeys) this.evict(this.clock.now());
    this.entries.set(key, { state, expiresAt, used: false });
  }

  /**
   * Frees at least one slot. Expired keys go first: a full sweep for them, at most once a second
   * (O(keys), so not on every insertion at capacity). Then the least recently used, by walking
   * from the oldest insertion and giving used entries a second chance (moved to the back, flag
   * cleared) until an unused one is dropped.
   */
  private evict(now: number): void {
    if (now - this.lastSweep >= SWEEP_INTERVAL_MS || now < this.lastSweep) {
      this.lastSweep = now;
      for (const [key, entry] of this.entries) if (entry.expiresAt <= now) this.entries.delete(key);
      if (this.entries.size < this.maxKeys) return;
    }
    const target = this.maxKeys - 1;
    for (const [key, entry] of this.entries) {
      if (this.entries.size <= target) return;
      this.entries.delete(key);
      if (entry.expiresAt > now && entry.used) {
        entry.used = false;
        this.entries.set(key, entry);
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
