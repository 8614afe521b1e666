// Sending the store's operations to Redis and settling them: decisions gathered per tick into
// one script call per lane (one algorithm under one outage mode) and, on a Cluster, per slot;
// each call's deadline in one queue, with no timer per call; the answers handed back in order
// (read by reply.ts), or, when Redis cannot answer in time, the fallback's (fallback.ts). A
// decision Redis admitted after its caller was told no is refunded here. Whether a call may go
// at all is the link's to say (link.ts), and on a Cluster, when the batch's slot is known, its
// master's breaker's (node-breaker.ts); the public methods and their checks are redis-store.ts.
// The lanes and batches themselves, as data, are lane.ts.
import { systemClock } from '../../core/clock.js';
import { type DeadlineEntry, DeadlineQueue } from '../../core/deadline-queue.js';
import { StoreUnavailableError } from '../../core/errors.js';
import { show } from '../../core/validate.js';
import type { RateLimitAlgorithm } from '../algorithm.js';
import type { LimiterDecision, StoreErrorMode } from '../store.js';
import type { RedisClient } from './client.js';
import type { DenyCache } from './deny-cache.js';
import { type Fallback, publishOperationsError } from './fallback.js';
import { addVariant, alignPeriod, type Batch, childBatch, type Lane, newBatch, newLane } from './lane.js';
import { errorText, ignore, type RedisLink } from './link.js';
import type { NodeBreaker, NodeBreakers } from './node-breaker.js';
import { ANSWERED, FELL_BACK_ALLOWED, newPending, NOT_ADMITTED, type Pending, release, settledBy, WAITING, watch } from './pending.js';
import { headerStatus, headerTimeMs, isScriptReply, ReplyReader } from './reply.js';
import {
  callArgs,
  FLAG_TIME,
  OP_CONSUME,
  OP_REFUND,
  OP_RESERVE,
  OP_SETTLE,
  planFor,
  STATUS_DECIDED,
  STATUS_WRONG_PERIOD,
} from './scripts.js';
import { hashSlot, redisKeyOf } from './slot.js';

/**
 * Calls the store keeps in flight when a tick brings enough decisions: with one, Redis and Node
 * take turns (one runs the script while the other waits, then the other way round); with two,
 * Redis works on one call while Node reads the answer to the other and sends the next.
 */
const OVERLAP_CALLS = 2;
/** Fewest decisions in a call that a tick's batch is split into (below it, one call is cheaper). */
const MIN_SPLIT = 4;
/**
 * How often, at most, a call asks for the server's time with its answers (the clock offset
 * behind `staleAfterUs` and a calendar's period): the time costs every call that carries it
 * (Redis builds, and the client parses, one integer more), and clocks drift slowly. A call
 * after an error or a timeout asks again, and a stale or wrong-period answer always carries it.
 */
const TIME_CHECK_MS = 1000;

/** The store's settings the batcher follows (see `RedisStoreOptions`). */
export interface BatchSettings {
  readonly prefix: string;
  readonly timeoutMs: number;
  readonly maxBatch: number;
  readonly cluster: boolean;
  /** Counters written in the previous release's formats (see `RedisStoreOptions.legacyValues`). */
  readonly legacyValues: boolean;
  /** The store's own `onStoreError`; undefined: 'local' for rate limiters, 'fail-closed' for quotas. */
  readonly onStoreError: StoreErrorMode | undefined;
}

/** Internal: the lanes, batches and deadlines of one `RedisStore`. */
export class Batcher {
  private readonly lanes = new WeakMap<RateLimitAlgorithm, Lane>();
  private readonly deadlines = new DeadlineQueue(systemClock);
  /** Lanes with a batch being filled, flushed together at the end of the tick. */
  private filling: Lane[] = [];
  private flushScheduled = false;
  /**
   * Server clock minus wall clock, in ms, from the latest reply in time. Until one arrives the
   * clocks are assumed to agree; if the server runs ahead by more than timeoutMs, its first
   * answer is "stale" and the call is sent again with the measured offset.
   */
  private offsetMs = 0;
  /** Wall-clock ms from which the next call asks for the server's time (0: at once). */
  private timeDueMs = 0;
  /** On a Cluster: the breaker of each master (undefined on a single node). */
  private readonly nodes: NodeBreakers | undefined;
  private readonly onExpire = (batch: Batch): void => this.expired(batch);

  constructor(
    private readonly client: RedisClient,
    private readonly link: RedisLink,
    private readonly fallback: Fallback,
    private readonly denied: DenyCache | undefined,
    private readonly settings: BatchSettings,
  ) {
    this.nodes = link.nodes;
  }

