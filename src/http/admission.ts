// The inbound face of admission control (issue 15 §1–2), shared by the Express middleware and the
// Fastify plugin: options read once, and what each request gets (a scope from its trusted peer's
// propagated class and deadline; a refusal when that deadline has passed).
import type { IncomingMessage, ServerResponse } from 'node:http';
import { type Admission, AdmissionController, type AdmissionControllerOptions, type AdmissionDecisionEvent } from '../admission/controller.js';
import { DEFAULT_PRIORITY_LEVEL, parsePriority, type Priority, PRIORITY_CLASSES, type PriorityClass, type PriorityLevel, priorityLevel } from '../admission/priority.js';
import { type AdmissionScope, withAdmissionScope } from '../admission/scope.js';
import type { AdmissionRequest, AdmissionSnapshot, Permit, PermitOutcome } from '../admission/types.js';
import { admissionRejectedChannel } from '../core/diagnostics.js';
import { checkOptions, functionOption, nameOption, show } from '../core/validate.js';
import { isServedPath } from '../health/served-paths.js';
import type { AddressedRequest, TrustProxy } from './client-address.js';
import { admissionFailedProblem, admissionRejectedProblem, deadlineExceededProblem, type ProblemResponse, secondsUp } from './problem.js';
import { propagatedScopeReader } from './propagation.js';

/**
 * Options of the propagation adapters (`propagationMiddleware`, `propagationPlugin`).
 * @example
 * const options: PropagationOptions = { trustProxy: ['10.0.0.0/8'] };
 */
export interface PropagationOptions {
  /**
   * The peers whose `bulwark-priority` and `bulwark-deadline` headers are believed, by the rules of
   * `clientAddressResolver`'s `trustProxy`: a hop count of 1 or more trusts every peer, addresses
   * and ranges (`'loopback'`, `'uniquelocal'`, `'10.0.0.0/8'`, …) trust the socket peers in them.
   * Required: an edge proxy in that list must strip the two headers from outside requests.
   */
  readonly trustProxy: TrustProxy;
  /** Name under which a request refused for its passed deadline is counted (`bulwark:admission:rejected`, reason `deadline`). @default 'propagation' */
  readonly name?: string;
}

/** Reads a request's propagated scope, at `nowMs` (epoch ms). */
export type ScopeReader = (request: AddressedRequest, nowMs: number) => AdmissionScope | undefined;

const propagationKeys = ['trustProxy', 'name'] as const;

/**
 * The propagation adapters' shared part: options read once (dropping `ignoredKeys` first:
 * Fastify's `register` options), and each request run in its propagated scope.
 */
export class InboundPropagation {
  private readonly read: ScopeReader;
  /** What a deadline refusal is counted with: no controller, so no limit (0). */
  private readonly state: () => AdmissionSnapshot;

  constructor(owner: string, options: unknown, ignoredKeys: readonly string[] = []) {
    if (typeof options !== 'object' || options === null) {
      throw new TypeError(`${owner}: the argument must be { trustProxy }, got ${show(options)}`);
    }
    const own: Record<string, unknown> = { ...options };
    for (const k of ignoredKeys) delete own[k];
    const o = checkOptions(owner, own as Partial<PropagationOptions>, propagationKeys);
    const read = propagatedScopeReader(owner, o.trustProxy);
    if (read === undefined) {
      throw new TypeError(
        `${owner}: option "trustProxy" must name the peers whose propagated priority and deadline are believed (a hop count, addresses or ranges), got ${show(o.trustProxy)}: trusting nobody, the adapter would do nothing`,
      );
    }
    this.read = read;
    const state: AdmissionSnapshot = { name: nameOption(owner, o.name, 'propagation'), mode: 'enforce', limit: 0, inFlight: 0, queued: 0 };
    this.state = () => state;
  }

  /**
   * Runs `next` inside the request's propagated scope (at once when it has none), or calls
   * `refuse(reply)` instead when the scope's deadline has passed (counted, reason `deadline`).
   * `next` carries the rest of the request with it (Express's `next`, Fastify's `done`), so all of
   * it runs in the scope.
   */
  run<Reply>(request: AddressedRequest, reply: Reply, next: () => void, refuse: (reply: Reply) => void): void {
    const now = Date.now();
    const scope = this.read(request, now);
    if (scope === undefined) {
      next();
    } else if (scope.deadline !== undefined && scope.deadline <= now) {
      reportDeadline(this.state, parsePriority(scope.priority) ?? DEFAULT_PRIORITY_LEVEL);
      refuse(reply);
    } else {
      withAdmissionScope(scope, next);
    }
  }
}

// ---------------------------------------------------------------------------------------------
// The admission adapters: an admission controller deciding every request on arrival.

