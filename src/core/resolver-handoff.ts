/**
 * Internal: a promise whose resolvers go to the object constructed right after it, with no
 * closure per call. The executor runs synchronously inside `new Promise`, so it leaves them in
 * {@link handoff}, which the next constructor reads at once (timeout's and hedge's calls).
 */
export const handoff: { resolve: (value: unknown) => void; reject: (error: unknown) => void } = {
  resolve: () => {},
  reject: () => {},
};

function capture(resolve: (value: unknown) => void, reject: (error: unknown) => void): void {
  handoff.resolve = resolve;
  handoff.reject = reject;
}

/** A new pending promise; its resolvers are in {@link handoff} until the next call. */
export function pendingPromise<T>(): Promise<T> {
  return new Promise<T>(capture as (resolve: (value: T) => void, reject: (error: unknown) => void) => void);
}
