import type { IncomingMessage } from 'node:http';
import { overloadedProblem, PROBLEM_CONTENT_TYPE } from '../../http/problem.js';
import { sheddingSetup, type LoadSheddingOptions } from '../../http/shedding.js';
import type { LoadShedder } from '../../shedding/load-shedder.js';
import type { BulwarkMiddleware } from './rate-limit.js';

/**
 * The middleware {@link loadSheddingMiddleware} returns, with the shedder it consults.
 * @example
 * const shed = loadSheddingMiddleware({ maxEventLoopDelayMs: 200 });
 * server.on('close', () => shed.shedder.close());
 */
export interface LoadSheddingMiddleware extends BulwarkMiddleware {
  /** The shedder; when the middleware built it from options, close it when the server stops. */
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
 * `skip` exempts your own. A `skip` that throws or returns a non-boolean sends the error to
 * `next(err)`.
 * @example
 * const shedder = loadShedder({ maxEventLoopDelayMs: 200 });
 * app.use(loadSheddingMiddleware({ shedder, skip: (req) => req.url === '/admin/status' }));
 * server.on('close', () => shedder.close());
 */
export function loadSheddingMiddleware(options: LoadSheddingMiddlewareOptions): LoadSheddingMiddleware {
  const { shedder, exempt } = sheddingSetup<IncomingMessage>('loadSheddingMiddleware', options);
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
        next(error);
        return;
      }
      if (through) {
        next();
        return;
      }
    }
    shedder.reject();
    response.statusCode = body.status;
    response.setHeader('Retry-After', shedder.retryAfter);
    response.setHeader('Content-Type', PROBLEM_CONTENT_TYPE);
    response.setHeader('Content-Length', body.length);
    response.end(body.body);
  };
  return Object.assign(middleware, { shedder });
}
