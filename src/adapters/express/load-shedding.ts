import type { IncomingMessage, ServerResponse } from 'node:http';
import { overloadedProblem, PROBLEM_CONTENT_TYPE, type ProblemResponse, sheddingFailedProblem } from '../../http/problem.js';
import { boundedConsoleReporter } from '../../http/rate-limit-options.js';
import { sheddingSetup, type LoadSheddingOptions } from '../../http/shedding.js';
import type { LoadShedder } from '../../shedding/load-shedder.js';
import type { BulwarkMiddleware } from './rate-limit.js';

/**
 * The middleware {@link loadSheddingMiddleware} returns, with the shedder it consults.
 * @example
 * const shed = loadSheddingMiddleware({ maxEventLoopDelayMs: 200 });
 * server.on('close', () => shed.shedder.dispose());
 */
export interface LoadSheddingMiddleware extends BulwarkMiddleware {
  /** The shedder; when the middleware built it from options, dispose of it when the server stops. */
  readonly shedder: LoadShedder;
}

/**
 * What {@link loadSheddingMiddleware} takes: a shedder, `{ shedder, skip?, exemptProbes? }`, or
 * shedder options with `skip` and `exemptProbes` beside them.
 * @example
 * const options: LoadSheddingMiddlewareOptions = { shedder, skip: (req) => req.url === '/admin/status' };
 */
export type LoadSheddingMiddlewareOptions = LoadSheddingOptions<IncomingMessage>;

/**
 * Express 4/5 middleware that answers 503 with `Retry-After` and an `application/problem+json`
 * body while the load shedder reports pressure (a slow or busy event loop, high memory). Put it
 * first, so that an overloaded server does as little as possible for the requests it turns away.
 * bulwark's own routes (health probes, `/metrics`) are never shed unless `exemptProbes: false`;
 * `skip` exempts your own. A `skip` that throws or returns a non-boolean gets the request a 500
 * problem+json answer, and the error goes to `onError`. A shedder in shadow mode (`mode: 'shadow'`)
 * lets every request on, with the `Retry-After` a 503 would carry, and publishes it as shed.
 * @example
 * const shedder = loadShedder({ maxEventLoopDelayMs: 200 });
 * app.use(loadSheddingMiddleware({ shedder, skip: (req) => req.url === '/admin/status' }));
 * server.on('close', () => shedder.dispose());
 */
export function loadSheddingMiddleware(options: LoadSheddingMiddlewareOptions): LoadSheddingMiddleware {
  const { shedder, exempt, onError } = sheddingSetup<IncomingMessage>('loadSheddingMiddleware', options);
  const report = onError ?? boundedConsoleReporter('loadSheddingMiddleware', 10_000, 'the load shedder could not check a request');
  const body = overloadedProblem;
  const middleware: BulwarkMiddleware = function bulwarkLoadShedding(request, response, next) {
    // Not under pressure (nearly always): one property read, and on.
    if (shedder.check() === null) {
      next();
      return;
    }
    if (exempt !== undefined) {
      let through: boolean;
      try {
        through = exempt(request, (request as { originalUrl?: string }).originalUrl ?? request.url);
      } catch (error) {
        // Answered here as problem+json: Express's own error page would show a stack trace.
        try {
          report(error, request);
        } catch {
          // A reporter that throws must not turn one failed check into a crashed process.
        }
        answer(response, sheddingFailedProblem);
        return;
      }
      if (through) {
        next();
        return;
      }
    }
    // Shadow mode: published as shed, and on with the header the 503 would have carried.
    // (`=== false`: a shedder from an older copy of bulwark returns nothing and enforces.)
    if (shedder.reject() === false) {
      response.setHeader('Retry-After', shedder.retryAfter);
      next();
      return;
    }
    answer(response, body, shedder.retryAfter);
  };
  return Object.assign(middleware, { shedder });
}

function answer(response: ServerResponse, body: ProblemResponse, retryAfter?: string): void {
  response.statusCode = body.status;
  if (retryAfter !== undefined) response.setHeader('Retry-After', retryAfter);
  response.setHeader('Content-Type', PROBLEM_CONTENT_TYPE);
  response.setHeader('Content-Length', body.length);
  response.end(body.body);
}
