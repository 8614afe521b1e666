import type { IncomingMessage, ServerResponse } from 'node:http';
import { inspect } from './inspect.js';

/**
 * A `node:http` request listener that also fits Express as a route handler.
 * @example
 * const handle: InspectRequestHandler = inspectHandler();
 */
export type InspectRequestHandler = (req: IncomingMessage, res: ServerResponse) => void;

const NOT_ALLOWED = 'Method Not Allowed\n';

/**
 * Serves {@link inspect} as JSON: `GET` and `HEAD` answer 200 with `Cache-Control: no-store`,
 * other methods 405 with `Allow: GET, HEAD`. It answers every request it is given, so route to
 * it, and mount it where only operators reach (it shows the names and state of every policy).
 * With Fastify, `app.get('/bulwark', () => inspect())` serves the same data.
 * @example
 * const handle = inspectHandler();
 * http.createServer((req, res) => (req.url === '/bulwark' ? handle(req, res) : app(req, res)));
 * // Express: app.get('/bulwark', inspectHandler());
 */
export function inspectHandler(): InspectRequestHandler {
  return (req, res) => {
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { Allow: 'GET, HEAD', 'Content-Type': 'text/plain; charset=utf-8', 'Content-Length': NOT_ALLOWED.length });
      res.end(NOT_ALLOWED);
      return;
    }
    const body = JSON.stringify(inspect());
    res.writeHead(200, { 'Content-Type': 'application/json; charset=utf-8', 'Cache-Control': 'no-store', 'Content-Length': Buffer.byteLength(body) });
    res.end(req.method === 'HEAD' ? undefined : body);
  };
}