// Method-shaped, so that a function written for a framework's own request type (a subtype of the
// one named here) is accepted.
type PriorityFunction<Req> = { fn(request: Req, propagated: PriorityClass | undefined): Priority }['fn'];
type TenantFunction<Req> = { fn(request: Req): string }['fn'];
type SkipFunction<Req> = { fn(request: Req): boolean }['fn'];
type ErrorFunction<Req> = { fn(error: unknown, request: Req): void }['fn'];

/**
 * What the admission adapters add to the controller: each request's class and tenant, which
 * requests are never turned away, and whose propagated class and deadline are believed.
 * @example
 * const options: AdmissionAdapterOptions<IncomingMessage> = { priority: (req) => (req.url === '/checkout' ? 'critical' : 'sheddable') };
 */
export interface AdmissionAdapterOptions<Req> {
  /**
   * The request's class (`'critical'` … `'sheddable'`, or a level 3 … 0); `propagated` is the class
   * a trusted peer sent, if any. Must answer synchronously.
   * @default the propagated class, else 'degraded'
   */
  readonly priority?: PriorityFunction<Req>;
  /** Who the request is for: inside a class, no tenant holds more than its share. @default none (no fairness) */
  readonly tenant?: TenantFunction<Req>;
  /** Requests for which it returns `true` are never turned away (your own status or admin routes). */
  readonly skip?: SkipFunction<Req>;
  /**
   * Let through every request for a route bulwark serves itself: the health probes and `/metrics`
   * (see `isServedPath`). They hold no permit. @default true
   */
  readonly exemptProbes?: boolean;
  /**
   * The peers whose `bulwark-priority` and `bulwark-deadline` headers are believed (the rules of
   * `trustProxy`; see {@link PropagationOptions}). A request from one whose deadline has passed is
   * answered 504. @default false (nothing propagated is read)
   */
  readonly trustProxy?: TrustProxy;
  /**
   * Told when `priority`, `tenant` or `skip` throws or answers something else than it should; the
   * request then gets a 500 problem+json answer from the adapter.
   * @default Express: `console.error`, at most one line per 10 s; Fastify: `request.log.error`
   */
  readonly onError?: ErrorFunction<Req>;
}

/**
 * What an admission adapter takes: a controller, `{ controller, ...adapter options }`, or
 * controller options with the adapter options beside them (the adapter then makes the controller).
 * @example
 * const a: AdmissionOptions<IncomingMessage> = { controller: admissionController({ limit: gradient2() }), trustProxy: 'uniquelocal' };
 * const b: AdmissionOptions<IncomingMessage> = { limit: aimd({ maxLimit: 200 }), maxQueue: 50, maxWaitMs: 20 };
 */
export type AdmissionOptions<Req> =
  | AdmissionController
  | (AdmissionAdapterOptions<Req> & { readonly controller: AdmissionController })
  | (AdmissionAdapterOptions<Req> & AdmissionControllerOptions);

const adapterKeys = ['priority', 'tenant', 'skip', 'exemptProbes', 'trustProxy', 'onError'] as const;

/** Whether `value` is an admission controller (from this copy of bulwark or another build of it). */
function isController(value: unknown): value is AdmissionController {
  const v = value as Partial<AdmissionController> | null;
  return typeof v === 'object' && v !== null && typeof v.acquire === 'function' && typeof v.snapshot === 'function';
}

/** How a request's permit ends: a 503/504 answer or a client gone before the answer is an overload (`dropped`); another 5xx says nothing of capacity. */
export function outcomeOf(response: ServerResponse): PermitOutcome {
  if (!response.writableFinished) return 'dropped';
  const status = response.statusCode;
  if (status < 500) return 'success';
  return status === 503 || status === 504 ? 'dropped' : 'ignore';
}

/**
 * Answers a refused request: the problem body, with `Retry-After` when given. Express writes on
 * the response; Fastify answers through its reply.
 */
export type Refuse<Reply> = (reply: Reply, problem: ProblemResponse, retryAfter: string | undefined) => void;

/** One request holding (or waiting for) a permit: released once, when its response closes. */
class Held {
  permit: Permit | undefined = undefined;
  aborter: AbortController | undefined = undefined;
  constructor(readonly response: ServerResponse) {}
  readonly closed = (): void => {
    if (this.permit !== undefined) this.permit.release(outcomeOf(this.response));
    else this.aborter?.abort();
  };
}

/**
 * The inbound face of an admission controller, shared by the Express middleware and the Fastify
 * plugin: decides each request on arrival and runs the admitted ones in their admission scope.
 */
