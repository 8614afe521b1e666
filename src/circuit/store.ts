// Where a circuit breaker keeps the state it shares, if any. The default, memoryBreakerStore(),
// shares nothing: the breaker's own fields are the whole state, as before stores existed. A
// shared store (redisBreakerStore in bulwark/redis) hands each breaker a SharedBreaker: the
// breaker keeps deciding locally on every call and tells the store its outcomes; the store
// aggregates them with other processes' and pushes the fleet's state back through `apply`.
import type { Clock } from '../core/clock.js';

/** The fleet's state as a shared store last read it. */
export interface FleetState {
  readonly state: 'closed' | 'open' | 'half-open';
  /** While open: ms until the fleet's half-open window starts, as of now on this process's clock. */
  readonly openRemainingMs: number;
  /** How many times in a row the fleet's breaker opened without closing (drives a backoff). */
  readonly opens: number;
  /** Numbers the fleet's open periods: a new one is a new open (and half-open) window. */
  readonly epoch: number;
}

/**
 * How a breaker's strategy aggregates outcomes, in a form a shared store can run away from the
 * breaker (filled in for bulwark's own strategies; undefined for custom ones).
 */
export type FleetRule =
  | { readonly kind: 'consecutive'; readonly threshold: number }
  | {
      readonly kind: 'count-window' | 'time-window';
      /** Calls held (count window) or ms covered (time window). */
      readonly size: number;
      readonly failureRate: number;
      readonly minimumCalls: number;
      readonly slowRate: number;
    };

/** What a shared store learns of a breaker when the breaker connects to it. */
export interface BreakerPeer {
  readonly name: string;
  readonly halfOpenMaxCalls: number;
  readonly probeTimeoutMs: number;
  /** The longest open period, in ms. */
  readonly maxOpenMs: number;
  /** The breaker's strategy as a rule a store can aggregate, or undefined for a custom strategy. */
  readonly rule: FleetRule | undefined;
  readonly clock: Clock;
  /** How long the open period after `opens` opens in a row lasts, in ms. */
  openDelay(opens: number): number;
  /** Applies the fleet's state to the breaker (called by the store whenever it reads it). */
  apply(state: FleetState): void;
}

/**
 * A breaker's handle on a shared store. Every method returns at once and never throws: a store
 * that cannot reach its backend says so through `active`, and the breaker decides alone.
 */
export interface SharedBreaker {
  /** True while the store's view of the fleet is fresh: the fleet decides when to open and close. */
  readonly active: boolean;
  /**
   * One outcome of a call made while closed. `judged`: what the breaker's own strategy says
   * after it (open or not), for stores that count instances rather than outcomes (quorum).
   */
  record(failed: boolean, slow: boolean, judged: boolean): void;
  /**
   * Asks for one of the fleet's half-open probe slots: true, run the probe; false, the fleet's
   * slots are taken; undefined, the store cannot tell (decide locally).
   */
  claimProbe(): Promise<boolean | undefined>;
  /** A claimed probe's end: `'released'` when its outcome did not count (the slot is freed). */
  probeDone(outcome: 'succeeded' | 'failed' | 'released'): void;
  /** Disconnects the breaker from the store. */
  close(): void;
}

/**
 * Where a circuit breaker's state lives: {@link memoryBreakerStore} (the default: this process
 * only) or a shared one such as `redisBreakerStore` from `bulwark/redis`.
 */
export interface BreakerStore {
  readonly kind: string;
  /** Called once per breaker at construction; undefined keeps the breaker's state local. */
  connect(peer: BreakerPeer): SharedBreaker | undefined;
}

const memory: BreakerStore = Object.freeze({ kind: 'memory', connect: () => undefined });

/**
 * The default breaker store: state in the breaker itself, shared with nobody.
 * @example
 * const breaker = circuitBreaker({ store: memoryBreakerStore() }); // same as leaving it out
 */
export function memoryBreakerStore(): BreakerStore {
  return memory;
}

/** True for objects shaped like a {@link BreakerStore}. */
export function isBreakerStore(value: unknown): value is BreakerStore {
  return typeof value === 'object' && value !== null && typeof (value as BreakerStore).connect === 'function';
}
