import type { Context, ExecutionContext } from '../core/context.js';
import { callFunction, PolicyBase, type PolicyFunction, runSymbol } from '../core/policy.js';
import { checkOptions, countOption, nameOption, show } from '../core/validate.js';
import type { AdmissionMode } from '../admission/types.js';
import { denialError, goesOn } from './denial.js';
import type { LimiterDecision } from './store.js';

/** Anything that decides by key and cost: a {@link RateLimiter} or a quota. */
export interface Decider {
  readonly kind: string;
  readonly name: string;
  /** The largest cost that can ever be admitted, when the decider knows it (bulwark's limiters and quotas do). */
  readonly maxCost?: number;
  /** `'shadow'`: its denials are published but let through (bulwark's limiters and quotas). @default 'enforce' */
  readonly mode?: AdmissionMode;
  consume(key: string, options?: { readonly cost?: number; readonly signal?: AbortSignal }): Promise<LimiterDecision>;
}

/** Options of {@link rateLimit}. */
export interface RateLimitPolicyOptions {
  /** The key to limit by, or a function of the call's context that returns it (or a promise of it). */
  readonly key: string | ((context: ExecutionContext) => string | PromiseLike<string>);
  /** Units each call takes, or a function of the context that returns them (or a promise of them). @default 1 */
  readonly cost?: number | ((context: ExecutionContext) => number | PromiseLike<number>);
  /** Name used in telemetry. @default the limiter's name */
  readonly name?: string;
}

const keys = ['key', 'cost', 'name'] as const;

/** Admits calls while the limiter allows them. Built by {@link rateLimit}. */
export class RateLimitPolicy extends PolicyBase {
  readonly kind = 'rate-limit';
  readonly name: string;
  private readonly limiter: Decider;
  private readonly key: RateLimitPolicyOptions['key'];
  private readonly cost: RateLimitPolicyOptions['cost'];

  constructor(limiter: Decider, options: RateLimitPolicyOptions) {
    super();
    if (typeof limiter !== 'object' || limiter === null || typeof limiter.consume !== 'function') {
      throw new TypeError(`rateLimit: the first argument must be a rate limiter or a quota, got ${show(limiter)}`);
    }
    if (options === undefined) throw new TypeError('rateLimit: options must be an object with "key", got undefined');
    const o = checkOptions('rateLimit', options, keys);
    if (typeof o.key !== 'string' && typeof o.key !== 'function') {
      throw new TypeError(`rateLimit: option "key" must be a string or a function returning one, got ${show(o.key)}`);
    }
    if (typeof o.cost !== 'function') countOption('rateLimit', 'cost', o.cost, 1, { max: Number.MAX_SAFE_INTEGER });
    this.limiter = limiter;
    this.key = o.key;
    this.cost = o.cost;
    this.name = nameOption('rateLimit', o.name, limiter.name);
  }

  [runSymbol]<T>(fn: PolicyFunction<T>, context: Context): Promise<T> {
    let key: string | PromiseLike<string>;
    let cost: number | PromiseLike<number> | undefined;
    try {
      key = typeof this.key === 'function' ? this.key(context) : this.key;
      cost = typeof this.cost === 'function' ? this.cost(context) : this.cost;
    } catch (error) {
      return Promise.reject(error);
    }
    // An async key or cost (a tenant looked up, a price computed): decided once both are known.
    // A synchronous pair costs no promise of its own.
    if (isThenable(key) || isThenable(cost)) {
      return Promise.all([key, cost]).then(([k, c]) => this.decide(fn, context, k, c));
    }
    return this.decide(fn, context, key, cost);
  }

  private decide<T>(fn: PolicyFunction<T>, context: Context, key: string, cost: number | undefined): Promise<T> {
    const signal = context.abortable();
    return this.limiter
      .consume(key, signal === undefined ? { cost } : { cost, signal })
      .then((decision) => (goesOn(this.limiter, decision) ? callFunction(fn, context) : Promise.reject(denialError(this.limiter, decision))));
  }
}

function isThenable(value: unknown): value is PromiseLike<unknown> {
  return typeof value === 'object' && value !== null && typeof (value as { then?: unknown }).then === 'function';
}

/**
 * Builds a policy for outbound calls that takes units from a limiter (or quota) before each call
 * and rejects with `RateLimitedError` (or `QuotaExceededError`) when denied, or with
 * `RateLimitStoreUnavailableError` when the store could not decide and its `onStoreError` is
 * `'fail-closed'`; a limiter in shadow mode (`mode: 'shadow'`) is never enforced: the call runs. Each error carries `retryAfterMs`, which a retry policy outside it honours as
 * its next delay.
 * @example
 * const partnerApi = rateLimiter({ name: 'partner', algorithm: gcra({ limit: 10, periodMs: 1_000 }) });
 * const policy = pipeline(retry({ maxAttempts: 3 }), rateLimit(partnerApi, { key: 'partner' }));
 * await policy.execute(() => callPartner());
 */
export function rateLimit(limiter: Decider, options: RateLimitPolicyOptions): RateLimitPolicy {
  return new RateLimitPolicy(limiter, options);
}
