import type { IncomingMessage, ServerResponse } from 'node:http';
import { isServedPath } from '../../health/served-paths.js';
import { type AddressedRequest } from '../../http/client-address.js';
import { PROBLEM_CONTENT_TYPE, type ProblemResponse, rateLimitFailedProblem } from '../../http/problem.js';
import {
  boundedConsoleReporter,
  checkDecider,
  checkHttpOptions,
  type HttpRateLimitOptions,
} from '../../http/rate-limit-options.js';
import {
  applyOutcome,
  decideRequestNow,
  type HeaderAccess,
  RateLimitRule,
  type RuleOutcome,
} from '../../http/rate-limit-rule.js';
import type { Decider } from '../../ratelimit/rate-limit-policy.js';

/**
 * Express's `next`: called with nothing to go on, or with an error.
 * @example
 * const next: BulwarkNextFunction = (err) => { if (err) console.error(err); };
 */
export type BulwarkNextFunction = (error?: unknown) => void;

/**
 * A middleware as Express 4 and 5 call it. Express's request and response extend node's
 * `IncomingMessage` and `ServerResponse`, so this is accepted by `app.use` and route methods.
 * @example
 * const middleware: BulwarkMiddleware = rateLimitMiddleware(limiter);
 * app.use(middleware);
 */
export type BulwarkMiddleware = (request: IncomingMessage, response: ServerResponse, next: BulwarkNextFunction) => void;

/**
 * The parts of Express's (4 or 5) request that `key`, `cost`, `skip` and `onError` may read
 * without an annotation (a function typed with Express's own `Request` is accepted as well), so
 * that the package's types do not need `@types/express`.
 * @example
 * rateLimitMiddleware(quota, { key: (req) => req.get('x-tenant') ?? req.ip ?? 'anonymous' });
 */
export interface ExpressRequestLike extends IncomingMessage {
  /** A request header, case-insensitively. */
  get(name: string): string | undefined;
  /** A request header, case-insensitively (Express's alias of `get`). */
  header(name: string): string | undefined;
  /** The client address as Express's `trust proxy` setting sees it. */
  readonly ip?: string | undefined;
  /** The path part of the URL, relative to where the middleware is mounted. */
  readonly path: string;
  /** The URL as the client sent it, before any mount path was taken off. */
  readonly originalUrl: string;
  /** The parsed query string. */
  readonly query: Record<string, unknown>;
  /** Route parameters (empty in `app.use`). */
  readonly params: Record<string, string | string[]>;
}

/**
 * Options of {@link rateLimitMiddleware}.
 * @example
 * const options: RateLimitMiddlewareOptions = { key: (req) => req.get('x-api-key') ?? 'anonymous', skip: (req) => req.path === '/internal' };
 */
export type RateLimitMiddlewareOptions = HttpRateLimitOptions<ExpressRequestLike>;

const owner = 'rateLimitMiddleware';

const onResponse: HeaderAccess<ServerResponse> = {
  get: (response, name) => response.getHeader(name),
  set: (response, name, value) => {
    response.setHeader(name, value);
  },
};

function send(response: ServerResponse, body: ProblemResponse): void {
  response.statusCode = body.status;
  response.setHeader('Content-Type', PROBLEM_CONTENT_TYPE);
  response.setHeader('Content-Length', body.length);
  response.end(body.body);
}

/**
 * Express 4/5 middleware that takes units from a rate limiter (or quota) for each request, keyed
 * by the client address unless `key` says otherwise. Allowed requests go on with `RateLimit-Policy`
 * and `RateLimit` headers (appended to those of limiters that decided earlier on the request, so
 * a per-client limiter and a per-tenant quota both show); denied ones get 429, `Retry-After` and
 * an `application/problem+json` body naming the policy; a store that failed closed gets 503. The
 * paths bulwark serves itself (probes, `/metrics`) pass untouched unless `exemptProbes: false`. A
 * cost that is not a whole number from 1 to the limiter's `maxCost` gets 400. When `key`, `cost`,
 * `skip` or the limiter fail, the middleware answers 500 problem+json itself and tells `onError`.
 * The same limiter met twice on one request (mounted on the app and a router) charges it once;
 * met again for the same key with another cost, it answers 500 and tells `onError`.
 * A limiter in shadow mode (`mode: 'shadow'`) never answers: a request it denies goes on with the
 * headers the 429 would have carried (an outage's or a bad cost's, likewise).
 * @example
 * const limiter = rateLimiter({ name: 'api', algorithm: gcra({ limit: 100, periodMs: 60_000 }) });
 * app.use(rateLimitMiddleware(limiter, { trustProxy: ['10.0.0.0/8'] }));
 * app.post('/search', rateLimitMiddleware(searchLimiter, { cost: 5 }), search);
 */
export function rateLimitMiddleware(limiter: Decider, options?: RateLimitMiddlewareOptions): BulwarkMiddleware {
  const decider = checkDecider(owner, 'the first argument', limiter);
  const { rule, shared } = checkHttpOptions<ExpressRequestLike>(owner, options as RateLimitMiddlewareOptions & Record<string, unknown>);
  const compiled = new RateLimitRule<ExpressRequestLike>(owner, decider, rule, shared);
  const exempt = shared.exemptProbes;
  const report = shared.onError ?? boundedConsoleReporter(owner);

  /** Goes on, or answers, once the decision is made. */
  const decided = (request: IncomingMessage, response: ServerResponse, next: BulwarkNextFunction, outcome: RuleOutcome): void => {
    // Someone else (a timeout middleware, say) may have answered while the decision was pending:
    // then nothing more is sent and the route is not run, skipped or not.
    if (response.headersSent) return;
    let answer: ProblemResponse | undefined;
    try {
      answer = applyOutcome(compiled, outcome, request, response, onResponse);
    } catch (error) {
      failed(request, response, error);
      return;
    }
    if (answer === undefined) next();
    else send(response, answer);
  };

  /** Answers 500 problem+json (never Express's HTML error page) and reports the error. */
  const failed = (request: IncomingMessage, response: ServerResponse, error: unknown): void => {
    try {
      report(error, request as ExpressRequestLike);
    } catch {
      // A reporter that throws must not turn one failed check into a crashed process.
    }
    if (!response.headersSent) send(response, rateLimitFailedProblem);
  };

  return function bulwarkRateLimit(request, response, next) {
    // The URL as the client sent it: under `app.use('/api', ...)` Express strips the mount path
    // from `req.url`, and `/api/metrics` must not pass for bulwark's `/metrics`.
    if (exempt && isServedPath((request as { originalUrl?: string }).originalUrl ?? request.url)) {
      next();
      return;
    }
    let outcome: RuleOutcome | Promise<RuleOutcome>;
    try {
      outcome = decideRequestNow(compiled, request as ExpressRequestLike, request as AddressedRequest);
    } catch (error) {
      failed(request, response, error);
      return;
    }
    // A memory store decides at once: the request goes on in this same tick, with no promise.
    if (outcome instanceof Promise) {
      outcome.then(
        (o) => decided(request, response, next, o),
        (error: unknown) => failed(request, response, error),
      );
    } else decided(request, response, next, outcome);
  };
}
