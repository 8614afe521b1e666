// Compound limits (issue 16 §5): one request charged against several limiters and quotas at once,
// all or nothing. The memory store checks every limit, then charges every limit, with no await
// in between (one JavaScript turn is atomic); the Redis store does the same inside one script
// call (redis/lua/compound.lua), so no process ever sees one limit charged and another denying.
// Limits can be changed at run time per tag (a tenant): on Redis the script reads them, so a
// change takes effect on the next call of every process.
import diagnosticsChannel from 'node:diagnostics_channel';
import { channelNames } from '../core/diagnostics.js';
import { checkOptions, nameOption, show } from '../core/validate.js';
import type { RateLimitAlgorithm } from './algorithm.js';
import { decisionKind } from './fast-path.js';
import { storeKey } from './keys.js';
import { MemoryStore } from './memory-store.js';
import { Quota } from './quota/quota.js';
import { RateLimiter, type RateLimitDecisionMessage } from './rate-limiter.js';
import type { LimiterDecision } from './store.js';

const decisionChannel = diagnosticsChannel.channel(channelNames.rateLimitDecision);
const compoundChannel = diagnosticsChannel.channel(channelNames.rateLimitCompound);

/** One limit's part of a {@link CompoundDecision}. */
export interface CompoundPart {
  /** The limiter's or quota's name. */
  readonly policy: string;
  /** Its decision: a consume's when every limit admitted, else what a consume would have got. */
  readonly decision: LimiterDecision;
}

/**
 * A compound decision: admitted only when every limit admitted (then every limit was charged),
 * else nothing was charged. Its own fields are the denying limit's decision (the first one
 * denying, in the order the limits were given) or, when admitted, the decision with the fewest
 * units left.
 */
export interface CompoundDecision extends LimiterDecision {
  /** The policy that denied; undefined when admitted. */
  readonly deniedBy: string | undefined;
  /** Every limit's decision, in the order the limits were given. */
  readonly parts: readonly CompoundPart[];
}

/** Per-call options of {@link CompoundLimit.consume}; a plain number stands for `{ cost }`. */
export interface CompoundConsumeOptions {
  /** Units charged to every limit: a whole number from 1 to the smallest `maxCost`. @default 1 */
  readonly cost?: number;
  /**
   * The Redis hash tag every counter of the call is kept under (one Cluster slot), and the unit
   * {@link CompoundLimit.setLimit} changes limits for: the tenant. Every call touching a counter
   * must give it the same tag. @default the key, when there is one key for every limit (required otherwise)
   */
  readonly tag?: string;
}

/** Message published on `bulwark:ratelimit:compound` (no key, no tag: they are user data). */
export interface CompoundDecisionMessage {
  readonly policy: string;
  readonly allowed: boolean;
  /** The denying limit's name; undefined when admitted. */
  readonly deniedBy: string | undefined;
  /** `'memory'`, `'redis'`, or the outage mode that answered. */
  readonly store: string;
}

/** Options of {@link compoundLimit}. */
export interface CompoundLimitOptions {
  /** Names the compound limit in events and telemetry. @default 'compound' */
  readonly name?: string;
}

type Limit = RateLimiter | Quota;

function innerOf(limit: Limit): RateLimiter {
  // A quota decides through its own rate limiter (same store, name and algorithm).
  return limit instanceof Quota ? (limit as unknown as { readonly limiter: RateLimiter }).limiter : limit;
}

/** The state kept per algorithm kind: a limit set at run time must be of the same kind. */
function sameKind(a: RateLimitAlgorithm, b: RateLimitAlgorithm): boolean {
  return a.kind === b.kind && (a.kind !== 'calendar' || a.windowMs === b.windowMs);
}

/**
 * Several limiters and quotas charged as one: see {@link compoundLimit}.
 */
export class CompoundLimit {
  /** Tells a compound limit from a lone limiter or quota (the HTTP adapters read it). */
  readonly kind = 'compound';
  readonly name: string;
  /** The limits, as given: the HTTP adapters advertise one `RateLimit-Policy` item per limit. */
  readonly limits: readonly (RateLimiter | Quota)[];
  private readonly limiters: readonly RateLimiter[];
  /** The largest cost every limit can admit (the smallest of their `maxCost`). */
  readonly maxCost: number;
  /** Limits set at run time on the memory store, by tag then policy name. */
  private readonly local = new Map<string, Map<string, RateLimitAlgorithm>>();

