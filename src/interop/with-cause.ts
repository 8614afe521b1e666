/**
 * Gives `error` a standard `cause` (non-enumerable, like one set through the constructor), for
 * the bulwark errors whose constructors take none. Returns `error`.
 */
export function withCause<E extends Error>(error: E, cause: unknown): E {
  Object.defineProperty(error, 'cause', { value: cause, writable: true, configurable: true });
  return error;
}
