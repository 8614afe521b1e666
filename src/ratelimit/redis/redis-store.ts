// The Redis store's public face: its options, checked and resolved in one place, and the four
// operations of a rate-limit store, each checking its input and asking the link (link.ts) whether
// Redis may be called now. The work is done by one object per job: the batcher sends operations
// and settles them (batch.ts, with reply.ts reading the replies), the fallback answers when Redis
// cannot (fallback.ts), the deny cache answers repeated denials locally (deny-cache.ts). The
// public types are types.ts; the client as the store calls it, client.ts.
import { StoreUnavailableError } from '../../core/errors.js';
import { checkOptions, countOption, durationOption, enumOption, show } from '../../core/validate.js';
import type { RateLimitAlgorithm } from '../algorithm.js';
import { refundUnits } from '../algorithms/shared.js';
import { type CompoundAnswer, type CompoundOperation, type LimiterDecision, type RateLimitStore, type StoreErrorMode, storeErrorModes } from '../store.js';
import { Batcher } from './batch.js';
import { randomBytes } from 'node:crypto';
import type { SettleStatus, StoreLease, StoreReservation } from '../reservation.js';
import { type RedisClient, registerLeaseScripts, registerScripts } from './client.js';
import { DenyCache } from './deny-cache.js';
import { Fallback, publishOperationsError } from './fallback.js';
import { ignore, RedisLink } from './link.js';
import { callArgs, compoundScript, OP_CONSUME, OP_PEEK, OP_REFUND, OP_RESERVE, OP_SETTLE, planFor, type ScriptPlan, STATUS_WRONG_PERIOD } from './scripts.js';
import { headerStatus, headerTimeMs } from './reply.js';
import { limiterDecisionOf } from '../algorithms/shared.js';
import { hashSlot, redisKeyOf } from './slot.js';
import type { RedisClientLike, RedisStoreOptions } from './types.js';

export type { StoreErrorMode } from '../store.js';

export { MAX_OUTAGE_RETRY_MS } from './link.js';
export type { RedisClientLike, RedisStoreOptions, StateLostReason, StoreErrorKind, StoreErrorMessage } from './types.js';

const optionKeys = [
  'prefix',
  'timeoutMs',
  'onStoreError',
  'denyCache',
  'localMaxKeys',
  'openAfterFailures',
  'openMs',
  'maxBatch',
  'reconnectAfterTimeouts',
  'stateCheckMs',
  'legacyValues',
] as const;

/**
 * Throws for a cost that is not a whole number from 1 to `max` (the costs of a batch travel as one
 * string of whole numbers): the algorithm's own error where it has one.
 */
function checkCost(algorithm: RateLimitAlgorithm, cost: number, max: number): void {
  if (Number.isInteger(cost) && cost >= 1 && cost <= max) return;
  algorithm.peek(undefined, Date.now(), cost);
  throw new RangeError(`redisStore: "cost" must be a whole number from 1 to ${max}, got ${show(cost)}`);
}

/**
 * Limiter and quota state in Redis (single node, Sentinel or Cluster through ioredis 5 or 6).
 * Concurrent decisions are batched: all those made in one tick for one algorithm (and one slot)
 * go in one script call, which reads the server clock once and applies them in order. A decision
 * never waits longer than `timeoutMs`; past it, or while Redis is down, it follows
 * `onStoreError`, and says so in its `store` field. Built by {@link redisStore}.
 */
export class RedisStore implements RateLimitStore {
  readonly name = 'redis';
  readonly prefix: string;
  readonly timeoutMs: number;
  /** Whether Redis may be called now: the breaker around it, forced reconnects, a server that changed. */
  private readonly link: RedisLink;
  private readonly batcher: Batcher;
  private readonly fallback: Fallback;
  private readonly denied: DenyCache | undefined;
  private readonly redis: RedisClient;
  /** Names this store's leases apart from every other process's: random, then a count. */
  private readonly leasePrefix = randomBytes(6).toString('base64url');
  private leaseSeq = 0;
  private leaseScriptsDefined = false;
  private readonly legacyValues: boolean;
  private readonly onStoreError: StoreErrorMode | undefined;

