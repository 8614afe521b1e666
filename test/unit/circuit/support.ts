// Small helpers shared by the circuit breaker tests (not a test file itself).
import { expect } from 'vitest';
import type { CircuitBreakerPolicy } from '../../../src/index.js';

export class Boom extends Error {
  override name = 'Boom';
}

/** A fresh plain Error named AbortError (not a DOMException). */
export function abortError(): Error {
  const e = new Error('aborted');
  e.name = 'AbortError';
  return e;
}

/** Makes `times` calls that succeed. */
export async function succeed(breaker: CircuitBreakerPolicy, times = 1): Promise<void> {
  for (let i = 0; i < times; i++) await expect(breaker.execute(() => 'ok')).resolves.toBe('ok');
}

/** Makes `times` calls that throw a fresh `error()` each (a Boom by default). */
export async function fail(breaker: CircuitBreakerPolicy, times = 1, error: () => unknown = () => new Boom('down')): Promise<void> {
  for (let i = 0; i < times; i++) {
    const e = error();
    await expect(
      breaker.execute(() => {
        throw e;
      }),
    ).rejects.toBe(e);
  }
}
