// The Redis store: decisions gathered per tick into one script call per algorithm (and Cluster
// slot), each call's deadline, and the answers — from Redis, or by `onStoreError` when it cannot
// answer. It is one job: lanes, batches, the deadline queue, the deny cache and the fallback all
// act on the same decisions in flight. Whether Redis may be called (the breaker, forced
// reconnects, a changed server) is link.ts; the public types are types.ts.
import diagnosticsChannel from 'node:diagnostics_channel';
import { systemClock } from '../../core/clock.js';
import { type DeadlineEntry, DeadlineQueue } from '../../core/deadline-queue.js';
import { channelNames } from '../../core/diagnostics.js';
import { offAbort, onAbort } from '../../core/shared-abort.js';
import { StoreUnavailableError } from '../../core/errors.js';
import { checkOptions, countOption, durationOption, enumOption, show } from '../../core/validate.js';
import type { RateLimitAlgorithm } from '../algorithm.js';
import { limiterDecisionOf, refundUnits } from '../algorithms/shared.js';
import { MemoryStore } from '../memory-store.js';
import type { LimiterDecision, RateLimitStore, StoreErrorMode } from '../store.js';
import {
  OP_CONSUME,
  OP_PEEK,
  OP_REFUND,
  planFor,
  type ScriptPlan,
  scripts,
  STATUS_DECIDED,
  STATUS_WRONG_PERIOD,
} from './scripts.js';
import { errorText, ignore, RedisLink } from './link.js';
import { hashSlot } from './slot.js';
import type { RedisClientLike, RedisStoreOptions, StoreErrorMessage } from './types.js';

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
] as const;
const modes = ['fail-open', 'fail-closed', 'local'] as const;

// Where a pending operation stands. Those settled without Redis are remembered so that a late
// answer can be accounted for.
const WAITING = 0;
const ANSWERED = 1;
const FELL_BACK_ALLOWED = 2;
/** Fell back to a denial, was aborted, or was rejected: the caller was not admitted. */
const NOT_ADMITTED = 3;

// Breaker around Redis.

/** One decision (or refund) waiting for its batch. */
interface Pending {
  readonly key: string;
  readonly redisKey: string;
  readonly op: number;
  readonly cost: number;
  state: number;
  resolve: ((value: unknown) => void) | undefined;
  reject: ((error: unknown) => void) | undefined;
  signal: AbortSignal | undefined;
  onAbort: (() => void) | undefined;
}

/** The decisions for one algorithm (and, on a Cluster, one slot) sent in one script call. */
interface Batch extends DeadlineEntry {
  readonly lane: Lane;
  readonly ops: Pending[];
  /** Wall-clock ms when last sent, to estimate the server clock's offset from the reply. */
  sentAtMs: number;
  /** The store's count of calls sent when this batch was last sent (see `RedisStore.failed`). */
  sentSeq: number;
  /** Sent a second time after a wrong-period or stale answer (at most once). */
  resent: boolean;
  /** Settled, by a reply, an error or the deadline. */
  done: boolean;
  /**
   * Holds only the store's own refunds for late admissions: sent without a stale guard, since
   * they must land even when Redis is slow.
   */
  readonly internal: boolean;
  /** Set on the per-key calls a Cluster batch was split into: the batch that answers for them. */
  readonly parent: Batch | undefined;
  /** On a split batch: how many of its per-key calls have not settled yet. */
  children: number;
}

/** Everything the store keeps for one algorithm object (and one outage mode). */
interface Lane {
  readonly algorithm: RateLimitAlgorithm;
  readonly plan: ScriptPlan;
  readonly mode: StoreErrorMode;
  /** On the lane for the store's own mode: the lanes of limiters that chose another mode. */
  variants: Map<StoreErrorMode, Lane> | undefined;
  /** The batch being filled, per slot (slot 0 on a single node). */
  readonly open: Map<number, Batch>;
  /** Calendar quotas: the bounds of the period believed to hold the server's time. */
  periodStart: number;
  periodEnd: number;
}

interface DenyEntry {
  readonly untilMs: number;
  readonly resetAtMs: number;
  readonly cost: number;
  readonly limit: number;
}

