/** Brand shared by every copy of bulwark loaded in a process (ESM and CJS builds alike). */
const brand = Symbol.for('bulwark.error');

/**
 * Marks a fast-fail class (a static, so a class derived from one is fast-fail too): its errors are
 * made without capturing stack frames. Local to this copy: only its own constructor reads it.
 */
const fastFail = Symbol('bulwark.fastFail');

/** Stable error codes, one per error class. */
export type BulwarkErrorCode =
  | 'ERR_BULWARK_BROKEN_CIRCUIT'
  | 'ERR_BULWARK_ISOLATED_CIRCUIT'
  | 'ERR_BULWARK_TIMEOUT'
  | 'ERR_BULWARK_DEADLINE_EXCEEDED'
  | 'ERR_BULWARK_BULKHEAD_REJECTED'
  | 'ERR_BULWARK_CONCURRENCY_LIMITED'
  | 'ERR_BULWARK_RATE_LIMITED'
  | 'ERR_BULWARK_QUOTA_EXCEEDED'
  | 'ERR_BULWARK_STORE_UNAVAILABLE'
  | 'ERR_BULWARK_RATE_LIMIT_STORE_UNAVAILABLE'
  | 'ERR_BULWARK_HTTP_STATUS'
  | 'ERR_BULWARK_RETRY_AFTER'
  | 'ERR_BULWARK_THROTTLED';

/**
 * The code each of bulwark's error classes stands for (`null` for {@link BulwarkError}: any code),
 * so that `instanceof` recognises errors made by another copy of bulwark. A class not in here (one
 * you derive yourself) keeps the ordinary `instanceof`.
 */
const classCodes = new WeakMap<object, BulwarkErrorCode | null>();

const ordinaryHasInstance = Function.prototype[Symbol.hasInstance];

/**
 * Base class of every error bulwark itself rejects with. Errors thrown by your own functions pass
 * through the policies untouched. `instanceof` holds across copies of bulwark (the ESM and the
 * CommonJS build loaded side by side): `instanceof BulwarkError` matches any bulwark error, and
 * each subclass matches the errors carrying its own `code`. The errors a call is refused with at
 * request rate (`BrokenCircuitError`, `IsolatedCircuitError`, `BulkheadRejectedError`, `ConcurrencyLimitedError`,
 * `RateLimitedError`, `QuotaExceededError`, `RateLimitStoreUnavailableError`,
 * `StoreUnavailableError`, `RetryAfterError`) carry no stack frames: their `stack` is the one line
 * `Name: message`. Others (`TimeoutError`, `HttpStatusError`, this class) capture the usual stack.
 * @example
 * if (err instanceof BulwarkError) console.log(err.code);
 */
export class BulwarkError extends Error {
  static {
    classCodes.set(this, null);
  }

  /**
   * Our own classes first (one prototype walk, as a plain `instanceof`); then an error branded by
   * another copy of bulwark, matched by its stable code.
   */
  static override [Symbol.hasInstance](value: unknown): boolean {
    if (ordinaryHasInstance.call(this, value)) return true;
    const code = classCodes.get(this);
    return code !== undefined && isBulwarkError(value, code ?? undefined);
  }

  /** A stable, machine-readable code such as `ERR_BULWARK_TIMEOUT`. */
  readonly code: BulwarkErrorCode;

  constructor(message: string, code: BulwarkErrorCode, options?: ErrorOptions) {
    // A rejection made at request rate (an open breaker, a full bulkhead, a denied rate limit)
    // would spend most of its cost capturing frames nobody reads: the caller's own await chain
    // says where the call came from. Those classes are built with no frames; see fastFailError.
    const limit = Error.stackTraceLimit;
    const shallow = (new.target as { [fastFail]?: boolean })[fastFail] === true && setStackTraceLimit(0);
    try {
      super(message, options);
    } finally {
      if (shallow) Error.stackTraceLimit = limit;
    }
    this.code = code;
    this.name = 'BulwarkError';
  }
}

