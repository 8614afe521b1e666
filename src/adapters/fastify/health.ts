import type { Health } from '../../health/health.js';
import { assertHealth, isVerbose, respond, serveHealth, type HealthRoutesOptions } from '../../health/routes.js';
import { registerServedPath } from '../../health/served-paths.js';

/**
 * Options of {@link healthPlugin}.
 * @example
 * const options: HealthPluginOptions = { health: h, prefix: '/ops', verbose: 'never' };
 */
export interface HealthPluginOptions extends HealthRoutesOptions {
  /** The checks to serve. */
  readonly health: Health;
}

/**
 * The parts of a Fastify (4 or 5) request the plugin reads.
 * @example
 * const req: HealthFastifyRequest = { method: 'GET', url: '/readyz' };
 */
export interface HealthFastifyRequest {
  readonly method: string;
  readonly url: string;
  /** Route parameters: the per-check routes read the wildcard, `'*'`. */
  readonly params?: unknown;
}

/**
 * The parts of a Fastify reply the plugin uses.
 * @example
 * (reply: HealthFastifyReply) => reply.code(503).header('cache-control', 'no-store');
 */
export interface HealthFastifyReply {
  code(statusCode: number): HealthFastifyReply;
  header(name: string, value: string): HealthFastifyReply;
}

/**
 * The parts of a Fastify instance the plugin uses.
 * @example
 * const app: HealthFastifyInstance = Fastify();
 */
export interface HealthFastifyInstance {
  /** The route prefix of the context the plugin is registered in (`register(fn, { prefix })`). */
  readonly prefix?: string;
  route(options: {
    method: 'GET';
    url: string;
    handler: (request: HealthFastifyRequest, reply: HealthFastifyReply) => Promise<string>;
  }): unknown;
}

/**
 * A Fastify 4/5 plugin serving `GET` (and Fastify's automatic `HEAD`) on `/livez`, `/readyz`,
 * `/startupz` and `/healthz` after `prefix`: 200 or 503, `Cache-Control: no-store`, JSON; per-check
 * results only when `verbose` allows; `/readyz/<check>` (and so on) for one check, 404 for a name
 * the probe does not have. Not encapsulated: the routes land on the instance it is registered on,
 * under that instance's route prefix (a parent's `register(fn, { prefix: '/ops' })`) followed by
 * this plugin's own `prefix` option. The full paths are registered as served by bulwark (never
 * limited or shed).
 * @example
 * await app.register(healthPlugin, { health: h, prefix: '/ops' });
 */
export function healthPlugin(app: HealthFastifyInstance, options: HealthPluginOptions, done: (error?: Error) => void): void {
  try {
    const { health: h, ...rest } = options ?? ({} as HealthPluginOptions);
    assertHealth('healthPlugin: option "health"', h);
    const routes = serveHealth('healthPlugin', h, rest);
    // A parent context's prefix comes in front of every route made here: the exempt list must
    // hold the path the client sends (regression: /ops/livez under register(fn, { prefix: '/ops' })
    // was rate limited and shed, as only /livez was on the list).
    const context = typeof app.prefix === 'string' ? app.prefix.replace(/\/+$/, '') : '';
    if (context !== '') for (const url of routes.paths.keys()) registerServedPath(`${context}${url}`);
    for (const [url, route] of routes.paths) {
      // The router may send other spellings here (ignoreTrailingSlash, caseSensitive: false):
      // read only the query from the request's URL.
      const answer = async (request: HealthFastifyRequest, reply: HealthFastifyReply, check: string | undefined): Promise<string> => {
        const q = request.url.indexOf('?');
        const result = await respond(h, route, isVerbose(routes, q === -1 ? undefined : request.url.slice(q + 1)), check);
        reply.code(result.statusCode);
        for (const [name, value] of Object.entries(result.headers)) reply.header(name, value);
        return result.body;
      };
      app.route({ method: 'GET', url, handler: (request, reply) => answer(request, reply, undefined) });
      app.route({
        method: 'GET',
        url: `${url}/*`,
        handler: (request, reply) => {
          const params = request.params as Record<string, unknown> | undefined;
          let name = typeof params?.['*'] === 'string' ? params['*'] : '';
          if (name.endsWith('/')) name = name.slice(0, -1); // ignoreTrailingSlash
          return answer(request, reply, name === '' ? undefined : name);
        },
      });
    }
  } catch (error) {
    done(error as Error);
    return;
  }
  done();
}

// Not encapsulated: the routes belong to the instance the plugin is registered on.
Object.defineProperty(healthPlugin, Symbol.for('skip-override'), { value: true });
Object.defineProperty(healthPlugin, Symbol.for('fastify.display-name'), { value: 'bulwark-health' });
