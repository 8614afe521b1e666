// Where a network error or an attempt timeout happened, when a followed redirect took the
// request to another origin.
//
// fetch follows redirects itself and, when a later hop fails (B refuses the connection or resets
// it), rejects with TypeError('fetch failed') and no response: nothing in the error says which
// origin failed. undici (Node's fetch) publishes every failed request on its
// `undici:request:error` channel, with the request's origin and the very error object that fetch
// then puts in its rejection's `cause` — for an abort, the abort reason itself, so an attempt
// timeout while B keeps the request waiting is B's too. Keyed by that object, the origin is
// exact, costs one WeakMap entry per failed request, and leaves redirects to fetch. (Following
// redirects by hand with `redirect: 'manual'` would mean re-implementing fetch's rules — method
// changes, dropped bodies and credentials, the hop limit — and would change `response.redirected`
// and `response.url` for callers.) With a `fetch` that publishes nothing, the failure counts for
// the origin the request was sent to, as before.
import diagnosticsChannel from 'node:diagnostics_channel';
import { TimeoutError } from '../../core/errors.js';

/** The channel undici publishes `{ request, error }` on when a request fails. */
const requestError = 'undici:request:error';

/** Per low-level error undici reported, the origin of the request it failed. */
const failedAt = new WeakMap<object, string>();
let watching = false;

function record(message: unknown): void {
  const { request, error } = (message ?? {}) as { request?: { origin?: unknown }; error?: unknown };
  const origin = request?.origin;
  if (typeof error !== 'object' || error === null || typeof origin !== 'string') return;
  try {
    failedAt.set(error, new URL(origin).origin);
  } catch {
    // not an absolute origin: nothing to attribute
  }
}

/** Starts recording where undici's requests fail (once per process; from the first createFetch). */
export function watchNetworkErrors(): void {
  if (watching) return;
  watching = true;
  diagnosticsChannel.subscribe(requestError, record);
}

/**
 * The origin where the failure behind a rejected fetch happened, if undici reported it: for a
 * network error, fetch's TypeError carries undici's error as `cause`; for an attempt timeout,
 * undici reports the abort reason itself (our TimeoutError) against the request it aborted.
 * @example
 * const at = failedOrigin(await fetch(url).catch((e) => e)); // 'http://b:8080' after a 302 to b
 */
export function failedOrigin(error: unknown): string | undefined {
  if (error instanceof TimeoutError) return failedAt.get(error);
  if (!(error instanceof TypeError)) return undefined;
  const cause = error.cause;
  return typeof cause === 'object' && cause !== null ? failedAt.get(cause) : undefined;
}