  constructor(client: RedisClientLike, options?: RedisStoreOptions) {
    if (typeof client !== 'object' || client === null || typeof client.defineCommand !== 'function') {
      throw new TypeError(`redisStore: client must be an ioredis Redis or Cluster instance, got ${show(client)}`);
    }
    const o = checkOptions('redisStore', options, optionKeys);
    if (o.prefix !== undefined && typeof o.prefix !== 'string') {
      throw new TypeError(`redisStore: option "prefix" must be a string, got ${show(o.prefix)}`);
    }
    const prefix = o.prefix ?? 'bulwark:';
    if (/[{}]/.test(prefix) || prefix.length > 128) {
      throw new RangeError(
        `redisStore: option "prefix" must be at most 128 characters without "{" or "}" (the store adds the hash tag), got ${show(prefix)}`,
      );
    }
    this.prefix = prefix;
    const timeoutMs = durationOption('redisStore', 'timeoutMs', o.timeoutMs, 100, { min: 1 });
    this.timeoutMs = timeoutMs;
    const onStoreError =
      o.onStoreError === undefined ? undefined : enumOption('redisStore', 'onStoreError', o.onStoreError, storeErrorModes, 'local');
    if (o.denyCache !== undefined && typeof o.denyCache !== 'boolean') {
      throw new TypeError(`redisStore: option "denyCache" must be a boolean, got ${show(o.denyCache)}`);
    }
    if (o.legacyValues !== undefined && typeof o.legacyValues !== 'boolean') {
      throw new TypeError(`redisStore: option "legacyValues" must be a boolean, got ${show(o.legacyValues)}`);
    }
    const legacyValues = o.legacyValues === true;
    const localMaxKeys = countOption('redisStore', 'localMaxKeys', o.localMaxKeys, 10_000, { max: 100_000_000 });
    const openAfterFailures = countOption('redisStore', 'openAfterFailures', o.openAfterFailures, 3, { max: 1_000_000 });
    const openMs = durationOption('redisStore', 'openMs', o.openMs, 1_000, { min: 1 });
    const maxBatch = countOption('redisStore', 'maxBatch', o.maxBatch, 128, { max: 100_000 });
    const reconnectAfterTimeouts = countOption('redisStore', 'reconnectAfterTimeouts', o.reconnectAfterTimeouts, 3, { max: 1_000_000 });
    const stateCheckMs = durationOption('redisStore', 'stateCheckMs', o.stateCheckMs, 5_000, { min: 1 });
    this.legacyValues = legacyValues;
    this.onStoreError = onStoreError;
    const cluster = client.isCluster === true;
    // Every member the store adds to the client is optional there: no cast (see client.ts).
    const redis: RedisClient = client;
    this.redis = redis;
    this.denied = o.denyCache === true ? new DenyCache(localMaxKeys) : undefined;
    this.link = new RedisLink(redis, { timeoutMs, openMs, openAfterFailures, reconnectAfterTimeouts, cluster, prefix, stateCheckMs });
    this.fallback = new Fallback(this.link, localMaxKeys);
    this.batcher = new Batcher(redis, this.link, this.fallback, this.denied, { prefix, timeoutMs, maxBatch, cluster, legacyValues, onStoreError });
    registerScripts(redis);
  }

  /**
   * `'ready'` when decisions go to Redis; `'degraded'` while they follow `onStoreError` (the
   * client is not connected, or the store is leaving Redis alone after repeated failures; on a
   * Cluster, while it leaves any master that still serves slots alone).
   */
  get status(): 'ready' | 'degraded' {
    return this.link.healthy ? 'ready' : 'degraded';
  }

  /** The Redis key holding `key`'s state (a store key, as a limiter builds it). */
  redisKey(key: string): string {
    return redisKeyOf(this.prefix, key);
  }

  consume(
    key: string,
    algorithm: RateLimitAlgorithm,
    cost: number,
    signal?: AbortSignal,
    onStoreError?: StoreErrorMode,
  ): LimiterDecision | Promise<LimiterDecision> {
    const lane = this.batcher.lane(algorithm, onStoreError);
    checkCost(algorithm, cost, lane.plan.maxCost);
    if (this.denied !== undefined) {
      const cached = this.denied.check(key, cost);
      if (cached !== undefined) return cached;
    }
    if (!this.link.admitsCalls()) {
      publishOperationsError(new StoreUnavailableError('redis', this.link.unavailableReason()), lane.mode, 1);
      return this.batcher.fallbackDecision(lane, key, cost, OP_CONSUME);
    }
    return this.batcher.enqueue(lane, key, OP_CONSUME, cost, signal) as Promise<LimiterDecision>;
  }

