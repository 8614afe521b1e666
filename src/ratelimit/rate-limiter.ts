import { checkMode } from '../admission/mode.js';
import type { AdmissionMode } from '../admission/types.js';
import { channelNames } from '../core/diagnostics.js';
import { type Disposable, disposeSymbol } from '../core/events.js';
import { checkOptions, countOption, enumOption, nameOption, show } from '../core/validate.js';
import { registerPolicy } from '../core/registry.js';
import diagnosticsChannel from 'node:diagnostics_channel';
import type { RateLimitAlgorithm } from './algorithm.js';
import { shortKeyPrefix, storeKey } from './keys.js';
import { consumeInNamespace, decideNow, decisionKind, namespaceFor } from './fast-path.js';
import { type MemoryNamespace, MemoryStore, memoryStore } from './memory-store.js';
import { DEFAULT_LEASE_MS, Reservation, reservable, type StoreLease, type StoreReservation } from './reservation.js';
import { type LimiterDecision, type RateLimitStore, type StoreErrorMode, storeErrorModes } from './store.js';

const decisionChannel = diagnosticsChannel.channel(channelNames.rateLimitDecision);
const memoryConsume = MemoryStore.prototype.consume;


/**
 * Per-call options of {@link RateLimiter.consume}; a plain number stands for `{ cost }`.
 * @example
 * await limiter.consume(clientId, { cost: 5, signal: AbortSignal.timeout(50) });
 * await limiter.consume(clientId, 5); // the same cost, no signal
 */
export interface ConsumeOptions {
  /** Units this request takes: a whole number from 1 to the limiter's `maxCost`. @default 1 */
  readonly cost?: number;
  /** Gives up waiting for a remote store. */
  readonly signal?: AbortSignal;
}

/**
 * Per-call options of {@link RateLimiter.reserve}; a plain number stands for `{ cost }`.
 * @example
 * const r = await limiter.reserve(tenant, { cost: 4_000, leaseMs: 120_000 });
 */
export interface ReserveOptions extends ConsumeOptions {
  /**
   * How long the reservation may stay unsettled: past it, the store gives its units back (as a
   * cancel would), and a later settle charges the whole actual cost. A whole number of ms;
   * longer than the work can take. @default 60000
   */
  readonly leaseMs?: number;
}

/** Options of {@link rateLimiter}. */
export interface RateLimiterOptions {
  /** `gcra(...)`, `slidingWindow(...)` or `fixedWindow(...)`. */
  readonly algorithm: RateLimitAlgorithm;
  /** Where the counters live. @default memoryStore() */
  readonly store?: RateLimitStore;
  /**
   * Names the limiter in keys, events and telemetry. Limiters and quotas sharing a store must
   * have distinct names (their keys would collide): a second one with a name in use on the same
   * store throws, until the first is disposed or garbage-collected. @default 'ratelimit'
   */
  readonly name?: string;
  /**
   * What decisions do while the store cannot answer (a Redis outage): `'local'`, `'fail-open'`
   * or `'fail-closed'`; overrides the store's own setting. Ignored by the memory store, which
   * cannot fail. @default the store's `onStoreError` ('local' for rate limiters on the Redis store)
   */
  readonly onStoreError?: StoreErrorMode;
  /**
   * `'shadow'` rejects nothing: decisions are made, counted and published exactly as in
   * `'enforce'` (a denial takes no units, so the counters are those enforcing would leave), but
   * the `rateLimit` policy, bulwark/fetch and the HTTP adapters let a denied call or request go on
   * (the adapters with the headers a 429 would have carried). Settable at run time through
   * {@link RateLimiter.mode}. @default 'enforce'
   */
  readonly mode?: AdmissionMode;
}

/** Message published on `bulwark:ratelimit:decision` (no key: keys are user data). */
export interface RateLimitDecisionMessage {
  /** `'rate-limiter'` for a {@link RateLimiter}, `'quota'` for a quota. */
  readonly kind: 'rate-limiter' | 'quota';
  readonly policy: string;
  readonly decision: LimiterDecision;
  /** The limiter's mode: a denial in `'shadow'` is one the policy and adapters let through. */
  readonly mode: AdmissionMode;
}

