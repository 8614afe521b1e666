import { offAbort, onAbort } from './shared-abort.js';

/**
 * What every function run by a policy receives.
 * @example
 * await policy.execute(({ signal, attempt }) => fetch(url, { signal, headers: { 'x-attempt': String(attempt) } }));
 */
export interface ExecutionContext {
  /**
   * Aborts when the caller's signal aborts, a timeout expires or a hedge is lost. Created on
   * first read: a function that never reads it costs no AbortController.
   */
  readonly signal: AbortSignal;
  /** 1 for the first attempt, 2 for the first retry, and so on (set by the nearest retry policy). */
  readonly attempt: number;
}

/**
 * The internal side of a context: policies ask for the signal only if it can ever abort, so a
 * context with nothing to abort it never creates one.
 */
export abstract class Context implements ExecutionContext {
  abstract readonly attempt: number;
  abstract get signal(): AbortSignal;
  /** The signal if this context can ever abort, else undefined; creates nothing needlessly. */
  abstract abortable(): AbortSignal | undefined;
}

/** The context of a top-level `execute()`: the caller's signal, or a lazily made one. */
export class RootContext extends Context {
  readonly attempt: number;
  private readonly callerSignal: AbortSignal | undefined;
  private controller: AbortController | undefined;

  constructor(callerSignal: AbortSignal | undefined) {
    super();
    this.attempt = 1;
    this.callerSignal = callerSignal;
    this.controller = undefined;
  }

  get signal(): AbortSignal {
    if (this.callerSignal !== undefined) return this.callerSignal;
    return (this.controller ??= new AbortController()).signal;
  }

  abortable(): AbortSignal | undefined {
    return this.callerSignal;
  }
}

/** A context that changes only the attempt number (retries). */
export class AttemptContext extends Context {
  constructor(
    private readonly parent: Context,
    readonly attempt: number,
  ) {
    super();
  }

  get signal(): AbortSignal {
    return this.parent.signal;
  }

  abortable(): AbortSignal | undefined {
    return this.parent.abortable();
  }
}

/**
 * A context that a policy can abort (timeouts, hedges). Its AbortController is made only when the
 * signal is first read; an abort before then is remembered and applied at that read. It follows
 * its parent's signal until {@link AbortableContext.release} is called when the work settles.
 */
/** Marks an {@link AbortableContext} not aborted before its signal was made. */
const NOT_ABORTED: unique symbol = Symbol('not aborted');

export class AbortableContext extends Context {
  readonly attempt: number;
  readonly parent: Context;
  private controller: AbortController | undefined;
  /** The reason of an abort that came before the signal was made, else NOT_ABORTED. */
  private earlyReason: unknown;
  private released: boolean;
  /** Removes our listener from the parent's signal, while we follow it. */
  private unlink: (() => void) | undefined;

  constructor(parent: Context) {
    super();
    this.parent = parent;
    this.attempt = parent.attempt;
    this.controller = undefined;
    this.earlyReason = NOT_ABORTED;
    this.released = false;
    this.unlink = undefined;
  }

  get signal(): AbortSignal {
    return (this.controller ?? this.materialize()).signal;
  }

  abortable(): AbortSignal | undefined {
    return this.signal;
  }

  /** Whether this context has been aborted (by the policy or through its parent). */
  get aborted(): boolean {
    return this.earlyReason !== NOT_ABORTED || (this.controller !== undefined && this.controller.signal.aborted);
  }

  /** Aborts the work with `reason`, now if the signal exists, else at its first read. */
  abort(reason: unknown): void {
    this.detach();
    if (this.controller !== undefined) {
      this.controller.abort(reason);
    } else if (this.earlyReason === NOT_ABORTED) {
      // Nobody has read the signal, so a parent abort may have gone unseen; if so, it came first
      // and its reason is the one the signal must report when it is read.
      const parentSignal = this.released ? undefined : this.parent.abortable();
      this.earlyReason = parentSignal !== undefined && parentSignal.aborted ? parentSignal.reason : reason;
    }
  }

  /** Stops following the parent: called once the work has settled, so nothing is left behind. */
  release(): void {
    this.released = true;
    this.detach();
  }

  private materialize(): AbortController {
    const controller = new AbortController();
    this.controller = controller;
    if (this.earlyReason !== NOT_ABORTED) {
      controller.abort(this.earlyReason);
      return controller;
    }
    const parentSignal = this.parent.abortable();
    if (parentSignal !== undefined) {
      if (parentSignal.aborted) {
        controller.abort(parentSignal.reason);
      } else if (!this.released) {
        // Through the signal's one shared listener: many calls often follow one caller's signal.
        const handler = (): void => this.abort(parentSignal.reason);
        onAbort(parentSignal, handler);
        this.unlink = () => offAbort(parentSignal, handler);
      }
    }
    return controller;
  }

  private detach(): void {
    if (this.unlink !== undefined) {
      this.unlink();
      this.unlink = undefined;
    }
  }
}
