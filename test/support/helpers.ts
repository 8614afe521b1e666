import diagnosticsChannel from 'node:diagnostics_channel';
import { getEventListeners } from 'node:events';
import { channelNames, type CallbackErrorMessage } from '../../src/core/index.js';
import { vi } from 'vitest';

/** Number of 'abort' listeners on a signal (to check that nothing is left behind). */
export function abortListeners(signal: AbortSignal): number {
  return getEventListeners(signal, 'abort').length;
}

/** A promise with its resolvers exposed. */
export function deferred<T = void>(): {
  promise: Promise<T>;
  resolve: (value: T) => void;
  reject: (error: unknown) => void;
} {
  let resolve!: (value: T) => void;
  let reject!: (error: unknown) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

/** Lets queued promise callbacks run. */
export async function flush(): Promise<void> {
  for (let i = 0; i < 10; i++) await Promise.resolve();
  await new Promise((resolve) => setImmediate(resolve));
}

/** A settled-state probe: resolves to 'pending' if `p` has not settled after a flush. */
export async function stateOf(p: Promise<unknown>): Promise<'pending' | 'fulfilled' | 'rejected'> {
  let state: 'pending' | 'fulfilled' | 'rejected' = 'pending';
  p.then(
    () => (state = 'fulfilled'),
    () => (state = 'rejected'),
  );
  await flush();
  return state;
}

/** How a captured call settled. */
export type Outcome<T = unknown> = { ok: true; value: T } | { ok: false; error: unknown };

/** Attaches handlers at once, so a rejection is never unhandled, and reports the outcome. */
export function capture<T>(p: Promise<T>): Promise<Outcome<T>> {
  return p.then(
    (value) => ({ ok: true, value }) as const,
    (error: unknown) => ({ ok: false, error }) as const,
  );
}

/** The error a captured call rejected with; throws if it fulfilled instead. */
export async function rejection(p: Promise<Outcome<unknown>>): Promise<unknown> {
  const outcome = await p;
  if (outcome.ok) throw new Error(`expected a rejection, got ${String(outcome.value)}`);
  return outcome.error;
}

/** 'pending' until the captured call settles, then whether it fulfilled or rejected. */
export async function status(p: Promise<Outcome<unknown>>): Promise<'pending' | 'fulfilled' | 'rejected'> {
  if ((await stateOf(p)) === 'pending') return 'pending';
  return (await p).ok ? 'fulfilled' : 'rejected';
}

/**
 * Replaces the global AbortController with a subclass that counts constructions. The caller
 * undoes it with `vi.unstubAllGlobals()` (an `afterEach` in the test file).
 */
export function countAbortControllers(): { readonly count: number } {
  const Original = globalThis.AbortController;
  const counter = { count: 0 };
  class Counting extends Original {
    constructor() {
      super();
      counter.count++;
    }
  }
  vi.stubGlobal('AbortController', Counting);
  return counter;
}

/**
 * Holds back what is deferred with queueMicrotask (such as an error rethrown outside a policy)
 * so the test can inspect it. The caller undoes it with `vi.restoreAllMocks()`.
 */
/**
 * Collects what is published on `bulwark:callback:error` until `stop()` (a user's function that
 * threw where no call could reject with it).
 */
export function captureCallbackErrors(): { readonly messages: CallbackErrorMessage[]; stop(): void } {
  const messages: CallbackErrorMessage[] = [];
  const onMessage = (message: unknown): void => {
    messages.push(message as CallbackErrorMessage);
  };
  diagnosticsChannel.subscribe(channelNames.callbackError, onMessage);
  return { messages, stop: () => diagnosticsChannel.unsubscribe(channelNames.callbackError, onMessage) };
}

