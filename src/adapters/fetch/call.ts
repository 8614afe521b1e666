// One call through bulwark/fetch: its attempts, the origin or endpoint each goes to, the pauses
// servers asked for, and failover. The fetcher that makes calls is in create-fetch.ts.
import type { AdaptiveThrottlePolicy } from '../../throttle/adaptive-throttle.js';
import { Context, type ExecutionContext, RootContext } from '../../core/context.js';
import { currentSendScope } from '../../core/diagnostics.js';
import { BrokenCircuitError, TimeoutError } from '../../core/errors.js';
import { type ContextualPolicy, invoke, untilAborted } from '../../core/policy.js';
import { sleep } from '../../core/sleep.js';
import { show } from '../../core/validate.js';
import { goesOn, limitError } from '../../ratelimit/denial.js';
import { joinPath, preferenceOrder } from './endpoints.js';
import { HttpStatusError } from './http-status-error.js';
import { RetryAfterError } from './retry-after-error.js';
import { neverSent, requestTraits, type RequestTraits } from './request-rules.js';
import { delayHint } from './retry-after.js';
import { answeredBy, discard, elsewhere, isRejection, outlasting, paced } from './outcomes.js';
import { RequestUrl } from './request-url.js';
import { failedOrigin } from './network-origin.js';
import type { FailoverReason, FetchInit, FetchInput } from './types.js';
import type { ResilientFetcher } from './create-fetch.js';
import { CallDeadline, pausedUntil, Propagated, recordPause } from './propagate.js';
import type { PriorityLevel } from '../../admission/priority.js';
import { withFaults } from './fault-injection.js';
import type { Target } from './call-types.js';

export type { Settings, Target } from './call-types.js';

/** AbortSignal.any arrived in Node 20.3; before it, the caller's signal stops at the response. */
const anySignal = typeof AbortSignal.any === 'function';

/**
 * A pause with at most this much left is sat out by anyone: a timer may fire that many ms early
 * against the clock, so a retry that waited the whole pause can find a sliver of it left.
 */
export const pauseSlackMs = 15;

/** One call of the resilient fetch: its request, its attempts, the responses it has seen. */
export class Call {
  private readonly url: RequestUrl | undefined;
  private readonly path: string | undefined;
  private readonly request: Request | undefined;
  private readonly init: FetchInit;
  private readonly callerSignal: AbortSignal | undefined;
  private readonly traits: RequestTraits;
  /** The request's headers as given (for the pacing key), if any. */
  private readonly headers: Headers | undefined;
  /** Responses received, to cancel every one the caller will not get. */
  private responses: Response[] = [];
  private closed = false;
  /** The latest failed-status response: the only one a retry or hedge may still return. */
  private held: Response | undefined;
  /** With endpoints: per endpoint, the sequence number of this call's latest attempt there. */
  private readonly lastUsed: number[] | undefined;
  /** With endpoints: per endpoint, this call's attempts still running there. */
  private readonly running: number[] | undefined;
  private sequence = 0;
  /** Requests this call has sent: the next one's resend ordinal (`http.request.resend_count`). */
  private sent = 0;
  /** When the overall timeout (or the caller's propagated deadline) ends the call, on the policies' clock. */
  private readonly deadline: number;
  /** What this call sends on from the caller's admission scope (with `propagate`). */
  private readonly propagated: Propagated | undefined;
  /** With a propagated deadline: the bound it puts on the call. */
  private readonly bound: CallDeadline | undefined;
  /** With `propagate.priority`: the class the call is sent as, whose pauses it keeps to. */
  private readonly level: PriorityLevel | undefined;
  /** With endpoints: the endpoint of the latest attempt. */
  private current = 0;
  /**
   * With endpoints, for a pinned request: the endpoint it may have reached (an attempt there did
   * not provably fail before sending). Its retries go there only.
   */
  private reached: number | undefined;
  /** A failed status that asked for a delay, and the retry round it ended: no hedge may follow it at once. */
  private asked: { readonly round: number; readonly error: HttpStatusError } | undefined;