const storeErrorChannel = diagnosticsChannel.channel(channelNames.storeError);

/** Whether a decided reply holds exactly one answer per operation (two integers each, three for a denial). */
function answersAll(reply: readonly unknown[], operations: number): boolean {
  let at = 3;
  for (let i = 0; i < operations; i++) {
    if (at >= reply.length) return false;
    at += Number(reply[at]) >= 0 ? 2 : 3;
  }
  return at === reply.length;
}

/**
 * Throws for a cost that is not a whole number from 1 to `max` (the costs of a batch travel as one
 * string of whole numbers): the algorithm's own error where it has one.
 */
function checkCost(algorithm: RateLimitAlgorithm, cost: number, max: number): void {
  if (Number.isInteger(cost) && cost >= 1 && cost <= max) return;
  algorithm.peek(undefined, Date.now(), cost);
  throw new RangeError(`redisStore: "cost" must be a whole number from 1 to ${max}, got ${show(cost)}`);
}

/** Escapes `%`, `{` and `}` (injectively), so a key can sit inside a `{hash tag}`. */
function escapeKey(key: string): string {
  // indexOf, not a regular expression: this runs for every decision.
  if (key.indexOf('%') < 0 && key.indexOf('{') < 0 && key.indexOf('}') < 0) return key;
  return key.replace(/[%{}]/g, (c) => (c === '%' ? '%25' : c === '{' ? '%7B' : '%7D'));
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
  private readonly client: RedisClientLike;
  private readonly onStoreError: StoreErrorMode | undefined;
  private readonly localMaxKeys: number;
  private readonly maxBatch: number;
  private readonly cluster: boolean;
  private readonly lanes = new WeakMap<RateLimitAlgorithm, Lane>();
  private readonly deadlines = new DeadlineQueue(systemClock);
  private readonly denied: Map<string, DenyEntry> | undefined;
  private local: MemoryStore | undefined;
  /** Lanes with a batch being filled, flushed together at the end of the tick. */
  private filling: Lane[] = [];
  private flushScheduled = false;
  /**
   * Server clock minus wall clock, in ms, from the latest reply in time. Until one arrives the
   * clocks are assumed to agree; if the server runs ahead by more than timeoutMs, its first
   * answer is "stale" and the call is sent again with the measured offset.
   */
  private offsetMs = 0;
  /** Whether Redis may be called now: the breaker around it, forced reconnects, a server that changed. */
  private readonly link: RedisLink;

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
    this.timeoutMs = durationOption('redisStore', 'timeoutMs', o.timeoutMs, 100, { min: 1 });
    this.onStoreError = o.onStoreError === undefined ? undefined : enumOption('redisStore', 'onStoreError', o.onStoreError, modes, 'local');
    if (o.denyCache !== undefined && typeof o.denyCache !== 'boolean') {
      throw new TypeError(`redisStore: option "denyCache" must be a boolean, got ${show(o.denyCache)}`);
    }
    this.localMaxKeys = countOption('redisStore', 'localMaxKeys', o.localMaxKeys, 10_000, { max: 100_000_000 });
    const openAfterFailures = countOption('redisStore', 'openAfterFailures', o.openAfterFailures, 3, { max: 1_000_000 });
    const openMs = durationOption('redisStore', 'openMs', o.openMs, 1_000, { min: 1 });
    this.maxBatch = countOption('redisStore', 'maxBatch', o.maxBatch, 128, { max: 100_000 });
    const reconnectAfterTimeouts = countOption('redisStore', 'reconnectAfterTimeouts', o.reconnectAfterTimeouts, 3, { max: 1_000_000 });
    const stateCheckMs = durationOption('redisStore', 'stateCheckMs', o.stateCheckMs, 5_000, { min: 1 });
    this.denied = o.denyCache === true ? new Map() : undefined;
    this.client = client;
    this.cluster = client.isCluster === true;
    this.link = new RedisLink(client, {
      timeoutMs: this.timeoutMs,
      openMs,
      openAfterFailures,
      reconnectAfterTimeouts,
      cluster: this.cluster,
      prefix,
      stateCheckMs,
    });
    const registered = client as unknown as Record<string, unknown>;
    for (const { command, lua } of Object.values(scripts)) {
      if (typeof registered[command] !== 'function') client.defineCommand(command, { lua });
    }
  }

  /**
   * `'ready'` when decisions go to Redis; `'degraded'` while they follow `onStoreError` (the
   * client is not connected, or the store is leaving Redis alone after repeated failures).
   */
  get status(): 'ready' | 'degraded' {
    return this.link.healthy ? 'ready' : 'degraded';
  }

  /** The Redis key holding `key`'s state (a store key, as a limiter builds it). */
  redisKey(key: string): string {
    return `${this.prefix}{${escapeKey(key)}}`;
  }

  consume(
    key: string,
    algorithm: RateLimitAlgorithm,
    cost: number,
    signal?: AbortSignal,
    onStoreError?: StoreErrorMode,
  ): LimiterDecision | Promise<LimiterDecision> {
    const lane = this.lane(algorithm, onStoreError);
    checkCost(algorithm, cost, lane.plan.maxCost);
    if (this.denied !== undefined) {
      const cached = this.deniedLocally(key, cost);
      if (cached !== undefined) return cached;
    }
    if (!this.link.admitsCalls()) {
      this.publishError(new StoreUnavailableError('redis', this.link.unavailableReason()), lane.mode, 1);
      return this.fallbackDecision(lane, key, cost, OP_CONSUME);
    }
    return this.enqueue(lane, key, OP_CONSUME, cost, signal) as Promise<LimiterDecision>;
  }

  peek(key: string, algorithm: RateLimitAlgorithm, cost: number, onStoreError?: StoreErrorMode): LimiterDecision | Promise<LimiterDecision> {
    const lane = this.lane(algorithm, onStoreError);
    checkCost(algorithm, cost, lane.plan.maxCost);
    if (!this.link.admitsCalls()) return this.fallbackDecision(lane, key, cost, OP_PEEK);
    return this.enqueue(lane, key, OP_PEEK, cost, undefined) as Promise<LimiterDecision>;
  }

  /** Rejects with `StoreUnavailableError` when Redis cannot take the refund (nothing is refunded then). */
  refund(key: string, algorithm: RateLimitAlgorithm, cost: number): Promise<void> {
    const lane = this.lane(algorithm, undefined);
    let units: number;
    try {
      units = refundUnits('redisStore.refund', cost, lane.plan.maxCost);
    } catch (error) {
      return Promise.reject(error);
    }
    this.local?.refund(key, algorithm, units);
    if (!this.link.admitsCalls()) {
      const error = new StoreUnavailableError('redis', this.link.unavailableReason());
      this.publishError(error, 'none', 1);
      return Promise.reject(error);
    }
    return this.enqueue(lane, key, OP_REFUND, units, undefined) as Promise<void>;
  }

  /** Deletes `key`'s state; rejects with `StoreUnavailableError` when Redis cannot be reached in time. */
  reset(key: string): Promise<void> {
    this.local?.reset(key);
    this.denied?.delete(key);
    if (!this.link.admitsCalls()) {
      const error = new StoreUnavailableError('redis', this.link.unavailableReason());
      this.publishError(error, 'none', 1);
      return Promise.reject(error);
    }
    return new Promise<void>((resolve, reject) => {
      const seq = this.link.nextSeq();
      const entry: DeadlineEntry = {
        deadline: systemClock.now() + this.timeoutMs,
        queuePrev: undefined,
        queueNext: undefined,
        queued: false,
        expire: () => {
          this.link.failed(seq, true);
          reject(new StoreUnavailableError('redis', `no answer within ${this.timeoutMs} ms`));
        },
      };
      this.deadlines.push(entry);
      const del = (this.client as unknown as { del(key: string): Promise<number> }).del(this.redisKey(key));
      del.then(
        () => {
          if (!entry.queued) return;
          this.deadlines.remove(entry);
          this.link.succeeded();
          resolve();
        },
        (error: unknown) => {
          if (!entry.queued) return;
          this.deadlines.remove(entry);
          this.link.lostConnection();
          this.link.failed(seq, false);
          reject(new StoreUnavailableError('redis', errorText(error), { cause: error }));
        },
      );
    });
  }

  // ---- batching ------------------------------------------------------------------------------

  /** The lane for `algorithm` under `mode` (the store's own mode when undefined). */
  private lane(algorithm: RateLimitAlgorithm, mode: StoreErrorMode | undefined): Lane {
    let lane = this.lanes.get(algorithm);
    if (lane === undefined) {
      const plan = planFor(algorithm);
      lane = this.newLane(algorithm, plan, this.onStoreError ?? (plan.calendar !== undefined ? 'fail-closed' : 'local'));
      this.lanes.set(algorithm, lane);
    }
    if (mode === undefined || mode === lane.mode) return lane;
    return lane.variants?.get(mode) ?? this.addVariant(lane, mode);
  }

  private addVariant(lane: Lane, mode: StoreErrorMode): Lane {
    // Limiters check their option; this guards a direct call to the store.
    enumOption('redisStore.consume', 'onStoreError', mode, modes, 'local');
    const variant = this.newLane(lane.algorithm, lane.plan, mode);
    (lane.variants ??= new Map()).set(mode, variant);
    return variant;
  }

  private newLane(algorithm: RateLimitAlgorithm, plan: ScriptPlan, mode: StoreErrorMode): Lane {
    return { algorithm, plan, mode, variants: undefined, open: new Map(), periodStart: 0, periodEnd: 0 };
  }

  private enqueue(
    lane: Lane,
    key: string,
    op: number,
    cost: number,
    signal: AbortSignal | undefined,
    internal = false,
  ): Promise<unknown> {
    const redisKey = this.redisKey(key);
    // Internal refunds go in batches of their own (slots are below 16384).
    const slot = (this.cluster ? hashSlot(redisKey) : 0) + (internal ? 16384 : 0);
    let batch = lane.open.get(slot);
    if (batch === undefined) {
      batch = {
        lane,
        ops: [],
        sentAtMs: 0,
        sentSeq: 0,
        resent: false,
        done: false,
        internal,
        parent: undefined,
        children: 0,
        deadline: 0,
        queuePrev: undefined,
        queueNext: undefined,
        queued: false,
        expire: () => this.expired(batch!),
      };
      if (lane.open.size === 0) this.filling.push(lane);
      lane.open.set(slot, batch);
      if (!this.flushScheduled) {
        this.flushScheduled = true;
        // Nothing in flight: send at the end of this tick, for the lowest latency. Batches in
        // flight: Redis is busy anyway, so gather what the rest of this event-loop turn brings
        // (an HTTP server decides once per request callback, each its own tick) into one call.
        if (this.deadlines.size === 0) process.nextTick(this.flush);
        else setImmediate(this.flush);
      }
    }
    const pending: Pending = {
      key,
      redisKey,
      op,
      cost,
      state: WAITING,
      resolve: undefined,
      reject: undefined,
      signal: undefined,
      onAbort: undefined,
    };
    const promise = new Promise((resolve, reject) => {
      pending.resolve = resolve;
      pending.reject = reject;
    });
    if (signal !== undefined) this.watch(pending, signal);
    batch.ops.push(pending);
    if (batch.ops.length >= this.maxBatch) {
      lane.open.delete(slot);
      this.send(batch);
    }
    return promise;
  }

  private watch(pending: Pending, signal: AbortSignal): void {
    pending.signal = signal;
    pending.onAbort = () => {
      if (pending.state !== WAITING) return;
      pending.state = NOT_ADMITTED;
      pending.reject!(signal.reason);
      this.release(pending);
    };
    // One shared listener per signal: many decisions on one request's signal add none each.
    onAbort(signal, pending.onAbort);
  }

  private release(pending: Pending): void {
    if (pending.signal !== undefined) offAbort(pending.signal, pending.onAbort!);
    pending.signal = undefined;
    pending.onAbort = undefined;
    pending.resolve = undefined;
    pending.reject = undefined;
  }

  private readonly flush = (): void => {
    this.flushScheduled = false;
    this.link.closeProbe();
    const lanes = this.filling;
    this.filling = [];
    for (const lane of lanes) {
      for (const batch of lane.open.values()) this.send(batch);
      lane.open.clear();
    }
  };

  private send(batch: Batch): void {
    if (this.client.status !== 'ready') {
      this.link.lostConnection();
      this.finish(batch);
      this.settleWithoutRedis(batch, new StoreUnavailableError('redis', `client status is "${this.client.status}"`));
      if (batch.parent !== undefined) this.childSettled(batch.parent);
      return;
    }
    // A reconnect may happen while no decision is made (a quick restart): a new socket tells.
    // One comparison per call to Redis, not per decision.
    this.link.beforeSend();
    if (!batch.queued && !batch.resent) {
      batch.deadline = systemClock.now() + this.timeoutMs;
      this.deadlines.push(batch);
    }
    const { plan } = batch.lane;
    const ops = batch.ops;
    const n = ops.length;
    const now = Date.now();
    batch.sentAtMs = now;
    batch.sentSeq = this.link.nextSeq();
    const args: (string | number)[] = [n];
    for (let i = 0; i < n; i++) args.push(ops[i]!.redisKey);
    for (const value of plan.fixedArgs) args.push(value);
    if (plan.calendar !== undefined) {
      const lane = batch.lane;
      const serverNow = now + this.offsetMs;
      if (serverNow < lane.periodStart || serverNow >= lane.periodEnd) this.alignPeriod(lane, serverNow);
      args.push(lane.periodStart, lane.periodEnd);
    }
    // The server drops the batch when it runs after our deadline (a replay after a reconnect).
    // The offset errs towards a later server time by up to one round trip, so a batch still in
    // time is never dropped.
    args.push(batch.internal ? 0 : Math.ceil((now + this.offsetMs + this.timeoutMs) * 1000));
    // Two arguments for all the operations, not two per decision: every argument costs the client
    // (ioredis measures and frames each one) more than building these strings does.
    let codes = '';
    let costs = '';
    let unit = true;
    for (let i = 0; i < n; i++) {
      const pending = ops[i]!;
      codes += pending.op; // the codes are single digits
      if (pending.cost !== 1) unit = false;
    }
    if (!unit) {
      for (let i = 0; i < n; i++) costs += i === 0 ? String(ops[i]!.cost) : ` ${ops[i]!.cost}`;
    }
    args.push(codes, costs);
    const call = (this.client as unknown as Record<string, (...a: (string | number)[]) => Promise<unknown>>)[plan.command]!;
    let result: Promise<unknown>;
    try {
      result = call.apply(this.client, args);
    } catch (error) {
      result = Promise.reject(error);
    }
    result.then(
      (reply) => this.answered(batch, reply),
      (error: unknown) => this.errored(batch, error),
    );
  }

  private alignPeriod(lane: Lane, serverNowMs: number): void {
    const bounds = lane.plan.calendar!.periodAt(serverNowMs);
    lane.periodStart = bounds.start;
    lane.periodEnd = bounds.end;
  }

  private answered(batch: Batch, reply: unknown): void {
    if (!Array.isArray(reply) || reply.length < 3 || (Number(reply[2]) === STATUS_DECIDED && !answersAll(reply, batch.ops.length))) {
      this.errored(batch, new TypeError(`unexpected reply from ${batch.lane.plan.command}: ${show(reply)}`));
      return;
    }
    const serverMs = Number(reply[0]) * 1000 + Number(reply[1]) / 1000;
    // A late reply says little about the offset (it includes the wait) and nothing good about
    // Redis's health: only replies in time update either.
    const late = batch.done;
    // Even a late reply shows the connection carries bytes: its timeouts were not silent.
    this.link.replied();
    if (!late) this.offsetMs = serverMs - batch.sentAtMs;
    const status = Number(reply[2]);
    if (status !== STATUS_DECIDED) {
      // The period changed (calendar) or the server's clock is not where we thought (a replay,
      // or a failover to a server whose clock differs): nothing was changed. Try once more if
      // anyone still waits, now that the offset is fresh.
      if (late) return;
      if (status === STATUS_WRONG_PERIOD) this.alignPeriod(batch.lane, serverMs);
      if (!batch.resent && batch.ops.some((p) => p.state === WAITING)) {
        batch.resent = true;
        this.send(batch);
        return;
      }
      this.finish(batch);
      this.settleWithoutRedis(batch, new StoreUnavailableError('redis', `the server clock moved (status ${status})`));
      if (batch.parent !== undefined) this.childSettled(batch.parent);
      return;
    }
    if (!late) {
      this.finish(batch);
      this.link.succeeded();
    }
    const { plan } = batch.lane;
    let refunds: Pending[] | undefined;
    // Each answer: remaining, resetMs when admitted (and for a refund); -1 - remaining, resetMs,
    // retryAfterMs when denied.
    let at = 3;
    for (let i = 0; i < batch.ops.length; i++) {
      const pending = batch.ops[i]!;
      const first = Number(reply[at]);
      const allowed = first >= 0;
      const remaining = allowed ? first : -1 - first;
      const resetMs = Number(reply[at + 1]);
      const retryAfterMs = allowed ? 0 : Number(reply[at + 2]);
      at += allowed ? 2 : 3;
      if (pending.state === WAITING) {
        pending.state = ANSWERED;
        const resolve = pending.resolve!;
        this.release(pending);
        if (pending.op === OP_REFUND) {
          resolve(undefined);
          continue;
        }
        const decision = limiterDecisionOf(allowed, plan.decisionLimit, remaining, resetMs, retryAfterMs, 'redis');
        if (!allowed && pending.op === OP_CONSUME && this.denied !== undefined) this.rememberDenial(pending.key, pending.cost, decision);
        resolve(decision);
      } else if (pending.state === NOT_ADMITTED && pending.op === OP_CONSUME && allowed) {
        // Redis admitted a decision whose caller was told no (timed out, aborted, or denied by
        // the fallback): give the units back, so nothing is counted that did not happen.
        (refunds ??= []).push(pending);
      }
    }
    if (refunds !== undefined) {
      for (const pending of refunds) {
        this.enqueue(batch.lane, pending.key, OP_REFUND, pending.cost, undefined, true).catch(ignore);
      }
    }
    if (batch.parent !== undefined) this.childSettled(batch.parent);
  }

  private errored(batch: Batch, error: unknown): void {
    if (batch.done) return;
    // During a slot migration, a call whose keys are split between the two nodes bounces between
    // them (ASK, then TRYAGAIN) until ioredis gives up; one key at a time, each call is simply
    // redirected instead.
    if (this.cluster && batch.parent === undefined && /TRYAGAIN|Too many Cluster redirections/.test(errorText(error))) {
      if (this.splitPerKey(batch)) return;
    }
    this.finish(batch);
    // A connection error may hide a restart the store did not see happen.
    this.link.lostConnection();
    this.link.failed(batch.sentSeq, false);
    this.settleWithoutRedis(batch, new StoreUnavailableError('redis', errorText(error), { cause: error }));
    if (batch.parent !== undefined) this.childSettled(batch.parent);
  }

  /**
   * Sends the waiting operations of `batch` again as one call per key. The batch stays in the
   * deadline queue and answers for them all: its timeout still bounds every decision. Returns
   * false when they all use one key (nothing to split).
   */
  private splitPerKey(batch: Batch): boolean {
    const byKey = new Map<string, Pending[]>();
    for (const pending of batch.ops) {
      if (pending.state !== WAITING) continue;
      const group = byKey.get(pending.redisKey);
      if (group === undefined) byKey.set(pending.redisKey, [pending]);
      else group.push(pending);
    }
    if (byKey.size < 2) return false;
    batch.children = byKey.size;
    for (const ops of byKey.values()) {
      this.send({
        lane: batch.lane,
        ops,
        sentAtMs: 0,
        sentSeq: batch.sentSeq,
        resent: true, // neither queued for a deadline of its own nor sent a third time
        done: false,
        internal: batch.internal,
        parent: batch,
        children: 0,
        deadline: batch.deadline,
        queuePrev: undefined,
        queueNext: undefined,
        queued: false,
        expire: ignore,
      });
    }
    return true;
  }

  private childSettled(parent: Batch): void {
    if (--parent.children === 0 && !parent.done) this.finish(parent);
  }

  private expired(batch: Batch): void {
    if (batch.done) return;
    // When this process was too busy to run timers on time (a long synchronous task, a GC
    // pause), the reply may be waiting, unread, in the socket: let the event loop read it first.
    // And such lateness is ours, not Redis's: it does not count towards opening the breaker.
    const lateMs = systemClock.now() - batch.deadline;
    setImmediate(() => {
      if (batch.done) return;
      batch.done = true; // already removed from the deadline queue
      if (lateMs < Math.max(20, this.timeoutMs / 2)) {
        this.link.failed(batch.sentSeq, true);
      } else {
        this.link.probeAbandoned();
      }
      this.settleWithoutRedis(batch, new StoreUnavailableError('redis', `no answer within ${this.timeoutMs} ms`));
      if (batch.parent !== undefined) this.childSettled(batch.parent);
    });
  }

  private finish(batch: Batch): void {
    batch.done = true;
    this.deadlines.remove(batch);
  }

  /** Answers every waiting operation of `batch` without Redis, following `onStoreError`. */
  private settleWithoutRedis(batch: Batch, error: StoreUnavailableError): void {
    batch.done = true;
    const { lane } = batch;
    let affected = 0;
    for (const pending of batch.ops) {
      if (pending.state !== WAITING) continue;
      affected++;
      const resolve = pending.resolve!;
      const reject = pending.reject!;
      this.release(pending);
      if (pending.op === OP_REFUND) {
        pending.state = NOT_ADMITTED;
        reject(error);
        continue;
      }
      const decision = this.fallbackDecision(lane, pending.key, pending.cost, pending.op);
      pending.state = decision.allowed ? FELL_BACK_ALLOWED : NOT_ADMITTED;
      resolve(decision);
    }
    if (affected > 0) this.publishError(error, lane.mode, affected);
  }

  private fallbackDecision(lane: Lane, key: string, cost: number, op: number): LimiterDecision {
    const { algorithm } = lane;
    switch (lane.mode) {
      case 'local': {
        const local = (this.local ??= new MemoryStore({ maxKeys: this.localMaxKeys }));
        const d = op === OP_CONSUME ? local.consume(key, algorithm, cost) : local.peek(key, algorithm, cost);
        return { ...d, store: 'local' };
      }
      case 'fail-open':
        return { ...algorithm.peek(undefined, Date.now(), cost), store: 'fail-open' };
      default: {
        const retryAfterMs = this.link.outageRetryAfterMs();
        return {
          allowed: false,
          limit: lane.plan.decisionLimit,
          remaining: 0,
          resetMs: retryAfterMs,
          retryAfterMs,
          store: 'fail-closed',
        };
      }
    }
  }

  // ---- deny cache ----------------------------------------------------------------------------

  private deniedLocally(key: string, cost: number): LimiterDecision | undefined {
    const entry = this.denied!.get(key);
    if (entry === undefined) return undefined;
    const now = Date.now();
    if (now >= entry.untilMs) {
      this.denied!.delete(key);
      return undefined;
    }
    if (cost < entry.cost) return undefined; // a smaller cost may still fit: ask Redis
    const retryAfterMs = entry.untilMs - now;
    return {
      allowed: false,
      limit: entry.limit,
      remaining: 0,
      resetMs: Math.max(entry.resetAtMs - now, retryAfterMs),
      retryAfterMs,
      store: 'deny-cache',
    };
  }

  private rememberDenial(key: string, cost: number, decision: LimiterDecision): void {
    if (decision.retryAfterMs <= 0) return;
    const denied = this.denied!;
    if (!denied.has(key) && denied.size >= this.localMaxKeys) {
      const oldest = denied.keys().next();
      if (oldest.done !== true) denied.delete(oldest.value);
    }
    const now = Date.now();
    denied.set(key, { untilMs: now + decision.retryAfterMs, resetAtMs: now + decision.resetMs, cost, limit: decision.limit });
  }

  // ---- failures ----------------------------------------------------------------------------

  private publishError(error: unknown, fallback: StoreErrorMode | 'none', operations: number): void {
    if (!storeErrorChannel.hasSubscribers) return;
    const message: StoreErrorMessage = { store: 'redis', kind: 'operations', error, fallback, operations };
    storeErrorChannel.publish(message);
  }
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
