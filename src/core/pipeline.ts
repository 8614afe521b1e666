import { ChainedRootContext, Context, type ExecutionContext, type RootContext } from './context.js';
import {
  type ContextualPolicy,
  type ExecuteOptions,
  type ExtraResult,
  invokeTraced,
  isPolicy,
  type Policy,
  PolicyBase,
  type PolicyFunction,
  rootContext,
  runSymbol,
  whileCallerWaits,
} from './policy.js';
import { executeChannel } from './diagnostics.js';
import { show } from './validate.js';

/** What a list of policies may return besides the function's own result (fallback values). */
export type PipelineResult<P extends readonly Policy<unknown>[]> = ExtraResult<P[number]>;

/**
 * Policies run one inside the other; the first is the outermost. See {@link pipeline}.
 */
export class PipelinePolicy<R = never> extends PolicyBase<R> {
  readonly kind = 'pipeline';
  readonly name: string;
  /** The policies, outermost first. */
  readonly policies: readonly Policy<unknown>[];
  /**
   * Per policy: its internal entry if it takes a context from us, else undefined; read once here.
   * Read per call, `policy[runSymbol]` would be a load that sees every layer's class, which V8
   * does by its generic lookup (~0.2k instructions a layer, issue 14 §3); calling the function
   * read here costs a plain indirect call.
   */
  private readonly runs: readonly (ContextualPolicy<unknown>[typeof runSymbol] | undefined)[];
  /** Every layer is ours (has an internal entry): untraced calls take the composed chain. */
  private readonly allOurs: boolean;
  /**
   * When every layer is ours: per inner layer, the function the layer outside it runs, made once
   * here. It enters its layer with the call's function, found on the call's root context (see
   * {@link execute}), so an untraced `execute()` makes no function per layer per call.
   */
  private readonly entries: readonly PolicyFunction<unknown>[];

  constructor(policies: readonly Policy<unknown>[], name: string) {
    super();
    this.policies = policies;
    this.runs = policies.map((p) => (runSymbol in p ? (p as ContextualPolicy<unknown>)[runSymbol] : undefined));
    this.allOurs = this.runs.every((run) => run !== undefined);
    this.entries = this.allOurs ? policies.map((_, index) => this.entryAt(index)) : [];
    this.name = name;
  }

  // PolicyBase's execute(), copied so that `this[runSymbol]` sees this class alone (see PolicyBase),
  // with one more path: untraced, every layer ours, the call is composed on its own root context.
  override execute<T>(fn: PolicyFunction<T>, options?: ExecuteOptions): Promise<T | R> {
    const context = rootContext(fn, options);
    if (context instanceof Promise) return context;
    if (executeChannel.hasSubscribers) return whileCallerWaits(context, invokeTraced(this, fn, context));
    if (!this.allOurs) return whileCallerWaits(context, this[runSymbol](fn, context));
    const last = this.runs.length - 1;
    if (last === 0) return whileCallerWaits(context, this.runs[0]!.call(this.policies[0], fn, context) as Promise<T | R>);
    // A root of this call's own that carries the function, which the innermost layer's entry
    // reads from there (issue 14 §3: no bound function per inner layer per call).
    const root = new ChainedRootContext(context.abortable(), fn);
    return whileCallerWaits(root, this.runs[0]!.call(this.policies[0], this.entries[1]!, root) as Promise<T | R>);
  }

  /** The function that enters layer `index` (≥ 1) of a composed call: see {@link entries}. */
  private entryAt(index: number): PolicyFunction<unknown> {
    const policy = this.policies[index];
    const run = this.runs[index]!;
    const last = index === this.policies.length - 1;
    return (context: ExecutionContext): Promise<unknown> => {
      // Our layers hand on a context derived from the one they were given, so it leads back to
      // this call's root; `chained` is set there before the outermost layer runs.
      const inner = last ? ((context as Context).chainRoot() as ChainedRootContext).chained as PolicyFunction<unknown> : this.entries[index + 1]!;
      return run.call(policy, inner, context as Context);
    };
  }

  [runSymbol]<T>(fn: PolicyFunction<T>, context: Context): Promise<T | R> {
    // Whether anyone traces is asked once per call, not once per layer.
    return this.step(0, fn, context, executeChannel.hasSubscribers) as Promise<T | R>;
  }

  /** What {@link step} binds for the layers inside: the context comes last, from the layer. */
  private stepInto(index: number, fn: PolicyFunction<unknown>, traced: boolean, context: Context): Promise<unknown> {
    return this.step(index, fn, context, traced);
  }

  private step<T>(index: number, fn: PolicyFunction<T>, context: Context, traced: boolean): Promise<unknown> {
    const policy = this.policies[index]!;
    // The layers inside, as the function this layer runs: a bound method rather than an arrow
    // function. Both are made per layer per call, but V8 enters each new closure through a lazy
    // compile stub on its first call (~50 instructions per layer per call, issue 14 §3); a bound
    // function calls the method's compiled code at once.
    const inner: PolicyFunction<unknown> =
      index === this.policies.length - 1 ? fn : (this.stepInto.bind(this, index + 1, fn, traced) as PolicyFunction<unknown>);
    const run = this.runs[index];
    if (run !== undefined) {
      return traced ? invokeTraced(policy as ContextualPolicy<unknown>, inner, context) : run.call(policy, inner, context);
    }
    // A policy from elsewhere (another copy of bulwark, or hand-written): hand it the signal, and
    // rebuild a context of ours from whatever it passes on (maybe nothing), so the layers inside
    // still get one with `abortable()`, a signal and the attempt number.
    // Its result is made a native promise and a synchronous throw a rejection, as for any function.
    const signal = context.abortable();
    const adopt = (given: unknown): unknown => inner(given instanceof Context ? given : new ForeignContext(context, given));
    try {
      return Promise.resolve(policy.execute(adopt, signal === undefined ? undefined : { signal }));
    } catch (error) {
      return Promise.reject(error);
    }
  }
}

/**
 * The context inside a policy that is not ours: the signal it passed on if it is an AbortSignal,
 * else ours. Its attempt number counts only above 1 (a retry of its own): we cannot hand it our
 * attempt, so a 1 from it says nothing and the attempt around it is kept.
 */
class ForeignContext extends Context {
  readonly attempt: number;

  constructor(
    private readonly outer: Context,
    private readonly given: unknown,
  ) {
    super();
    const attempt = (given as { attempt?: unknown } | null | undefined)?.attempt;
    this.attempt = typeof attempt === 'number' && Number.isInteger(attempt) && attempt > 1 ? attempt : outer.attempt;
  }

  get signal(): AbortSignal {
    return this.givenSignal() ?? this.outer.signal;
  }

  chainRoot(): RootContext | undefined {
    return this.outer.chainRoot();
  }

  abortable(): AbortSignal | undefined {
    return this.givenSignal() ?? this.outer.abortable();
  }

  private givenSignal(): AbortSignal | undefined {
    const signal = (this.given as { signal?: unknown } | null | undefined)?.signal;
    return signal instanceof AbortSignal ? signal : undefined;
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