  constructor(
    private readonly fetcher: ResilientFetcher,
    input: FetchInput,
    init: FetchInit,
  ) {
    if (init === null) init = undefined; // fetch reads a null init as none
    if (init !== undefined && typeof init !== 'object') {
      throw new TypeError(`fetch: init must be an object, got ${show(init)}`);
    }
    this.init = init;
    const total = fetcher.settings.totalMs;
    this.deadline = total === undefined ? Infinity : fetcher.settings.clock.now() + total;
    const isRequest = input instanceof Request;
    if (fetcher.endpoints.length > 0) {
      if (typeof input !== 'string') {
        const got = isRequest ? 'a Request' : show(input);
        throw new TypeError(`fetch: with "endpoints", the input must be a path such as '/users', got ${got}`);
      }
      joinPath('http://check', input); // refuses an absolute URL now, before any attempt
      this.path = input;
      this.lastUsed = fetcher.endpoints.map(() => 0);
      this.running = fetcher.endpoints.map(() => 0);
    } else {
      // Throws new URL()'s TypeError for a relative or malformed URL, as fetch would reject; a
      // canonical string is not parsed here (fetch parses it), only its origin read off.
      this.url = RequestUrl.of(isRequest ? input.url : (input as string | URL));
      if (isRequest) this.request = input;
    }
    const method = init?.method ?? (isRequest ? input.method : 'GET');
    // Copied into Headers only when given as a plain object or list: that also checks them, as
    // before, so an invalid header still fails the call before any attempt.
    const given = init?.headers ?? (isRequest ? input.headers : undefined);
    const headers = given === undefined ? undefined : given instanceof Headers ? given : new Headers(given);
    // As in fetch, a null init.body leaves a Request's own body in place.
    const body = init?.body !== undefined && init.body !== null ? init.body : isRequest ? input.body : null;
    this.traits = requestTraits(method, headers, body);
    this.headers = headers;
    const signal = init?.signal ?? (isRequest ? input.signal : undefined);
    if (signal != null && !(signal instanceof AbortSignal)) {
      throw new TypeError(`fetch: init.signal must be an AbortSignal, got ${show(signal)}`);
    }
    this.callerSignal = signal ?? undefined;
    const propagate = fetcher.settings.propagate;
    this.propagated = propagate === undefined ? undefined : Propagated.current(propagate);
    this.level = Propagated.level(propagate, this.propagated);
    const deadline = this.propagated?.deadline;
    // Last, as it starts a timer: throws DeadlineExceededError when the deadline has passed.
    this.bound = deadline === undefined ? undefined : new CallDeadline(deadline, fetcher.settings.clock, this.callerSignal);
    if (this.bound !== undefined) this.deadline = Math.min(this.deadline, fetcher.settings.clock.now() + this.bound.leftMs());
  }

  start(): Promise<Response> {
    const policy = this.fetcher.pipelineFor(this.traits);
    // A propagated deadline aborts the call as a caller would (no breaker counts it), with its own reason.
    const signal = this.bound?.signal ?? this.callerSignal;
    const attempt = (context: ExecutionContext): Promise<Response> => this.attempt(context);
    let work: Promise<Response>;
    if (policy !== undefined) {
      work = policy.execute(attempt, signal === undefined ? undefined : { signal });
    } else if (signal?.aborted) {
      work = Promise.reject(signal.reason);
    } else {
      work = this.attempt(new RootContext(signal));
      if (signal !== undefined) work = untilAborted(work, signal);
    }
    return work.then(
      (response) => this.finish(response),
      (error: unknown) => {
        if (signal?.aborted) {
          this.finish(undefined);
          throw signal.reason;
        }
        if (error instanceof HttpStatusError && this.responses.includes(error.response)) return this.finish(error.response);
        this.finish(undefined);
        throw error;
      },
    );
  }

  /** Whether the caller aborted, or its propagated deadline has passed. */
  private callerGone(): boolean {
    return (this.bound?.signal ?? this.callerSignal)?.aborted === true;
  }

