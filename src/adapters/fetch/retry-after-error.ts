import { brandErrorClass, BulwarkError, fastFailError } from '../../core/errors.js';

/**
 * Rejected by a fetch from {@link createFetch} when a server asked for a pause (`Retry-After`, or
 * the `RateLimit` headers) that the fetch will not sit out: the pause is longer than the retry's
 * `maxDelayMs`, or the origin is still inside a pause it asked of an earlier call. Retrying sooner
 * would only load a server that said it is busy, so the call ends now and `retryAfterMs` says
 * when the origin will take requests again. (`serverBackoff: 'wait'` waits instead.)
 * @example
 * try { await f('http://api.internal/prices'); }
 * catch (err) { if (err instanceof RetryAfterError) scheduleIn(err.retryAfterMs); }
 */
export class RetryAfterError extends BulwarkError {
  declare readonly code: 'ERR_BULWARK_RETRY_AFTER';
  /** The origin that asked for the pause, e.g. `http://api.internal:8080`. */
  readonly origin: string;
  /** Milliseconds until the origin asked to be called again. */
  readonly retryAfterMs: number;
  /** The status of the response that asked, when this call received it (e.g. 503); else undefined. */
  readonly status: number | undefined;

  static {
    brandErrorClass(this, 'ERR_BULWARK_RETRY_AFTER');
    fastFailError(this);
  }

  constructor(origin: string, retryAfterMs: number, status?: number, options?: ErrorOptions) {
    super(`${origin} asked for no request during the next ${retryAfterMs} ms`, 'ERR_BULWARK_RETRY_AFTER', options);
    this.name = 'RetryAfterError';
    this.origin = origin;
    this.retryAfterMs = retryAfterMs;
    this.status = status;
  }
}