  peek(key: string, algorithm: RateLimitAlgorithm, cost: number, onStoreError?: StoreErrorMode): LimiterDecision | Promise<LimiterDecision> {
    const lane = this.batcher.lane(algorithm, onStoreError);
    checkCost(algorithm, cost, lane.plan.maxCost);
    if (!this.link.admitsCalls()) return this.batcher.fallbackDecision(lane, key, cost, OP_PEEK);
    return this.batcher.enqueue(lane, key, OP_PEEK, cost, undefined) as Promise<LimiterDecision>;
  }

  /** Rejects with `StoreUnavailableError` when Redis cannot take the refund (nothing is refunded then). */
  refund(key: string, algorithm: RateLimitAlgorithm, cost: number): Promise<void> {
    const lane = this.batcher.lane(algorithm, undefined);
    let units: number;
    try {
      units = refundUnits('redisStore.refund', cost, lane.plan.maxCost);
    } catch (error) {
      return Promise.reject(error);
    }
    this.fallback.refund(key, algorithm, units);
    if (!this.link.admitsCalls()) return this.unavailable();
    return this.batcher.enqueue(lane, key, OP_REFUND, units, undefined) as Promise<void>;
  }

  /**
   * `consume` and a lease on the units taken, in the same script call (batched with the other
   * decisions of the tick): a lease not settled within `leaseMs` by the server's clock gives its
   * units back, even when this process is gone. While Redis cannot answer, the reservation follows
   * `onStoreError` like a consume; its lease then lives in this process only.
   */
  reserve(key: string, algorithm: RateLimitAlgorithm, cost: number, leaseMs: number, signal?: AbortSignal, onStoreError?: StoreErrorMode) {
    const lane = this.batcher.lane(algorithm, onStoreError);
    checkCost(algorithm, cost, lane.plan.maxCost);
    if (!this.leaseScriptsDefined) {
      registerLeaseScripts(this.redis);
      this.leaseScriptsDefined = true;
    }
    const id = `${this.leasePrefix}${(++this.leaseSeq).toString(36)}`;
    if (!this.link.admitsCalls()) {
      publishOperationsError(new StoreUnavailableError('redis', this.link.unavailableReason()), lane.mode, 1);
      return reservationOf(this.batcher.fallbackDecision(lane, key, cost, OP_CONSUME), id, cost, leaseMs);
    }
    const pending = this.batcher.enqueue(lane, key, OP_RESERVE, cost, signal, false, `${id} ${leaseMs}`) as Promise<LimiterDecision>;
    return pending.then((decision) => reservationOf(decision, id, cost, leaseMs));
  }

  /**
   * Ends a lease in one script call (batched like `consume`); rejects with
   * `StoreUnavailableError` when Redis cannot take it (the lease then ends by itself). A lease
   * taken while Redis was down settles in the local store only.
   */
  settle(key: string, algorithm: RateLimitAlgorithm, lease: StoreLease, actual: number): SettleStatus | Promise<SettleStatus> {
    const lane = this.batcher.lane(algorithm, undefined);
    if ((lease as RedisLease).local) {
      if (actual < lease.units) this.fallback.refund(key, algorithm, lease.units - actual);
      return 'settled';
    }
    if (!this.link.admitsCalls()) return this.unavailable();
    return this.batcher.enqueue(lane, key, OP_SETTLE, actual, undefined, false, `${lease.id} ${lease.units} ${lease.leaseMs}`) as Promise<SettleStatus>;
  }

  /** Deletes `key`'s state; rejects with `StoreUnavailableError` when Redis cannot be reached in time. */
  reset(key: string): Promise<void> {
    this.fallback.reset(key);
    this.denied?.delete(key);
    if (!this.link.admitsCalls()) return this.unavailable();
    return this.batcher.delete(this.redisKey(key));
  }