// The brand lives on the prototype, inherited by every instance, rather than defined on each error
// (a defineProperty per rejection): still not enumerable, so it stays out of logs and JSON.
Object.defineProperty(BulwarkError.prototype, brand, { value: true });

/**
 * Sets `Error.stackTraceLimit`; false where it cannot be set (`node --frozen-intrinsics` freezes
 * `Error`): the error is then made with its full stack rather than not at all.
 */
function setStackTraceLimit(limit: number): boolean {
  try {
    Error.stackTraceLimit = limit;
    return true;
  } catch {
    return false;
  }
}

/**
 * Lets `instanceof cls` recognise errors with `code` from other copies of bulwark. Internal: for
 * bulwark's own error classes, not exported from the package.
 */
export function brandErrorClass(cls: abstract new (...args: never[]) => BulwarkError, code: BulwarkErrorCode): void {
  classCodes.set(cls, code);
}

/**
 * Makes `cls` a fast-fail class: a rejection that can happen at full request rate. Its errors carry
 * no stack frames, so their `stack` is the single line `Name: message` (what `String(err)` gives);
 * `code`, `name`, `message`, `cause`, the class's own fields and `instanceof` are unchanged.
 * Capturing frames was most of what such a rejection cost. Internal, like {@link brandErrorClass}.
 */
export function fastFailError(cls: abstract new (...args: never[]) => BulwarkError): void {
  Object.defineProperty(cls, fastFail, { value: true });
}

/**
 * Internal: whether `error` is a cancellation (a DOMException or any error named `AbortError`,
 * which is what fetch, timers and AbortSignal.reason give). Policies do not count or retry it.
 */
export function isAbortError(error: unknown): boolean {
  return typeof error === 'object' && error !== null && (error as { name?: unknown }).name === 'AbortError';
}

/**
 * True when `value` is an error raised by bulwark (any copy of it), optionally with the given code.
 * @example
 * if (isBulwarkError(err, 'ERR_BULWARK_TIMEOUT')) retryLater();
 */
export function isBulwarkError(value: unknown, code?: BulwarkErrorCode): value is BulwarkError {
  return (
    typeof value === 'object' &&
    value !== null &&
    (value as Record<symbol, unknown>)[brand] === true &&
    (code === undefined || (value as BulwarkError).code === code)
  );
}

/**
 * Rejected by a circuit breaker that is open, or half-open with all probe slots taken.
 * @example
 * try { await breaker.execute(call); } catch (e) { if (e instanceof BrokenCircuitError) useCache(); }
 */
export class BrokenCircuitError extends BulwarkError {
  /** Milliseconds until the breaker will admit a probe call (0 when half-open). */
  readonly retryAfterMs: number;

  static {
    brandErrorClass(this, 'ERR_BULWARK_BROKEN_CIRCUIT');
    fastFailError(this);
  }

  constructor(retryAfterMs: number, message = 'Circuit breaker is open', options?: ErrorOptions) {
    super(message, 'ERR_BULWARK_BROKEN_CIRCUIT', options);
    this.name = 'BrokenCircuitError';
    this.retryAfterMs = retryAfterMs;
  }
}

/**
 * Rejected by a circuit breaker that has been isolated by hand with `breaker.isolate()`.
 * @example
 * const hold = breaker.isolate(); // every call now rejects with IsolatedCircuitError
 */
export class IsolatedCircuitError extends BulwarkError {
  static {
    brandErrorClass(this, 'ERR_BULWARK_ISOLATED_CIRCUIT');
    fastFailError(this);
  }

  constructor(options?: ErrorOptions) {
    super('Circuit breaker is isolated', 'ERR_BULWARK_ISOLATED_CIRCUIT', options);
    this.name = 'IsolatedCircuitError';
  }
}

/**
 * Rejected by a timeout policy when its deadline passes; also the `reason` of the aborted signal.
 * @example
 * await timeout(500).execute(({ signal }) => fetch(url, { signal }));
 */
export class TimeoutError extends BulwarkError {
  /** The timeout that expired, in milliseconds. */
  readonly timeoutMs: number;

  static {
    brandErrorClass(this, 'ERR_BULWARK_TIMEOUT');
  }

