// inspect(): every listed policy as plain data. It reads what the policies keep anyway (state,
// limits, counts in flight) and, while a recording is held, the rates and events recorded from
// the diagnostics channels. Built from numbers and fixed words only: names are the policies'
// own `name` options; keys, addresses, tenants and errors are never read.
import type { AdmissionController } from '../admission/controller.js';
import type { BulkheadPolicy } from '../bulkhead/bulkhead.js';
import type { CircuitBreakerPolicy } from '../circuit/circuit-breaker.js';
import { registeredPolicies, type RegisteredPolicy } from '../core/registry.js';
import type { Health } from '../health/health.js';
import type { Quota } from '../ratelimit/quota/quota.js';
import type { RateLimiter } from '../ratelimit/rate-limiter.js';
import type { RetryPolicy } from '../retry/retry.js';
import type { LoadShedder } from '../shedding/load-shedder.js';
import { CALLS, DECISIONS, DENIALS, FAILURES, type PolicyEvent, RATE_WINDOW_MS, recordingSince, REJECTED, SLOW, slowThresholds, trackOf } from './recorder.js';

export type { PolicyEvent } from './recorder.js';

/** Rates over the last 10 s (or since recording began, if later); present only while recording. */
export interface PolicyRates {
  /** Per second. */
  readonly perSecond: number;
  /** Share of the counted calls or decisions, 0 to 1 (0 when there were none). */
  readonly [share: string]: number;
}

/** What every entry of {@link Introspection.policies} has. */
export interface PolicyViewBase {
  /** `'circuit-breaker'`, `'retry'`, `'bulkhead'`, `'admission-controller'`, `'rate-limiter'`, `'quota'`, `'load-shedder'` or `'health'`. */
  readonly kind: string;
  /** The policy's `name` option. */
  readonly name: string;
  /** Kind-specific state, numbers and fixed words only. */
  readonly state: Readonly<Record<string, unknown>>;
  /** Rates while a recording is held (see `recordPolicies`), else undefined. */
  readonly rates?: PolicyRates;
  /** The last 20 events while a recording is held (oldest first), else empty. */
  readonly events: readonly PolicyEvent[];
}

/**
 * What {@link inspect} returns.
 * @example
 * const { policies } = inspect();
 * for (const p of policies) console.log(p.kind, p.name, p.state);
 */
export interface Introspection {
  /** Wall-clock time of the reading, ms since the epoch. */
  readonly at: number;
  /** Since when rates and events are recorded (wall-clock ms), or undefined when nobody records. */
  readonly recordingSince?: number;
  readonly policies: readonly PolicyViewBase[];
}

const finite = (n: number): number | null => (Number.isFinite(n) ? n : null);

function readBreaker(b: CircuitBreakerPolicy): Record<string, unknown> {
  const snapshot = b.toJSON();
  if (Number.isFinite(b.slowCallMs)) slowThresholds.set(b.name, b.slowCallMs);
  return { state: snapshot.state, mode: b.mode, halfOpenInMs: snapshot.state === 'open' ? snapshot.openRemainingMs : null, opens: snapshot.opens, slowCallMs: finite(b.slowCallMs) };
}

function readRetry(r: RetryPolicy): Record<string, unknown> {
  const budget = r.budget;
  return {
    maxAttempts: r.maxAttempts,
    budget: budget === undefined ? null : { available: budget.available, ratio: budget.ratio, minRetriesPerSecond: budget.minRetriesPerSecond, windowMs: budget.windowMs },
  };
}

function readBulkhead(b: BulkheadPolicy): Record<string, unknown> {
  return { inFlight: b.active, queued: b.queued, limit: b.maxConcurrent, maxQueue: b.maxQueue, mode: b.mode };
}

function readAdmission(a: AdmissionController): Record<string, unknown> {
  const s = a.snapshot();
  return { inFlight: s.inFlight, queued: s.queued, limit: s.limit, maxQueue: a.maxQueue, mode: s.mode, adaptive: a.algorithm !== undefined };
}

function readLimiter(l: RateLimiter | Quota): Record<string, unknown> {
  const base = { mode: l.mode, maxCost: l.maxCost, onStoreError: l.onStoreError ?? null, store: trackOf(l.kind, l.name)?.store ?? null };
  return l.kind === 'quota' ? { ...base, limit: l.limit, period: l.period } : { ...base, algorithm: l.algorithm.kind };
}

function readShedder(s: LoadShedder): Record<string, unknown> {
  return { shedding: s.check(), mode: s.mode, sampleIntervalMs: s.sampleIntervalMs, signals: s.signals() };
}

function readHealth(h: Health): Record<string, unknown> {
  return { started: h.isStarted, shuttingDown: h.isShuttingDown, checks: h.lastResults() };
}

const readers: Readonly<Record<string, (policy: never) => Record<string, unknown>>> = {
  'circuit-breaker': readBreaker,
  retry: readRetry,
  bulkhead: readBulkhead,
  'admission-controller': readAdmission,
  'rate-limiter': readLimiter,
  quota: readLimiter,
  'load-shedder': readShedder,
  health: readHealth,
};

function ratesOf(kind: string, totals: Float64Array, elapsedMs: number): PolicyRates {
  const seconds = Math.max(1, Math.min(RATE_WINDOW_MS, elapsedMs)) / 1000;
  const share = (part: number, whole: number): number => (whole > 0 ? part / whole : 0);
  if (kind === 'rate-limiter' || kind === 'quota') {
    return { perSecond: totals[DECISIONS]! / seconds, denied: share(totals[DENIALS]!, totals[DECISIONS]!) };
  }
  const calls = totals[CALLS]!;
  return { perSecond: calls / seconds, failed: share(totals[FAILURES]!, calls), slow: share(totals[SLOW]!, calls), rejectedPerSecond: totals[REJECTED]! / seconds };
}

function view(policy: RegisteredPolicy, now: number, since: number | undefined): PolicyViewBase {
  const state = readers[policy.kind]!(policy as never);
  if (since === undefined) return { kind: policy.kind, name: policy.name, state, events: [] };
  const t = trackOf(policy.kind, policy.name);
  const totals = t === undefined ? new Float64Array(6) : (t.window.slotAt(now), t.window.totals);
  const rates = policy.kind === 'circuit-breaker' || policy.kind === 'rate-limiter' || policy.kind === 'quota' ? ratesOf(policy.kind, totals, now - since) : undefined;
  return { kind: policy.kind, name: policy.name, state, ...(rates === undefined ? {} : { rates }), events: t === undefined ? [] : [...t.events] };
}

/**
 * Lists every policy of the process that is still in use — circuit breakers, retry policies
 * (with their budgets), bulkheads, admission controllers (`adaptiveConcurrency` included), rate
 * limiters, quotas, load shedders and health checks — with its state as plain data. While a
 * recording is held ({@link recordPolicies}, or an open dashboard), each also has its rates and
 * its last 20 events. Never rate-limit keys, client addresses, tenants or error messages: only
 * numbers, fixed words and the policies' own names. Reading costs the policies nothing between
 * calls to it.
 * @example
 * const breakers = inspect().policies.filter((p) => p.kind === 'circuit-breaker');
 * console.log(breakers.map((b) => `${b.name}: ${String(b.state.state)}`));
 */
export function inspect(): Introspection {
  const now = Date.now();
  const since = recordingSince();
  const policies: PolicyViewBase[] = [];
  for (const policy of registeredPolicies()) {
    if (readers[policy.kind] !== undefined) policies.push(view(policy, now, since));
  }
  return since === undefined ? { at: now, policies } : { at: now, recordingSince: since, policies };
}
