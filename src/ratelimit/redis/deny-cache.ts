// The deny cache (`denyCache: true`): a key that Redis denied is denied again here, with no round
// trip, until its `retryAfterMs` has passed — a client hammering a used-up key then costs Redis
// nothing. Only a denial is cached, never an admission (which would hand out units Redis did not
// count); a smaller cost than the one denied still asks Redis, as it may fit. Bounded like the
// local fallback store (`localMaxKeys`): at capacity the oldest entry makes room.
import type { LimiterDecision } from '../store.js';

interface DenyEntry {
  readonly untilMs: number;
  readonly resetAtMs: number;
  readonly cost: number;
  readonly limit: number;
}

/** Internal: the denials one `RedisStore` remembers, by store key. */
export class DenyCache {
  private readonly entries = new Map<string, DenyEntry>();

  constructor(private readonly maxKeys: number) {}

  /** A denial of `cost` units for `key` without asking Redis, or undefined to ask it. */
  check(key: string, cost: number): LimiterDecision | undefined {
    const entry = this.entries.get(key);
    if (entry === undefined) return undefined;
    const now = Date.now();
    if (now >= entry.untilMs) {
      this.entries.delete(key);
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

  /** Remembers Redis's denial of `cost` units for `key` (none when it gives no wait). */
  remember(key: string, cost: number, decision: LimiterDecision): void {
    if (decision.retryAfterMs <= 0) return;
    const entries = this.entries;
    if (!entries.has(key) && entries.size >= this.maxKeys) {
      const oldest = entries.keys().next();
      if (oldest.done !== true) entries.delete(oldest.value);
    }
    const now = Date.now();
    entries.set(key, { untilMs: now + decision.retryAfterMs, resetAtMs: now + decision.resetMs, cost, limit: decision.limit });
  }

  /** Forgets `key` (its state was reset). */
  delete(key: string): void {
    this.entries.delete(key);
  }
}