  /** Ends the call: every response but the one returned is cancelled, now or when it arrives. */
  private finish<R extends Response | undefined>(kept: R): R {
    this.closed = true;
    this.bound?.dispose();
    for (const response of this.responses) if (response !== kept) discard(response);
    this.responses = [];
    return kept;
  }

  private attempt(given: ExecutionContext): Promise<Response> {
    // Policies of this package always pass a Context; anything else gets a fresh one around its signal.
    const context = given instanceof Context ? given : new RootContext(given.signal);
    // A hedge started in the round where the server asked for a delay would ignore it: end the
    // round with that answer instead, so the retry waits the delay. (Hedges keep the round's number.)
    if (this.asked !== undefined && this.asked.round === context.attempt) return Promise.reject(this.asked.error);
    if (this.url !== undefined) {
      const url = this.url;
      const target = this.fetcher.originTarget(url.origin);
      return this.afterPause(target, context, () => this.through(target, url, context, -1));
    }
    return this.attemptEndpoints(context);
  }

  /**
   * Runs `go` once `target` is out of the pause its server asked for: at once if none runs; after
   * it if `serverBackoff` is 'wait' or only a timer's slack of it is left; else rejects with
   * RetryAfterError, so no request reaches a server inside the pause it asked every caller for.
   */
  private afterPause(target: Target, context: Context, go: () => Promise<Response>): Promise<Response> {
    const { clock, serverBackoff } = this.fetcher.settings;
    const left = pausedUntil(target, this.level) - clock.now();
    if (left <= 0) return go();
    if (left > pauseSlackMs && serverBackoff === 'fail-fast') {
      return Promise.reject(new RetryAfterError(target.origin, Math.ceil(left)));
    }
    // Checked again after the wait: another call may have been asked for a longer pause meanwhile.
    return sleep(clock, left, context.abortable()).then(() => this.afterPause(target, context, go));
  }

  /** Tries the endpoints in this call's order of preference until a breaker admits the attempt. */
  private async attemptEndpoints(context: Context): Promise<Response> {
    const targets = this.fetcher.endpointTargets;
    const { clock, serverBackoff } = this.fetcher.settings;
    // Within the slack, a pause is sat out (afterPause) rather than skipped.
    const now = clock.now() + pauseSlackMs;
    // An idempotency key is a promise to one server: a request that may have reached one stays.
    const order = this.reached !== undefined ? [this.reached] : preferenceOrder(this.lastUsed!);
    let refused: BrokenCircuitError | undefined;
    // A call's first attempt that finds the primary paused moves for that reason, not a failure.
    let refusedFrom: FailoverReason | undefined =
      this.sequence === 0 && pausedUntil(targets[0]!, this.level) > now ? 'server-backoff' : undefined;
    let pausedAt = Infinity;
    let paused: Target | undefined;
    for (const i of order) {
      const target = targets[i]!;
      // Inside a pause its server asked for: no request goes there, another endpoint may take it.
      const until = pausedUntil(target, this.level);
      if (until > now) {
        if (until < pausedAt) {
          paused = target;
          pausedAt = until;
        }
        continue;
      }
      try {
        const url = RequestUrl.atOrigin(joinPath(this.fetcher.endpoints[i]!.base, this.path!), target.origin);
        const from = refusedFrom;
        return await this.afterPause(target, context, () => this.through(target, url, context, i, from));
      } catch (error) {
        if (!isRejection(error)) throw error;
        if (i === this.current) refusedFrom = 'circuit-open';
        const wait = error instanceof BrokenCircuitError ? error.retryAfterMs : Infinity;
        if (refused === undefined || wait < refused.retryAfterMs) {
          refused = error instanceof BrokenCircuitError ? error : new BrokenCircuitError(wait, 'Every endpoint is unavailable');
        }
      }
    }
    if (paused !== undefined) {
      const left = Math.max(1, Math.ceil(pausedAt - clock.now()));
      if (serverBackoff === 'fail-fast') throw new RetryAfterError(paused.origin, left);
      await sleep(clock, left, context.abortable());
      return this.attemptEndpoints(context);
    }
    throw refused ?? new BrokenCircuitError(0, 'Every endpoint is unavailable');
  }

