// How bulwark/fetch judges what an attempt brought back: what its breaker counts, what its retry
// retries, which origin answered, and bodies nobody will read.
import { defaultHandle } from '../../circuit/circuit-breaker.js';
import { isBulwarkError } from '../../core/errors.js';
import { defaultRetryHandle } from '../../retry/retry.js';
import { HttpStatusError } from './http-status-error.js';
import { RetryAfterError } from './retry-after-error.js';

/** A breaker turned the attempt away (open, isolated, or half-open with its probes taken). */
export function isRejection(error: unknown): boolean {
  return isBulwarkError(error, 'ERR_BULWARK_BROKEN_CIRCUIT') || isBulwarkError(error, 'ERR_BULWARK_ISOLATED_CIRCUIT');
}

/**
 * What a breaker counts: network errors, timeouts and 5xx statuses. Not a 408 or 429 (about this
 * client, not the server's health), not a rate limit of our own, not a bad argument, not a cancellation.
 */
export function breakerHandle(error: unknown): boolean {
  if (typeof error === 'object' && error !== null && elsewhere.has(error)) return false;
  if (error instanceof HttpStatusError) return error.status >= 500;
  if (error instanceof RetryAfterError) return error.status !== undefined && error.status >= 500;
  // A bad argument (see retryHandle): the request was refused before it left, the server is fine.
  if (error instanceof TypeError && error.cause === undefined) return false;
  if (isBulwarkError(error, 'ERR_BULWARK_RATE_LIMITED') || isBulwarkError(error, 'ERR_BULWARK_QUOTA_EXCEEDED')) return false;
  // The origin's own throttle turned the attempt away: nothing was sent.
  if (isBulwarkError(error, 'ERR_BULWARK_THROTTLED')) return false;
  return defaultHandle(error);
}

/**
 * What an origin's adaptive throttle counts as accepted among failed attempts: a failed status
 * other than 429 and 5xx (a 408: the origin took the request), an answer from another origin
 * after a redirect, a bad argument. Refused: 429, 5xx, network errors, attempt timeouts.
 */
export function throttleAccepts(error: unknown): boolean {
  if (typeof error === 'object' && error !== null && elsewhere.has(error)) return true;
  if (error instanceof HttpStatusError) return error.status !== 429 && error.status < 500;
  return error instanceof TypeError && error.cause === undefined;
}

/**
 * Failed answers that came from another origin than the attempt's, after a redirect: judged by
 * the breaker of the origin that answered, so the breaker of the one that redirected ignores them.
 */
export const elsewhere = new WeakSet<object>();

/** Attempts the `pacing` option failed fast (a slot beyond `maxWaitMs`): never retried, that is the point. */
export const paced = new WeakSet<object>();

/**
 * Failed statuses whose asked-for delay would outlast the call's overall deadline: retrying them
 * could only end in a TimeoutError, so the call returns the response at once instead.
 */
export const outlasting = new WeakSet<HttpStatusError>();

/**
 * What a retry of an idempotent request retries: failed statuses, network errors, timeouts and
 * rate limits. Not a TypeError without a cause: undici's network errors always carry one, so
 * that is a bad argument (an invalid header, a body on a GET) that would fail every time.
 */
export function retryHandle(error: unknown): boolean {
  if (typeof error === 'object' && error !== null && paced.has(error)) return false;
  if (error instanceof HttpStatusError) return !outlasting.has(error);
  if (error instanceof RetryAfterError) return false;
  if (error instanceof TypeError && error.cause === undefined) return false;
  return defaultRetryHandle(error);
}

/** The origin that answered, when redirects led the attempt away from the one it was sent to. */
export function answeredBy(response: Response, sent: { readonly origin: string }): string | undefined {
  if (!response.redirected || response.url === '') return undefined;
  let origin: string;
  try {
    origin = new URL(response.url).origin;
  } catch {
    return undefined;
  }
  return origin === sent.origin ? undefined : origin;
}


/** Cancels a body nobody will read, so undici frees its connection. */
export function discard(response: Response): void {
  const body = response.body;
  if (body === null || body.locked || response.bodyUsed) return;
  body.cancel().catch(() => {});
}
