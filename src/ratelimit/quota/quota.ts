import type { AdmissionMode } from '../../admission/types.js';
import { checkOptions, countOption, show } from '../../core/validate.js';
import type { AlgorithmState, CalendarAlgorithm, ConsumeOutcome } from '../algorithm.js';
import { type Disposable, disposeSymbol } from '../../core/events.js';
import { registerPolicy } from '../../core/registry.js';
import { decideNow, decisionKind } from '../fast-path.js';
import { type ConsumeOptions, RateLimiter, type RateLimiterOptions, type ReserveOptions } from '../rate-limiter.js';
import type { Reservation } from '../reservation.js';
import type { LimiterDecision, RateLimitStore, StoreErrorMode } from '../store.js';
import {
  type PeriodBounds,
  periodBounds,
  type QuotaPeriod,
  validateQuotaPeriod,
  validateTimeZone,
  validateWeekStartsOn,
  type Weekday,
} from './calendar.js';

/** Options of {@link quota}. */
export interface QuotaOptions {
  /** Units each key may use per period. */
  readonly limit: number;
  /** The calendar period the limit applies to. */
  readonly period: QuotaPeriod;
  /** IANA time zone the periods follow (DST-aware). @default 'UTC' */
  readonly timeZone?: string;
  /** First day of a week, 0 = Sunday … 6 = Saturday. @default 1 (Monday) */
  readonly weekStartsOn?: Weekday;
  /** Where usage is kept; its clock must be wall-clock epoch ms. @default memoryStore() */
  readonly store?: RateLimitStore;
  /**
   * Names the quota in keys, events and telemetry. Quotas and limiters sharing a store must have
   * distinct names: a second one with a name in use on the same store throws. @default 'quota'
   */
  readonly name?: string;
  /**
   * What decisions do while the store cannot answer (a Redis outage): `'fail-closed'` denies
   * (with `store: 'fail-closed'` and a short `retryAfterMs`, never the period's reset),
   * `'fail-open'` admits, `'local'` counts in memory; overrides the store's own setting.
   * Ignored by the memory store. @default the store's `onStoreError` ('fail-closed' for quotas on the Redis store)
   */
  readonly onStoreError?: StoreErrorMode;
  /**
   * `'shadow'` rejects nothing: usage is counted exactly as in `'enforce'` (a denial takes no
   * units), but `rateLimit(quota, ...)`, bulwark/fetch and the HTTP adapters let a denied call or
   * request go on. Settable at run time through {@link Quota.mode}. @default 'enforce'
   */
  readonly mode?: AdmissionMode;
}

const keys = ['limit', 'period', 'timeZone', 'weekStartsOn', 'store', 'name', 'onStoreError', 'mode'] as const;

const nominalMs: Record<QuotaPeriod, number> = {
  hour: 3_600_000,
  day: 86_400_000,
  week: 604_800_000,
  month: 2_592_000_000,
};

/**
 * A calendar quota as an algorithm over epoch time: state [periodStart, used]. A usage recorded
 * in a later period than `now` (the clock stepped back) is kept as it is, so a clock step can
 * never hand out a period's units twice.
 */
function calendarAlgorithm(limit: number, period: QuotaPeriod, timeZone: string, weekStartsOn: Weekday): CalendarAlgorithm {
  let cached: PeriodBounds | undefined;
  const boundsAt = (now: number): PeriodBounds => {
    if (cached === undefined || now < cached.start || now >= cached.end) {
      cached = periodBounds(period, timeZone, now, { weekStartsOn });
    }
    return cached;
  };
  // The period in force and what has been used in it.
  const current = (state: AlgorithmState | undefined, now: number): { start: number; end: number; used: number } => {
    const b = boundsAt(now);
    if (state === undefined || state[0]! < b.start) return { start: b.start, end: b.end, used: 0 };
    if (state[0] === b.start) return { start: b.start, end: b.end, used: state[1]! };
    // Stored period lies ahead of now: keep it, and its end, rather than start afresh.
    const ahead = periodBounds(period, timeZone, state[0]!, { weekStartsOn });
    return { start: ahead.start, end: ahead.end, used: state[1]! };
  };
  const checkCost = (cost: number): void => {
    if (cost > limit) {
      throw new RangeError(`quota: "cost" must not exceed the limit (${limit}) or it could never be admitted, got ${show(cost)}`);
    }
  };
  const decide = (state: AlgorithmState | undefined, nowMs: number, cost: number): ConsumeOutcome => {
    checkCost(cost);
    // Whole ms, as the windows count (and as the Lua script reads the server clock).
    const now = Math.floor(nowMs);
    const c = current(state, now);
    const resetMs = Math.max(0, c.end - now);
    const allowed = c.used + cost <= limit;
    const used = allowed ? c.used + cost : c.used;
    return {
      decision: { allowed, limit, remaining: Math.max(0, limit - used), resetMs, retryAfterMs: allowed ? 0 : resetMs },
      state: allowed ? [c.start, used] : state,
      ttlMs: Math.max(1, resetMs),
    };
  };
  return {
    kind: 'calendar',
    limit,
    windowMs: nominalMs[period],
    periodAt: boundsAt,
    consume: decide,
    peek: (state, now, cost) => decide(state, now, cost).decision,
    refund(state, nowMs, cost) {
      const now = Math.floor(nowMs);
      const c = current(state, now);
      return { state: [c.start, Math.max(0, c.used - cost)], ttlMs: Math.max(1, c.end - now) };
    },
  };
}