  /** One attempt on one origin: breaker → rate limit → adaptive throttle → attempt timeout → fetch. */
  private through(target: Target, url: RequestUrl, context: Context, index: number, refusedFrom?: FailoverReason): Promise<Response> {
    const inner = (c: ExecutionContext): Promise<Response> => {
      if (index >= 0) this.entered(index, refusedFrom);
      return this.limited(c as Context, url, index, target.throttle);
    };
    if (target.breaker === undefined) return inner(context);
    const run: Promise<Response> = invoke(target.breaker, inner, context);
    if (index >= 0) return run;
    // Counted so that an origin is dropped between calls, and its series only once its last
    // attempt has settled (else that attempt would record them again, see create-fetch.ts).
    target.active++;
    return run.finally(() => {
      if (--target.active > 0 || target.whenIdle === undefined) return;
      const idle = target.whenIdle;
      target.whenIdle = undefined;
      idle();
    });
  }

  /** Records that an attempt goes to endpoint `index`, and announces a failover. */
  private entered(index: number, refusedFrom: FailoverReason | undefined): void {
    const from = this.current;
    this.lastUsed![index] = ++this.sequence;
    this.current = index;
    if (index === from || !this.fetcher.announcing) return;
    const endpoints = this.fetcher.endpoints;
    const reason: FailoverReason = refusedFrom ?? (this.running![from]! > 0 ? 'hedge' : 'failure');
    this.fetcher.announce({ policy: this.fetcher.settings.name, from: endpoints[from]!.origin, to: endpoints[index]!.origin, reason });
  }

  private limited(context: Context, url: RequestUrl, index: number, throttle: AdaptiveThrottlePolicy | undefined): Promise<Response> {
    const limit = this.fetcher.settings.rateLimit;
    if (limit === undefined) return this.paced(context, url, index, throttle);
    let key: string;
    try {
      key = limit.key === undefined ? url.origin : limit.key(url.url);
    } catch (error) {
      return Promise.reject(error);
    }
    const signal = context.abortable();
    return limit.limiter.consume(key, signal === undefined ? { cost: limit.cost } : { cost: limit.cost, signal }).then(
      (decision) => {
        if (goesOn(limit.limiter, decision)) return this.paced(context, url, index, throttle);
        // A fail-closed outage denial too is a used-up limit here (never counted by the breaker).
        throw limitError(limit.limiter, decision);
      },
      (error: unknown) => {
        // A caller who gave up while the limiter decided is not the server's failure either.
        if (this.callerGone()) throw new DOMException('The caller aborted the request', 'AbortError');
        throw error;
      },
    );
  }

  /** The pacing key of an attempt: its origin, and the `key` function's part when given. */
  private pacingKey(url: RequestUrl): string {
    const key = this.fetcher.settings.pacing?.key;
    return key === undefined ? url.origin : `${url.origin} ${key(url.url, this.headers ?? new Headers())}`;
  }

  /** Past our own rate limit: waits for the origin's pacing slot (with `pacing`), failing fast beyond `maxWaitMs`. */
  private paced(context: Context, url: RequestUrl, index: number, throttle: AdaptiveThrottlePolicy | undefined): Promise<Response> {
    const pacing = this.fetcher.settings.pacing;
    if (pacing === undefined) return this.throttled(context, url, index, throttle);
    let key: string;
    try {
      key = this.pacingKey(url);
    } catch (error) {
      return Promise.reject(error);
    }
    return pacing.pacer.acquire(key, context.abortable()).then(
      () => this.throttled(context, url, index, throttle),
      (error: unknown) => {
        if (this.callerGone()) throw new DOMException('The caller aborted the request', 'AbortError');
        if (typeof error === 'object' && error !== null) paced.add(error);
        throw error;
      },
    );
  }

  /** Past our own rate limit and pacing: the origin's throttle, when it has one, decides whether the attempt goes out. */
  private throttled(context: Context, url: RequestUrl, index: number, throttle: AdaptiveThrottlePolicy | undefined): Promise<Response> {
    if (throttle === undefined) return this.timed(context, url, index);
    return invoke(throttle, (c) => this.timed(c as Context, url, index), context);
  }