  /** The lane for `algorithm` under `mode` (the store's own mode when undefined). */
  lane(algorithm: RateLimitAlgorithm, mode: StoreErrorMode | undefined): Lane {
    let lane = this.lanes.get(algorithm);
    if (lane === undefined) {
      const plan = planFor(algorithm, this.settings.legacyValues);
      lane = newLane(algorithm, plan, this.settings.onStoreError ?? (plan.calendar !== undefined ? 'fail-closed' : 'local'));
      this.lanes.set(algorithm, lane);
    }
    if (mode === undefined || mode === lane.mode) return lane;
    return lane.variants?.get(mode) ?? addVariant(lane, mode);
  }

  /** The decision for an operation that Redis (or, on a Cluster, the master `node`) cannot take now, following the lane's mode. */
  fallbackDecision(lane: Lane, key: string, cost: number, op: number, node?: NodeBreaker): LimiterDecision {
    return this.fallback.decide(lane.mode, lane.algorithm, lane.plan.decisionLimit, key, cost, op, node);
  }

  /**
   * Adds an operation to the lane's batch for its slot, sent at the end of the tick (or at once
   * when full). Resolves with the decision (undefined for a refund, 'settled' or 'expired' for a
   * settle), from Redis or the fallback; rejects a refund or settle Redis could not take, and an
   * operation whose `signal` aborted. `lease`: a reserve's or settle's lease arguments.
   */
  enqueue(
    lane: Lane,
    key: string,
    op: number,
    cost: number,
    signal: AbortSignal | undefined,
    internal = false,
    lease?: string,
  ): Promise<unknown> {
    const redisKey = redisKeyOf(this.settings.prefix, key);
    const keySlot = this.settings.cluster ? hashSlot(redisKey) : 0;
    // Internal refunds go in batches of their own (slots are below 16384).
    const slot = keySlot + (internal ? 16384 : 0);
    let batch = lane.open.get(slot);
    if (batch === undefined) {
      batch = newBatch(lane, [], internal, this.nodes?.forSlot(keySlot), this.onExpire);
      if (lane.open.size === 0) this.filling.push(lane);
      lane.open.set(slot, batch);
      if (!this.flushScheduled) {
        this.flushScheduled = true;
        // Nothing in flight: send at the end of this tick, for the lowest latency. Batches in
        // flight: Redis is busy anyway, so gather what the rest of this event-loop turn brings
        // (an HTTP server decides once per request callback, each its own tick) into one call.
        if (this.deadlines.countUpTo(1) === 0) process.nextTick(this.flush);
        else setImmediate(this.flush);
      }
    }
    const pending = newPending(key, redisKey, op, cost, lease);
    const promise = settledBy(pending);
    if (signal !== undefined) watch(pending, signal);
    batch.ops.push(pending);
    if (batch.ops.length >= this.settings.maxBatch) {
      lane.open.delete(slot);
      this.send(batch);
    }
    return promise;
  }

  /**
   * Deletes `redisKey` (a reset), under the same deadline as a batch; rejects with
   * `StoreUnavailableError` when Redis does not answer in time or fails.
   */
  delete(redisKey: string): Promise<void> {
    const timeoutMs = this.settings.timeoutMs;
    const node = this.nodes?.forSlot(hashSlot(redisKey));
    if (node !== undefined && !node.admits()) return Promise.reject(new StoreUnavailableError('redis', node.unavailableReason()));
    return new Promise<void>((resolve, reject) => {
      const seq = this.link.nextSeq();
      const entry: DeadlineEntry = {
        deadline: systemClock.now() + timeoutMs,
        queuePrev: undefined,
        queueNext: undefined,
        queued: false,
        expire: () => {
          this.link.failed(seq, true, node);
          reject(new StoreUnavailableError('redis', `no answer within ${timeoutMs} ms`));
        },
      };
      this.deadlines.push(entry);
      this.client.del!(redisKey).then(
        () => {
          if (!entry.queued) return;
          this.deadlines.remove(entry);
          this.link.succeeded(node);
          resolve();
        },
        (error: unknown) => {
          if (!entry.queued) return;
          this.deadlines.remove(entry);
          this.link.lostConnection();
          this.link.failed(seq, false, node);
          reject(new StoreUnavailableError('redis', errorText(error), { cause: error }));
        },
      );
    });
  }

