import type { Clock } from '../core/clock.js';
import type { LimitAlgorithm } from './algorithms.js';
import type { Priority, PriorityLevel } from './priority.js';

/**
 * The contract of issue 15's admission core (DESIGN.md decision 10). The adaptive concurrency
 * limit, priority shedding, the bulkhead and the load shedder decide through one controller;
 * outbound policies and inbound middleware are two faces of it. Implemented in `controller.ts`.
 */

/** Enforce rejects; shadow admits everything and reports what it would have rejected. */
export type AdmissionMode = 'enforce' | 'shadow';

/** Why a request was (or, in shadow mode, would have been) turned away. */
export type AdmissionRejectReason =
  /** In flight at the limit and no queue room (or no queue). */
  | 'limit'
  /** Shed by its class: lower classes go first, in proportion to the overload. */
  | 'priority'
  /** Its tenant holds more than its fair share of its class. */
  | 'fairness'
  /** Waited `maxWaitMs` (or its own deadline) in the queue without a slot. */
  | 'queueTimeout'
  /** The load signal (event-loop delay, the load shedder) reports pressure. */
  | 'load'
  /** Its propagated deadline has already passed. */
  | 'deadline';

/** How a permit's work ended; `dropped` tells the limit the dependency is overloaded (timeout, 503). */
export type PermitOutcome = 'success' | 'dropped' | 'ignore';

/** What a request tells the controller about itself. */
export interface AdmissionRequest {
  /** 3 = critical … 0 = sheddable. @default 2 */
  readonly priority?: PriorityLevel;
  /** Fairness inside a class is per tenant. */
  readonly tenant?: string;
}

/** One admitted request: released exactly once, with its outcome (the latency is measured from admission). */
export interface Permit {
  /** Clock time at admission, in ms. */
  readonly startMs: number;
  /** In shadow mode, why this request would have been rejected; otherwise `undefined`. */
  readonly wouldReject: AdmissionRejectReason | undefined;
  /** Ends the permit; later calls do nothing. */
  release(outcome: PermitOutcome): void;
}

/** A rejection: why, and how long a client should wait before trying again. */
export interface AdmissionRejection {
  readonly reason: AdmissionRejectReason;
  readonly retryAfterMs: number;
}

/** Read-only view of a controller's state, for metrics, health and the dashboard. */
export interface AdmissionSnapshot {
  readonly name: string;
  readonly mode: AdmissionMode;
  readonly limit: number;
  readonly inFlight: number;
  readonly queued: number;
}

/**
 * A second signal of overload besides latency: anything with `check()` answering null while all
 * is well, such as a {@link LoadShedder} (event-loop delay, utilisation, heap).
 */
export interface LoadSignal {
  check(): unknown;
}

/** Options of {@link admissionController}. */
export interface AdmissionControllerOptions {
  /** Name used in events and telemetry. @default 'admission' */
  readonly name?: string;
  /** A fixed concurrency limit, or an algorithm that finds it. @default gradient2() */
  readonly limit?: number | LimitAlgorithm;
  /** Requests allowed to wait for a slot (highest class first); 0 decides every request on arrival. @default 0 */
  readonly maxQueue?: number;
  /** Longest a queued request waits for a slot, in ms. @default no bound */
  readonly maxWaitMs?: number;
  /**
   * The lowest class that may wait in the queue: classes below it are decided on arrival even
   * when the queue has room (`'critical'`: critical requests wait up to `maxWaitMs` for a slot
   * under a burst, the rest are turned away at once). @default 'sheddable' (every class)
   */
  readonly queueFrom?: Priority;
  /** `'shadow'` admits everything and reports what it would have rejected. @default 'enforce' */
  readonly mode?: AdmissionMode;
  /** A second overload signal (e.g. a load shedder): while it reports pressure, the lowest classes are shed. @default none */
  readonly loadSignal?: LoadSignal;
  /** Under pressure, no tenant holds more than its share of its class. @default true */
  readonly fairness?: boolean;
  /** Source of time (a `ManualClock` in tests). @default systemClock */
  readonly clock?: Clock;
}

/** Payload of {@link AdmissionController.onDecision} and of `bulwark:admission:rejected`: a request turned away, or in shadow mode one that would have been. */
export interface AdmissionDecisionEvent {
  readonly policy: string;
  /** `'shadow'` when the request was admitted anyway. */
  readonly mode: AdmissionMode;
  readonly reason: AdmissionRejectReason;
  /** The request's class, 3 = critical … 0 = sheddable. */
  readonly priority: PriorityLevel;
  readonly limit: number;
  readonly inFlight: number;
  readonly queued: number;
}

/** Payload of {@link AdmissionController.onLimitChange} and of `bulwark:admission:limit`. */
export interface AdmissionLimitEvent {
  readonly policy: string;
  readonly from: number;
  readonly to: number;
}
