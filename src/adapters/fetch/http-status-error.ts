import { brandErrorClass, BulwarkError } from '../../core/errors.js';

/**
 * A response whose status is in `retryOn`, seen by the policies as a failed attempt: the retry
 * policy retries it (after `retryAfterMs` when the server asked for a delay) and the endpoint's
 * breaker counts it when the status is 5xx. The fetch itself never rejects with it: when no
 * attempt is left it resolves with `response`, as `fetch` would. Listeners of `onRetry`, the
 * breaker and the diagnostics channels see it as the `error`.
 * @example
 * const f = createFetch();
 * f.onRetry(({ error }) => { if (error instanceof HttpStatusError) console.log(error.status, error.retryAfterMs); });
 */
export class HttpStatusError extends BulwarkError {
  declare readonly code: 'ERR_BULWARK_HTTP_STATUS';
  /** The response's status, e.g. 503. */
  readonly status: number;
  /** The URL the attempt was sent to. */
  readonly url: string;
  /**
   * The delay the response asked for (`Retry-After` or the `RateLimit` headers), in ms, which a
   * retry honours (a pause beyond its `maxDelayMs` ends the call with a `RetryAfterError`); undefined when it asked for none.
   */
  readonly retryAfterMs: number | undefined;
  /** The response. Its body is cancelled once the response is discarded for a retry. */
  readonly response: Response;

  static {
    brandErrorClass(this, 'ERR_BULWARK_HTTP_STATUS');
  }

  constructor(response: Response, url: string, retryAfterMs: number | undefined, options?: ErrorOptions) {
    super(`HTTP ${response.status} from ${url}`, 'ERR_BULWARK_HTTP_STATUS', options);
    this.name = 'HttpStatusError';
    this.status = response.status;
    this.url = url;
    this.retryAfterMs = retryAfterMs;
    this.response = response;
  }
}
