import { reportCallbackError } from './callback-error.js';

/**
 * Something that can be released: the return value of every `onX(listener)` and of
 * `breaker.isolate()`. Works with `using` where the runtime supports it.
 * @example
 * const sub = breaker.onStateChange(console.log);
 * sub.dispose();
 */
export interface Disposable {
  dispose(): void;
  [Symbol.dispose](): void;
}

/** Internal: `Symbol.dispose`, or its registered stand-in where Node lacks it (one definition for every handle). */
export const disposeSymbol: typeof Symbol.dispose =
  (Symbol as { dispose?: typeof Symbol.dispose }).dispose ?? (Symbol.for('Symbol.dispose') as typeof Symbol.dispose);

/**
 * Makes a {@link Disposable} that runs `release` once, however often it is disposed.
 * @example
 * const d = toDisposable(() => clearInterval(handle));
 */
export function toDisposable(release: () => void): Disposable {
  let done = false;
  const dispose = (): void => {
    if (done) return;
    done = true;
    release();
  };
  return { dispose, [disposeSymbol]: dispose };
}

/** A listener registration function, as exposed by policies (`breaker.onStateChange`). */
export type EventSubscriber<T> = (listener: (event: T) => void) => Disposable;

/**
 * A typed event with any number of listeners. Policies check {@link EventEmitter.active} before
 * building a payload, so an event nobody listens to costs nothing.
 * @example
 * const changed = new EventEmitter<{ to: string }>();
 * changed.subscribe((e) => console.log(e.to));
 */
export class EventEmitter<T> {
  #listeners: ((event: T) => void)[] = [];

  /** @param owner names the policy in reports of a listener that throws (a function when the name is set later). */
  constructor(private readonly owner: string | (() => string) = 'bulwark') {}

  /** True when at least one listener is registered. */
  get active(): boolean {
    return this.#listeners.length > 0;
  }

  /** Adds a listener; dispose the result to remove it. */
  readonly subscribe: EventSubscriber<T> = (listener) => {
    if (typeof listener !== 'function') {
      throw new TypeError(`listener must be a function, got ${typeof listener}`);
    }
    this.#listeners = [...this.#listeners, listener];
    return toDisposable(() => {
      // Remove this registration only: the same function may be subscribed more than once.
      const i = this.#listeners.indexOf(listener);
      if (i !== -1) this.#listeners = [...this.#listeners.slice(0, i), ...this.#listeners.slice(i + 1)];
    });
  };

  /**
   * Calls every listener. A listener that throws does not stop the others, corrupt the policy or
   * reach the process as an uncaught exception: its error is reported on
   * `bulwark:callback:error` (see {@link reportCallbackError}).
   */
  emit(event: T): void {
    for (const listener of this.#listeners) {
      try {
        listener(event);
      } catch (err) {
        reportCallbackError(typeof this.owner === 'string' ? this.owner : this.owner(), 'listener', err);
      }
    }
  }
}