  constructor(timeoutMs: number, options?: ErrorOptions) {
    super(`Operation timed out after ${timeoutMs} ms`, 'ERR_BULWARK_TIMEOUT', options);
    this.name = 'TimeoutError';
    this.timeoutMs = timeoutMs;
  }
}

/**
 * Rejected by a bulkhead whose concurrent slots and queue are all taken.
 * @example
 * const pool = bulkhead({ maxConcurrent: 10, maxQueue: 5 });
 */
export class BulkheadRejectedError extends BulwarkError {
  /** Calls running when this one was rejected. */
  readonly active: number;
  /** Calls waiting in the queue when this one was rejected. */
  readonly queued: number;

  static {
    brandErrorClass(this, 'ERR_BULWARK_BULKHEAD_REJECTED');
    fastFailError(this);
  }

  constructor(active: number, queued: number, options?: ErrorOptions) {
    super(`Bulkhead is full (${active} running, ${queued} queued)`, 'ERR_BULWARK_BULKHEAD_REJECTED', options);
    this.name = 'BulkheadRejectedError';
    this.active = active;
    this.queued = queued;
  }
}

/** Why an admission controller turned a request away (see `AdmissionRejectReason`). */
export type ConcurrencyLimitedReason = 'limit' | 'priority' | 'fairness' | 'queueTimeout' | 'load' | 'deadline';

/**
 * Rejected by `adaptiveConcurrency` when its admission controller turns a call away: the limit is
 * reached (and no queue room), the call's class is being shed, its tenant holds more than its
 * share, it waited `maxWaitMs`, or the load signal reports pressure.
 * @example
 * if (err instanceof ConcurrencyLimitedError) res.set('Retry-After', String(Math.ceil(err.retryAfterMs / 1000)));
 */
export class ConcurrencyLimitedError extends BulwarkError {
  /** Why: `'limit'`, `'priority'`, `'fairness'`, `'queueTimeout'`, `'load'` or `'deadline'`. */
  readonly reason: ConcurrencyLimitedReason;
  /** The concurrency limit at the moment of rejection. */
  readonly limit: number;
  /** Calls in flight at the moment of rejection. */
  readonly inFlight: number;
  /** About one call's latency: when trying again may find a free slot. */
  readonly retryAfterMs: number;

  static {
    brandErrorClass(this, 'ERR_BULWARK_CONCURRENCY_LIMITED');
    fastFailError(this);
  }

  constructor(reason: ConcurrencyLimitedReason, limit: number, inFlight: number, retryAfterMs: number, options?: ErrorOptions) {
    super(`Concurrency limited (${reason}; limit ${limit}, ${inFlight} in flight)`, 'ERR_BULWARK_CONCURRENCY_LIMITED', options);
    this.name = 'ConcurrencyLimitedError';
    this.reason = reason;
    this.limit = limit;
    this.inFlight = inFlight;
    this.retryAfterMs = retryAfterMs;
  }
}

/** The outcome of one rate-limit decision. */
export interface RateLimitDecision {
  /** Whether the request was admitted. */
  readonly allowed: boolean;
  /** The limit that applies to the key. */
  readonly limit: number;
  /** Units left in the current window (never negative). */
  readonly remaining: number;
  /** Milliseconds until the limit fully resets. */
  readonly resetMs: number;
  /** Milliseconds to wait before a request of the same cost can be admitted (0 when allowed). */
  readonly retryAfterMs: number;
}

/**
 * Rejected when a rate limit denies a call; carries the decision, and `retryAfterMs` which the
 * retry policy honours as its next delay.
 * @example
 * if (err instanceof RateLimitedError) console.log(`retry in ${err.retryAfterMs} ms`);
 */
export class RateLimitedError extends BulwarkError {
  readonly limit: number;
  readonly remaining: number;
  readonly resetMs: number;
  readonly retryAfterMs: number;

  static {
    brandErrorClass(this, 'ERR_BULWARK_RATE_LIMITED');
    fastFailError(this);
  }

