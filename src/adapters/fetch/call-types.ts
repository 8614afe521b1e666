// The state and settings a fetcher shares with its calls: per origin (or endpoint) the breaker,
// throttle and asked-for pause (Target), and the options every call reads (Settings). call.ts
// re-exports both, so create-fetch.ts and propagate.ts import them from there.
import type { CircuitBreakerPolicy } from '../../circuit/circuit-breaker.js';
import type { AdaptiveThrottlePolicy } from '../../throttle/adaptive-throttle.js';
import type { Clock } from '../../core/clock.js';
import type { Policy } from '../../core/policy.js';
import type { Decider } from '../../ratelimit/rate-limit-policy.js';
import type { TimeoutPolicy } from '../../timeout/timeout.js';
import type { ServerBackoff } from './types.js';
import type { PropagateSettings } from './propagate.js';
import type { Pacer } from './pacing/pacer.js';

/** The per-origin (or per-endpoint) state: its breaker, and the pause its server asked for. */
export interface Target {
  readonly origin: string;
  readonly breaker: CircuitBreakerPolicy | undefined;
  /** Its adaptive throttle, with the `adaptiveThrottle` option. */
  readonly throttle: AdaptiveThrottlePolicy | undefined;
  /** Until when (policies' clock) the server asked every caller to stay away; -Infinity for never. */
  pausedUntil: number;
  /** With `propagate.priority`: until when it asked calls of each class (index = level) to stay away. */
  pausedByClass?: number[];
  /** Attempts running through its breaker now (per-origin targets only: endpoints stay). */
  active: number;
  /** Set when it was dropped with attempts still running: called once, when the last one settles. */
  whenIdle: (() => void) | undefined;
}

/** Internal: the settings every call reads. */
export interface Settings {
  readonly name: string;
  readonly fetch: typeof globalThis.fetch | undefined;
  /** The `faultInjection` option's policy, around each attempt's request. */
  readonly faults: Policy<Response> | undefined;
  readonly retryOn: ReadonlySet<number>;
  readonly attemptTimeout: TimeoutPolicy | undefined;
  /** The overall timeout, if any, and the clock it runs on. */
  readonly totalMs: number | undefined;
  readonly clock: Clock;
  /** The longest wait a retry makes (its `maxDelayMs`). */
  readonly maxDelayMs: number;
  readonly serverBackoff: ServerBackoff;
  /** Whether keyed requests may move to another endpoint after reaching one. */
  readonly failoverKeyed: boolean;
  readonly rateLimit:
    | { readonly limiter: Decider; readonly key: ((url: URL) => string) | undefined; readonly cost: number }
    | undefined;
  /** What is sent on from the caller's admission scope; undefined for nothing. */
  readonly propagate: PropagateSettings | undefined;
  /** The `pacing` option: the pacer, and the key function within an origin. */
  readonly pacing: { readonly pacer: Pacer; readonly key: ((url: URL, headers: Headers) => string) | undefined } | undefined;
}
