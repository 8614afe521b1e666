// What a denial becomes when a caller turns it into an error: the one mapping from a decision
// to RateLimitedError, QuotaExceededError or RateLimitStoreUnavailableError, used by the
// `rateLimit` policy and by bulwark/fetch. The HTTP adapters answer with a response instead
// (429 or 503, http/rate-limit-rule.ts) and never build these errors.
import { QuotaExceededError, RateLimitedError, RateLimitStoreUnavailableError } from '../core/errors.js';
import type { LimiterDecision } from './store.js';

/** The parts of a decider (a rate limiter or a quota) the errors name. */
export interface DenyingDecider {
  readonly kind: string;
  readonly name: string;
}

/**
 * Whether a call or request goes on after `decision`: when it was allowed, and when `decider` is
 * in shadow mode, whose denials are published but never enforced. A decider without a `mode`
 * (a custom one) enforces.
 */
export function goesOn(decider: { readonly mode?: unknown }, decision: LimiterDecision): boolean {
  return decision.allowed || decider.mode === 'shadow';
}

/**
 * A used-up limit: `QuotaExceededError` when `decider` is a quota (its `retryAfterMs` is the
 * period's reset), `RateLimitedError` otherwise. Whatever store made `decision`.
 */
export function limitError(decider: DenyingDecider, decision: LimiterDecision): RateLimitedError | QuotaExceededError {
  return decider.kind === 'quota'
    ? new QuotaExceededError(decision.limit, decision.remaining, decision.resetMs)
    : new RateLimitedError(decision);
}

/**
 * The error for denied `decision`: `RateLimitStoreUnavailableError` when the store could not
 * decide and failed closed (an outage, not a used-up limit), else {@link limitError}.
 */
export function denialError(decider: DenyingDecider, decision: LimiterDecision): Error {
  if (decision.store === 'fail-closed') return new RateLimitStoreUnavailableError(decider.name, decision.retryAfterMs);
  return limitError(decider, decision);
}