const keys = ['algorithm', 'store', 'name', 'onStoreError', 'mode'] as const;
const consumeKeys = ['cost', 'signal'] as const;
const reserveKeys = ['cost', 'signal', 'leaseMs'] as const;

/**
 * Limiters and quotas by store and name: a name is taken on a store while its holder is alive
 * and not disposed. Weak both ways, so a dropped limiter frees its name and its store.
 */
const names = new WeakMap<RateLimitStore, Map<string, WeakRef<RateLimiter>>>();

function claimName(owner: string, store: RateLimitStore, name: string, limiter: RateLimiter): void {
  let taken = names.get(store);
  if (taken === undefined) names.set(store, (taken = new Map()));
  const holder = taken.get(name)?.deref();
  if (holder !== undefined) {
    throw new Error(
      `${owner}: a ${holder[decisionKind] === 'quota' ? 'quota' : 'rate limiter'} named ${show(name)} already uses this store, ` +
        'and the two would share counters; give each limiter and quota on a store its own "name" ' +
        '(or dispose() the first one before creating its replacement)',
    );
  }
  taken.set(name, new WeakRef(limiter));
}

function releaseName(store: RateLimitStore, name: string, limiter: RateLimiter): void {
  const taken = names.get(store);
  if (taken?.get(name)?.deref() === limiter) taken.delete(name);
}

/** The largest cost `algorithm` can ever admit: GCRA's bucket, a window's limit. */
function maxCostOf(algorithm: RateLimitAlgorithm): number {
  const burst = (algorithm as { readonly burst?: unknown }).burst;
  return algorithm.kind === 'gcra' && typeof burst === 'number' ? burst : algorithm.limit;
}

/** Checks that a per-call options argument is a plain object with only `known` keys. */
function checkCallOptions(owner: string, options: unknown, known: readonly string[]): void {
  const proto = typeof options === 'object' && options !== null ? Object.getPrototypeOf(options) : undefined;
  if (proto !== Object.prototype && proto !== null) {
    throw new TypeError(`${owner}: options must be a number (the cost) or an object such as { cost }, got ${show(options)}`);
  }
  for (const key in options as object) {
    if (!known.includes(key)) throw new TypeError(`${owner}: unknown option "${key}" (known options: ${known.join(', ')})`);
  }
}

function checkSignal(owner: string, signal: unknown): void {
  if (!(signal instanceof AbortSignal)) throw new TypeError(`${owner}: option "signal" must be an AbortSignal, got ${show(signal)}`);
}

function isAlgorithm(value: unknown): value is RateLimitAlgorithm {
  return typeof value === 'object' && value !== null && typeof (value as RateLimitAlgorithm).consume === 'function';
}

function isStore(value: unknown): value is RateLimitStore {
  return typeof value === 'object' && value !== null && typeof (value as RateLimitStore).consume === 'function';
}

/**
 * Answers "may this key take `cost` units now?" with a decision; never throws on a denial (only
 * the `rateLimit` policy and the HTTP adapters turn a denial into an error or a 429). Built by
 * {@link rateLimiter}.
 */
export class RateLimiter implements Disposable {
  readonly kind = 'rate-limiter';
  readonly name: string;
  /** The largest cost a single call can ever be admitted with: GCRA's burst, a window's limit, a quota's limit. */
  readonly maxCost: number;
  /** This limiter's own `onStoreError`, passed to the store with every decision; undefined: the store's. */
  readonly onStoreError: StoreErrorMode | undefined;
  /** Internal: what decision messages call this limiter (a quota's inner limiter says `'quota'`). */
  [decisionKind]: 'rate-limiter' | 'quota' = 'rate-limiter';
  readonly algorithm: RateLimitAlgorithm;
  readonly store: RateLimitStore;
  /** The store, when it is a plain `MemoryStore` (not a subclass), for {@link RateLimiter.consume}'s direct path. */
  private readonly memory: MemoryStore | undefined;
  /** This limiter's short keys in `memory`. */
  private readonly namespace: MemoryNamespace | undefined;
  private disposed = false;
  private currentMode: AdmissionMode;
  /** `'rateLimiter.consume'` or `'quota.consume'`, made once: error messages on the hot path name it. */
  private readonly consumeOwner: string;
  /**
   * The last consume options object whose shape passed the check. The HTTP adapters pass one
   * object, made once, for every request: its keys are not enumerated again (its cost and
   * signal still are checked on every call).
   */
  private checkedOptions: object | undefined;

