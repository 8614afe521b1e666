// Shared by the interop tests: the real opossum and bottleneck packages, and a way to listen on a
// diagnostics channel for the length of a test.
import diagnosticsChannel from 'node:diagnostics_channel';
import type { EventEmitter } from 'node:events';
import { createRequire } from 'node:module';
import Bottleneck from 'bottleneck';

/** The parts of opossum's CircuitBreaker the tests touch (the project has no @types/opossum). */
export interface TestBreaker extends EventEmitter {
  fire(...args: unknown[]): Promise<unknown>;
  shutdown(): void;
  open(): void;
  close(): void;
  fallback(fn: (...args: unknown[]) => unknown): TestBreaker;
  healthCheck(fn: () => Promise<unknown>, intervalMs?: number): void;
  readonly opened: boolean;
  readonly halfOpen: boolean;
  readonly closed: boolean;
  readonly isShutdown: boolean;
  readonly name: string;
}

/** opossum's options used by the tests. */
export interface TestBreakerOptions {
  timeout?: number | false;
  resetTimeout?: number;
  errorThresholdPercentage?: number;
  volumeThreshold?: number;
  capacity?: number;
  name?: string;
  cache?: boolean;
  coalesce?: boolean;
  errorFilter?: (error: unknown, ...args: unknown[]) => boolean;
}

const require = createRequire(import.meta.url);
const CircuitBreakerClass = require('opossum') as new (action: unknown, options?: TestBreakerOptions) => TestBreaker;

const breakers: TestBreaker[] = [];
const limiters: Bottleneck[] = [];

/** A real opossum breaker, shut down by {@link shutDownEngines}. */
export function newBreaker(action: unknown, options?: TestBreakerOptions): TestBreaker {
  const breaker = new CircuitBreakerClass(action, options);
  breakers.push(breaker);
  return breaker;
}

/** A real Bottleneck limiter, stopped by {@link shutDownEngines}. */
export function newLimiter(options?: Bottleneck.ConstructorOptions): Bottleneck {
  const limiter = new Bottleneck(options);
  limiters.push(limiter);
  return limiter;
}

/**
 * Shuts down every breaker and stops every limiter made since the last call (an `afterEach` in
 * each file), so no engine timer outlives its test.
 */
export async function shutDownEngines(): Promise<void> {
  for (const breaker of breakers.splice(0)) if (!breaker.isShutdown) breaker.shutdown();
  // stop() waits for running jobs; a test that failed may have left one that never ends.
  const stops = limiters.splice(0).map((limiter) => limiter.stop({ dropWaitingJobs: true }).catch(() => {}));
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([Promise.all(stops), new Promise((resolve) => (timer = setTimeout(resolve, 200)))]);
  clearTimeout(timer);
  // The limiters' own store round-trips are 0 ms timers: let the last ones run out.
  await new Promise((resolve) => setTimeout(resolve, 5));
}

/** Subscribes to `name` until {@link unlistenAll}; returns the messages as they arrive. */
const subscriptions: [string, (message: unknown) => void][] = [];
export function listen(name: string): unknown[] {
  const messages: unknown[] = [];
  const listener = (message: unknown): void => {
    messages.push(message);
  };
  diagnosticsChannel.subscribe(name, listener);
  subscriptions.push([name, listener]);
  return messages;
}

export function unlistenAll(): void {
  for (const [name, listener] of subscriptions.splice(0)) diagnosticsChannel.unsubscribe(name, listener);
}

/** Resolves when `emitter` next emits `event` (opossum's timers move its state). */
export function nextEvent(emitter: EventEmitter, event: string, withinMs = 2_000): Promise<void> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      emitter.off(event, onEvent);
      reject(new Error(`no "${event}" within ${withinMs} ms`));
    }, withinMs);
    const onEvent = (): void => {
      clearTimeout(timer);
      resolve();
    };
    emitter.once(event, onEvent);
  });
}

/** Waits `ms` milliseconds. */
export function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
