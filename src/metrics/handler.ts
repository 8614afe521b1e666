import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Registry, RegistryContentType } from 'prom-client';
import { checkOptions, functionOption, show } from '../core/validate.js';

/**
 * Options of {@link metricsHandler} and {@link metricsRoute}.
 * @example
 * const options: MetricsHandlerOptions = { onError: (error) => logger.error({ error }, 'metrics scrape failed') };
 */
export interface MetricsHandlerOptions {
  /**
   * Called with the error when the registry cannot produce the metrics (a collect function
   * threw); the scraper only gets a bare 500.
   * @default nothing for `metricsHandler`; `request.log.error` for `metricsRoute`
   */
  readonly onError?: (error: unknown) => void;
}

/**
 * A `node:http` request listener that also fits Express as a route handler or mounted middleware.
 * @example
 * const handle: MetricsRequestHandler = metricsHandler(registry);
 */
export type MetricsRequestHandler = (req: IncomingMessage, res: ServerResponse) => void;

/**
 * The parts of a Fastify request {@link metricsRoute} reads (Fastify 4 and 5).
 * @example
 * const request: MetricsRouteRequest = { method: 'GET' };
 */
export interface MetricsRouteRequest {
  readonly method: string;
  readonly log?: { error(object: unknown, message?: string): void };
}

/**
 * The parts of a Fastify reply {@link metricsRoute} uses (Fastify 4 and 5).
 * @example
 * (reply: MetricsRouteReply) => reply.header('Cache-Control', 'no-store');
 */
export interface MetricsRouteReply {
  code(statusCode: number): unknown;
  header(name: string, value: string): unknown;
}

/**
 * A Fastify route handler, for `app.get(path, handler)` or `app.route({ handler })`.
 * @example
 * const route: MetricsRouteHandler = metricsRoute(registry);
 */
export type MetricsRouteHandler = (request: MetricsRouteRequest, reply: MetricsRouteReply) => Promise<string>;

const TEXT = 'text/plain; charset=utf-8';
const ALLOW = 'GET, HEAD';
const NOT_ALLOWED = 'Method Not Allowed\n';
const FAILED = 'Metrics unavailable\n';

function assertRegistry(owner: string, registry: unknown): asserts registry is Registry<RegistryContentType> {
  if (
    typeof registry !== 'object' ||
    registry === null ||
    typeof (registry as Registry<RegistryContentType>).metrics !== 'function' ||
    typeof (registry as Registry<RegistryContentType>).contentType !== 'string'
  ) {
    throw new TypeError(`${owner}: the first argument must be a prom-client Registry, got ${show(registry)}`);
  }
}

function onErrorOption(owner: string, options: MetricsHandlerOptions | undefined): ((error: unknown) => void) | undefined {
  const o = checkOptions(owner, options, ['onError']);
  return o.onError === undefined ? undefined : functionOption(owner, 'onError', o.onError, () => {});
}

/** The registry's text, with a synchronous throw turned into a rejection. */
function scrape(registry: Registry<RegistryContentType>): Promise<string> {
  try {
    return Promise.resolve(registry.metrics());
  } catch (error) {
    return Promise.reject(error);
  }
}

/**
 * Reports a scrape failure outside the response's promise chain: a throwing `onError` surfaces
 * as an uncaught exception, like a throwing event listener, and never as an unhandled rejection.
 */
function report(onError: ((error: unknown) => void) | undefined, error: unknown): void {
  if (onError !== undefined) queueMicrotask(() => onError(error));
}

/**
 * Serves `registry` over `node:http` or Express: `GET` and `HEAD` answer 200 with the registry's
 * `contentType` and `Cache-Control: no-store`; other methods 405 with `Allow: GET, HEAD`; a
 * failing collection 500 with a plain body and nothing of the error. It answers every request it
 * is given, so route to it (`app.get('/metrics', ...)`, or test `req.url` with node:http).
 * @example
 * const handle = metricsHandler(registry);
 * http.createServer((req, res) => (req.url === '/metrics' ? handle(req, res) : app(req, res)));
 * // Express: app.get('/metrics', metricsHandler(registry));
 */
export function metricsHandler(registry: Registry<RegistryContentType>, options?: MetricsHandlerOptions): MetricsRequestHandler {
  assertRegistry('metricsHandler', registry);
  const onError = onErrorOption('metricsHandler', options);
  return (req, res) => {
    const method = req.method;
    if (method !== 'GET' && method !== 'HEAD') {
      res.writeHead(405, { Allow: ALLOW, 'Content-Type': TEXT, 'Content-Length': NOT_ALLOWED.length });
      res.end(NOT_ALLOWED);
      return;
    }
    scrape(registry).then(
      (text) => {
        res.writeHead(200, {
          'Content-Type': registry.contentType,
          'Cache-Control': 'no-store',
          'Content-Length': Buffer.byteLength(text),
        });
        res.end(method === 'HEAD' ? undefined : text);
      },
      (error: unknown) => {
        report(onError, error);
        if (res.headersSent) {
          res.destroy();
          return;
        }
        res.writeHead(500, { 'Content-Type': TEXT, 'Cache-Control': 'no-store', 'Content-Length': FAILED.length });
        res.end(method === 'HEAD' ? undefined : FAILED);
      },
    );
  };
}

/**
 * A Fastify (4 or 5) route handler serving `registry`, with the same answers as
 * {@link metricsHandler}. Fastify answers `HEAD` through the `GET` route by itself.
 * @example
 * app.get('/metrics', metricsRoute(registry));
 */
export function metricsRoute(registry: Registry<RegistryContentType>, options?: MetricsHandlerOptions): MetricsRouteHandler {
  assertRegistry('metricsRoute', registry);
  const onError = onErrorOption('metricsRoute', options);
  return async (request, reply) => {
    const method = request.method;
    if (method !== 'GET' && method !== 'HEAD') {
      reply.code(405);
      reply.header('allow', ALLOW);
      reply.header('content-type', TEXT);
      return NOT_ALLOWED;
    }
    let text: string;
    try {
      text = await scrape(registry);
    } catch (error) {
      if (onError !== undefined) report(onError, error);
      else request.log?.error({ err: error }, 'metrics: the registry could not be collected');
      reply.code(500);
      reply.header('content-type', TEXT);
      reply.header('cache-control', 'no-store');
      return FAILED;
    }
    reply.code(200);
    reply.header('content-type', registry.contentType);
    reply.header('cache-control', 'no-store');
    return text;
  };
}
