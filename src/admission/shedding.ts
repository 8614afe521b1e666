import type { PriorityLevel } from './priority.js';
import type { AdmissionRejectReason } from './types.js';

/** A second overload signal: null while all is well (see `LoadSignal` in controller.ts). */
interface Signal {
  check(): unknown;
}

/** Arrival rates are measured over windows this long, in ms. */
const WINDOW_MS = 100;
/** While the load signal reports pressure, the shed threshold moves this far (in classes) per window. */
const LOAD_STEP = 0.25;
/** Fairness applies once this share of the limit is in flight. */
const FAIRNESS_FROM = 0.9;
/** A tenant may hold its share of its class times this. */
const FAIRNESS_SLACK = 1.1;
const GOLDEN = 0.6180339887498949;

/**
 * The priority and fairness half of an admission decision, decided on arrival (nothing queues
 * behind work that will be shed):
 *
 * - Priority: a request of a lower class may not take the slots that higher classes are about to
 *   need. Their need is their arrival rate times the latency (Little's law) less what they hold,
 *   plus a margin. So under overload the lowest class gets what is left, in
 *   proportion. Its spread is covered by a margin of two standard deviations (Poisson), and when
 *   a request still finds no free slot, the classes below its own are refused for the next
 *   100 ms: a higher class is not turned away while a lower one is admitted.
 * - Load: while the load signal reports pressure, a threshold over fine-grained levels (class plus
 *   an evenly spread fraction) rises by a quarter class per 100 ms window, and falls as fast once
 *   the pressure is gone: the lowest class goes first, and part of a class before all of it.
 *   Critical requests are never shed by load.
 * - Fairness: once 90 % of the limit is in flight, a tenant may hold at most its share of its
 *   class's slots (those left by higher classes, split between the tenants in flight) + 10 %.
 */
export class Shedding {
  private readonly held = [0, 0, 0, 0];
  private readonly arrivals = [0, 0, 0, 0];
  private readonly rates = [0, 0, 0, 0];
  private windowStart = NaN;
  private now = 0;
  /** Until when each class's last refusal (no free slot) keeps the classes below it out. */
  private readonly refusedUntil = [-Infinity, -Infinity, -Infinity, -Infinity];
  private rttMs = NaN;
  private loadLevel = 0;
  private spread = 0;
  private readonly tenants: Map<string, number>[] | undefined;

  constructor(
    private readonly signal: Signal | undefined,
    fairness: boolean,
  ) {
    this.tenants = fairness ? [new Map(), new Map(), new Map(), new Map()] : undefined;
  }

  /** Counts an arrival, closing the rate window when it is over. */
  arrive(now: number, level: PriorityLevel): void {
    this.now = now;
    if (!(now - this.windowStart < WINDOW_MS)) this.roll(now);
    this.arrivals[level]!++;
  }

  private roll(now: number): void {
    const elapsed = now - this.windowStart;
    this.windowStart = now;
    if (elapsed > 0) {
      // A long gap since the last window is one long window: its rate is low, as it should be.
      for (let l = 0; l < 4; l++) {
        const rate = this.arrivals[l]! / elapsed;
        this.rates[l] = elapsed >= 4 * WINDOW_MS ? rate : this.rates[l]! + (rate - this.rates[l]!) * 0.5;
        this.arrivals[l] = 0;
      }
    }
    if (this.signal !== undefined) {
      this.loadLevel = this.signal.check() != null ? Math.min(3, this.loadLevel + LOAD_STEP) : Math.max(0, this.loadLevel - LOAD_STEP);
    }
  }

  /** Why a request should be turned away before it takes a free slot, or undefined. */
  judge(level: PriorityLevel, tenant: string | undefined, running: number, limit: number): AdmissionRejectReason | undefined {
    if (level < 3) {
      if (this.loadLevel > 0) {
        const u = (this.spread += GOLDEN) >= 1 ? (this.spread -= 1) : this.spread;
        if (level + u < this.loadLevel) return 'load';
      }
      for (let l = level + 1; l < 4; l++) if (this.now < this.refusedUntil[l]!) return 'priority';
      if (running < limit) {
        const reserve = this.reserve(level);
        if (reserve > 0 && running + 1 + reserve > limit) return 'priority';
      }
    }
    if (tenant !== undefined && this.tenants !== undefined && running + 1 > limit * FAIRNESS_FROM) {
      const inClass = this.tenants[level]!;
      const mine = inClass.get(tenant) ?? 0;
      const active = inClass.size + (mine === 0 ? 1 : 0);
      const slots = limit - this.heldAbove(level);
      if (mine + 1 > Math.max(1, (slots * FAIRNESS_SLACK) / active)) return 'fairness';
    }
    return undefined;
  }

  /** Slots to keep free for the classes above `level`. */
  private reserve(level: PriorityLevel): number {
    const rtt = this.rttMs;
    if (Number.isNaN(rtt)) return 0;
    let rate = 0;
    for (let l = level + 1; l < 4; l++) rate += this.rates[l]!;
    if (rate === 0) return 0;
    const need = rate * rtt;
    return Math.max(0, need - this.heldAbove(level)) + 3 * Math.sqrt(need);
  }

  /**
   * A request of `level` found no free slot: for the next window, classes below it are refused
   * (a higher class is not turned away while a lower one is admitted).
   */
  refused(level: PriorityLevel): void {
    if (level > 0) this.refusedUntil[level] = this.now + WINDOW_MS;
  }

  private heldAbove(level: PriorityLevel): number {
    let n = 0;
    for (let l = level + 1; l < 4; l++) n += this.held[l]!;
    return n;
  }

  /** A counted permit was admitted. */
  hold(level: PriorityLevel, tenant: string | undefined): void {
    this.held[level]!++;
    if (tenant !== undefined && this.tenants !== undefined) {
      const inClass = this.tenants[level]!;
      inClass.set(tenant, (inClass.get(tenant) ?? 0) + 1);
    }
  }

  /** A counted permit was released after `rttMs` (NaN when its outcome is ignored). */
  free(level: PriorityLevel, tenant: string | undefined, rttMs: number): void {
    this.held[level]!--;
    if (tenant !== undefined && this.tenants !== undefined) {
      const inClass = this.tenants[level]!;
      const n = inClass.get(tenant)! - 1;
      if (n === 0) inClass.delete(tenant);
      else inClass.set(tenant, n);
    }
    if (rttMs === rttMs) this.rttMs = this.rttMs === this.rttMs ? this.rttMs + (rttMs - this.rttMs) * 0.1 : rttMs;
  }

  /** How long a client turned away for `reason` should wait: about one permit's latency. */
  retryAfterMs(_reason: AdmissionRejectReason): number {
    const rtt = this.rttMs;
    return rtt === rtt ? Math.max(1, Math.ceil(rtt)) : 1;
  }
}
