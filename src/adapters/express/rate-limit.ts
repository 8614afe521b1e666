import type { IncomingMessage, ServerResponse } from 'node:http';
import { type AddressedRequest } from '../../http/client-address.js';
import { PROBLEM_CONTENT_TYPE } from '../../http/problem.js';
import {
  checkDecider,
  checkHttpOptions,
  decideRequestNow,
  type HttpRateLimitOptions,
  RateLimitRule,
  retryAfterValue,
  writeRateLimitHeaders,
} from '../../http/rate-limit-rule.js';
import type { Decider } from '../../ratelimit/rate-limit-policy.js';
import type { LimiterDecision } from '../../ratelimit/store.js';

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
 * Options of {@link rateLimitMiddleware}.
 * @example
 * const options: RateLimitMiddlewareOptions = { key: (req) => String(req.headers['x-api-key']), skip: (req) => req.url === '/healthz' };
 */
export type RateLimitMiddlewareOptions = HttpRateLimitOptions<IncomingMessage>;

const owner = 'rateLimitMiddleware';

function setOnResponse(response: ServerResponse, name: string, value: string): void {
  response.setHeader(name, value);
}

/** Goes on, or answers 429, once the decision is made. */
function decided(
  rule: RateLimitRule<IncomingMessage>,
  response: ServerResponse,
  next: BulwarkNextFunction,
  decision: LimiterDecision | undefined,
): void {
  // Someone else (a timeout middleware, say) may have answered while the decision was pending:
  // then nothing more is sent and the route is not run, skipped or not.
  if (response.headersSent) return;
  if (decision === undefined) {
    next();
    return;
  }
  if (rule.draft) writeRateLimitHeaders(rule, decision, response, setOnResponse);
  if (decision.allowed) {
    next();
    return;
  }
  const body = rule.denial;
  response.statusCode = body.status;
  response.setHeader('Retry-After', retryAfterValue(decision));
  response.setHeader('Content-Type', PROBLEM_CONTENT_TYPE);
  response.setHeader('Content-Length', body.length);
  response.end(body.body);
}

/**
 * Express 4/5 middleware that takes units from a rate limiter (or quota) for each request, keyed
 * by the client address unless `key` says otherwise. Allowed requests go on with `RateLimit-Policy`
 * and `RateLimit` headers; denied ones get 429, `Retry-After` and an `application/problem+json`
 * body. An error from `key`, `cost`, `skip` or the limiter goes to `next(err)`, to the app's error
 * handler.
 * @example
 * const limiter = rateLimiter({ name: 'api', algorithm: gcra({ limit: 100, periodMs: 60_000 }) });
 * app.use(rateLimitMiddleware(limiter, { trustProxy: ['10.0.0.0/8'] }));
 * app.post('/search', rateLimitMiddleware(searchLimiter, { cost: 5 }), search);
 */
export function rateLimitMiddleware(limiter: Decider, options?: RateLimitMiddlewareOptions): BulwarkMiddleware {
  const decider = checkDecider(owner, 'the first argument', limiter);
  const { rule, shared } = checkHttpOptions<IncomingMessage>(owner, options as RateLimitMiddlewareOptions & Record<string, unknown>);
  const compiled = new RateLimitRule<IncomingMessage>(owner, decider, rule, shared);
  return function bulwarkRateLimit(request, response, next) {
    let outcome: LimiterDecision | undefined | Promise<LimiterDecision | undefined>;
    try {
      outcome = decideRequestNow(compiled, request, request as AddressedRequest);
    } catch (error) {
      next(error);
      return;
    }
    // A memory store decides at once: the request goes on in this same tick, with no promise.
    if (outcome instanceof Promise) {
      outcome.then(
        (decision) => decided(compiled, response, next, decision),
        // Once someone else has answered, the error has nobody to reach: handing it to `next`
        // would only make Express's final handler destroy the (keep-alive) connection.
        (error: unknown) => {
          if (!response.headersSent) next(error);
        },
      );
    } else decided(compiled, response, next, outcome);
  };
}
