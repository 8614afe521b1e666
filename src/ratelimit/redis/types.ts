// The public types of bulwark/redis: the client it needs, the store's options, and the message
// it publishes when Redis fails. The store itself is in redis-store.ts.
import type { StoreErrorMode } from '../store.js';

/**
 * The part of an ioredis 5 or 6 client (`Redis` or `Cluster`) the store uses. Configure it with
 * `enableOfflineQueue: false` and `autoResendUnfulfilledCommands: false` (see docs/redis.md, "Client setup").
 */
export interface RedisClientLike {
  /** ioredis connection status; the store sends nothing unless it is `'ready'`. */
  readonly status: string;
  /** `true` on an ioredis `Cluster`. */
  readonly isCluster?: boolean;
  /** ioredis `disconnect`: with `true`, drops the connection and reconnects (used after silent timeouts, not on a Cluster). */
  disconnect?(reconnect?: boolean): void;
  /** ioredis `info`: the store reads the server's `run_id` after each reconnect (not on a Cluster). */
  info?(section: string): Promise<string>;
  /** ioredis's socket, a new one per connection: how the store tells that the client reconnected. */
  readonly stream?: unknown;
  /** ioredis `Cluster`'s slot map (slot → node keys, the master first): one state marker per master. */
  readonly slots?: readonly (readonly string[] | undefined)[];
  defineCommand(name: string, definition: { lua: string; numberOfKeys?: number; readOnly?: boolean }): void;
}

/** Options of {@link redisStore}. */
export interface RedisStoreOptions {
  /** Put before every key the store writes; must not contain `{` or `}`. @default 'bulwark:' */
  readonly prefix?: string;
  /** Longest a decision waits for Redis before following `onStoreError`, in ms. @default 100 */
  readonly timeoutMs?: number;
  /**
   * What decisions do while Redis is unreachable or slower than `timeoutMs`: `'local'` decides
   * with an in-memory store until Redis answers again, `'fail-open'` admits, `'fail-closed'`
   * denies. A limiter's or quota's own `onStoreError` overrides it.
   * @default 'local' for rate limiters, 'fail-closed' for quotas
   */
  readonly onStoreError?: StoreErrorMode;
  /** Deny a key that Redis denied locally, with no round trip, until its `retryAfterMs` passes. @default false */
  readonly denyCache?: boolean;
  /** Most keys held by the in-memory fallback and by the deny cache (each). @default 10000 */
  readonly localMaxKeys?: number;
  /** Failed calls in a row after which the store stops trying Redis for `openMs` (on a Cluster, per master: only its keys stop). @default 3 */
  readonly openAfterFailures?: number;
  /** How long the store leaves Redis alone after `openAfterFailures` failures; then one call probes it. @default 1000 */
  readonly openMs?: number;
  /** Most decisions sent in one script call (smaller batches let Redis and Node work at the same time). @default 128 */
  readonly maxBatch?: number;
  /**
   * Timed-out calls in a row (each a separate failure, as `openAfterFailures` counts them) while
   * the client says it is `'ready'`, after which the store drops the connection and reconnects
   * (`disconnect(true)`): a flow a NAT or firewall dropped without a reset otherwise stays dead
   * for minutes. Plain Redis and Sentinel clients only; a Cluster is left to its own timeouts.
   * @default 3
   */
  readonly reconnectAfterTimeouts?: number;
  /**
   * How often, at most, the store checks that Redis still holds its keys (a small marker key,
   * one per Cluster master), on a call to Redis it makes anyway: a `FLUSHALL` or an eviction is
   * published as `'state-lost'` on the first call this long after the previous check.
   * @default 5000
   */
  readonly stateCheckMs?: number;
  /**
   * Write counters in the formats of the previous release (text for the windows, the whole
   * theoretical arrival time for GCRA), whose scripts (`bulwarkFixedWindow2`, `bulwarkSlidingWindow2`,
   * `bulwarkGcra2`) cannot read the small integers this one writes (less Redis memory per key).
   * For a rolling upgrade from that release: deploy with `true` while old processes share the
   * Redis, then without it. Either way this release reads both formats. @default false
   */
  readonly legacyValues?: boolean;
}

/**
 * What a store-error message reports: `'operations'` failed or fell back; the store forced a
 * `'reconnect'` after silent timeouts; or the server's state was lost (`'state-lost'`, with a
 * {@link StateLostReason}: every limit and quota may have started again from zero).
 * @example
 * diagnosticsChannel.subscribe('bulwark:ratelimit:store-error', (m) => {
 *   if ((m as StoreErrorMessage).kind === 'state-lost') alert('Redis lost the quota counters');
 * });
 */
export type StoreErrorKind = 'operations' | 'reconnect' | 'state-lost';

/**
 * Why a `'state-lost'` event was published: `'server-changed'`, a new `run_id` after a reconnect
 * (a restart without persistence, or a failover); `'keys-lost'`, the store's marker key vanished
 * while the server stayed the same (`FLUSHALL`, `FLUSHDB`, an eviction, a `DEL`, or a Cluster
 * node that came back empty).
 * @example
 * const why: StateLostReason = 'keys-lost';
 */
export type StateLostReason = 'server-changed' | 'keys-lost';

/** Message published on `bulwark:ratelimit:store-error`. */
export interface StoreErrorMessage {
  readonly store: 'redis';
  readonly kind: StoreErrorKind;
  readonly error: unknown;
  /**
   * What the affected operations did instead; for a `'reconnect'` or `'state-lost'` event, which
   * affects no operation, the kind itself (so a counter labelled by `fallback` tells them apart).
   */
  readonly fallback: StoreErrorMode | 'none' | 'reconnect' | 'state-lost';
  /** How many operations it affected (0 for a `'reconnect'` or `'state-lost'` event). */
  readonly operations: number;
  /** Only on a `'state-lost'` event: how the store found out. */
  readonly reason?: StateLostReason;
}