export class InboundAdmission<Req> {
  readonly controller: AdmissionController;
  private readonly read: ScopeReader | undefined;
  private readonly exempt: ((request: Req, url: string | undefined) => boolean) | undefined;
  private readonly priority: PriorityFunction<Req> | undefined;
  private readonly tenant: TenantFunction<Req> | undefined;
  private readonly report: (error: unknown, request: Req) => void;
  /** The rejection answers, one per reason, built on first use. */
  private readonly answers = new Map<string, ProblemResponse>();
  private readonly snapshot = (): AdmissionSnapshot => this.controller.snapshot();

  constructor(
    private readonly owner: string,
    options: unknown,
    fallbackReporter: (error: unknown, request: Req) => void,
    ignoredKeys: readonly string[] = [],
  ) {
    if (options === undefined) options = {};
    if (typeof options !== 'object' || options === null) {
      throw new TypeError(`${owner}: the argument must be an admission controller, { controller } or admissionController options, got ${show(options)}`);
    }
    // A controller alone (duck-typed, so one from the CommonJS build works with the ESM adapters),
    // or adapter options beside `controller` or beside the options of a controller to make.
    const own: Record<string, unknown> = isController(options) ? { controller: options } : { ...options };
    for (const k of ignoredKeys) delete own[k];
    const adapter: Record<string, unknown> = {};
    for (const k of adapterKeys) {
      if (k in own) {
        adapter[k] = own[k];
        delete own[k];
      }
    }
    const o = checkOptions(owner, adapter as AdmissionAdapterOptions<Req>, adapterKeys);
    this.priority = o.priority === undefined ? undefined : functionOption<PriorityFunction<Req>>(owner, 'priority', o.priority, () => 'degraded');
    this.tenant = o.tenant === undefined ? undefined : functionOption<TenantFunction<Req>>(owner, 'tenant', o.tenant, String);
    const onError = o.onError === undefined ? undefined : functionOption<ErrorFunction<Req>>(owner, 'onError', o.onError, () => {});
    this.report = onError ?? fallbackReporter;
    this.exempt = exemption(owner, o.skip, o.exemptProbes);
    this.read = o.trustProxy === undefined || o.trustProxy === false ? undefined : propagatedScopeReader(owner, o.trustProxy);
    if (!('controller' in own)) {
      this.controller = new AdmissionController(own as AdmissionControllerOptions);
    } else if (Object.keys(own).length > 1) {
      throw new TypeError(`${owner}: pass either { controller } or admissionController options, not both (got ${Object.keys(own).join(', ')})`);
    } else if (!isController(own.controller)) {
      throw new TypeError(`${owner}: option "controller" must be an admission controller, got ${show(own.controller)}`);
    } else {
      this.controller = own.controller;
    }
  }

  /**
   * Decides `request` on arrival: runs `next` inside its admission scope holding a permit (released
   * when `response` closes), lets it through without one when exempt, or answers it through
   * `refuse` (503 with `Retry-After`; 504 when its propagated deadline has passed; 500 when a
   * function of the options failed).
   */
  run<Reply>(request: Req, raw: IncomingMessage, url: string | undefined, response: ServerResponse, reply: Reply, refuse: Refuse<Reply>, next: () => void): void {
    // The clock is read only for a propagated deadline.
    const now = this.read === undefined ? 0 : Date.now();
    const propagated = this.read?.(raw, now);
    let level: PriorityLevel;
    let tenant: string | undefined;
    try {
      if (this.exempt?.(request, url) === true) {
        if (propagated === undefined) next();
        else withAdmissionScope(propagated, next);
        return;
      }
      level = this.levelOf(request, propagated);
      tenant = this.tenantOf(request);
    } catch (error) {
      this.failed(error, request);
      refuse(reply, admissionFailedProblem, undefined);
      return;
    }
    const deadline = propagated?.deadline;
    if (deadline !== undefined && deadline <= now) {
      reportDeadline(this.snapshot, level);
      if (this.controller.mode === 'enforce') {
        refuse(reply, deadlineExceededProblem, undefined);
        return;
      }
    }
    // A client already gone would never close its response again: nothing to admit.
    if (raw.socket === null || raw.socket.destroyed) return;
    const held = new Held(response);
    response.once('close', held.closed);
    if (this.controller.maxQueue > 0) held.aborter = new AbortController();
    const ask: AdmissionRequest = tenant === undefined ? { priority: level } : { priority: level, tenant };
    const scope: AdmissionScope = scopeOf(level, deadline, tenant);
    const admission = this.controller.acquire(ask, held.aborter?.signal);
    if (!(admission instanceof Promise)) {
      this.decided(admission, held, reply, refuse, scope, next);
      return;
    }
    admission.then(
      (decided) => this.decided(decided, held, reply, refuse, scope, next),
      // Only a client that left while waiting (its signal aborted): nobody to answer.
      () => {},
    );
  }

