import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Health } from '../../health/health.js';
import { matchRoute, respond, serveHealth, writeResponse, type HealthRoutesOptions } from '../../health/routes.js';

/**
 * Options of {@link healthMiddleware}.
 * @example
 * const options: HealthMiddlewareOptions = { prefix: '/ops' };
 */
export type HealthMiddlewareOptions = HealthRoutesOptions;

/**
 * An Express (4 or 5) middleware, typed structurally so Express stays an optional peer.
 * @example
 * const mw: HealthMiddleware = healthMiddleware(h);
 */
export type HealthMiddleware = (req: IncomingMessage, res: ServerResponse, next: (error?: unknown) => void) => void;

/**
 * Express 4/5 middleware serving `/livez`, `/readyz`, `/startupz` and `/healthz` (after `prefix`,
 * relative to where it is mounted): 200 or 503, `Cache-Control: no-store`, JSON; per-check
 * results only when `verbose` allows; `/readyz/<check>` (and so on) for one check, 404 for a
 * name the probe does not have. Other requests go to `next()`. The prefixed paths are registered
 * as served by bulwark (never limited or shed); mounted below a path (`app.use('/ops', ...)`),
 * the limiter sees `/ops/readyz`, so use `prefix` instead, or `registerServedPath('/ops/readyz')`.
 * @example
 * app.use(healthMiddleware(h, { prefix: '/ops' }));
 */
export function healthMiddleware(h: Health, options?: HealthMiddlewareOptions): HealthMiddleware {
  const routes = serveHealth('healthMiddleware', h, options);
  return (req, res, next) => {
    const match = matchRoute(routes, req.method, req.url);
    if (match === undefined) {
      next();
      return;
    }
    respond(h, match.route, match.verbose, match.check).then((answer) => writeResponse(res, req.method, answer), next);
  };
}
