import { overloadedProblem, PROBLEM_CONTENT_TYPE } from '../../http/problem.js';
import { shedderFrom, type ShedderOrOptions } from '../../http/shedding.js';
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
 * Express 4/5 middleware that answers 503 with `Retry-After` and an `application/problem+json`
 * body while the load shedder reports pressure (a slow or busy event loop, high memory). Put it
 * first, so that an overloaded server does as little as possible for the requests it turns away.
 * @example
 * const shedder = loadShedder({ maxEventLoopDelayMs: 200 });
 * app.use(loadSheddingMiddleware(shedder));
 * server.on('close', () => shedder.close());
 */
export function loadSheddingMiddleware(shedderOrOptions: ShedderOrOptions): LoadSheddingMiddleware {
  const { shedder } = shedderFrom('loadSheddingMiddleware', shedderOrOptions);
  const body = overloadedProblem;
  const middleware: BulwarkMiddleware = function bulwarkLoadShedding(_request, response, next) {
    if (shedder.check() === null) {
      next();
      return;
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
