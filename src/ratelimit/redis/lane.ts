// The store's lanes and the batches that fill them: one lane per algorithm object and outage
// mode, holding the batch being filled for each slot and, for calendar quotas, the period the
// server's time is believed to be in. The batcher (batch.ts) creates, fills and sends them.
import type { DeadlineEntry } from '../../core/deadline-queue.js';
import { enumOption } from '../../core/validate.js';
import type { RateLimitAlgorithm } from '../algorithm.js';
import { type StoreErrorMode, storeErrorModes } from '../store.js';
import type { NodeBreaker } from './node-breaker.js';
import type { Pending } from './pending.js';
import type { ScriptPlan } from './scripts.js';

/** The decisions for one algorithm (and, on a Cluster, one slot) sent in one script call. */
export interface Batch extends DeadlineEntry {
  readonly lane: Lane;
  readonly ops: Pending[];
  /** Wall-clock ms when last sent, to estimate the server clock's offset from the reply. */
  sentAtMs: number;
  /** Whether the call, when last sent, asked for the server's time first in the reply. */
  timed: boolean;
  /** The link's number for the call when this batch was last sent (see `RedisLink.failed`). */
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
  /** On a Cluster: the breaker of the master serving the batch's slot; undefined on a single node. */
  readonly node: NodeBreaker | undefined;
}

/** A batch of `ops` for `lane`, not sent yet; `onExpire` runs when its deadline passes. */
export function newBatch(lane: Lane, ops: Pending[], internal: boolean, node: NodeBreaker | undefined, onExpire: (batch: Batch) => void): Batch {
  const batch: Batch = {
    lane,
    ops,
    sentAtMs: 0,
    timed: false,
    sentSeq: 0,
    resent: false,
    done: false,
    internal,
    parent: undefined,
    children: 0,
    node,
    deadline: 0,
    queuePrev: undefined,
    queueNext: undefined,
    queued: false,
    expire: () => onExpire(batch),
  };
  return batch;
}

/**
 * One of the per-key calls `parent` is split into: it keeps the parent's call number and
 * deadline, is neither queued for a deadline of its own nor sent a third time, and the parent
 * answers for it.
 */
export function childBatch(parent: Batch, ops: Pending[]): Batch {
  return {
    lane: parent.lane,
    ops,
    sentAtMs: 0,
    timed: false,
    sentSeq: parent.sentSeq,
    resent: true,
    done: false,
    internal: parent.internal,
    parent,
    children: 0,
    node: parent.node,
    deadline: parent.deadline,
    queuePrev: undefined,
    queueNext: undefined,
    queued: false,
    expire: noop,
  };
}

function noop(): void {}

/** Everything the store keeps for one algorithm object (and one outage mode). */
export interface Lane {
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

export function newLane(algorithm: RateLimitAlgorithm, plan: ScriptPlan, mode: StoreErrorMode): Lane {
  return { algorithm, plan, mode, variants: undefined, open: new Map(), periodStart: 0, periodEnd: 0 };
}

export function addVariant(lane: Lane, mode: StoreErrorMode): Lane {
  // Limiters check their option; this guards a direct call to the store.
  enumOption('redisStore.consume', 'onStoreError', mode, storeErrorModes, 'local');
  const variant = newLane(lane.algorithm, lane.plan, mode);
  (lane.variants ??= new Map()).set(mode, variant);
  return variant;
}

export function alignPeriod(lane: Lane, serverNowMs: number): void {
  const bounds = lane.plan.calendar!.periodAt(serverNowMs);
  lane.periodStart = bounds.start;
  lane.periodEnd = bounds.end;
}