  private timed(context: Context, url: RequestUrl, index: number): Promise<Response> {
    const send = (c: ExecutionContext): Promise<Response> => this.send(c as Context, url, index);
    const limit = this.fetcher.settings.attemptTimeout;
    if (limit === undefined) return send(context);
    return (invoke(limit as ContextualPolicy, send, context) as Promise<Response>).catch((error: unknown) => {
      // Only this attempt's own timeout: an overall timeout or a lost hedge is nobody's slowness.
      if (error instanceof TimeoutError && context.abortable()?.aborted !== true) this.blameHop(error, url, context);
      throw error;
    });
  }

  /**
   * A network error or attempt timeout met on a hop a followed redirect led to is that origin's
   * failure (see network-origin.ts): its breaker counts it, while the breaker of the origin that
   * redirected — it answered — ignores it. Marked `elsewhere`, the error also no longer passes
   * for a request that never left.
   */
  private blameHop(error: unknown, url: RequestUrl, context: Context): void {
    const at = failedOrigin(error);
    if (at === undefined || at === url.origin) return;
    elsewhere.add(error as object);
    // A copy, not marked: the breaker of the origin where it happened must count it.
    const own =
      error instanceof TimeoutError
        ? new TimeoutError(error.timeoutMs)
        : new TypeError((error as Error).message, { cause: (error as Error).cause });
    this.judge(at, context, own);
  }

  /** The outbound request itself, inside every policy so that async context flows into it. */
  private async send(context: Context, url: RequestUrl, index: number): Promise<Response> {
    const caller = this.callerSignal;
    // No signal at all when nothing can abort the attempt (no timeout, hedge or caller's signal):
    // fetch then has none to follow. The caller's signal also reaches the body after the call
    // returns, as with plain fetch; AbortSignal.any follows it without adding a listener that
    // could outlive the call. (With a caller's signal, the context always has one.)
    const own = context.abortable();
    const signal = caller === undefined || !anySignal || own === undefined ? own : AbortSignal.any([own, caller]);
    const settings = this.fetcher.settings;
    const fetchImpl = settings.fetch ?? globalThis.fetch;
    if (index >= 0) this.running![index]!++;
    const reachedBefore = this.reached;
    // Pinned from the moment it is sent, not when it fails: a timeout's abort may reach the
    // retry before this attempt's own rejection does.
    if (index >= 0 && this.traits.pinned && !settings.failoverKeyed) this.reached = index;
    let response: Response;
    try {
      const request = this.request ?? url.href;
      const given = signal === undefined ? this.init : this.init === undefined ? { signal } : { ...this.init, signal };
      const init = this.propagated === undefined ? given : this.propagated.init(given, this.request);
      const faults = settings.faults;
      const go = (): Promise<Response> => (faults === undefined ? fetchImpl(request, init) : withFaults(faults, context, () => fetchImpl(request, init)));
      // Tracing, when installed, tells the HTTP client span which resend this is.
      const scope = currentSendScope();
      const resendCount = this.sent++;
      response = await (scope === undefined ? go() : scope({ policy: settings.name, resendCount }, go));
    } catch (error) {
      // The caller cancelled: not the server's fault, so no breaker may count it (whatever reason
      // the caller gave, or its propagated deadline passing); the call itself rejects with the
      // caller's reason.
      if (this.callerGone()) {
        if (neverSent(error)) this.reached = reachedBefore;
        throw new DOMException('The caller aborted the request', 'AbortError');
      }
      // An attempt aborted (its timeout, a lost hedge, the overall timeout) is judged in timed().
      if (signal?.aborted !== true) this.blameHop(error, url, context);
      if (neverSent(error)) this.reached = reachedBefore;
      throw error;
    } finally {
      if (index >= 0) this.running![index]!--;
    }
    const pacing = settings.pacing;
    if (pacing !== undefined) pacing.pacer.learn(this.pacingKey(url), response.status, response.headers);
    if (this.closed) {
      discard(response); // a hedge or timed-out attempt that answered after the call ended
    } else {
      this.responses.push(response);
    }
    // Followed redirects end at another origin: that origin answered, so its breaker and its pause
    // judge the answer, never those of the origin that only redirected (issue 12).
    const answered = answeredBy(response, url);
    if (!settings.retryOn.has(response.status)) {
      if (answered !== undefined) this.judge(answered, context, undefined);
      return response;
    }
    // Retry and hedge keep only the latest error: an earlier failed response can no longer be
    // returned, so its connection is freed now rather than when the call ends.
    if (this.held !== undefined) discard(this.held);
    this.held = response;
    const asked = delayHint(response.headers, Date.now());
    // The pause is the server's word to every caller, not only to this call: record it on the
    // origin. With per-key pacing it is the word to the key that met it, which pacing keeps (and
    // shares through its store): the origin's other keys go on.
    if (asked !== undefined && asked > 0 && pacing?.key === undefined) {
      const fetcher = this.fetcher;
      const target =
        answered !== undefined ? fetcher.targetOf(answered) : index >= 0 ? fetcher.endpointTargets[index]! : fetcher.originTarget(url.origin);
      recordPause(target, this.level, settings.clock.now() + asked);
    }
    const hint = index >= 0 && answered === undefined ? this.endpointWait(index) : asked;
    const waits = settings.serverBackoff === 'wait';
    // RFC 9110 §10.2.3: the server's pause takes precedence over our cap. A retry sooner than asked
    // only loads a server that said it is busy, so the call ends here and says when to come back.
    if (!waits && hint !== undefined && hint > settings.maxDelayMs && this.fetcher.retriesStatuses(this.traits)) {
      const ended = new RetryAfterError(answered ?? url.origin, hint, response.status);
      if (answered !== undefined) this.judgedElsewhere(ended, answered, context);
      throw ended;
    }
    const error = new HttpStatusError(response, url.href, hint);
    if (answered !== undefined) this.judgedElsewhere(error, answered, context);
    if (hint !== undefined && settings.clock.now() + (waits ? hint : Math.min(hint, settings.maxDelayMs)) >= this.deadline) {
      outlasting.add(error);
    }
    if (hint !== undefined) this.asked = { round: context.attempt, error };
    throw error;
  }