  /**
   * Decides every limit of a compound call in one script call, all or
   * nothing, under the hash tag `tag` (see lua/compound.lua). Not batched; its outcome counts for
   * the breaker around Redis (on a Cluster, the tag's master's) as a batch's does. While Redis cannot
   * answer in `timeoutMs`, follows `onStoreError`: `'fail-open'` admits, the others deny (a
   * compound call has no local fallback: its limits could not be kept together there).
   */
  async compound(
    tag: string,
    limits: readonly CompoundOperation[],
    onStoreError: StoreErrorMode | undefined,
    peekOnly = false,
  ): Promise<CompoundAnswer> {
    const plans = limits.map((l) => planFor(l.algorithm, this.legacyValues));
    const base = redisKeyOf(this.prefix, `c:${tag}`);
    const keys = limits.map((l) => `${base}:${l.key}`);
    const command = compoundScript.command;
    if (typeof this.redis[command] !== 'function') this.redis.defineCommand(command, { lua: compoundScript.lua });
    const mode = onStoreError ?? this.onStoreError ?? 'local';
    let serverMs = Date.now();
    for (let attempt = 0; attempt < 2; attempt++) {
      const args: (string | number)[] = [keys.length + 1, ...keys, `${base}:limits`, peekOnly ? -limits.length : limits.length];
      const fixedOf: number[][] = [];
      limits.forEach((l, i) => {
        const plan = plans[i]!;
        const fixed: number[] = [...plan.fixedArgs];
        if (plan.calendar !== undefined) {
          const period = plan.calendar.periodAt(serverMs);
          fixed.push(period.start, period.end);
        }
        fixedOf.push(fixed);
        args.push(l.algorithm.kind, l.name, fixed.length, ...fixed, l.cost, plan.flags);
      });
      let reply: unknown;
      try {
        if (!this.link.admitsCalls()) throw new StoreUnavailableError('redis', this.link.unavailableReason());
        // On a Cluster, the master of the tag's slot has a breaker of its own.
        const node = this.link.nodes?.forSlot(hashSlot(base));
        if (node !== undefined && !node.admits()) throw new StoreUnavailableError('redis', node.unavailableReason());
        // The call counts for the breaker around Redis as a batch does: a failure or a timeout
        // towards opening it (and, timeouts in a row on a ready client, towards a reconnect), an
        // answer closes it.
        const seq = this.link.nextSeq();
        this.link.beforeSend();
        this.link.nodes?.closeProbes();
        let call: Promise<unknown> | undefined;
        try {
          call = this.redis[command]!(...args);
          reply = await withTimeout(call, this.timeoutMs);
        } catch (error) {
          const timedOut = error instanceof StoreUnavailableError && error.message.endsWith('timeout');
          if (!timedOut) this.link.lostConnection();
          this.link.failed(seq, timedOut, node);
          // The caller is told no (unless fail-open admits): if Redis admits the call after all,
          // its units are given back, as a single decision's are.
          if (timedOut && call !== undefined && !peekOnly && mode !== 'fail-open') this.refundIfAdmitted(call, limits, plans, keys, fixedOf);
          throw error;
        }
        this.link.replied();
        this.link.succeeded(node);
      } catch (error) {
        publishOperationsError(error, mode, limits.length);
        const allowed = mode === 'fail-open';
        const store = allowed ? 'fail-open' : 'fail-closed';
        const decisions = plans.map((p) => limiterDecisionOf(allowed, p.decisionLimit, 0, 1_000, allowed ? 0 : 1_000, store));
        return { decisions, denied: allowed ? 0 : 1 };
      }
      if (typeof reply === 'number' && headerStatus(reply) === STATUS_WRONG_PERIOD && attempt === 0) {
        serverMs = headerTimeMs(reply); // a calendar period by the client's clock is not the server's: once more on its clock
        continue;
      }
      if (!Array.isArray(reply)) throw new Error(`redisStore: unexpected compound reply ${show(reply)}`);
      const decisions: LimiterDecision[] = [];
      let at = 1;
      for (let i = 0; i < limits.length; i++) {
        const first = Number(reply[at]);
        const allowed = first >= 0;
        const inForce = Number(reply[reply.length - limits.length + i]);
        const limit = inForce >= 0 ? inForce : plans[i]!.decisionLimit;
        decisions.push(limiterDecisionOf(allowed, limit, allowed ? first : -1 - first, Number(reply[at + 1]), allowed ? 0 : Number(reply[at + 2]), 'redis'));
        at += allowed ? 2 : 3;
      }
      return { decisions, denied: Number(reply[0]) };
    }
    throw new Error('redisStore: a calendar period the server did not accept twice');
  }

