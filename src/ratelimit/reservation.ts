/*
 * Reserve-then-settle: take an estimate now, settle the real cost when it is known.
 *
 * A reservation is a consumption of the estimate plus a lease: a record, held by the store next
 * to the key's state, of the units still on loan and until when. Settling removes the lease and
 * moves the key by the difference (actual − estimate): units given back when the work cost less,
 * the excess charged when it cost more. A lease not settled within `leaseMs` (the holder crashed,
 * or forgot) is swept by the store: its units are given back, as if it had been cancelled. A
 * settle that finds its lease already swept charges the whole actual cost, so a unit is never
 * given back twice.
 *
 * Two rules keep the books honest in every algorithm:
 *   - units go back only into the window that lent them (fixed and sliding windows, quota
 *     periods): a window that has rolled over has already forgotten them, and giving them to
 *     the next one would admit more than its limit. GCRA has no windows: units always go back.
 *   - an excess is charged even past the limit (the work is done; its cost is owed): the key is
 *     in debt, and later callers wait until it is paid off. One charge is capped at the
 *     limiter's `maxCost` (one full bucket or window), so one bad estimate cannot lock a key for
 *     longer than a period.
 *
 * The state tuples are those of the algorithms (gcra.ts, fixed-window.ts, sliding-window.ts,
 * quota.ts); the Redis scripts do the same on the same layout.
 */
import type { AlgorithmState, CalendarAlgorithm, ConsumeOutcome, RateLimitAlgorithm } from './algorithm.js';
import type { GcraAlgorithm } from './algorithms/gcra.js';
import { windowStart } from './algorithms/shared.js';
import diagnosticsChannel from 'node:diagnostics_channel';
import { channelNames } from '../core/diagnostics.js';
import type { LimiterDecision } from './store.js';

const settleChannel = diagnosticsChannel.channel(channelNames.reservationSettle);

/** Message published on `bulwark:ratelimit:settle` when a reservation ends (no key: keys are user data). */
export interface SettleMessage {
  /** `'rate-limiter'` or `'quota'`. */
  readonly kind: 'rate-limiter' | 'quota';
  readonly policy: string;
  /** `'settled'`, `'cancelled'`, or `'expired'` when the lease had run out before the settle. */
  readonly status: 'settled' | 'cancelled' | 'expired';
  /** The units reserved. */
  readonly estimate: number;
  /** The units settled (0 for a cancel). */
  readonly actual: number;
}

/** The default of `leaseMs`: how long a reservation may stay unsettled before its units return. */
export const DEFAULT_LEASE_MS = 60_000;

/** What a store keeps to settle one reservation (opaque to callers). */
export interface StoreLease {
  /** Unique per store: names the lease in the store's table (and in Redis). */
  readonly id: string;
  /** Units on loan: the estimate. */
  readonly units: number;
  readonly leaseMs: number;
}

/** What a store answers to a reservation: the decision, and the lease when it admitted. */
export interface StoreReservation {
  readonly decision: LimiterDecision;
  /** Undefined when the reservation was denied (nothing is held). */
  readonly lease: StoreLease | undefined;
}

/**
 * How a settle went: `'settled'` — the lease was live, the key moved by actual − estimate;
 * `'expired'` — the lease had run out and its units had gone back, so the whole actual cost was
 * charged.
 */
export type SettleStatus = 'settled' | 'expired';

/** Where a reservation stands; see {@link Reservation.status}. */
export type ReservationStatus = 'pending' | 'settled' | 'cancelled' | 'expired' | 'denied';

/**
 * The start of the window holding `nowMs` for a windowed algorithm (a quota's period), or
 * undefined for GCRA, whose units can go back at any time.
 */
export function lendingWindow(algorithm: RateLimitAlgorithm, nowMs: number): number | undefined {
  switch (algorithm.kind) {
    case 'gcra':
      return undefined;
    case 'calendar':
      return (algorithm as CalendarAlgorithm).periodAt(Math.floor(nowMs)).start;
    default:
      return windowStart(Math.floor(nowMs), algorithm.windowMs);
  }
}

/**
 * Charges `cost` units to `state` at `nowMs` whatever the limit (a settle's excess); returns what
 * to store. Throws for an algorithm kind it does not know.
 */
