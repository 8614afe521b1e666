/**
 * RFC 9457 problem details for the answers the adapters give themselves. Bodies are built once
 * (at module load or per limiter) and never carry error messages, addresses or stack traces.
 */
import type { ServerResponse } from 'node:http';

/** An RFC 9457 problem body as JSON text, its status, and its length in bytes. */
export interface ProblemResponse {
  readonly status: number;
  readonly body: string;
  readonly length: string;
}

/** The media type of problem bodies. */
export const PROBLEM_CONTENT_TYPE = 'application/problem+json';

/** Answers on a node (or Express) response with a ready-made problem body and its status (and `Retry-After` when given). */
export function writeProblem(response: ServerResponse, body: ProblemResponse, retryAfter?: string): void {
  response.statusCode = body.status;
  if (retryAfter !== undefined) response.setHeader('Retry-After', retryAfter);
  response.setHeader('Content-Type', PROBLEM_CONTENT_TYPE);
  response.setHeader('Content-Length', body.length);
  response.end(body.body);
}

/**
 * The `type` of every problem body bulwark's adapters send: stable URNs a client can switch on.
 * @example
 * if (body.type === PROBLEM_TYPES.storeUnavailable) retryLater(res.headers.get('retry-after'));
 */
export const PROBLEM_TYPES = {
  /** 429: a rate limiter denied the request (`policy` names it). */
  rateLimited: 'urn:bulwark:problem:rate-limited',
  /** 429: a quota for the current period is used up (`policy` names it). */
  quotaExceeded: 'urn:bulwark:problem:quota-exceeded',
  /** 503: the limiter's store could not decide (an outage, not the client's quota). */
  storeUnavailable: 'urn:bulwark:problem:store-unavailable',
  /** 400: the request's cost is not a whole number from 1 to the most the policy can ever admit. */
  badCost: 'urn:bulwark:problem:bad-cost',
  /** 500: the limit could not be checked (a key, cost or skip function threw, or the limiter failed). */
  checkFailed: 'urn:bulwark:problem:rate-limit-check-failed',
  /** 503: the load shedder turned the request away. */
  overloaded: 'urn:bulwark:problem:overloaded',
  /** 500: under pressure, the shedder's `skip` threw or did not answer a boolean. */
  sheddingCheckFailed: 'urn:bulwark:problem:shedding-check-failed',
  /** 503: an admission controller turned the request away (`reason` says why, `policy` names it). */
  admissionRejected: 'urn:bulwark:problem:admission-rejected',
  /** 500: the request's class, tenant or skip could not be read (its function threw or answered nonsense). */
  admissionCheckFailed: 'urn:bulwark:problem:admission-check-failed',
  /** 504: the caller's propagated deadline (`bulwark-deadline`) had passed when the request arrived. */
  deadlineExceeded: 'urn:bulwark:problem:deadline-exceeded',
  /** The configured status (400–599): fault injection answered the request on purpose (also the body of fetch's injected responses). */
  faultInjected: 'urn:bulwark:problem:fault-injected',
  /** 500: fault injection's `when` (or its `latencyMs` function) threw or answered wrongly. */
  faultInjectionCheckFailed: 'urn:bulwark:problem:fault-injection-check-failed',
} as const;

/**
 * Builds a problem response: `{ type, title, status, detail }`, plus `policy` when given (the
 * limiter or quota a denial comes from), and `extra` members (RFC 9457 extensions) after them.
 * @example
 * const tooMany = problem(429, PROBLEM_TYPES.rateLimited, 'Too Many Requests', 'Slow down.', 'api');
 */
export function problem(
  status: number,
  type: string,
  title: string,
  detail: string,
  policy?: string,
  extra?: Readonly<Record<string, unknown>>,
): ProblemResponse {
  const body = JSON.stringify(policy === undefined ? { type, title, status, detail, ...extra } : { type, title, status, detail, policy, ...extra });
  return { status, body, length: String(Buffer.byteLength(body)) };
}

/**
 * 429 for a rate limiter's denial by the policy named `policy`; `violated-policies` lists it too,
 * the member the rate-limit headers draft defines for its quota-exceeded problem type.
 * @example
 * const body = rateLimitedProblem('api').body;
 */
export function rateLimitedProblem(policy: string): ProblemResponse {
  return problem(
    429,
    PROBLEM_TYPES.rateLimited,
    'Too Many Requests',
    'Too many requests from this client; retry after the number of seconds in the Retry-After header.',
    policy,
    // draft-ietf-httpapi-ratelimit-headers-11 §5: the names of the policies the request exceeded.
    { 'violated-policies': [policy] },
  );
}

/**
 * 429 for a quota's denial by the quota named `policy` (and in `violated-policies`, as above).
 * @example
 * const body = quotaExceededProblem('monthly').body;
 */
export function quotaExceededProblem(policy: string): ProblemResponse {
  return problem(
    429,
    PROBLEM_TYPES.quotaExceeded,
    'Quota Exceeded',
    "This client's quota for the current period is used up; retry after the number of seconds in the Retry-After header.",
    policy,
    // draft-ietf-httpapi-ratelimit-headers-11 §5: the names of the policies the request exceeded.
    { 'violated-policies': [policy] },
  );
}