  private readonly flush = (): void => {
    this.flushScheduled = false;
    this.link.closeProbe();
    const lanes = this.filling;
    this.filling = [];
    // Calls that may still be added to reach OVERLAP_CALLS in flight.
    let spare = OVERLAP_CALLS - this.deadlines.countUpTo(OVERLAP_CALLS);
    for (const lane of lanes) {
      for (const batch of lane.open.values()) spare -= this.sendSplit(batch, spare);
      lane.open.clear();
    }
    // A Cluster master's probe is the calls of the tick that started it.
    if (this.nodes !== undefined && this.nodes.probing.length > 0) this.nodes.closeProbes();
  };

  /**
   * Sends a tick's batch as up to `calls` calls of at least MIN_SPLIT decisions each, in order
   * (the first call takes the first decisions). Returns how many calls went.
   */
  private sendSplit(batch: Batch, calls: number): number {
    const ops = batch.ops;
    const n = ops.length;
    const parts = Math.min(calls, Math.floor(n / MIN_SPLIT));
    if (parts < 2 || (batch.node !== undefined && !batch.node.admits())) {
      this.send(batch);
      return 1;
    }
    const size = Math.ceil(n / parts);
    let sent = 0;
    for (let start = 0; start < n; start += size, sent++) {
      this.send(newBatch(batch.lane, ops.slice(start, start + size), batch.internal, batch.node, this.onExpire));
    }
    return sent;
  }

  private send(batch: Batch): void {
    const client = this.client;
    if (client.status !== 'ready') {
      this.link.lostConnection();
      this.finish(batch);
      this.settleWithoutRedis(batch, new StoreUnavailableError('redis', `client status is "${client.status}"`));
      if (batch.parent !== undefined) this.childSettled(batch.parent);
      return;
    }
    // On a Cluster, a master whose breaker is open: its batch follows onStoreError without Redis
    // (the store's own refunds still go, as they do while the link's breaker is open).
    const node = batch.node;
    if (node !== undefined && !batch.resent && !batch.internal && !node.admits()) {
      this.finish(batch);
      this.settleWithoutRedis(batch, new StoreUnavailableError('redis', node.unavailableReason()));
      return;
    }
    // A reconnect may happen while no decision is made (a quick restart): a new socket tells.
    // One comparison per call to Redis, not per decision.
    this.link.beforeSend();
    const timeoutMs = this.settings.timeoutMs;
    if (!batch.queued && !batch.resent) {
      batch.deadline = systemClock.now() + timeoutMs;
      this.deadlines.push(batch);
    }
    const lane = batch.lane;
    const plan = lane.plan;
    const now = Date.now();
    batch.sentAtMs = now;
    batch.sentSeq = this.link.nextSeq();
    if (plan.calendar !== undefined) {
      const serverNow = now + this.offsetMs;
      if (serverNow < lane.periodStart || serverNow >= lane.periodEnd) alignPeriod(lane, serverNow);
    }
    // The server drops the batch when it runs after our deadline (a replay after a reconnect).
    // The offset errs towards a later server time by up to one round trip, so a batch still in
    // time is never dropped.
    const staleAfterUs = batch.internal ? 0 : Math.ceil((now + this.offsetMs + timeoutMs) * 1000);
    const timed = now >= this.timeDueMs;
    if (timed) this.timeDueMs = now + TIME_CHECK_MS;
    batch.timed = timed;
    const args = callArgs(plan, batch.ops, lane.periodStart, lane.periodEnd, staleAfterUs, plan.flags | (timed ? FLAG_TIME : 0));
    let command = plan.command;
    for (const pending of batch.ops) {
      if (pending.lease !== undefined) {
        command = plan.leaseCommand;
        break;
      }
    }
    const call = client[command];
    let result: Promise<unknown>;
    try {
      result = call!.apply(client, args);
    } catch (error) {
      result = Promise.reject(error);
    }
    result.then(
      (reply) => this.answered(batch, reply),
      (error: unknown) => this.errored(batch, error),
    );
  }

