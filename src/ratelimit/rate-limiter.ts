import { channelNames } from '../core/diagnostics.js';
import { checkOptions, countOption, nameOption, show } from '../core/validate.js';
import diagnosticsChannel from 'node:diagnostics_channel';
import type { RateLimitAlgorithm } from './algorithm.js';
import { isShortKey, shortKeyPrefix, storeKey } from './keys.js';
import { consumeInNamespace, type MemoryNamespace, MemoryStore, memoryStore, namespaceFor } from './memory-store.js';
import { decideNow, type LimiterDecision, type RateLimitStore } from './store.js';

const decisionChannel = diagnosticsChannel.channel(channelNames.rateLimitDecision);
const memoryConsume = MemoryStore.prototype.consume;

/** Per-call options of {@link RateLimiter.consume}. */
export interface ConsumeOptions {
  /** Units this request takes. @default 1 */
  readonly cost?: number;
  /** Gives up waiting for a remote store. */
  readonly signal?: AbortSignal;
}

/** Options of {@link rateLimiter}. */
export interface RateLimiterOptions {
  /** `gcra(...)`, `slidingWindow(...)` or `fixedWindow(...)`. */
  readonly algorithm: RateLimitAlgorithm;
  /** Where the counters live. @default memoryStore() */
  readonly store?: RateLimitStore;
  /** Names the limiter in keys, events and telemetry; limiters sharing a store need distinct names. @default 'ratelimit' */
  readonly name?: string;
}

/** Message published on `bulwark:ratelimit:decision` (no key: keys are user data). */
export interface RateLimitDecisionMessage {
  /** `'rate-limiter'` for a {@link RateLimiter}, `'quota'` for a quota. */
  readonly kind: 'rate-limiter' | 'quota';
  readonly policy: string;
  readonly decision: LimiterDecision;
}

/** Internal: the kind a quota's inner limiter reports on the decision channel. */
export const decisionKind = Symbol('bulwark.decisionKind');

const keys = ['algorithm', 'store', 'name'] as const;

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
export class RateLimiter {
  readonly kind = 'rate-limiter';
  readonly name: string;
  /** Internal: what decision messages call this limiter (a quota's inner limiter says `'quota'`). */
  [decisionKind]: 'rate-limiter' | 'quota' = 'rate-limiter';
  readonly algorithm: RateLimitAlgorithm;
  readonly store: RateLimitStore;
  /** The store, when it is a plain `MemoryStore` (not a subclass), for {@link RateLimiter.consume}'s direct path. */
  private readonly memory: MemoryStore | undefined;
  /** This limiter's short keys in `memory`. */
  private readonly namespace: MemoryNamespace | undefined;

  constructor(options: RateLimiterOptions) {
    if (options === undefined) throw new TypeError('rateLimiter: options must be an object with "algorithm", got undefined');
    const o = checkOptions('rateLimiter', options, keys);
    if (!isAlgorithm(o.algorithm)) {
      throw new TypeError(
        `rateLimiter: option "algorithm" must be gcra(...), slidingWindow(...) or fixedWindow(...), got ${show(o.algorithm)}`,
      );
    }
    this.algorithm = o.algorithm;
    if (o.store !== undefined && !isStore(o.store)) {
      throw new TypeError(`rateLimiter: option "store" must be a store such as memoryStore(), got ${show(o.store)}`);
    }
    this.store = o.store ?? memoryStore();
    this.name = nameOption('rateLimiter', o.name, 'ratelimit');
    if (Object.getPrototypeOf(this.store) === MemoryStore.prototype) {
      this.memory = this.store as MemoryStore;
      this.namespace = this.memory[namespaceFor](shortKeyPrefix(this.name));
    } else {
      this.memory = undefined;
      this.namespace = undefined;
    }
  }

  /** Takes `cost` units for `key` if available. */
  consume(key: string, options?: ConsumeOptions): Promise<LimiterDecision> {
    try {
      const decision = this[decideNow](key, options);
      return decision instanceof Promise ? decision : Promise.resolve(decision);
    } catch (error) {
      return Promise.reject(error);
    }
  }

  /** Internal: what `consume` decides, synchronously when the store can (see {@link decideNow}); throws bad input. */
  [decideNow](key: string, options?: ConsumeOptions): LimiterDecision | Promise<LimiterDecision> {
    let cost = 1;
    let signal: AbortSignal | undefined;
    if (options !== undefined) {
      cost = this.cost(options);
      signal = options.signal;
      if (signal?.aborted) return Promise.reject(signal.reason);
    }
    const store = this.store;
    let decision: LimiterDecision;
    if (store === this.memory && store.consume === memoryConsume && isShortKey(key)) {
      // What store.consume(storeKey(...), ...) does, without building the store key each time.
      decision = this.memory[consumeInNamespace](this.namespace!, key, this.algorithm, cost);
    } else {
      const pending = store.consume(storeKey('rateLimiter.consume', this.name, key), this.algorithm, cost, signal);
      if (pending instanceof Promise || typeof (pending as Partial<PromiseLike<unknown>>).then === 'function') {
        // A custom store may answer with another library's promise: adopted as a native one.
        const answer = pending instanceof Promise ? pending : Promise.resolve(pending);
        return decisionChannel.hasSubscribers ? answer.then((d) => this.publish(d)) : answer;
      }
      decision = pending;
    }
    return this.publish(decision);
  }

  /** The decision `consume` would give now, taking nothing. */
  async peek(key: string, options?: Pick<ConsumeOptions, 'cost'>): Promise<LimiterDecision> {
    return this.store.peek(storeKey('rateLimiter.peek', this.name, key), this.algorithm, this.cost(options));
  }

  /** Gives back `cost` units to `key` (for work that was admitted but not done). */
  async refund(key: string, cost = 1): Promise<void> {
    const units = countOption('rateLimiter.refund', 'cost', cost, 1, { max: Number.MAX_SAFE_INTEGER });
    await this.store.refund(storeKey('rateLimiter.refund', this.name, key), this.algorithm, units);
  }

  /** Forgets everything about `key`. */
  async reset(key: string): Promise<void> {
    await this.store.reset(storeKey('rateLimiter.reset', this.name, key));
  }

  private cost(options: ConsumeOptions | undefined): number {
    if (options === undefined || options.cost === undefined) return 1;
    return countOption('rateLimiter.consume', 'cost', options.cost, 1, { max: Number.MAX_SAFE_INTEGER });
  }

  private publish(decision: LimiterDecision): LimiterDecision {
    if (decisionChannel.hasSubscribers) {
      const message: RateLimitDecisionMessage = { kind: this[decisionKind], policy: this.name, decision };
      decisionChannel.publish(message);
    }
    return decision;
  }
}

/**
 * Creates a rate limiter: an algorithm over a store.
 * @example
 * const perClient = rateLimiter({ name: 'api', algorithm: gcra({ limit: 100, periodMs: 60_000, burst: 20 }) });
 * const decision = await perClient.consume(clientId);
 * if (!decision.allowed) console.log(`retry in ${decision.retryAfterMs} ms`);
 */
export function rateLimiter(options: RateLimiterOptions): RateLimiter {
  return new RateLimiter(options);
}