/**
 * 503 when the store behind the policy named `policy` could not decide (it failed closed): the
 * server's problem, not the client's quota.
 * @example
 * const body = storeUnavailableProblem('monthly').body;
 */
export function storeUnavailableProblem(policy: string): ProblemResponse {
  return problem(
    503,
    PROBLEM_TYPES.storeUnavailable,
    'Service Unavailable',
    'The limit for this request could not be checked just now; retry after the number of seconds in the Retry-After header.',
    policy,
  );
}

/**
 * 400 when a request's cost is not a whole number of units of at least 1 (from the `cost` function).
 * @example
 * const body = badCostProblem('search').body;
 */
export function badCostProblem(policy: string): ProblemResponse {
  return problem(400, PROBLEM_TYPES.badCost, 'Bad Request', 'The request asks for a cost that is not a whole number of units of at least 1.', policy);
}

/**
 * 400 when a request's cost is more than the policy can ever admit (`maxCost` units).
 * @example
 * const body = costTooLargeProblem('search', 50).body;
 */
export function costTooLargeProblem(policy: string, maxCost: number): ProblemResponse {
  return problem(
    400,
    PROBLEM_TYPES.badCost,
    'Bad Request',
    `The request costs more than this policy ever admits at once (${maxCost} units); retrying will not help.`,
    policy,
  );
}

/**
 * 503 for a load shedder's rejection.
 * @example
 * response.end(overloadedProblem.body);
 */
export const overloadedProblem = problem(
  503,
  PROBLEM_TYPES.overloaded,
  'Service Unavailable',
  'The server is overloaded; retry after the number of seconds in the Retry-After header.',
);

/**
 * 500 when a rate limit could not be checked (a key function threw, say).
 * @example
 * response.end(rateLimitFailedProblem.body);
 */
export const rateLimitFailedProblem = problem(
  500,
  PROBLEM_TYPES.checkFailed,
  'Internal Server Error',
  'The request could not be checked against its rate limit.',
);

/**
 * 500 when a load-shedding adapter could not tell whether to shed a request (its `skip` threw).
 * @example
 * response.end(sheddingFailedProblem.body);
 */
export const sheddingFailedProblem = problem(
  500,
  PROBLEM_TYPES.sheddingCheckFailed,
  'Internal Server Error',
  'The request could not be checked against the load shedder.',
);

/**
 * 504 for a request whose caller's deadline, propagated by a trusted peer, had already passed:
 * nobody waits for the answer any more, and retrying with the same deadline cannot help.
 * @example
 * response.end(deadlineExceededProblem.body);
 */
export const deadlineExceededProblem = problem(
  504,
  PROBLEM_TYPES.deadlineExceeded,
  'Gateway Timeout',
  "The caller's deadline for this request had passed when it arrived; it was not handled.",
);

const admissionDetails: Readonly<Record<string, string>> = {
  limit: 'The server is at its concurrency limit',
  priority: 'The server is shedding requests of this class to keep serving more important ones',
  fairness: "This tenant holds more than its share of the server's capacity for its class",
  queueTimeout: 'The request waited for a free slot for as long as it may',
  load: 'The server is overloaded',
  deadline: "The caller's deadline had passed",
};

/**
 * 503 for an admission controller's rejection of a request, by the controller named `policy`, for
 * `reason` (`limit`, `priority`, `fairness`, `queueTimeout`, `load`).
 * @example
 * const body = admissionRejectedProblem('api', 'priority').body;
 */
export function admissionRejectedProblem(policy: string, reason: string): ProblemResponse {
  const why = admissionDetails[reason] ?? 'The server turned the request away';
  return problem(
    503,
    PROBLEM_TYPES.admissionRejected,
    'Service Unavailable',
    `${why}; retry after the number of seconds in the Retry-After header.`,
    policy,
    { reason },
  );
}

/**
 * 500 when an admission adapter could not read a request's class, tenant or skip (the function threw).
 * @example
 * response.end(admissionFailedProblem.body);
 */
export const admissionFailedProblem = problem(
  500,
  PROBLEM_TYPES.admissionCheckFailed,
  'Internal Server Error',
  'The request could not be checked for admission.',
);

/** Largest number of seconds written in a header (2^31 − 1, as in `delay-seconds` parsers). */
const MAX_SECONDS = 2_147_483_647;

/**
 * Largest integer a structured field may carry (RFC 9651 §3.3.1: at most 15 digits). A larger
 * value makes parsers reject the whole field.
 */
export const MAX_SF_INTEGER = 999_999_999_999_999;

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

/**
 * A count as a header value: a whole number, never negative or NaN, at most {@link MAX_SF_INTEGER}.
 * @example
 * countValue(-3); // 0
 */
export function countValue(n: number): number {
  if (!(n > 0)) return 0;
  return n < MAX_SF_INTEGER ? Math.floor(n) : MAX_SF_INTEGER;
}
