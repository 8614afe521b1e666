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
/** Tenants tracked per class at most (those beyond share the count of the others). */
const MAX_TENANTS = 10_000;
const GOLDEN = 0.6180339887498949;
/** The reserve's margin at rest, in standard deviations; each refusal of a higher class adds one (up to 10), and it returns by 0.5 % of itself per window (about 25 s from 10 to 3). */
const MARGIN = 3;
/** The share of its excess over MARGIN the margin keeps per window. */
const MARGIN_RETURN = 0.995;

/** A tenant of one class: its permits in flight, and when it last asked. */
interface Tenant {
  held: number;
  seenAt: number;
  /** Permits it was given recently (halved every window). */
  admitted: number;
}

/**
 * The priority and fairness half of an admission decision, decided on arrival (nothing queues
 * behind work that will be shed):
 *
 * - Priority: a request of a lower class may not take the slots that higher classes are about to
 *   need. Their need is their arrival rate times the latency (Little's law) less what they hold,
 *   plus a margin. So under overload the lowest class gets what is left, in
 *   proportion. Its spread is covered by a margin of three standard deviations (Poisson), and when
 *   a request still finds no free slot, the classes below its own are refused for the next
 *   100 ms and the margin widens by one (returning slowly): a higher class is not turned away
 *   while a lower one is admitted. The reserve is kept only under overload (within 100 ms of the
 *   limit being reached or a refusal, or while the higher classes' arrivals step up): at
 *   moderate load nothing is refused.
 * - Load: while the load signal reports pressure, a threshold over fine-grained levels (class plus
 *   an evenly spread fraction) rises by a quarter class per 100 ms window, and falls as fast once
 *   the pressure is gone: the lowest class goes first, and part of a class before all of it.
 *   Critical requests are never shed by load.
 * - Fairness: once 90 % of the limit is in flight, or within 100 ms of a request refused for want
 *   of a slot, a tenant may take at most its share of the permits its class was given recently
 *   (counts halved every 100 ms; split between the tenants active in the class) + 10 % + one.
 *   A tenant is active while it holds a permit and for 200 ms after it last asked; permits a
 *   tenant does not ask for go to the others. At most 10,000 tenants are tracked per class.
 */
export class Shedding {
  private readonly held = [0, 0, 0, 0];
  /** Permits given per class recently (halved every window). */
  private readonly admitted = [0, 0, 0, 0];
  private readonly arrivals = [0, 0, 0, 0];
  private readonly rates = [0, 0, 0, 0];
  private windowStart = NaN;
  /** Until when fairness applies whatever is in flight: a request was refused for want of a slot, or for fairness. */
  private overloadedUntil = -Infinity;
  private now = 0;
  /** Until when a refusal (no free slot) of a higher class keeps each class out. */
  private readonly heldBackUntil = [-Infinity, -Infinity, -Infinity, -Infinity];
  /** The arrival rate of the classes above each class, per ms (set when a window rolls). */
  private readonly rateAbove = [0, 0, 0, 0];
  private rttMs = NaN;
  private loadLevel = 0;
  /** The reserve's margin, in standard deviations: widened by each refusal of a higher class. */
  private margin = MARGIN;
  private spread = 0;
  /** Whether the last {@link reserve} followed a step in the higher classes' arrivals within the window. */
  private stepping = false;
  /**
   * Until when the reserve is kept: one window past the last arrival that found the limit reached
   * or was refused (by a slot, the reserve or a held-back class). See {@link reserveTaken}.
   */
  private reserveUntil = -Infinity;
  private readonly tenants: Map<string, Tenant>[] | undefined;

  constructor(
    private readonly signal: Signal | undefined,
    fairness: boolean,
  ) {
    this.tenants = fairness ? [new Map(), new Map(), new Map(), new Map()] : undefined;
  }