  private decided<Reply>(admission: Admission, held: Held, reply: Reply, refuse: Refuse<Reply>, scope: AdmissionScope, next: () => void): void {
    if ('reason' in admission) {
      held.response.removeListener('close', held.closed);
      refuse(reply, this.answerFor(admission.reason), String(Math.max(1, secondsUp(admission.retryAfterMs))));
      return;
    }
    held.permit = admission;
    // Admitted after the client left (it waited in the queue): give the slot back at once.
    if (held.response.closed) {
      held.closed();
      return;
    }
    // Shadow mode, a request enforcing would have turned away: it goes on with the 503's
    // Retry-After, so the headers are those of enforcement but for the status (as the shadow
    // rate limits and load shedding do).
    if (admission.wouldReject !== undefined) held.response.setHeader('Retry-After', shadowRetryAfter(admission));
    withAdmissionScope(scope, next);
  }

  private levelOf(request: Req, propagated: AdmissionScope | undefined): PriorityLevel {
    const fromPeer = propagated?.priority as PriorityClass | undefined;
    if (this.priority === undefined) return fromPeer === undefined ? DEFAULT_PRIORITY_LEVEL : parsePriority(fromPeer)!;
    return priorityLevel(this.owner, 'the result of option "priority"', this.priority(request, fromPeer));
  }

  private tenantOf(request: Req): string | undefined {
    if (this.tenant === undefined) return undefined;
    const tenant: unknown = this.tenant(request);
    if (typeof tenant !== 'string') throw new TypeError(`${this.owner}: option "tenant" must return a string, got ${show(tenant)}`);
    return tenant;
  }

  private answerFor(reason: string): ProblemResponse {
    let answer = this.answers.get(reason);
    if (answer === undefined) {
      answer = admissionRejectedProblem(this.controller.name, reason);
      this.answers.set(reason, answer);
    }
    return answer;
  }

  private failed(error: unknown, request: Req): void {
    try {
      this.report(error, request);
    } catch {
      // A reporter that throws must not turn one failed check into a crashed process.
    }
  }
}

/**
 * The Retry-After of a shadow-mode permit that enforcement would have refused: its `retryAfterMs`
 * when the controller gives one, else 1 s — what a rejection answers while permits take under a
 * second (the controller asks for about one permit's latency).
 */
function shadowRetryAfter(permit: Permit): string {
  const ms = (permit as Partial<{ readonly retryAfterMs: number }>).retryAfterMs;
  return String(Math.max(1, secondsUp(ms ?? 1)));
}

/** The scope an admitted request runs in: its class by name (what `bulwark/fetch` sends on), its deadline, its tenant. */
function scopeOf(level: PriorityLevel, deadline: number | undefined, tenant: string | undefined): AdmissionScope {
  const priority = PRIORITY_CLASSES[level];
  if (deadline === undefined) return tenant === undefined ? { priority } : { priority, tenant };
  return tenant === undefined ? { priority, deadline } : { priority, deadline, tenant };
}

/**
 * Counts a request refused (or in shadow mode let through) because its propagated deadline had
 * passed, on `bulwark:admission:rejected` with reason `'deadline'`, as the controller counts its own.
 */
function reportDeadline(snapshot: () => AdmissionSnapshot, priority: PriorityLevel): void {
  if (!admissionRejectedChannel.hasSubscribers) return;
  const { name, mode, limit, inFlight, queued } = snapshot();
  const event: AdmissionDecisionEvent = { policy: name, mode, reason: 'deadline', priority, limit, inFlight, queued };
  admissionRejectedChannel.publish(event);
}

/** Whether a request is let through without a permit: bulwark's own routes, then `skip`. Throws when `skip` answers a non-boolean. */
function exemption<Req>(
  owner: string,
  skip: SkipFunction<Req> | undefined,
  exemptProbes: boolean | undefined,
): ((request: Req, url: string | undefined) => boolean) | undefined {
  if (exemptProbes !== undefined && typeof exemptProbes !== 'boolean') {
    throw new TypeError(`${owner}: option "exemptProbes" must be a boolean, got ${show(exemptProbes)}`);
  }
  const probes = exemptProbes ?? true;
  const userSkip = skip === undefined ? undefined : functionOption<SkipFunction<Req>>(owner, 'skip', skip, () => false);
  if (userSkip === undefined) return probes ? (_request, url) => isServedPath(url) : undefined;
  return (request, url) => {
    if (probes && isServedPath(url)) return true;
    const skipped: unknown = userSkip(request);
    if (typeof skipped !== 'boolean') throw new TypeError(`${owner}: option "skip" must return a boolean, got ${show(skipped)}`);
    return skipped;
  };
}