  /** Marks a failed answer as another origin's, and has that origin's breaker count it. */
  private judgedElsewhere(error: HttpStatusError | RetryAfterError, origin: string, context: Context): void {
    elsewhere.add(error);
    // A copy, not marked: the breaker of the origin that answered must count it.
    const own =
      error instanceof HttpStatusError
        ? new HttpStatusError(error.response, error.response.url, error.retryAfterMs)
        : new RetryAfterError(error.origin, error.retryAfterMs, error.status);
    this.judge(origin, context, own);
  }

  /**
   * Records an outcome (a success when `failure` is undefined) on `origin`'s breaker, as if the
   * attempt had run through it. An open breaker turns it away: nothing to record then.
   */
  private judge(origin: string, context: Context, failure: Error | undefined): void {
    const breaker = this.fetcher.targetOf(origin).breaker;
    if (breaker === undefined) return;
    const outcome = (): Promise<void> => (failure === undefined ? Promise.resolve() : Promise.reject(failure));
    invoke(breaker, outcome, context).catch(() => {});
  }

  /**
   * With endpoints: how long the retry after a failed status on endpoint `index` should wait:
   * nothing (the backoff) while a healthy endpoint is free to take it at once, else until the
   * first healthy endpoint's asked-for pause ends.
   */
  private endpointWait(index: number): number | undefined {
    const now = this.fetcher.settings.clock.now();
    let wait = Infinity;
    this.fetcher.endpointTargets.forEach((t, i) => {
      const state = t.breaker?.state;
      if (i === index || (state !== 'open' && state !== 'isolated')) wait = Math.min(wait, Math.max(0, pausedUntil(t, this.level) - now));
    });
    return wait > 0 ? wait : undefined;
  }
}
