// `propagate`: what a call of bulwark/fetch sends on from the caller's admission scope (its traffic
// class, its remaining deadline), and the bound that deadline puts on the call.
import { DEFAULT_PRIORITY_LEVEL, parsePriority, type PriorityLevel } from '../../admission/priority.js';
import { currentAdmissionScope } from '../../admission/scope.js';
import type { Clock, TimerHandle } from '../../core/clock.js';
import { checkOptions, show } from '../../core/validate.js';
import { DEADLINE_HEADER, deadlineHeaderValue, PRIORITY_HEADER, priorityHeaderValue } from '../../http/propagation.js';
import type { PriorityClass } from '../../admission/priority.js';
import { DeadlineExceededError } from './deadline-exceeded-error.js';
import type { Target } from './call.js';
import type { FetchInit, FetchPropagateOptions } from './types.js';

/** Internal: what a fetch propagates, resolved from its `propagate` option. */
export interface PropagateSettings {
  readonly priority: boolean;
  readonly deadline: boolean;
}

const keys = ['priority', 'deadline'] as const;

/** Reads the `propagate` option: `undefined` when nothing is propagated. */
export function propagateOption(owner: string, value: unknown): PropagateSettings | undefined {
  if (value === undefined || value === false) return undefined;
  if (value === true) return { priority: true, deadline: true };
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new TypeError(`${owner}: option "propagate" must be a boolean or { priority?, deadline? }, got ${show(value)}`);
  }
  const o = checkOptions(`${owner}: option "propagate"`, value as FetchPropagateOptions, keys);
  for (const k of keys) {
    if (o[k] !== undefined && typeof o[k] !== 'boolean') {
      throw new TypeError(`${owner}: option "propagate.${k}" must be a boolean, got ${show(o[k])}`);
    }
  }
  const settings = { priority: o.priority === true, deadline: o.deadline === true };
  return settings.priority || settings.deadline ? settings : undefined;
}

/**
 * What one call sends on, read from the caller's admission scope when the call starts: the class
 * name, and the deadline (epoch ms) whose remaining time each attempt sends.
 */
export class Propagated {
  private constructor(
    private readonly priority: PriorityClass | undefined,
    readonly deadline: number | undefined,
  ) {}

  /**
   * The class a call is sent as, for the pauses its server asks for, when the fetch propagates the
   * class: the scope's, or the server's default (degraded) for a call that sends none. Undefined
   * when the fetch does not propagate it: its pauses then hold for every call.
   */
  static level(settings: PropagateSettings | undefined, propagated: Propagated | undefined): PriorityLevel | undefined {
    if (settings?.priority !== true) return undefined;
    const priority = propagated?.priority;
    return priority === undefined ? DEFAULT_PRIORITY_LEVEL : parsePriority(priority);
  }

  /** What the current scope asks to propagate, or `undefined` when there is nothing. */
  static current(settings: PropagateSettings): Propagated | undefined {
    const scope = currentAdmissionScope();
    if (scope === undefined) return undefined;
    const priority = settings.priority ? priorityHeaderValue(scope.priority) : undefined;
    const deadline = settings.deadline && typeof scope.deadline === 'number' && !Number.isNaN(scope.deadline) ? scope.deadline : undefined;
    return priority === undefined && deadline === undefined ? undefined : new Propagated(priority, deadline);
  }

  /**
   * The init of one attempt with the headers added (the request's own headers copied first, since
   * `init.headers` replaces a Request's). A header the request already carries is left as it is.
   */
  init(init: FetchInit, request: Request | undefined): RequestInit {
    const headers = new Headers(init?.headers ?? request?.headers);
    if (this.priority !== undefined && !headers.has(PRIORITY_HEADER)) headers.set(PRIORITY_HEADER, this.priority);
    if (this.deadline !== undefined && !headers.has(DEADLINE_HEADER)) headers.set(DEADLINE_HEADER, deadlineHeaderValue(this.deadline, Date.now()));
    return init === undefined ? { headers } : { ...init, headers };
  }
}

/**
 * Bounds a call by the caller's deadline: a signal that aborts with a {@link DeadlineExceededError}
 * when the deadline passes, and with the caller's own reason when the caller aborts. One timer per
 * call, only for calls that propagate a deadline; gone when the call settles.
 */
export class CallDeadline {
  readonly signal: AbortSignal;
  private readonly controller = new AbortController();
  private readonly timer: TimerHandle;
  private readonly follow: (() => void) | undefined;

  /** Throws {@link DeadlineExceededError} when the deadline has passed already (less than 1 ms left). */
  constructor(
    readonly deadline: number,
    private readonly clock: Clock,
    private readonly caller: AbortSignal | undefined,
  ) {
    const left = Math.floor(deadline - Date.now());
    if (!(left > 0)) throw new DeadlineExceededError(deadline);
    this.signal = this.controller.signal;
    this.timer = clock.setTimeout(() => this.controller.abort(new DeadlineExceededError(deadline)), left);
    if (caller !== undefined) {
      if (caller.aborted) {
        this.controller.abort(caller.reason);
      } else {
        this.follow = () => this.controller.abort(caller.reason);
        caller.addEventListener('abort', this.follow, { once: true });
      }
    }
  }

  /** Ms left before the deadline, never negative. */
  leftMs(): number {
    return Math.max(0, this.deadline - Date.now());
  }

  /** Stops the timer and stops following the caller's signal; the call has settled. */
  dispose(): void {
    this.clock.clearTimeout(this.timer);
    if (this.follow !== undefined) this.caller!.removeEventListener('abort', this.follow);
  }
}

/**
 * Until when (policies' clock) `target`'s server asked a call of class `level` to stay away. A
 * pause asked in answer to a call sent with a class holds for calls of that class and below: a
 * server that sheds `sheddable` calls by priority still takes `critical` ones, so those are not
 * held back by it. A pause asked of a call without a class (`level` undefined) holds for all.
 */
export function pausedUntil(target: Target, level: PriorityLevel | undefined): number {
  const byClass = target.pausedByClass;
  if (byClass === undefined) return target.pausedUntil;
  let until = target.pausedUntil;
  // Without a class of its own, a call keeps to every pause.
  for (let l = level ?? 0; l < 4; l++) if (byClass[l]! > until) until = byClass[l]!;
  return until;
}

/** Records a pause `target`'s server asked of a call of class `level` (undefined: of every call). */
export function recordPause(target: Target, level: PriorityLevel | undefined, until: number): void {
  if (level === undefined) {
    target.pausedUntil = Math.max(target.pausedUntil, until);
    return;
  }
  const byClass = (target.pausedByClass ??= [-Infinity, -Infinity, -Infinity, -Infinity]);
  byClass[level] = Math.max(byClass[level]!, until);
}
