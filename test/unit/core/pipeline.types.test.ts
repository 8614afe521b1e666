// Type-level checks: tsc runs over test/, so a wrong type here fails the type-check; vitest only
// runs the (trivial) bodies.
import { describe, expectTypeOf, it } from 'vitest';
import {
  bulkhead,
  circuitBreaker,
  type ExecutionContext,
  fallback,
  hedge,
  pipeline,
  type PipelinePolicy,
  type Policy,
  type PolicyFunction,
  retry,
  timeout,
} from '../../../src/index.js';

describe('pipeline types', () => {
  it("execute's function receives an ExecutionContext with an AbortSignal and an attempt number", () => {
    const p = pipeline(retry(), timeout(1));
    expectTypeOf(p.execute).parameter(0).parameter(0).toEqualTypeOf<ExecutionContext>();
    void p.execute((ctx) => {
      expectTypeOf(ctx.signal).toEqualTypeOf<AbortSignal>();
      expectTypeOf(ctx.attempt).toEqualTypeOf<number>();
      return 1;
    }).catch(() => {});
  });

  it('a single policy also hands the function an ExecutionContext', () => {
    expectTypeOf(retry().execute).parameter(0).parameter(0).toEqualTypeOf<ExecutionContext>();
    expectTypeOf(hedge({ delayMs: 1 }).execute).parameter(0).parameter(0).toEqualTypeOf<ExecutionContext>();
  });

  it('a pipeline without a fallback resolves to exactly what the function returns', () => {
    const p = pipeline(retry(), circuitBreaker(), timeout(1));
    expectTypeOf<ReturnType<typeof p.execute<number>>>().toEqualTypeOf<Promise<number>>();
    expectTypeOf(p).toEqualTypeOf<PipelinePolicy<never>>();
    const call = () => p.execute(() => 1);
    expectTypeOf(call).returns.toEqualTypeOf<Promise<number>>();
  });

  it('an async function is unwrapped, not nested', () => {
    const p = pipeline(retry(), bulkhead());
    const call = () => p.execute(async () => 'text');
    expectTypeOf(call).returns.toEqualTypeOf<Promise<string>>();
  });

  it("a fallback value anywhere in the pipeline widens the result with the value's type", () => {
    const first = () => pipeline(fallback('x'), retry(), timeout(1)).execute(() => 1);
    const middle = () => pipeline(retry(), fallback('x'), timeout(1)).execute(() => 1);
    const last = () => pipeline(retry(), circuitBreaker(), fallback('x')).execute(() => 1);
    expectTypeOf(first).returns.toEqualTypeOf<Promise<number | string>>();
    expectTypeOf(middle).returns.toEqualTypeOf<Promise<number | string>>();
    expectTypeOf(last).returns.toEqualTypeOf<Promise<number | string>>();
  });

  it('a fallback function contributes what it returns, not the function type', () => {
    const sync = () => fallback(() => 0).execute(() => 'a');
    const async = () => fallback(async () => 0).execute(() => 'a');
    const inPipeline = () => pipeline(retry(), fallback(() => 0)).execute(() => 'a');
    const usesError = () => fallback((error: unknown) => String(error)).execute(() => 1);
    expectTypeOf(sync).returns.toEqualTypeOf<Promise<string | number>>();
    expectTypeOf(async).returns.toEqualTypeOf<Promise<string | number>>();
    expectTypeOf(inPipeline).returns.toEqualTypeOf<Promise<string | number>>();
    expectTypeOf(usesError).returns.toEqualTypeOf<Promise<number | string>>();
  });

  it('a fallback to undefined or null adds exactly that to the result', () => {
    const toUndefined = () => pipeline(retry(), fallback(undefined)).execute(() => 1);
    const toNull = () => pipeline(fallback(null), timeout(1)).execute(() => 1);
    expectTypeOf(toUndefined).returns.toEqualTypeOf<Promise<number | undefined>>();
    expectTypeOf(toNull).returns.toEqualTypeOf<Promise<number | null>>();
  });

  it('two fallbacks contribute both of their types', () => {
    const call = () => pipeline(fallback('x'), fallback(() => 0)).execute(() => true);
    expectTypeOf(call).returns.toEqualTypeOf<Promise<boolean | string | number>>();
  });

  it('a nested pipeline keeps its inner fallback type', () => {
    const inner = pipeline(retry(), fallback(() => 0));
    const call = () => pipeline(timeout(5), inner).execute(() => 'a');
    expectTypeOf(call).returns.toEqualTypeOf<Promise<string | number>>();
  });

  it('a hand-written policy object adds nothing to the result type', () => {
    const plain = {
      name: 'plain',
      execute<T>(fn: PolicyFunction<T>): Promise<T> {
        return Promise.resolve(fn({ signal: new AbortController().signal, attempt: 1 }));
      },
    };
    const call = () => pipeline(plain, retry()).execute(() => 1);
    expectTypeOf(call).returns.toEqualTypeOf<Promise<number>>();
  });

  it('every policy and every pipeline is a Policy', () => {
    expectTypeOf(pipeline(retry(), timeout(1))).toMatchTypeOf<Policy>();
    expectTypeOf(pipeline(fallback('x'))).toMatchTypeOf<Policy<string>>();
    expectTypeOf(hedge({ delayMs: 1 })).toMatchTypeOf<Policy>();
  });

  it('pipeline only accepts policies', () => {
    // @ts-expect-error a number is not a policy
    expectTypeOf(pipeline).toBeCallableWith(retry(), 5);
    // @ts-expect-error a bare function is not a policy
    expectTypeOf(pipeline).toBeCallableWith(() => 1);
  });
});
