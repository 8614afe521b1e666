import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Health } from './health.js';
import { matchRoute, respond, serveHealth, writeResponse, type HealthRoutesOptions } from './routes.js';

/**
 * Options of {@link healthHandler}.
 * @example
 * const options: HealthHandlerOptions = { prefix: '/ops', verbose: 'never' };
 */
export type HealthHandlerOptions = HealthRoutesOptions;

/**
 * A node:http health handler: answers `GET`/`HEAD` on `/livez`, `/readyz`, `/startupz` and
 * `/healthz` (and `/readyz/<check>` and so on, for one check) and returns true; for any other
 * request it calls `next` (when given) and returns false.
 * @example
 * const handle: HealthRequestHandler = healthHandler(h);
 * createServer((req, res) => handle(req, res, () => app(req, res)));
 */
export type HealthRequestHandler = (req: IncomingMessage, res: ServerResponse, next?: () => void) => boolean;

/**
 * Serves the probes over node:http: 200 or 503, `Cache-Control: no-store`, a JSON body
 * (`{"status":"pass"}`; per-check results only when `verbose` allows). `/readyz/<check>` answers
 * for that one check (404 when the probe has none of that name). The prefixed paths are
 * registered as served by bulwark (never limited or shed) when the handler is made.
 * @example
 * const handle = healthHandler(h, { prefix: '/ops' });
 * http.createServer((req, res) => {
 *   if (handle(req, res)) return;
 *   app(req, res);
 * });
 */
export function healthHandler(h: Health, options?: HealthHandlerOptions): HealthRequestHandler {
  const routes = serveHealth('healthHandler', h, options);
  return (req, res, next) => {
    const match = matchRoute(routes, req.method, req.url);
    if (match === undefined) {
      next?.();
      return false;
    }
    void respond(h, match.route, match.verbose, match.check).then((answer) => writeResponse(res, req.method, answer));
    return true;
  };
}
