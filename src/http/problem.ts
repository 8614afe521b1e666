/**
 * RFC 9457 problem details for the answers the adapters give themselves. Bodies are built once
 * (at module load or per limiter) and never carry error messages, addresses or stack traces.
 */

/** An RFC 9457 problem body as JSON text, and its length in bytes. */
export interface ProblemResponse {
  readonly status: number;
  readonly body: string;
  readonly length: string;
}

/** The media type of problem bodies. */
export const PROBLEM_CONTENT_TYPE = 'application/problem+json';

/** Builds a problem response of type `about:blank` (so `title` is the status phrase). */
export function problem(status: number, title: string, detail: string): ProblemResponse {
  const body = JSON.stringify({ type: 'about:blank', title, status, detail });
  return { status, body, length: String(Buffer.byteLength(body)) };
}

/** 429 for a rate limiter's denial. */
export const rateLimitedProblem = problem(
  429,
  'Too Many Requests',
  'Too many requests from this client; retry after the number of seconds in the Retry-After header.',
);

/** 429 for a quota's denial. */
export const quotaExceededProblem = problem(
  429,
  'Too Many Requests',
  "This client's quota for the current period is used up; retry after the number of seconds in the Retry-After header.",
);

/** 503 for a load shedder's rejection. */
export const overloadedProblem = problem(
  503,
  'Service Unavailable',
  'The server is overloaded; retry after the number of seconds in the Retry-After header.',
);

/** 500 when a rate limit could not be checked (a key function threw, say). */
export const rateLimitFailedProblem = problem(
  500,
  'Internal Server Error',
  'The request could not be checked against its rate limit.',
);

/** Largest number of seconds written in a header (2^31 − 1, as in `delay-seconds` parsers). */
const MAX_SECONDS = 2_147_483_647;

/**
 * Whole seconds, rounded up, for a duration in ms: never negative, never NaN, at most 2^31 − 1.
 * @example
 * secondsUp(1_001); // 2
 */
export function secondsUp(ms: number): number {
  if (!(ms > 0)) return 0;
  const s = Math.ceil(ms / 1000);
  return s < MAX_SECONDS ? s : MAX_SECONDS;
}

/** A count as a header value: a whole number, never negative or NaN. */
export function countValue(n: number): number {
  if (!(n > 0)) return 0;
  return n < Number.MAX_SAFE_INTEGER ? Math.floor(n) : Number.MAX_SAFE_INTEGER;
}
