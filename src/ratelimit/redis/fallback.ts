// What a decision becomes when Redis cannot answer it — the client is not connected, the store
// is leaving Redis alone after failures (link.ts), or the call failed or ran out of time — and
// how that is reported. `onStoreError` decides per limiter: 'local' asks an in-memory store kept
// for these times (created on the first outage, bounded by `localMaxKeys`), 'fail-open' admits as
// an untouched key would, 'fail-closed' denies with a short `retryAfterMs` (when the store will
// try Redis again). Every operation answered this way is counted on the store-error channel.
import diagnosticsChannel from 'node:diagnostics_channel';
import { channelNames } from '../../core/diagnostics.js';
import type { RateLimitAlgorithm } from '../algorithm.js';
import { MemoryStore } from '../memory-store.js';
import type { LimiterDecision, StoreErrorMode } from '../store.js';
import type { RedisLink } from './link.js';
import type { NodeBreaker } from './node-breaker.js';
import { OP_CONSUME } from './scripts.js';
import type { StoreErrorMessage } from './types.js';

const storeErrorChannel = diagnosticsChannel.channel(channelNames.storeError);

/** Internal: the answers one `RedisStore` gives without Redis. */
export class Fallback {
  /** The in-memory store of `'local'`, once an outage needed it. */
  private local: MemoryStore | undefined;

  constructor(
    private readonly link: RedisLink,
    private readonly localMaxKeys: number,
  ) {}

  /**
   * The decision for operation `op` (`OP_CONSUME` or `OP_PEEK`) of `cost` units on `key` under
   * `mode`; `limit` is the limit Redis decisions of `algorithm` report; `node`: on a Cluster, the
   * master that could not take it.
   */
  decide(mode: StoreErrorMode, algorithm: RateLimitAlgorithm, limit: number, key: string, cost: number, op: number, node?: NodeBreaker): LimiterDecision {
    switch (mode) {
      case 'local': {
        const local = (this.local ??= new MemoryStore({ maxKeys: this.localMaxKeys }));
        const d = op === OP_CONSUME ? local.consume(key, algorithm, cost) : local.peek(key, algorithm, cost);
        return { ...d, store: 'local' };
      }
      case 'fail-open':
        return { ...algorithm.peek(undefined, Date.now(), cost), store: 'fail-open' };
      default: {
        const retryAfterMs = this.link.outageRetryAfterMs(node);
        return { allowed: false, limit, remaining: 0, resetMs: retryAfterMs, retryAfterMs, store: 'fail-closed' };
      }
    }
  }

  /** Gives `units` back to the local store too, so what it counted during an outage stays right. */
  refund(key: string, algorithm: RateLimitAlgorithm, units: number): void {
    this.local?.refund(key, algorithm, units);
  }

  /** Forgets `key` in the local store too. */
  reset(key: string): void {
    this.local?.reset(key);
  }
}

/**
 * Reports on `bulwark:ratelimit:store-error` that `operations` operations failed (`'none'`: a
 * refund or reset was rejected) or followed `fallback`.
 */
export function publishOperationsError(error: unknown, fallback: StoreErrorMode | 'none', operations: number): void {
  if (!storeErrorChannel.hasSubscribers) return;
  const message: StoreErrorMessage = { store: 'redis', kind: 'operations', error, fallback, operations };
  storeErrorChannel.publish(message);
}
