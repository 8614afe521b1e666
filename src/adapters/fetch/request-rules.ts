import { elsewhere } from './outcomes.js';

/** Methods RFC 9110 defines as idempotent, which bulwark retries without an idempotency key. */
const idempotentMethods = new Set(['GET', 'HEAD', 'OPTIONS', 'PUT', 'DELETE']);
/** Methods without side effects, the only ones hedged (two copies may run at once). */
const safeMethods = new Set(['GET', 'HEAD', 'OPTIONS']);

/**
 * True for methods that may be sent again after a failure: GET, HEAD, OPTIONS, PUT, DELETE
 * (case-insensitive).
 * @example
 * isIdempotentMethod('put'); // true
 * isIdempotentMethod('POST'); // false
 */
export function isIdempotentMethod(method: string): boolean {
  return idempotentMethods.has(method.toUpperCase());
}

/**
 * True for methods without side effects (GET, HEAD, OPTIONS): the only ones hedged, since a
 * hedge runs two copies of a request at the same time.
 * @example
 * isSafeMethod('GET'); // true
 */
export function isSafeMethod(method: string): boolean {
  return safeMethods.has(method.toUpperCase());
}

/**
 * True when a request body can be sent again: none, a string, bytes, a Blob, URLSearchParams or
 * FormData. A ReadableStream, an async iterable (a Node stream) or anything else is read as it
 * is sent, so it is not replayable. Nothing is read or locked to find out.
 * @example
 * isReplayableBody('{"a":1}'); // true
 * isReplayableBody(new ReadableStream()); // false
 */
export function isReplayableBody(body: unknown): boolean {
  return (
    body === undefined ||
    body === null ||
    typeof body === 'string' ||
    body instanceof ArrayBuffer ||
    ArrayBuffer.isView(body) ||
    body instanceof Blob ||
    body instanceof URLSearchParams ||
    body instanceof FormData
  );
}

/**
 * What the rules need to know about one request.
 * @example
 * const { retryable } = requestTraits('GET', new Headers(), null); // true
 */
export interface RequestTraits {
  /** The method, upper-cased. */
  readonly method: string;
  /** Whether the request may be sent more than once after a failure. */
  readonly retryable: boolean;
  /** Whether a request that surely never left (connection refused) may be sent again. */
  readonly resendable: boolean;
  /** Whether two copies may run at once. */
  readonly hedgeable: boolean;
  /**
   * Whether only its `Idempotency-Key` makes it repeatable (a POST or PATCH with a key): the key
   * is a promise to one server, so once the request may have reached an endpoint, its retries
   * stay there.
   */
  readonly pinned: boolean;
}

/**
 * Classifies a request from what `fetch` would send. It may be retried when its method is
 * idempotent or it carries an `Idempotency-Key` header, and its body is replayable; it may be
 * resent after an error that proves it never left (connection refused) when only its body is
 * replayable; it may be hedged when its method is safe and its body replayable. It is pinned to
 * the endpoint it reached when only its idempotency key makes it repeatable.
 * @example
 * requestTraits('POST', new Headers({ 'idempotency-key': 'k1' }), '{}').retryable; // true
 */
export function requestTraits(method: string, headers: Headers | undefined, body: unknown): RequestTraits {
  const upper = method.toUpperCase();
  const replayable = isReplayableBody(body);
  const idempotent = idempotentMethods.has(upper);
  // The key matters only to a replayable request whose method is not idempotent: not looked up otherwise.
  const keyed = replayable && !idempotent && headers !== undefined && (headers.get('idempotency-key') ?? '').trim() !== '';
  return {
    method: upper,
    retryable: replayable && (idempotent || keyed),
    resendable: replayable,
    hedgeable: replayable && safeMethods.has(upper),
    pinned: keyed,
  };
}

/** Error codes that mean no connection was made, so the request cannot have reached a server. */
const unsentCodes = new Set(['ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'UND_ERR_CONNECT_TIMEOUT']);
/**
 * Codes that prove nothing was sent only when raised while connecting: the kernel also reports
 * them on an established socket (a route lost after the request went out).
 */
const connectOnlyCodes = new Set(['EHOSTUNREACH', 'ENETUNREACH']);

function unsent(error: unknown): boolean {
  const e = error as { code?: unknown; syscall?: unknown } | null | undefined;
  const code = e?.code;
  if (typeof code !== 'string') return false;
  return unsentCodes.has(code) || (connectOnlyCodes.has(code) && e!.syscall === 'connect');
}

/**
 * True when a fetch error proves the request never reached a server: the connection was refused
 * or could not be made (undici puts the system error in `cause`, possibly an AggregateError of
 * one error per address tried).
 * @example
 * await fetch('http://127.0.0.1:1/').catch((err) => neverSent(err)); // true
 */
export function neverSent(error: unknown): boolean {
  // Failed on a hop a redirect led to: the first origin got the request and answered it.
  if (typeof error === 'object' && error !== null && elsewhere.has(error)) return false;
  let cause = (error as { cause?: unknown } | null | undefined)?.cause;
  for (let depth = 0; depth < 3 && typeof cause === 'object' && cause !== null; depth++) {
    if (unsent(cause)) return true;
    const inner = (cause as { errors?: unknown }).errors;
    if (Array.isArray(inner) && inner.length > 0) return inner.every(unsent);
    cause = (cause as { cause?: unknown }).cause;
  }
  return false;
}