  constructor(limits: readonly Limit[], options?: CompoundLimitOptions) {
    if (!Array.isArray(limits) || limits.length < 2) {
      throw new TypeError(`compoundLimit: limits must be an array of at least 2 rate limiters or quotas, got ${show(limits)}`);
    }
    const o = checkOptions('compoundLimit', options, ['name'] as const);
    this.name = nameOption('compoundLimit', o.name, 'compound');
    const limiters = limits.map((limit, i) => {
      if (!(limit instanceof RateLimiter) && !(limit instanceof Quota)) {
        throw new TypeError(`compoundLimit: limits[${i}] must be a rateLimiter(...) or quota(...), got ${show(limit)}`);
      }
      return innerOf(limit);
    });
    const store = limiters[0]!.store;
    for (const l of limiters) {
      if (l.store !== store) throw new TypeError('compoundLimit: every limit must use the same store (one Redis store, or one memory store)');
      if (!(l.store instanceof MemoryStore) && typeof l.store.compound !== 'function') {
        throw new TypeError(`compoundLimit: store ${show(l.store.name)} cannot charge limits together (it has no compound method); use memoryStore() or redisStore(client)`);
      }
    }
    if (new Set(limiters.map((l) => l.name)).size !== limiters.length) {
      throw new TypeError('compoundLimit: the limits must have distinct names');
    }
    this.limiters = limiters;
    this.limits = [...limits];
    this.maxCost = Math.min(...limiters.map((l) => l.maxCost));
  }

  /**
   * Charges `cost` units to every limit, or to none: `key` is one key for every limit, or one
   * key per limit in their order (a user's key for a per-user limit, the tenant for a per-tenant
   * one). Never throws on a denial.
   * @example
   * const d = await both.consume([userId, tenantId], { tag: tenantId });
   * if (!d.allowed) console.log(`denied by ${d.deniedBy}, retry in ${d.retryAfterMs} ms`);
   */
  consume(key: string | readonly string[], options?: number | CompoundConsumeOptions): Promise<CompoundDecision> {
    return this.decideCall('compoundLimit.consume', key, options, false);
  }

  /**
   * The decision `consume` would get, charging nothing (each part's `remaining` counts the units
   * asked about as taken). Publishes nothing.
   */
  peek(key: string | readonly string[], options?: number | CompoundConsumeOptions): Promise<CompoundDecision> {
    return this.decideCall('compoundLimit.peek', key, options, true);
  }

  private async decideCall(owner: string, key: string | readonly string[], options: number | CompoundConsumeOptions | undefined, peekOnly: boolean): Promise<CompoundDecision> {
    const o: CompoundConsumeOptions = typeof options === 'number' ? { cost: options } : checkOptions(owner, options, ['cost', 'tag'] as const);
    const cost = o.cost ?? 1;
    if (!Number.isInteger(cost) || cost < 1 || cost > this.maxCost) {
      throw new RangeError(`${owner}: "cost" must be a whole number from 1 to ${this.maxCost}, got ${show(cost)}`);
    }
    const keys = typeof key === 'string' ? this.limiters.map(() => key) : key;
    if (!Array.isArray(keys) || keys.length !== this.limiters.length) {
      throw new TypeError(`${owner}: key must be a string or an array of ${this.limiters.length} strings, got ${show(key)}`);
    }
    const storeKeys = keys.map((k, i) => storeKey(owner, this.limiters[i]!.name, k));
    const tag = this.tagOf(owner, keys, o.tag);
    const store = this.limiters[0]!.store;
    let decisions: LimiterDecision[];
    let denied: number;
    if (typeof store.compound === 'function') {
      const answer = await store.compound(
        tag,
        this.limiters.map((l, i) => ({ key: storeKeys[i]!, algorithm: l.algorithm, name: l.name, cost })),
        this.limiters[0]!.onStoreError,
        peekOnly,
      );
      decisions = answer.decisions;
      denied = answer.denied;
    } else {
      ({ decisions, denied } = this.consumeInMemory(store as MemoryStore, tag, storeKeys, cost, peekOnly));
    }
    return this.decide(decisions, denied, !peekOnly);
  }