  /**
   * Once the late reply of a compound call whose caller was already answered arrives: if it
   * admitted every limit, gives each limit its units back (its algorithm's script, op refund, on
   * the compound key, with the call's own arguments). Failures are ignored, as for the store's
   * other refunds of late admissions.
   */
  private refundIfAdmitted(
    call: Promise<unknown>,
    limits: readonly CompoundOperation[],
    plans: readonly ScriptPlan[],
    keys: readonly string[],
    fixedOf: readonly (readonly number[])[],
  ): void {
    call.then((late) => {
      if (!Array.isArray(late) || Number(late[0]) !== 0) return;
      limits.forEach((l, i) => {
        const plan = plans[i]!;
        // A calendar's period bounds follow its fixed arguments (see compound()); no stale guard.
        const fixed = fixedOf[i]!;
        const [start, end] = plan.calendar === undefined ? [0, 0] : fixed.slice(-2);
        const refund = callArgs(plan, [{ redisKey: keys[i]!, op: OP_REFUND, cost: l.cost }], start!, end!, 0, plan.flags);
        Promise.resolve(this.redis[plan.command]!(...refund)).catch(ignore);
      });
    }, ignore);
  }

  /**
   * Sets (or, with undefined, clears) the limit the compound script uses
   * for `policy` under `tag`: the decision limit, then the algorithm's fixed arguments.
   */
  async setCompoundLimit(tag: string, policy: string, algorithm: RateLimitAlgorithm | undefined): Promise<void> {
    const key = `${redisKeyOf(this.prefix, `c:${tag}`)}:limits`;
    const client = this.redis as unknown as {
      hset(key: string, field: string, value: string): Promise<unknown>;
      hdel(key: string, field: string): Promise<unknown>;
    };
    if (algorithm === undefined) {
      await client.hdel(key, policy);
      return;
    }
    const plan = planFor(algorithm, this.legacyValues);
    await client.hset(key, policy, [plan.decisionLimit, ...plan.fixedArgs].join(' '));
  }

  /** Rejects a refund or reset that Redis cannot take now, and reports it. */
  private unavailable(): Promise<never> {
    const error = new StoreUnavailableError('redis', this.link.unavailableReason());
    publishOperationsError(error, 'none', 1);
    return Promise.reject(error);
  }
}

/** `promise`, or a rejection with `StoreUnavailableError` after `ms`. */
function withTimeout<T>(promise: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new StoreUnavailableError('redis', 'timeout')), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/** A lease of the Redis store: `local` when the reservation was answered without Redis. */
interface RedisLease extends StoreLease {
  readonly local: boolean;
}

function reservationOf(decision: LimiterDecision, id: string, units: number, leaseMs: number): StoreReservation {
  if (!decision.allowed) return { decision, lease: undefined };
  const lease: RedisLease = { id, units, leaseMs, local: decision.store !== 'redis' };
  return { decision, lease };
}

/**
 * Creates a Redis store for rate limiters and quotas, on an ioredis 5 or 6 client (`Redis`,
 * `Redis` with Sentinel, or `Cluster`), which the store does not own or close.
 * @example
 * import { Redis } from 'ioredis';
 * const client = new Redis({
 *   enableOfflineQueue: false,
 *   autoResendUnfulfilledCommands: false,
 *   maxRetriesPerRequest: 1,
 *   keepAlive: 10_000,
 *   socketTimeout: 2_000,
 * });
 * const limiter = rateLimiter({ algorithm: gcra({ limit: 100, periodMs: 60_000 }), store: redisStore(client) });
 */
export function redisStore(client: RedisClientLike, options?: RedisStoreOptions): RedisStore {
  return new RedisStore(client, options);
}
