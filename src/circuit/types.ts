// The circuit breaker's public types: its options, the state-change event and the snapshot that
// restores a breaker. The policy itself is in circuit-breaker.ts.
import type { Backoff } from '../backoff/backoff.js';
import type { AdmissionMode } from '../admission/types.js';
import type { Clock } from '../core/clock.js';
import type { CircuitState } from '../core/diagnostics.js';
import type { BreakerStrategy } from './strategies.js';
import type { BreakerStore } from './store.js';

/** The states of a circuit breaker (defined in core beside the channel messages, for telemetry). */
export type { CircuitState };

/** Why a breaker changed state. */
export type StateChangeReason =
  | 'failures' // the strategy's threshold was reached
  | 'half-open-due' // the open period ended
  | 'probe-failed' // a probe failed, or succeeded no faster than the strategy's slowCallMs
  | 'probe-abandoned' // a probe did not settle within probeTimeoutMs
  | 'probes-succeeded'
  | 'isolated'
  | 'released'
  | 'fleet-opened' // a shared store: the fleet's breaker opened (or re-opened) on other processes' outcomes
  | 'fleet-closed'; // a shared store: the fleet's probes succeeded

/** Payload of {@link CircuitBreakerPolicy.onStateChange} and of `bulwark:circuit:state`. */
export interface StateChangeEvent {
  readonly policy: string;
  readonly from: CircuitState;
  readonly to: CircuitState;
  readonly reason: StateChangeReason;
  /** The breaker's mode at the change: a `'shadow'` breaker opens and closes but rejects nothing. */
  readonly mode: AdmissionMode;
}

/**
 * A breaker's state as plain data, from `breaker.toJSON()`, to restore with `initialState`
 * (for example across a restart). Isolation is an operator override held by a disposable in one
 * process; a saved isolated breaker restores as open.
 */
export interface CircuitBreakerSnapshot {
  readonly state: CircuitState;
  /**
   * While open: milliseconds left before a probe is admitted, at `savedAt`. On restore, at most
   * 2^31 − 1 and cut to the restoring breaker's longest open period.
   */
  readonly openRemainingMs: number;
  /** How many times in a row the breaker has opened without closing (drives the backoff). */
  readonly opens: number;
  /** Wall-clock time of the snapshot (`Date.now()`). */
  readonly savedAt: number;
}

/** Options of {@link circuitBreaker}. */
export interface CircuitBreakerOptions {
  /** When to open. @default consecutive(5) */
  readonly breaker?: BreakerStrategy;
  /**
   * How long the breaker stays open before admitting probes, in ms, or a backoff so that
   * successive opens last longer. @default 10000
   */
  readonly halfOpenAfterMs?: number | Backoff;
  /**
   * Probes admitted in the half-open state; all must succeed to close (and, when the strategy has
   * `slowCallMs`, none be slow). @default 1
   */
  readonly halfOpenMaxCalls?: number;
  /** A probe unsettled after this long is given up and counts as a failure. @default 30000 */
  readonly probeTimeoutMs?: number;
  /** Which errors count as failures; others pass through uncounted. @default every error except an `AbortError` */
  readonly handle?: (error: unknown) => boolean;
  /**
   * Which returned values count as failures (an HTTP 503 `Response`, `{ ok: false }`), as Polly's
   * and resilience4j's result predicates do; the call still resolves with the value. One that
   * throws counts the value as a failure and is reported on `bulwark:callback:error`.
   * @default every value counts as a success
   */
  readonly handleResult?: (value: unknown) => boolean;
  /**
   * State to start from, as saved by `toJSON()`. An `openRemainingMs` above 2^31 − 1 ms is
   * refused (RangeError: no breaker saves that, the snapshot is corrupt); one longer than this
   * breaker's longest open period (`halfOpenAfterMs`, or its backoff's `maxMs`) is cut to it, since
   * a snapshot saved under an earlier, longer setting is legitimate and a restart must not fail
   * over it, while the breaker must never stay open longer than it is configured to. @default closed
   */
  readonly initialState?: CircuitBreakerSnapshot;
  /**
   * `'shadow'` rejects nothing: the state machine runs as in `'enforce'` and every call it would
   * have rejected runs, is published as a rejection with `mode: 'shadow'`, and its outcome is not
   * recorded (so the states, and the would-reject count, are those an enforcing breaker would
   * have had). Settable at run time through {@link CircuitBreakerPolicy.mode}. @default 'enforce'
   */
  readonly mode?: AdmissionMode;
  /**
   * Where the state lives: this process only, or shared by a fleet (`redisBreakerStore` from
   * `bulwark/redis`, which also keys the shared state by `name`). @default memoryBreakerStore()
   */
  readonly store?: BreakerStore;
  /** Name used in events and telemetry. @default 'circuit-breaker' */
  readonly name?: string;
  /** Time source (inject a ManualClock in tests). @default systemClock */
  readonly clock?: Clock;
}