  /**
   * Changes, at run time, the algorithm of the limit named `policy` for `tag` (a tenant): on Redis
   * every process's next call uses it (it is read inside the script); in memory, this process's.
   * The algorithm must be of the limit's kind (its stored state is kept).
   * @example
   * await both.setLimit('tenant-42', 'per-second', gcra({ limit: 50, periodMs: 1_000 }));
   */
  async setLimit(tag: string, policy: string, algorithm: RateLimitAlgorithm): Promise<void> {
    const limiter = this.limiterNamed('compoundLimit.setLimit', policy);
    if (!sameKind(limiter.algorithm, algorithm)) {
      throw new TypeError(`compoundLimit.setLimit: the limit of ${show(policy)} is ${limiter.algorithm.kind}; a limit set at run time must be of the same kind`);
    }
    if (typeof limiter.store.setCompoundLimit === 'function') return limiter.store.setCompoundLimit(tag, policy, algorithm);
    let forTag = this.local.get(tag);
    if (forTag === undefined) this.local.set(tag, (forTag = new Map()));
    forTag.set(policy, algorithm);
  }

  /** Goes back to the configured algorithm of `policy` for `tag`. */
  async clearLimit(tag: string, policy: string): Promise<void> {
    const limiter = this.limiterNamed('compoundLimit.clearLimit', policy);
    if (typeof limiter.store.setCompoundLimit === 'function') return limiter.store.setCompoundLimit(tag, policy, undefined);
    this.local.get(tag)?.delete(policy);
  }

  private limiterNamed(owner: string, policy: string): RateLimiter {
    const limiter = this.limiters.find((l) => l.name === policy);
    if (limiter === undefined) throw new RangeError(`${owner}: no limit named ${show(policy)} (limits: ${this.limiters.map((l) => l.name).join(', ')})`);
    return limiter;
  }

  private tagOf(owner: string, keys: readonly string[], tag: string | undefined): string {
    if (tag !== undefined) {
      if (typeof tag !== 'string' || tag.length === 0) throw new TypeError(`${owner}: option "tag" must be a non-empty string, got ${show(tag)}`);
      return tag;
    }
    if (keys.every((k) => k === keys[0])) return keys[0]!;
    throw new TypeError(
      `${owner}: with a different key per limit, option "tag" is required: the one value (such as the tenant) ` +
        'that every call touching these counters shares, so that they are kept together (one Redis Cluster slot)',
    );
  }

  /** Check every limit, then charge every limit: synchronous, so nothing runs in between. */
  private consumeInMemory(
    store: MemoryStore,
    tag: string,
    keys: readonly string[],
    cost: number,
    peekOnly: boolean,
  ): { decisions: LimiterDecision[]; denied: number } {
    const set = this.local.get(tag);
    const algorithms = this.limiters.map((l) => set?.get(l.name) ?? l.algorithm);
    const decisions = algorithms.map((a, i) => store.peek(keys[i]!, a, cost) as LimiterDecision);
    const denied = decisions.findIndex((d) => !d.allowed) + 1;
    if (denied !== 0 || peekOnly) return { decisions, denied };
    return { decisions: algorithms.map((a, i) => store.consume(keys[i]!, a, cost) as LimiterDecision), denied: 0 };
  }

  private decide(decisions: readonly LimiterDecision[], denied: number, publish: boolean): CompoundDecision {
    const parts = decisions.map((decision, i) => ({ policy: this.limiters[i]!.name, decision }));
    let lead = decisions[0]!;
    if (denied !== 0) lead = decisions[denied - 1]!;
    else for (const d of decisions) if (d.remaining < lead.remaining) lead = d;
    const deniedBy = denied === 0 ? undefined : this.limiters[denied - 1]!.name;
    if (publish && decisionChannel.hasSubscribers) {
      decisions.forEach((decision, i) => {
        const l = this.limiters[i]!;
        const message: RateLimitDecisionMessage = { kind: l[decisionKind], policy: l.name, decision, mode: l.mode };
        decisionChannel.publish(message);
      });
    }
    if (publish && compoundChannel.hasSubscribers) {
      const message: CompoundDecisionMessage = { policy: this.name, allowed: denied === 0, deniedBy, store: lead.store };
      compoundChannel.publish(message);
    }
    return { ...lead, deniedBy, parts };
  }
}

/**
 * Charges a request against several rate limiters and quotas (all on one store) all or nothing:
 * "10/s AND 1,000/day", per key and per tenant. On Redis, one script call decides every limit.
 * @example
 * const store = redisStore(client);
 * const perSecond = rateLimiter({ name: 'per-second', algorithm: gcra({ limit: 10, periodMs: 1_000 }), store });
 * const perDay = quota({ name: 'per-day', limit: 1_000, period: 'day', store });
 * const both = compoundLimit([perSecond, perDay]);
 * const decision = await both.consume(tenantId);
 */
export function compoundLimit(limits: readonly Limit[], options?: CompoundLimitOptions): CompoundLimit {
  return new CompoundLimit(limits, options);
}