  private answered(batch: Batch, reply: unknown): void {
    // A number: the script decided nothing, and says why and when. An array: the answers, after
    // the time when the call asked for it.
    const undecided = typeof reply === 'number' && Number.isSafeInteger(reply) && headerStatus(reply) !== STATUS_DECIDED;
    if (!undecided && !isScriptReply(reply, batch.ops.length, batch.timed)) {
      this.errored(batch, new TypeError(`unexpected reply from the ${batch.lane.plan.command} script: ${show(reply)}`));
      return;
    }
    // A late reply says little about the offset (it includes the wait) and nothing good about
    // Redis's health: only replies in time update either.
    const late = batch.done;
    // Even a late reply shows the connection carries bytes: its timeouts were not silent.
    this.link.replied();
    const header = undecided ? reply : batch.timed ? Number((reply as unknown[])[0]) : -1;
    const serverMs = headerTimeMs(header);
    if (header >= 0) {
      // The script reports whole ms: + 1 errs towards a later server time, as the wall clock's
      // whole ms at sending does (see send).
      if (!late) this.offsetMs = serverMs + 1 - batch.sentAtMs;
      else this.timeDueMs = 0;
    }
    const status = undecided ? headerStatus(reply) : STATUS_DECIDED;
    if (status !== STATUS_DECIDED) {
      // The period changed (calendar) or the server's clock is not where we thought (a replay,
      // or a failover to a server whose clock differs): nothing was changed. Try once more if
      // anyone still waits, now that the offset is fresh.
      if (late) return;
      if (status === STATUS_WRONG_PERIOD) alignPeriod(batch.lane, serverMs);
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
      this.link.succeeded(batch.node);
    }
    const limit = batch.lane.plan.decisionLimit;
    const answers = new ReplyReader(reply as readonly unknown[], batch.timed ? 1 : 0);
    let refunds: Pending[] | undefined;
    for (let i = 0; i < batch.ops.length; i++) {
      const pending = batch.ops[i]!;
      answers.next();
      if (pending.state === WAITING) {
        pending.state = ANSWERED;
        const resolve = pending.resolve!;
        release(pending);
        if (pending.op === OP_REFUND) {
          resolve(undefined);
          continue;
        }
        if (pending.op === OP_SETTLE) {
          resolve(answers.remaining === 1 ? 'settled' : 'expired');
          continue;
        }
        const decision = answers.decision(limit);
        if (!answers.allowed && pending.op === OP_CONSUME && this.denied !== undefined) this.denied.remember(pending.key, pending.cost, decision);
        resolve(decision);
      } else if (pending.state === NOT_ADMITTED && (pending.op === OP_CONSUME || pending.op === OP_RESERVE) && answers.allowed) {
        // Redis admitted a decision whose caller was told no (timed out, aborted, or denied by
        // the fallback): give the units back, so nothing is counted that did not happen.
        (refunds ??= []).push(pending);
      }
    }
    if (refunds !== undefined) {
      for (const pending of refunds) {
        if (pending.op === OP_RESERVE) {
          // A reservation: cancelled (a settle at 0), which also ends its lease.
          const [id, leaseMs] = pending.lease!.split(' ');
          this.enqueue(batch.lane, pending.key, OP_SETTLE, 0, undefined, true, `${id} ${pending.cost} ${leaseMs}`).catch(ignore);
        } else {
          this.enqueue(batch.lane, pending.key, OP_REFUND, pending.cost, undefined, true).catch(ignore);
        }
      }
    }
    if (batch.parent !== undefined) this.childSettled(batch.parent);
  }

  private errored(batch: Batch, error: unknown): void {
    if (batch.done) return;
    // During a slot migration, a call whose keys are split between the two nodes bounces between
    // them (ASK, then TRYAGAIN) until ioredis gives up; one key at a time, each call is simply
    // redirected instead.
    if (this.settings.cluster && batch.parent === undefined && /TRYAGAIN|Too many Cluster redirections/.test(errorText(error))) {
      if (this.splitPerKey(batch)) return;
    }
    this.finish(batch);
    // A connection error may hide a restart (or a failover to a server whose clock differs) the
    // store did not see happen: the next call asks for the time again.
    this.timeDueMs = 0;
    this.link.lostConnection();
    this.link.failed(batch.sentSeq, false, batch.node);
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
      this.send(childBatch(batch, ops));
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
      this.timeDueMs = 0;
      const timeoutMs = this.settings.timeoutMs;
      if (lateMs < Math.max(20, timeoutMs / 2)) {
        this.link.failed(batch.sentSeq, true, batch.node);
      } else {
        this.link.probeAbandoned(batch.node);
      }
      this.settleWithoutRedis(batch, new StoreUnavailableError('redis', `no answer within ${timeoutMs} ms`));
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
      release(pending);
      if (pending.op === OP_REFUND || pending.op === OP_SETTLE) {
        pending.state = NOT_ADMITTED;
        reject(error);
        continue;
      }
      const decision = this.fallbackDecision(lane, pending.key, pending.cost, pending.op === OP_RESERVE ? OP_CONSUME : pending.op, batch.node);
      pending.state = decision.allowed ? FELL_BACK_ALLOWED : NOT_ADMITTED;
      resolve(decision);
    }
    if (affected > 0) publishOperationsError(error, lane.mode, affected);
  }
}
