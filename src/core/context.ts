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

  /**
   * The {@link AbortableContext} whose aborts this context passes on unchanged (itself, or the one
   * under a retry's attempt numbering), so that a context inside it can follow it without making
   * its signal; undefined when aborts come some other way (a caller's signal, a hedge).
   */
  abortOwner(): AbortableContext | undefined {
    return undefined;
  }

  /** The {@link RootContext} this context derives from (a pipeline finds its call's function there). */
  abstract chainRoot(): RootContext | undefined;
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

  chainRoot(): RootContext | undefined {
    return this;
  }

  get signal(): AbortSignal {
    if (this.callerSignal !== undefined) return this.callerSignal;
    return (this.controller ??= new AbortController()).signal;
  }

  abortable(): AbortSignal | undefined {
    return this.callerSignal;
  }
}

/**
 * The root context of a pipeline's composed `execute()`: it also carries the function the call
 * runs, which the innermost layer's entry reads (see `PipelinePolicy`), so the layers need no
 * closure per call. A subclass, so that every other policy's root keeps its three fields.
 */
export class ChainedRootContext extends RootContext {
  constructor(
    callerSignal: AbortSignal | undefined,
    readonly chained: unknown,
  ) {
    super(callerSignal);
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

  override abortOwner(): AbortableContext | undefined {
    return this.parent.abortOwner();
  }

  chainRoot(): RootContext | undefined {
    return this.parent.chainRoot();
  }
}

/** Marks an {@link AbortableContext} not aborted before its signal was made. */
const NOT_ABORTED: unique symbol = Symbol('not aborted');

/**
 * A context that a policy can abort (timeouts, hedges). Its AbortController is made only when the
 * signal is first read; an abort before then is remembered and applied at that read. It follows
 * its parent until {@link AbortableContext.release} is called when the work settles. A parent that
 * is itself an AbortableContext (say an overall timeout around an attempt's) is followed without
 * making the parent's signal: the parent passes its abort on to the contexts that follow it, so
 * nested timeouts cost one AbortController, not one each (issue 14 §4).
 */
export class AbortableContext extends Context {
  readonly attempt: number;
  readonly parent: Context;
  private controller: AbortController | undefined;
  /** The reason of an abort that came before the signal was made, else NOT_ABORTED. */
  private earlyReason: unknown;
  private released: boolean;
  /** Removes our listener from the parent's signal, while we follow it. */
  private unlink: (() => void) | undefined;
  /** Whether we follow the parent already (see follow()). */
  private following: boolean;
  /** Contexts inside this one that follow it without its signal: aborted when it aborts. */
  private followers: Set<AbortableContext> | undefined;

  constructor(parent: Context) {
    super();
    this.parent = parent;
    this.attempt = parent.attempt;
    this.controller = undefined;
    this.earlyReason = NOT_ABORTED;
    this.released = false;
    this.unlink = undefined;
    this.following = false;
    this.followers = undefined;
  }

  get signal(): AbortSignal {
    return (this.controller ?? this.materialize()).signal;
  }

  abortable(): AbortSignal | undefined {
    return this.signal;
  }

  override abortOwner(): AbortableContext | undefined {
    return this;
  }

  chainRoot(): RootContext | undefined {
    return this.parent.chainRoot();
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
      const parentReason = this.released ? NOT_ABORTED : this.parentAbortReason();
      this.earlyReason = parentReason !== NOT_ABORTED ? parentReason : reason;
    }
    const followers = this.followers;
    if (followers !== undefined) {
      this.followers = undefined;
      const own = this.abortReason();
      for (const follower of followers) follower.abort(own);
    }
  }

  /** Stops following the parent: called once the work has settled, so nothing is left behind. */
  release(): void {
    this.released = true;
    this.detach();
  }

  /** Called when something starts listening to this context's aborts (its signal is made, or a follower). */
  protected watched(): void {}

  /** The reason this context aborted with, or NOT_ABORTED. */
  private abortReason(): unknown {
    if (this.earlyReason !== NOT_ABORTED) return this.earlyReason;
    const controller = this.controller;
    return controller !== undefined && controller.signal.aborted ? controller.signal.reason : NOT_ABORTED;
  }

  /** The reason the parent aborted with, or NOT_ABORTED; makes no signal that does not exist. */
  private parentAbortReason(): unknown {
    const owner = this.parent.abortOwner();
    if (owner !== undefined) {
      // An owner that does not follow its own parent yet may not have seen that parent abort.
      const reason = owner.abortReason();
      return reason !== NOT_ABORTED || owner.following ? reason : owner.parentAbortReason();
    }
    const parentSignal = this.parent.abortable();
    return parentSignal !== undefined && parentSignal.aborted ? parentSignal.reason : NOT_ABORTED;
  }

  private materialize(): AbortController {
    const controller = new AbortController();
    this.controller = controller;
    this.watched();
    if (this.earlyReason !== NOT_ABORTED) {
      controller.abort(this.earlyReason);
      return controller;
    }
    this.follow();
    return controller;
  }

  /**
   * Starts following the parent's aborts, once: through the parent's followers when it is an
   * AbortableContext (its signal is not made for that), else through the parent's signal, if it
   * has one. An abort already there is taken at once.
   */
  private follow(): void {
    if (this.following || this.earlyReason !== NOT_ABORTED) return;
    const owner = this.parent.abortOwner();
    if (owner !== undefined) {
      // The owner takes an abort of its own parent first (it may not follow that one yet).
      owner.follow();
      const reason = owner.abortReason();
      if (reason !== NOT_ABORTED) {
        this.abort(reason);
        return;
      }
      if (this.released) return;
      this.following = true;
      owner.watched();
      (owner.followers ??= new Set()).add(this);
      this.unlink = () => owner.followers?.delete(this);
      return;
    }
    const parentSignal = this.parent.abortable();
    if (parentSignal === undefined) return;
    if (parentSignal.aborted) {
      this.abort(parentSignal.reason);
      return;
    }
    if (this.released) return;
    this.following = true;
    // Through the signal's one shared listener: many calls often follow one caller's signal.
    const handler = (): void => this.abort(parentSignal.reason);
    onAbort(parentSignal, handler);
    this.unlink = () => offAbort(parentSignal, handler);
  }

  private detach(): void {
    if (this.unlink !== undefined) {
      this.unlink();
      this.unlink = undefined;
    }
  }
}