export function forceCharge(
  algorithm: RateLimitAlgorithm,
  state: AlgorithmState | undefined,
  nowMs: number,
  cost: number,
): Omit<ConsumeOutcome, 'decision'> {
  const t = Math.floor(nowMs);
  switch (algorithm.kind) {
    case 'gcra': {
      const T = (algorithm as GcraAlgorithm).emissionIntervalUs;
      const now = Math.round(nowMs * 1000);
      const tat = state !== undefined && state.length === 1 && state[0]! > now ? state[0]! : now;
      const after = tat + cost * T;
      return { state: [after], ttlMs: Math.max(1, Math.ceil((after - now) / 1000)) };
    }
    case 'fixed-window': {
      const W = algorithm.windowMs;
      const s = windowStart(t, W);
      const kept = state !== undefined && state.length === 2 && state[0]! >= s;
      const start = kept ? state[0]! : s;
      return { state: [start, (kept ? state[1]! : 0) + cost], ttlMs: Math.max(1, start + W - t) };
    }
    case 'sliding-window': {
      const W = algorithm.windowMs;
      const s = windowStart(t, W);
      let start = s;
      let current = 0;
      let previous = 0;
      if (state !== undefined && state.length === 3) {
        if (state[0]! >= s) [start, current, previous] = state as [number, number, number];
        else if (state[0] === s - W) previous = state[1]!;
      }
      return { state: [start, current + cost, previous], ttlMs: Math.max(1, start + 2 * W - t) };
    }
    case 'calendar': {
      const period = (algorithm as CalendarAlgorithm).periodAt(t);
      const kept = state !== undefined && state.length === 2 && state[0]! >= period.start;
      const start = kept ? state[0]! : period.start;
      const end = kept && start !== period.start ? (algorithm as CalendarAlgorithm).periodAt(start).end : period.end;
      return { state: [start, (kept ? state[1]! : 0) + cost], ttlMs: Math.max(1, end - t) };
    }
    default:
      throw new TypeError(`reserve: no settlement for algorithm kind ${JSON.stringify((algorithm as { kind?: unknown }).kind)}`);
  }
}

/** Whether reservations work with `algorithm` (the built-in kinds). */
export function reservable(algorithm: RateLimitAlgorithm): boolean {
  const kind = algorithm.kind;
  return kind === 'gcra' || kind === 'fixed-window' || kind === 'sliding-window' || kind === 'calendar';
}

/**
 * A reservation made by `reserve`: the decision, and, when it admitted, the way to settle.
 * Settle or cancel once; later calls do nothing and resolve as the first did.
 * @example
 * const r = await limiter.reserve(tenant, { cost: 4_000 }); // the largest answer we may get
 * if (!r.decision.allowed) return tooMany(r.decision.retryAfterMs);
 * try {
 *   const answer = await llm.complete(prompt);
 *   await r.settle(answer.usage.totalTokens);
 * } finally {
 *   await r.cancel(); // does nothing after settle; gives the estimate back after a failure
 * }
 */
export class Reservation {
  /** The reservation's decision: `allowed` says whether the estimate was taken. */
  readonly decision: LimiterDecision;
  /** The estimate reserved. */
  readonly cost: number;
  private current: ReservationStatus;
  private done: Promise<ReservationStatus> | undefined;

  /** @internal Built by `RateLimiter.reserve`. */
  constructor(
    decision: LimiterDecision,
    cost: number,
    private readonly settleWith: ((actual: number) => SettleStatus | Promise<SettleStatus>) | undefined,
    private readonly checkActual: (actual: unknown) => number,
    /** Who made it, for the settle message. */
    private readonly owner: { readonly kind: 'rate-limiter' | 'quota'; readonly policy: string } = { kind: 'rate-limiter', policy: '' },
  ) {
    this.decision = decision;
    this.cost = cost;
    this.current = settleWith === undefined ? 'denied' : 'pending';
  }

  /** Whether the estimate was taken (the decision's `allowed`). */
  get allowed(): boolean {
    return this.decision.allowed;
  }

  /**
   * `'pending'` until settled; `'settled'` or `'cancelled'` after the first settle or cancel
   * that found its lease; `'expired'` when the lease had run out first (its units went back,
   * and a settle then charged the whole actual cost); `'denied'` when nothing was reserved.
   */
  get status(): ReservationStatus {
    return this.current;
  }

  /**
   * Settles at `actual` units (a whole number ≥ 0): gives back estimate − actual when the work
   * cost less, charges the excess (even past the limit) when it cost more. One store round trip.
   * Resolves with the status; a reservation already settled or cancelled is left as it is.
   */
  settle(actual: number): Promise<ReservationStatus> {
    let units: number;
    try {
      units = this.checkActual(actual);
    } catch (error) {
      return Promise.reject(error);
    }
    return this.finish(units, 'settled');
  }

  /** Gives the whole estimate back (a settle at 0); does nothing after a settle or cancel. */
  cancel(): Promise<ReservationStatus> {
    return this.finish(0, 'cancelled');
  }

  private finish(actual: number, status: 'settled' | 'cancelled'): Promise<ReservationStatus> {
    if (this.done !== undefined) return this.done;
    const settleWith = this.settleWith;
    if (settleWith === undefined) return (this.done = Promise.resolve(this.current));
    const after = (outcome: SettleStatus): ReservationStatus => {
      const current = (this.current = outcome === 'expired' ? 'expired' : status);
      if (settleChannel.hasSubscribers) {
        const message: SettleMessage = { kind: this.owner.kind, policy: this.owner.policy, status: current, estimate: this.cost, actual };
        settleChannel.publish(message);
      }
      return current;
    };
    let result: SettleStatus | Promise<SettleStatus>;
    try {
      result = settleWith(actual);
    } catch (error) {
      return Promise.reject(error); // nothing settled: a later call may try again
    }
    if (result instanceof Promise) {
      const pending = result.then(after, (error: unknown) => {
        this.done = undefined; // the store could not take it: a later call may try again
        throw error;
      });
      this.done = pending;
      return pending;
    }
    return (this.done = Promise.resolve(after(result)));
  }
}