  constructor(options: RateLimiterOptions) {
    if (options === undefined) throw new TypeError('rateLimiter: options must be an object with "algorithm", got undefined');
    const o = checkOptions('rateLimiter', options, keys);
    // A quota builds its limiter with this (symbol keys are not options), so errors name the quota.
    const ofQuota = (options as { [decisionKind]?: string })[decisionKind] === 'quota';
    const owner = ofQuota ? 'quota' : 'rateLimiter';
    if (ofQuota) this[decisionKind] = 'quota';
    this.consumeOwner = `${owner}.consume`;
    if (!isAlgorithm(o.algorithm)) {
      throw new TypeError(
        `rateLimiter: option "algorithm" must be gcra(...), slidingWindow(...) or fixedWindow(...), got ${show(o.algorithm)}`,
      );
    }
    this.algorithm = o.algorithm;
    this.maxCost = maxCostOf(o.algorithm);
    if (o.store !== undefined && !isStore(o.store)) {
      throw new TypeError(`${owner}: option "store" must be a store such as memoryStore(), got ${show(o.store)}`);
    }
    this.store = o.store === undefined ? memoryStore() : o.store;
    this.name = nameOption(owner, o.name, ofQuota ? 'quota' : 'ratelimit');
    this.onStoreError =
      o.onStoreError === undefined ? undefined : enumOption(owner, 'onStoreError', o.onStoreError, storeErrorModes, 'local');
    this.currentMode = checkMode(owner, 'option "mode"', o.mode);
    claimName(owner, this.store, this.name, this);
    if (Object.getPrototypeOf(this.store) === MemoryStore.prototype) {
      this.memory = this.store as MemoryStore;
      this.namespace = this.memory[namespaceFor](shortKeyPrefix(this.name));
    } else {
      this.memory = undefined;
      this.namespace = undefined;
    }
    if (!ofQuota) registerPolicy(this);
  }

  /**
   * `'enforce'` or `'shadow'` (see the `mode` option); assigning switches at once and keeps every
   * counter. Anything else throws a TypeError. `consume` answers the same in both modes: code of
   * your own that acts on its decisions reads this to follow the mode.
   */
  get mode(): AdmissionMode {
    return this.currentMode;
  }

  set mode(value: AdmissionMode) {
    this.currentMode = checkMode(this[decisionKind] === 'quota' ? 'quota' : 'rateLimiter', '"mode"', value, false);
  }

  /**
   * Takes `cost` units for `key` if available. `options` is `{ cost, signal }` or just the cost
   * as a number; anything else (unknown keys, `null`, a signal that is not an `AbortSignal`, a
   * key that is not a non-empty string) rejects with a `TypeError` or `RangeError`.
   */
  consume(key: string, options?: number | ConsumeOptions): Promise<LimiterDecision> {
    try {
      const decision = this[decideNow](key, options);
      return decision instanceof Promise ? decision : Promise.resolve(decision);
    } catch (error) {
      return Promise.reject(error);
    }
  }

