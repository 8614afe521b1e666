// Server-advised pacing: per origin (and key), the rate its server advertised (advice.ts), or one
// found by AIMD on 429s when it advertises none, and how long it asked everyone to stay away.
// Each attempt takes a slot of a GCRA at that rate (burst 1: evenly spaced, so the server's own
// burst absorbs timer jitter), waiting up to `maxWaitMs` for it, else failing fast with
// RateLimitedError. With a shared store (redis.ts) the slots and blocks are fleet-wide.
import type { Clock } from '../../../core/clock.js';
import { RateLimitedError } from '../../../core/errors.js';
import { sleep } from '../../../core/sleep.js';
import { paceHint, readAdvice } from './advice.js';

/**
 * Slots are spaced for this share of the advertised rate: a margin for clocks and timers that
 * differ between client and server (a slot a millisecond early can meet an empty bucket).
 */
export const ADVISED_SHARE = 0.98;
/** AIMD: the slowest rate a 429 can take it to, per second. */
export const MIN_RATE = 0.1;
/** AIMD: rate added per second of calls without a 429, per second. */
export const AIMD_INCREASE = 1;
/** AIMD: at most one decrease per this many ms (a burst of 429s from one overshoot halves once). */
export const DECREASE_EVERY_MS = 1_000;

/** What a shared store (Redis) does for the pacer; undefined from it means "decide locally". */
export interface SharedPaceStore {
  /**
   * Takes the next slot at `ratePerSec` (0: unpaced, only blocks apply) unless it is more than
   * `maxWaitMs` away: the wait in ms, or -(ms until a slot) when refused.
   */
  acquire(key: string, ratePerSec: number, maxWaitMs: number): Promise<{ wait: number; rate: number } | undefined>;
  /** Records an advertised rate (0: none) and a block of `blockMs` (0: none) for every process. */
  learn(key: string, ratePerSec: number, blockMs: number): void;
  /** Ms the key is still blocked for, fleet-wide. */
  blockedFor(key: string): Promise<number | undefined>;
}

/** A pacing decision, as published on `bulwark:fetch:pacing`. */
export interface PacingMessage {
  /** The fetch's name. */
  readonly policy: string;
  /** The origin, then a space and the key when a `key` function gave one (`https://api.example.com key-1`). */
  readonly key: string;
  /** `'waited'`: queued for a slot; `'rejected'`: a slot was beyond `maxWaitMs`; `'learned'`: a response changed the rate or set a block. */
  readonly decision: 'waited' | 'rejected' | 'learned';
  /** Queued ms (waited), ms until a slot (rejected), or the block asked for (learned; 0 for none). */
  readonly waitMs: number;
  /** The rate now paced at, per second (0: not paced). */
  readonly ratePerSec: number;
  /** Whether the shared store decided (false: this process alone). */
  readonly shared: boolean;
}

/** One key's state in this process. */
class KeyState {
  /** Advertised rate per second; undefined until a response advertises one. */
  advised: number | undefined;
  /** AIMD rate per second, with no advertised one; undefined until a 429. */
  aimd: number | undefined;
  /** Share of the advised rate this process takes when it paces alone (halved by a 429 meeting it). */
  share = 1;
  /** GCRA theoretical arrival time, clock ms. */
  tat = -Infinity;
  blockedUntil = -Infinity;
  lastDecrease = -Infinity;
  lastIncrease = -Infinity;
  /** Sends counted in the current second, and the rate of the one before, for AIMD's first decrease. */
  windowStart = -Infinity;
  sentInWindow = 0;
  sentLastWindow = 0;

  rate(): number {
    if (this.advised !== undefined) return this.advised * ADVISED_SHARE * this.share;
    return this.aimd ?? 0;
  }
}

export interface PacerSettings {
  readonly name: string;
  readonly maxWaitMs: number;
  readonly clock: Clock;
  readonly store: SharedPaceStore | undefined;
  /** Most keys kept; the oldest goes first. */
  readonly maxKeys: number;
  readonly publish: ((message: PacingMessage) => void) | undefined;
}

/** Internal: the pacing of one `createFetch`, for every origin and key it meets. */
export class Pacer {
  private readonly keys = new Map<string, KeyState>();

  constructor(private readonly settings: PacerSettings) {}

  private state(key: string): KeyState {
    let s = this.keys.get(key);
    if (s === undefined) {
      if (this.keys.size >= this.settings.maxKeys) this.keys.delete(this.keys.keys().next().value!);
      s = new KeyState();
      this.keys.set(key, s);
    }
    return s;
  }

