import type { Context } from './context.js';
import {
  type ContextualPolicy,
  invoke,
  isPolicy,
  type Policy,
  PolicyBase,
  type PolicyFunction,
  runSymbol,
} from './policy.js';
import { show } from './validate.js';

/** What a list of policies may return besides the function's own result (fallback values). */
export type PipelineResult<P extends readonly Policy<unknown>[]> = P[number] extends Policy<infer R> ? R : never;

/**
 * Policies run one inside the other; the first is the outermost. See {@link pipeline}.
 */
export class PipelinePolicy<R = never> extends PolicyBase<R> {
  readonly kind = 'pipeline';
  readonly name: string;
  /** The policies, outermost first. */
  readonly policies: readonly Policy<unknown>[];
  /** Per policy: whether it takes a context from us (precomputed off the hot path). */
  private readonly contextual: readonly boolean[];

  constructor(policies: readonly Policy<unknown>[], name: string) {
    super();
    this.policies = policies;
    this.contextual = policies.map((p) => runSymbol in p);
    this.name = name;
  }

  [runSymbol]<T>(fn: PolicyFunction<T>, context: Context): Promise<T | R> {
    return this.step(0, fn, context) as Promise<T | R>;
  }

  private step<T>(index: number, fn: PolicyFunction<T>, context: Context): Promise<unknown> {
    const policy = this.policies[index]!;
    const inner: PolicyFunction<unknown> =
      index === this.policies.length - 1 ? fn : (c) => this.step(index + 1, fn, c as Context);
    if (this.contextual[index]) return invoke(policy as ContextualPolicy<unknown>, inner, context);
    // A policy from elsewhere (another copy of bulwark, or hand-written): hand it the signal.
    const signal = context.abortable();
    return policy.execute(inner, signal === undefined ? undefined : { signal });
  }
}

/**
 * Composes policies into one; the first argument is the outermost. The function's context
 * flows through every layer (a retry's attempt number, a timeout's signal). Recommended order for
 * outbound calls: `pipeline(retry(...), circuitBreaker(...), timeout(...))`.
 * @example
 * const resilient = pipeline(retry({ maxAttempts: 3 }), circuitBreaker(), timeout(2_000));
 * const body = await resilient.execute(({ signal }) => fetch(url, { signal }).then((r) => r.text()));
 */
export function pipeline<const P extends readonly Policy<unknown>[]>(...policies: P): PipelinePolicy<PipelineResult<P>> {
  if (policies.length === 0) {
    throw new TypeError('pipeline: needs at least one policy, got none');
  }
  policies.forEach((p, i) => {
    if (!isPolicy(p)) throw new TypeError(`pipeline: argument ${i + 1} must be a policy, got ${show(p)}`);
  });
  return new PipelinePolicy<PipelineResult<P>>([...policies], 'pipeline');
}