  /** Internal: what `consume` decides, synchronously when the store can (a fast-path hook, see fast-path.ts); throws bad input. */
  [decideNow](key: string, options?: number | ConsumeOptions): LimiterDecision | Promise<LimiterDecision> {
    if (this.disposed) throw this.disposedError('consume');
    let cost = 1;
    let signal: AbortSignal | undefined;
    if (options !== undefined) {
      if (typeof options === 'number') {
        cost = this.checkCost('consume', options);
      } else {
        if (options !== this.checkedOptions) {
          checkCallOptions(this.consumeOwner, options, consumeKeys);
          this.checkedOptions = options;
        }
        if (options.cost !== undefined) cost = this.checkCost('consume', options.cost);
        signal = options.signal;
        if (signal !== undefined) {
          checkSignal(this.consumeOwner, signal);
          if (signal.aborted) return Promise.reject(signal.reason);
        }
      }
    }
    const store = this.store;
    // What store.consume(storeKey(...), ...) does, without building the store key, for a short
    // key (undefined for any other, which takes the general path below).
    let decision =
      store === this.memory && store.consume === memoryConsume
        ? this.memory[consumeInNamespace](this.namespace!, key, this.algorithm, cost)
        : undefined;
    if (decision === undefined) {
      const storeKeyOf = storeKey(this.consumeOwner, this.name, key);
      // Only a limiter with a mode of its own passes one, so a custom store sees the call it always saw.
      const pending =
        this.onStoreError === undefined
          ? store.consume(storeKeyOf, this.algorithm, cost, signal)
          : store.consume(storeKeyOf, this.algorithm, cost, signal, this.onStoreError);
      if (pending instanceof Promise || typeof (pending as Partial<PromiseLike<unknown>>).then === 'function') {
        // A custom store may answer with another library's promise: adopted as a native one.
        const answer = pending instanceof Promise ? pending : Promise.resolve(pending);
        return decisionChannel.hasSubscribers ? answer.then((d) => this.publish(d)) : answer;
      }
      decision = pending;
    }
    return this.publish(decision);
  }

  /** The decision `consume` would give now, taking nothing; `options` as for `consume`, without `signal`. */
  async peek(key: string, options?: number | Pick<ConsumeOptions, 'cost'>): Promise<LimiterDecision> {
    if (this.disposed) throw this.disposedError('peek');
    let cost = 1;
    if (typeof options === 'number') cost = this.checkCost('peek', options);
    else if (options !== undefined) {
      checkCallOptions(this.owner('peek'), options, ['cost']);
      if (options.cost !== undefined) cost = this.checkCost('peek', options.cost);
    }
    const id = storeKey(this.owner('peek'), this.name, key);
    return this.onStoreError === undefined
      ? this.store.peek(id, this.algorithm, cost)
      : this.store.peek(id, this.algorithm, cost, this.onStoreError);
  }

  /**
   * Reserves an estimate of `cost` units for `key` (as `consume` takes them) and answers with a
   * {@link Reservation}: settle it with the actual cost once known, or cancel it; one not settled
   * within `leaseMs` gives its units back by itself. `options` is `{ cost, leaseMs, signal }` or
   * just the cost; bad input rejects as `consume` does. Needs a store with reservations (the
   * memory and Redis stores).
   */
  async reserve(key: string, options?: number | ReserveOptions): Promise<Reservation> {
    if (this.disposed) throw this.disposedError('reserve');
    const owner = this.owner('reserve');
    let cost = 1;
    let leaseMs = DEFAULT_LEASE_MS;
    let signal: AbortSignal | undefined;
    if (typeof options === 'number') cost = this.checkCost('reserve', options);
    else if (options !== undefined) {
      checkCallOptions(owner, options, reserveKeys);
      if (options.cost !== undefined) cost = this.checkCost('reserve', options.cost);
      leaseMs = countOption(owner, 'leaseMs', options.leaseMs, DEFAULT_LEASE_MS);
      signal = options.signal;
      if (signal !== undefined) {
        checkSignal(owner, signal);
        signal.throwIfAborted();
      }
    }
    const store = this.store;
    if (typeof store.reserve !== 'function' || typeof store.settle !== 'function') {
      throw new TypeError(`${owner}: the store ${show(store.name)} does not hold reservations (it has no reserve and settle methods)`);
    }
    if (!reservable(this.algorithm)) {
      throw new TypeError(`${owner}: reservations need gcra(...), slidingWindow(...), fixedWindow(...) or a quota, got kind ${show(this.algorithm.kind)}`);
    }
    const id = storeKey(owner, this.name, key);
    const reserved: StoreReservation = await (this.onStoreError === undefined
      ? store.reserve(id, this.algorithm, cost, leaseMs, signal)
      : store.reserve(id, this.algorithm, cost, leaseMs, signal, this.onStoreError));
    const decision = this.publish(reserved.decision);
    const lease: StoreLease | undefined = reserved.lease;
    const settle =
      lease === undefined ? undefined : (actual: number) => store.settle!(id, this.algorithm, lease, actual, this.maxCost);
    return new Reservation(decision, cost, settle, (actual) => this.checkActual(actual), { kind: this[decisionKind], policy: this.name });
  }