  /** Resolves when the attempt may go; rejects with RateLimitedError when its slot is beyond `maxWaitMs`. */
  async acquire(key: string, signal: AbortSignal | undefined): Promise<void> {
    const s = this.state(key);
    const { clock, maxWaitMs, store } = this.settings;
    let wait: number;
    let rate = s.rate();
    let shared = false;
    const granted = store === undefined ? undefined : await store.acquire(key, rate, maxWaitMs);
    if (granted !== undefined) {
      shared = true;
      wait = granted.wait;
      rate = granted.rate;
      // A block this process learned a moment ago may not have reached Redis yet.
      const block = s.blockedUntil - clock.now();
      if (wait >= 0 && block > wait) wait = block > maxWaitMs ? -Math.ceil(block) : block;
    } else {
      wait = this.localSlot(s, rate, clock.now());
    }
    if (wait < 0) {
      this.publish(key, 'rejected', -wait, rate, shared);
      throw this.refusal(rate, -wait);
    }
    this.count(s, clock.now());
    if (wait <= 0) return;
    this.publish(key, 'waited', wait, rate, shared);
    await sleep(clock, wait, signal);
    // A block asked for while queued (here, or in another process) still holds.
    const left = Math.max(s.blockedUntil - clock.now(), (shared ? await store!.blockedFor(key) : undefined) ?? 0);
    if (left <= 0) return;
    if (left > maxWaitMs) {
      this.publish(key, 'rejected', left, rate, shared);
      throw this.refusal(rate, left);
    }
    await sleep(clock, left, signal);
  }

  /** GCRA with burst 1 at `rate`, after any block: the wait, or -(ms to a slot) when over `maxWaitMs`. */
  private localSlot(s: KeyState, rate: number, now: number): number {
    let start = Math.max(now, s.blockedUntil);
    if (rate > 0) start = Math.max(start, s.tat);
    const wait = start - now;
    if (wait > this.settings.maxWaitMs) return -Math.ceil(wait);
    if (rate > 0) s.tat = start + 1000 / rate;
    return wait;
  }

  private refusal(rate: number, retryAfterMs: number): RateLimitedError {
    const limit = Math.max(0, Math.floor(rate));
    return new RateLimitedError({ allowed: false, limit, remaining: 0, resetMs: Math.ceil(retryAfterMs), retryAfterMs: Math.ceil(retryAfterMs) });
  }

  private count(s: KeyState, now: number): void {
    if (now - s.windowStart >= 1000) {
      s.sentLastWindow = now - s.windowStart < 2000 ? s.sentInWindow : 0;
      s.windowStart = now;
      s.sentInWindow = 0;
    }
    s.sentInWindow++;
  }

  /** Learns from a response: the advertised rate and blocks, else AIMD on a 429. */
  learn(key: string, status: number, headers: Headers): void {
    const s = this.state(key);
    const { clock, store } = this.settings;
    const now = clock.now();
    const hint = paceHint(readAdvice(headers, Date.now()));
    const before = s.rate();
    if (hint.ratePerSec !== undefined && hint.ratePerSec > 0) s.advised = hint.ratePerSec;
    if (hint.blockMs > 0) s.blockedUntil = Math.max(s.blockedUntil, now + hint.blockMs);
    if (status === 429) {
      if (now - s.lastDecrease >= DECREASE_EVERY_MS) {
        s.lastDecrease = now;
        s.lastIncrease = now;
        if (s.advised !== undefined) {
          // Paced at the advertised rate and still refused: others share the quota. Alone, take
          // half as much; with a shared store the slots already count every process.
          if (store === undefined) s.share = Math.max(1 / 64, s.share / 2);
        } else {
          // The first decrease halves the rate calls were sent at: the last full second's, or
          // the current second's so far (at least 100 ms of it, so a few calls are not a huge rate).
          const inWindow = s.sentInWindow / Math.max(0.1, (now - s.windowStart) / 1000);
          const seen = Math.max(s.sentLastWindow, Number.isFinite(inWindow) ? inWindow : 0, 1);
          s.aimd = Math.max(MIN_RATE, (s.aimd ?? seen) / 2);
        }
      }
    } else if (status < 400 && (s.aimd !== undefined || s.share < 1)) {
      // Additive increase, by the seconds since the last change.
      const seconds = Math.min(1, (now - s.lastIncrease) / 1000);
      if (seconds > 0) {
        s.lastIncrease = now;
        if (s.advised !== undefined) s.share = Math.min(1, s.share + 0.05 * seconds);
        else if (s.aimd !== undefined) s.aimd += AIMD_INCREASE * seconds;
      }
    }
    if (store !== undefined && (hint.blockMs > 0 || hint.ratePerSec !== undefined)) store.learn(key, s.advised ?? 0, hint.blockMs);
    const after = s.rate();
    // Slots queued at the old rate are spaced again at the new one (calls already waiting keep their time).
    if (after > 0 && before > 0 && after !== before && s.tat > now) s.tat = now + ((s.tat - now) * before) / after;
    if (hint.blockMs > 0 || Math.abs(after - before) > 1e-9) this.publish(key, 'learned', hint.blockMs, after, store !== undefined);
  }

  private publish(key: string, decision: PacingMessage['decision'], waitMs: number, ratePerSec: number, shared: boolean): void {
    this.settings.publish?.({ policy: this.settings.name, key, decision, waitMs: Math.ceil(waitMs), ratePerSec, shared });
  }
}