  constructor(decision: RateLimitDecision, options?: ErrorOptions) {
    super(`Rate limit exceeded; retry after ${decision.retryAfterMs} ms`, 'ERR_BULWARK_RATE_LIMITED', options);
    this.name = 'RateLimitedError';
    this.limit = decision.limit;
    this.remaining = decision.remaining;
    this.resetMs = decision.resetMs;
    this.retryAfterMs = decision.retryAfterMs;
  }
}

/**
 * Rejected when a quota for the current calendar period is used up.
 * @example
 * if (err instanceof QuotaExceededError) console.log(`quota resets in ${err.resetMs} ms`);
 */
export class QuotaExceededError extends BulwarkError {
  readonly limit: number;
  readonly remaining: number;
  /** Milliseconds until the period ends and the quota resets. */
  readonly resetMs: number;
  readonly retryAfterMs: number;

  static {
    brandErrorClass(this, 'ERR_BULWARK_QUOTA_EXCEEDED');
    fastFailError(this);
  }

  constructor(limit: number, remaining: number, resetMs: number, options?: ErrorOptions) {
    super(`Quota of ${limit} exceeded; resets in ${resetMs} ms`, 'ERR_BULWARK_QUOTA_EXCEEDED', options);
    this.name = 'QuotaExceededError';
    this.limit = limit;
    this.remaining = remaining;
    this.resetMs = resetMs;
    this.retryAfterMs = resetMs;
  }
}

/**
 * Rejected by a remote store (such as the Redis store) for an operation it could not carry out:
 * the server did not answer within the store's timeout, the connection is down, or the store has
 * stopped trying for a while after repeated failures. `cause` holds the underlying error.
 * Decisions never reject with it: they follow the store's `onStoreError` instead.
 * @example
 * await limiter.refund(key).catch((err) => { if (err instanceof StoreUnavailableError) queueForLater(key); });
 */
export class StoreUnavailableError extends BulwarkError {
  /** The store that failed, e.g. `'redis'`. */
  readonly store: string;

  static {
    brandErrorClass(this, 'ERR_BULWARK_STORE_UNAVAILABLE');
    fastFailError(this);
  }

  constructor(store: string, message: string, options?: ErrorOptions) {
    super(`${store} store unavailable: ${message}`, 'ERR_BULWARK_STORE_UNAVAILABLE', options);
    this.name = 'StoreUnavailableError';
    this.store = store;
  }
}

/**
 * Rejected by the `rateLimit` policy when its limiter or quota denied a call only because its
 * store could not decide (a Redis outage under `onStoreError: 'fail-closed'`): nothing says the
 * limit or the quota is used up. `retryAfterMs` is a short hint (a few seconds at most) of when
 * the store may answer again, which a retry policy outside honours as its next delay.
 * @example
 * if (err instanceof RateLimitStoreUnavailableError) console.log(`store down; try again in ${err.retryAfterMs} ms`);
 */
export class RateLimitStoreUnavailableError extends BulwarkError {
  /** The limiter or quota that could not decide. */
  readonly policy: string;
  /** Milliseconds after which trying again may reach the store (a hint, never a quota's reset). */
  readonly retryAfterMs: number;

  static {
    brandErrorClass(this, 'ERR_BULWARK_RATE_LIMIT_STORE_UNAVAILABLE');
    fastFailError(this);
  }

  constructor(policy: string, retryAfterMs: number, options?: ErrorOptions) {
    super(
      `Rate limit store unavailable for "${policy}"; denied without a decision, retry after ${retryAfterMs} ms`,
      'ERR_BULWARK_RATE_LIMIT_STORE_UNAVAILABLE',
      options,
    );
    this.name = 'RateLimitStoreUnavailableError';
    this.policy = policy;
    this.retryAfterMs = retryAfterMs;
  }
}

/**
 * Gives `error` a standard `cause` (non-enumerable, like one set through the constructor), for an
 * error made before its cause was known.
 * Returns `error`. Internal: not exported from the package.
 */
export function withCause<E extends Error>(error: E, cause: unknown): E {
  Object.defineProperty(error, 'cause', { value: cause, writable: true, configurable: true });
  return error;
}