  /**
   * Gives back `cost` units to `key` (for work that was admitted but not done): a number, or
   * `{ cost }` as `consume` takes it; 1 when left out.
   */
  async refund(key: string, options?: number | Pick<ConsumeOptions, 'cost'>): Promise<void> {
    if (this.disposed) throw this.disposedError('refund');
    let units = 1;
    if (typeof options === 'number') units = this.checkCost('refund', options);
    else if (options !== undefined) {
      checkCallOptions(this.owner('refund'), options, ['cost']);
      if (options.cost !== undefined) units = this.checkCost('refund', options.cost);
    }
    await this.store.refund(storeKey(this.owner('refund'), this.name, key), this.algorithm, units);
  }

  /** Forgets everything about `key`. */
  async reset(key: string): Promise<void> {
    if (this.disposed) throw this.disposedError('reset');
    await this.store.reset(storeKey(this.owner('reset'), this.name, key));
  }

  /**
   * Frees this limiter's name on its store, so a replacement (after a hot reload, in the next
   * test) can take it; every call after this throws. The counters stay in the store, for the
   * replacement to continue from. Idempotent.
   * @example
   * limiter.dispose();
   */
  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    releaseName(this.store, this.name, this);
  }

  /** Same as {@link RateLimiter.dispose}, for `using`. */
  [disposeSymbol](): void {
    this.dispose();
  }

  /** @deprecated use {@link RateLimiter.dispose} (the one verb of every bulwark handle that stops something). */
  close(): void {
    this.dispose();
  }

  private owner(method: string): string {
    return `${this[decisionKind] === 'quota' ? 'quota' : 'rateLimiter'}.${method}`;
  }

  private checkCost(method: string, cost: unknown): number {
    if (Number.isSafeInteger(cost) && (cost as number) >= 1) return cost as number;
    return countOption(this.owner(method), 'cost', cost, 1, { max: Number.MAX_SAFE_INTEGER });
  }

  /** A settle's actual cost: a whole number from 0. */
  private checkActual(actual: unknown): number {
    if (Number.isSafeInteger(actual) && (actual as number) >= 0) return actual as number;
    if (typeof actual !== 'number') {
      throw new TypeError(`${this.owner('reserve')}: settle's "actualCost" must be a number, got ${show(actual)}`);
    }
    throw new RangeError(`${this.owner('reserve')}: settle's "actualCost" must be a whole number of at least 0, got ${show(actual)}`);
  }

  private disposedError(method: string): Error {
    return new Error(`${this.owner(method)}: ${show(this.name)} has been disposed`);
  }

  private publish(decision: LimiterDecision): LimiterDecision {
    if (decisionChannel.hasSubscribers) {
      const message: RateLimitDecisionMessage = { kind: this[decisionKind], policy: this.name, decision, mode: this.currentMode };
      decisionChannel.publish(message);
    }
    return decision;
  }
}

/**
 * Creates a rate limiter: an algorithm over a store. Limiters and quotas on one store need
 * distinct names.
 * @example
 * const perClient = rateLimiter({ name: 'api', algorithm: gcra({ limit: 100, periodMs: 60_000, burst: 20 }) });
 * const decision = await perClient.consume(clientId);
 * if (!decision.allowed) console.log(`retry in ${decision.retryAfterMs} ms`);
 */
export function rateLimiter(options: RateLimiterOptions): RateLimiter {
  return new RateLimiter(options);
}
