// The rate-limit fast paths: the one internal seam between the limiter, the memory store, the
// algorithms and the HTTP adapters. Each hook is a method or property under a symbol declared
// here, so it is never part of a public type, never an option, never enumerable on an algorithm,
// and cannot collide with a user's property. None is exported from the package (only from this
// file). Every hook does exactly what the public path it shortcuts does — same decision, same
// errors, same entries and order of keys in the store — only with fewer allocations, promises or
// string concatenations; the public path stays the reference, and a caller falls back to it
// whenever a hook is missing or does not apply (a custom store or algorithm, a subclass).
//
//   hook                 provided by                        called by
//   decideNow            RateLimiter, Quota                 http/rate-limit-rule.ts (adapters)
//   namespaceFor         MemoryStore                        RateLimiter (constructor)
//   consumeInNamespace   MemoryStore                        RateLimiter[decideNow]
//   fastConsume          gcra, slidingWindow, fixedWindow   MemoryStore (every consume)
//                        (withFastConsume in algorithms/shared.ts)
//   decisionKind         Quota (on its inner limiter)       RateLimiter (messages, errors)
//   evictionCounters     MemoryStore                        tests only (pins eviction's cost)
import type { AlgorithmState, RateLimitAlgorithm } from './algorithm.js';
import type { LimiterDecision } from './store.js';

/**
 * A decider's `consume` that answers synchronously when it can (over a memory store) and with a
 * promise otherwise, and throws bad input synchronously instead of rejecting. The HTTP adapters
 * call it to let a request through without waiting for a promise when the decision is already
 * made; `consume(key, options)` is `Promise.resolve(decider[decideNow](key, options))` with a
 * throw turned into a rejection.
 */
export const decideNow: unique symbol = Symbol('bulwark.decideNow');

/** A decider offering {@link decideNow}. */
export interface SyncDecider {
  [decideNow](key: string, options?: number | { readonly cost?: number }): LimiterDecision | Promise<LimiterDecision>;
}

/**
 * `MemoryStore[namespaceFor](prefix)`: the store's index of the keys `prefix + key`, one object
 * per prefix while anything refers to it (limiters sharing a name share it, as they share
 * entries). A limiter over a plain `MemoryStore` (not a subclass) takes its namespace once, in
 * its constructor, with `prefix` its short key prefix (keys.ts).
 */
export const namespaceFor: unique symbol = Symbol('bulwark.memoryStore.namespaceFor');

/**
 * `MemoryStore[consumeInNamespace](ns, key, algorithm, cost)`: exactly
 * `store.consume(ns.prefix + key, algorithm, cost)`, without building that string, when `key` is a
 * short key (`isShortKey`); undefined, having done nothing, for any other value. A namespace's
 * table holds short keys only, so a key found in it is not checked again. The limiter calls it
 * only when its store is a plain `MemoryStore` whose `consume` is the prototype's (not replaced
 * on the instance); otherwise, or when it returns undefined, the limiter builds the store key
 * (which checks the key) and calls `consume`.
 */
export const consumeInNamespace: unique symbol = Symbol('bulwark.memoryStore.consumeInNamespace');

/**
 * Where a store finds an algorithm's fast consumption (see {@link FastConsume}), set as a
 * non-enumerable, read-only property, so an algorithm object looks and behaves exactly as its
 * `RateLimitAlgorithm` type says. A store uses it when present and `consume` otherwise.
 */
export const fastConsume: unique symbol = Symbol('bulwark.ratelimit.fastConsume');

/** What a fast consumption leaves for the store: a scratch object the store owns and reuses. */
export interface FastOutcome {
  /** Whether to store `state` (with `ttlMs`): exactly when `consume` would return a new state. */
  keep: boolean;
  /** The state to store when `keep`, as `ConsumeOutcome.state` (possibly the input, updated in place). */
  state: AlgorithmState | undefined;
  /** As `ConsumeOutcome.ttlMs`. */
  ttlMs: number;
}

/**
 * `consume` of the same algorithm, with the same checks, errors and numbers, for a store that
 * reports its name in every decision: returns the final decision, `store` included (one object
 * with the properties in the order `{ ...decision, store }` gives), and writes what to store into
 * `out` instead of returning a fresh outcome object. When `inPlace` is true, the store owns
 * `state` (no one else holds it), and the algorithm may write the new state into it rather than
 * allocate one; `out.keep` then still says whether anything changed.
 */
export type FastConsume = (
  state: AlgorithmState | undefined,
  nowMs: number,
  cost: number,
  store: string,
  out: FastOutcome,
  inPlace: boolean,
) => LimiterDecision;

/** An algorithm that may carry a {@link FastConsume}. */
export interface MaybeFastAlgorithm extends RateLimitAlgorithm {
  readonly [fastConsume]?: FastConsume;
}

/**
 * The kind a limiter reports on the decision channel and in its error messages: a quota builds
 * its inner limiter with `{ [decisionKind]: 'quota' }` among the options (a symbol key is not an
 * option, so `checkOptions` ignores it), and the limiter keeps it under the same symbol.
 */
export const decisionKind: unique symbol = Symbol('bulwark.decisionKind');

/**
 * `MemoryStore[evictionCounters]`: how much work eviction has done, for tests that pin its cost
 * without timing it. Nothing in the library reads it.
 */
export const evictionCounters: unique symbol = Symbol('bulwark.memoryStore.evictionCounters');

/** The counters under {@link evictionCounters}. */
export interface EvictionCounters {
  /** Entries the sweep and the CLOCK hand have looked at. */
  examined: number;
  /** Walks of the keys started from the oldest (sweeps and CLOCK hands). */
  walks: number;
}
