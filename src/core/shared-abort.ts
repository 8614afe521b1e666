/**
 * One abort listener per caller's signal, shared by every call of this copy of bulwark that
 * follows it. A request-scoped signal is often handed to many concurrent calls; one listener each
 * (or two: execute() and a timeout or hedge) set off Node's MaxListenersExceededWarning at the
 * eleventh. Here calls register a handler in a set; the signal sees a single listener, added with
 * the first handler and removed with the last.
 */
class SharedAbort {
  readonly handlers = new Set<() => void>();
  firing = false;

  constructor(private readonly signal: AbortSignal) {}

  /** The signal aborted (this object is the listener: no closure per signal). */
  handleEvent(): void {
    this.firing = true;
    // Handlers may remove themselves (or others) while we iterate: a Set allows that.
    for (const handler of this.handlers) handler();
    this.handlers.clear();
    shared.delete(this.signal);
    this.signal.removeEventListener('abort', this);
  }
}

const shared = new WeakMap<AbortSignal, SharedAbort>();

/**
 * Calls `handler` once when `signal` aborts, unless {@link offAbort} removes it first. The caller
 * checks `signal.aborted` before: a handler added to an aborted signal is never called.
 * Internal: not exported from the package.
 */
export function onAbort(signal: AbortSignal, handler: () => void): void {
  let entry = shared.get(signal);
  if (entry === undefined) {
    entry = new SharedAbort(signal);
    shared.set(signal, entry);
    signal.addEventListener('abort', entry);
  }
  entry.handlers.add(handler);
}

/** Removes a handler added by {@link onAbort}; the signal's listener goes with the last one. */
export function offAbort(signal: AbortSignal, handler: () => void): void {
  const entry = shared.get(signal);
  if (entry === undefined || !entry.handlers.delete(handler) || entry.handlers.size > 0 || entry.firing) return;
  shared.delete(signal);
  signal.removeEventListener('abort', entry);
}

/** How many handlers follow `signal` through its shared listener (for tests). */
export function abortHandlerCount(signal: AbortSignal): number {
  return shared.get(signal)?.handlers.size ?? 0;
}