/**
 * Usage of weighted units per key over calendar periods (hour, day, week or month) in a time
 * zone: "10,000 API units per tenant per month, Europe/Berlin". `consume` answers with a decision
 * (never throws on a denial); `rateLimit(quota, { key })` turns a denial into
 * `QuotaExceededError`. Built by {@link quota}.
 */
export class Quota implements Disposable {
  readonly kind = 'quota';
  readonly name: string;
  readonly limit: number;
  readonly period: QuotaPeriod;
  readonly timeZone: string;
  /** The largest cost a single call can ever be admitted with: the quota's limit. */
  readonly maxCost: number;
  /** This quota's own `onStoreError`; undefined: the store's. */
  readonly onStoreError: StoreErrorMode | undefined;
  private readonly limiter: RateLimiter;

  constructor(options: QuotaOptions) {
    if (options === undefined) throw new TypeError('quota: options must be an object with "limit" and "period", got undefined');
    const o = checkOptions('quota', options, keys);
    if (o.limit === undefined) throw new TypeError('quota: option "limit" must be a number, got undefined');
    this.limit = countOption('quota', 'limit', o.limit, 1, { max: Number.MAX_SAFE_INTEGER });
    this.period = validateQuotaPeriod('quota', 'period', o.period);
    this.timeZone = validateTimeZone('quota', 'timeZone', o.timeZone === undefined ? 'UTC' : o.timeZone);
    const weekStartsOn = validateWeekStartsOn('quota', 'weekStartsOn', o.weekStartsOn);
    this.maxCost = this.limit;
    // The inner limiter checks store, name and onStoreError (naming "quota" in its errors) and
    // takes the name on the store.
    const inner = {
      algorithm: calendarAlgorithm(this.limit, this.period, this.timeZone, weekStartsOn),
      store: o.store,
      name: o.name,
      onStoreError: o.onStoreError,
      mode: o.mode,
      [decisionKind]: 'quota',
    };
    this.limiter = new RateLimiter(inner as RateLimiterOptions);
    this.name = this.limiter.name;
    this.onStoreError = this.limiter.onStoreError;
    registerPolicy(this);
  }

  /**
   * `'enforce'` or `'shadow'` (see the `mode` option); assigning switches at once and keeps all
   * usage. Anything else throws a TypeError.
   */
  get mode(): AdmissionMode {
    return this.limiter.mode;
  }

  set mode(value: AdmissionMode) {
    this.limiter.mode = value;
  }

  /**
   * Takes `cost` units from `key`'s allowance for the current period, if they are left.
   * `options` is `{ cost, signal }` or just the cost; anything else rejects with a `TypeError`.
   */
  consume(key: string, options?: number | ConsumeOptions): Promise<LimiterDecision> {
    return this.limiter.consume(key, options);
  }

  /** Internal: a fast-path hook (see fast-path.ts). */
  [decideNow](key: string, options?: number | ConsumeOptions): LimiterDecision | Promise<LimiterDecision> {
    return this.limiter[decideNow](key, options);
  }

  /** The decision `consume` would give now, taking nothing. */
  peek(key: string, options?: number | Pick<ConsumeOptions, 'cost'>): Promise<LimiterDecision> {
    return this.limiter.peek(key, options);
  }

  /**
   * Reserves an estimate from `key`'s allowance for the current period; settle the actual cost
   * on the {@link Reservation} (see {@link RateLimiter.reserve}). Units given back go to the
   * period that lent them only: once it has ended, they are not carried into the next one.
   */
  reserve(key: string, options?: number | ReserveOptions): Promise<Reservation> {
    return this.limiter.reserve(key, options);
  }

  /**
   * Gives back units to the current period (for work that was admitted but not done): a number,
   * or `{ cost }` as `consume` takes it; 1 when left out.
   */
  refund(key: string, options?: number | Pick<ConsumeOptions, 'cost'>): Promise<void> {
    return this.limiter.refund(key, options);
  }

  /** Forgets `key`'s usage. */
  reset(key: string): Promise<void> {
    return this.limiter.reset(key);
  }

  /**
   * Frees this quota's name on its store (see {@link RateLimiter.dispose}); every call after
   * this throws. Idempotent.
   * @example
   * monthly.dispose();
   */
  dispose(): void {
    this.limiter.dispose();
  }

  /** Same as {@link Quota.dispose}, for `using`. */
  [disposeSymbol](): void {
    this.dispose();
  }

  /** @deprecated use {@link Quota.dispose} (the one verb of every bulwark handle that stops something). */
  close(): void {
    this.dispose();
  }
}

/**
 * Creates a calendar quota.
 * @example
 * const monthly = quota({ limit: 10_000, period: 'month', timeZone: 'Europe/Berlin' });
 * const d = await monthly.consume(tenantId, { cost: 25 });
 * if (!d.allowed) console.log(`quota used up; resets in ${Math.round(d.resetMs / 3_600_000)} h`);
 */
export function quota(options: QuotaOptions): Quota {
  return new Quota(options);
}
