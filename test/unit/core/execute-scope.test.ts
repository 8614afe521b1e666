// The execute scope: a hook a telemetry subscriber installs to run each traced policy execution
// inside a scope of its own (bulwark/otel makes the execution's span active with it).
import { AsyncLocalStorage } from 'node:async_hooks';
import diagnosticsChannel from 'node:diagnostics_channel';
import { afterEach, describe, expect, it } from 'vitest';
import { channelNames, type ExecuteMessage, pipeline, retry, timeout, constant } from '../../../src/index.js';
import { currentExecuteScope, type ExecuteScope, setExecuteScope } from '../../../src/core/diagnostics.js';
import { capture } from '../../support/helpers.js';

const noop = (): void => {};
const errorChannel = `tracing:${channelNames.execute}:error`;

afterEach(() => {
  setExecuteScope(undefined);
  diagnosticsChannel.unsubscribe(errorChannel, noop);
});

/** A scope that records each message it runs and otherwise just runs the execution. */
function recordingScope(seen: ExecuteMessage[]): ExecuteScope {
  return (message, run) => {
    seen.push({ ...message });
    return run();
  };
}

describe('setExecuteScope', () => {
  it('installs a scope, returns the one it replaced, and removes it given undefined', () => {
    const first: ExecuteScope = (_m, run) => run();
    const second: ExecuteScope = (_m, run) => run();
    expect(currentExecuteScope()).toBeUndefined();
    expect(setExecuteScope(first)).toBeUndefined();
    expect(setExecuteScope(second)).toBe(first);
    expect(currentExecuteScope()).toBe(second);
    expect(setExecuteScope(undefined)).toBe(second);
    expect(currentExecuteScope()).toBeUndefined();
  });

  it('keeps the scope on globalThis under a registered symbol, shared by every copy of bulwark', () => {
    const scope: ExecuteScope = (_m, run) => run();
    setExecuteScope(scope);
    expect((globalThis as Record<symbol, unknown>)[Symbol.for('bulwark.executeScope')]).toBe(scope);
    setExecuteScope(undefined);
    expect(Symbol.for('bulwark.executeScope') in globalThis).toBe(false);
  });
});

describe('the execute scope during execution', () => {
  it('is not consulted while bulwark:execute has no subscribers', async () => {
    const seen: ExecuteMessage[] = [];
    setExecuteScope(recordingScope(seen));
    await retry().execute(() => 'ok');
    expect(seen).toEqual([]);
  });

  it('runs every traced execution, each layer of a pipeline, with its kind and policy name', async () => {
    const seen: ExecuteMessage[] = [];
    setExecuteScope(recordingScope(seen));
    diagnosticsChannel.subscribe(errorChannel, noop);
    const policy = pipeline(retry({ name: 'payments', maxAttempts: 2, backoff: constant(0) }), timeout(1_000));
    let calls = 0;
    expect(await policy.execute(() => (++calls === 1 ? Promise.reject(new Error('again')) : 'ok'))).toBe('ok');
    expect(seen).toEqual([
      { kind: 'pipeline', policy: 'pipeline' },
      { kind: 'retry', policy: 'payments' },
      { kind: 'timeout', policy: 'timeout' },
      { kind: 'timeout', policy: 'timeout' },
    ]);
  });

  it('wraps the execution, so that the function runs inside the scope', async () => {
    const als = new AsyncLocalStorage<string>();
    setExecuteScope((message, run) => als.run(`${message.kind}:${als.getStore() ?? 'root'}`, run));
    diagnosticsChannel.subscribe(errorChannel, noop);
    const seen: (string | undefined)[] = [];
    await pipeline(retry({ maxAttempts: 1 }), timeout(1_000)).execute(() => seen.push(als.getStore()));
    expect(seen).toEqual(['timeout:retry:pipeline:root']);
    als.disable();
  });

  it('settles the execution as the scope settles: a value, or the same error', async () => {
    diagnosticsChannel.subscribe(errorChannel, noop);
    setExecuteScope(async (_m, run) => run());
    const failure = new Error('boom');
    expect(await retry({ maxAttempts: 1 }).execute(() => 42)).toBe(42);
    const outcome = await capture(retry({ maxAttempts: 1 }).execute(() => Promise.reject(failure)));
    expect(outcome).toEqual({ ok: false, error: failure });
  });

  it('stops being consulted once removed', async () => {
    const seen: ExecuteMessage[] = [];
    setExecuteScope(recordingScope(seen));
    diagnosticsChannel.subscribe(errorChannel, noop);
    setExecuteScope(undefined);
    await retry().execute(() => 'ok');
    expect(seen).toEqual([]);
  });
});