  /** Counts an arrival, closing the rate window when it is over. */
  /** Counts an arrival; `now` is NaN when the controller did not read the clock for it. */
  arrive(now: number, level: PriorityLevel): void {
    if (now === now) {
      this.now = now;
      if (!(now - this.windowStart < WINDOW_MS)) this.roll(now);
    }
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
        this.rateAbove[l] = 0;
        this.admitted[l] = this.admitted[l]! * 0.5;
      }
    }
    for (let l = 0; l < 3; l++) for (let above = l + 1; above < 4; above++) this.rateAbove[l] = this.rateAbove[l]! + this.rates[above]!;
    // Tenants that neither hold a permit nor asked in the last two windows no longer count.
    if (this.tenants !== undefined) {
      for (const inClass of this.tenants) {
        for (const [name, t] of inClass) {
          if (t.held === 0 && now - t.seenAt > 2 * WINDOW_MS) inClass.delete(name);
          else t.admitted *= 0.5;
        }
      }
    }
    if (this.margin > MARGIN) this.margin = Math.max(MARGIN, this.margin * MARGIN_RETURN);
    if (this.signal !== undefined) {
      this.loadLevel = this.signal.check() != null ? Math.min(3, this.loadLevel + LOAD_STEP) : Math.max(0, this.loadLevel - LOAD_STEP);
    }
  }

  /** Why a request should be turned away before it takes a free slot, or undefined. */
  judge(level: PriorityLevel, tenant: string | undefined, running: number, limit: number): AdmissionRejectReason | undefined {
    if (running >= limit) this.reserveUntil = this.now + WINDOW_MS;
    if (level < 3) {
      if (this.loadLevel > 0) {
        const u = (this.spread += GOLDEN) >= 1 ? (this.spread -= 1) : this.spread;
        if (level + u < this.loadLevel) return 'load';
      }
      if (this.now < this.heldBackUntil[level]!) {
        this.reserveUntil = this.now + WINDOW_MS;
        return 'priority';
      }
      if (running < limit && this.reserveTaken(level, running, limit)) return 'priority';
    }
    if (tenant !== undefined && this.tenants !== undefined && (running + 1 > limit * FAIRNESS_FROM || this.now < this.overloadedUntil)) {
      const t = this.tenant(level, tenant);
      const mine = t === undefined ? 0 : t.admitted;
      const active = this.tenants[level]!.size + (t === undefined ? 1 : 0);
      if (mine > 1 + (this.admitted[level]! * FAIRNESS_SLACK) / active) return 'fairness';
    }
    return undefined;
  }

  /**
   * The closed path: admits a request without a tenant, of `level`, below the limit (the caller
   * checks `running < limit`) when {@link judge} would admit it without changing any state (no
   * load shedding under way, which moves `spread`; the class not held back; the higher classes'
   * reserve left free), counting it as an untimed {@link arrive} and a {@link hold} would. False
   * changes nothing: the request then goes through the full decision.
   */
  admitCalm(level: PriorityLevel, running: number, limit: number): boolean {
    if (level < 3 && (this.loadLevel > 0 || this.now < this.heldBackUntil[level]! || this.reserveTaken(level, running, limit))) return false;
    this.arrivals[level]!++;
    this.held[level]!++;
    this.admitted[level]!++;
    return true;
  }

  /**
   * Whether admitting one more of `level` below the limit would take the higher classes' reserve.
   * The reserve is kept only under overload: within a window of an arrival that found the limit
   * reached or was refused, or while the higher classes' arrivals step up within the window.
   * Below that, the limit is not in use: an adaptive limit at moderate load is a ceiling (twice
   * what was in flight) that rises with the load a window later, and the dependency's own queue
   * swells now and then (at 0.8 C, 16 workers: twice their number in flight for a moment); a
   * reserve carved out of it would turn lower classes away with no higher class short of a slot.
   * A higher class that arrives then is never refused either: it may take a lower class's slot.
   */
  private reserveTaken(level: PriorityLevel, running: number, limit: number): boolean {
    const reserve = this.reserve(level);
    if (reserve <= 0 || running + 1 + reserve <= limit) return false;
    if (!this.stepping && !(this.now < this.reserveUntil)) return false;
    this.reserveUntil = this.now + WINDOW_MS;
    return true;
  }

  /** {@link free} of an untimed permit without a tenant. */
  freeUntimed(level: PriorityLevel): void {
    this.held[level]!--;
  }

  /** The tenant's entry, seen now (made unless the class already tracks `MAX_TENANTS`). */
  private tenant(level: PriorityLevel, name: string): Tenant | undefined {
    const inClass = this.tenants![level]!;
    let t = inClass.get(name);
    if (t === undefined) {
      if (inClass.size >= MAX_TENANTS) return undefined;
      t = { held: 0, seenAt: this.now, admitted: 0 };
      inClass.set(name, t);
    } else {
      t.seenAt = this.now;
    }
    return t;
  }

  /** Slots to keep free for the classes above `level`. */
  private reserve(level: PriorityLevel): number {
    let rate = this.rateAbove[level]!;
    // A step in the higher classes' arrivals counts before the window closes: once 25 ms of the
    // window have passed, its own rate replaces the smoothed one when it is more than twice as
    // high, beyond three standard deviations of noise (Poisson). A step to several times the rate
    // shows within about 30 ms; the noise of a steady rate practically never does (it would widen
    // the reserve and refuse lower classes under moderate load). Not from a rate of zero: at the
    // start, or when a class starts, the first window measures it.
    const elapsed = this.now - this.windowStart;
    this.stepping = false;
    if (elapsed >= WINDOW_MS / 4 && rate > 0) {
      let n = 0;
      for (let l = level + 1; l < 4; l++) n += this.arrivals[l]!;
      const expected = rate * elapsed;
      if (n > 2 * expected + 3 * Math.sqrt(expected) + 1) {
        rate = n / elapsed;
        this.stepping = true;
      }
    }
    const rtt = this.rttMs;
    if (rate === 0 || rtt !== rtt) return 0;
    const need = rate * rtt;
    return Math.max(0, need - this.heldAbove(level)) + this.margin * Math.sqrt(need);
  }

  /**
   * A request of `level` found no free slot: for the next window, classes below it are refused
   * (a higher class is not turned away while a lower one is admitted).
   */
  refused(level: PriorityLevel, now: number): void {
    this.now = now;
    this.overloadedUntil = now + WINDOW_MS;
    this.reserveUntil = now + WINDOW_MS;
    if (level === 0) return;
    for (let l = 0; l < level; l++) this.heldBackUntil[l] = now + WINDOW_MS;
    this.margin = Math.min(10, this.margin + 1);
  }

  /** Permits held by the classes below `level`. */
  heldBelow(level: PriorityLevel): number {
    let n = 0;
    for (let l = 0; l < level; l++) n += this.held[l]!;
    return n;
  }

  private heldAbove(level: PriorityLevel): number {
    let n = 0;
    for (let l = level + 1; l < 4; l++) n += this.held[l]!;
    return n;
  }

  /** A counted permit was admitted. */
  hold(level: PriorityLevel, tenant: string | undefined): void {
    this.held[level]!++;
    this.admitted[level]!++;
    if (tenant !== undefined && this.tenants !== undefined) {
      const t = this.tenant(level, tenant);
      if (t !== undefined) {
        t.held++;
        t.admitted++;
      }
    }
  }

  /** A counted permit was released after `rttMs` (NaN when its outcome is ignored). */
  free(level: PriorityLevel, tenant: string | undefined, rttMs: number): void {
    this.held[level]!--;
    if (tenant !== undefined && this.tenants !== undefined) {
      const t = this.tenants[level]!.get(tenant);
      if (t !== undefined && t.held > 0) t.held--;
    }
    if (rttMs === rttMs) this.rttMs = this.rttMs === this.rttMs ? this.rttMs + (rttMs - this.rttMs) * 0.1 : rttMs;
  }

  /** How long a client turned away for `reason` should wait: about one permit's latency. */
  retryAfterMs(_reason: AdmissionRejectReason): number {
    const rtt = this.rttMs;
    return rtt === rtt ? Math.max(1, Math.ceil(rtt)) : 1;
  }
}
