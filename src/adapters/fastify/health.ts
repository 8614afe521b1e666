import type { Health } from '../../health/health.js';
import { assertHealth, matchRoute, resolveRoutes, respond, type HealthRoutesOptions } from '../../health/routes.js';

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
  route(options: {
    method: 'GET';
    url: string;
    handler: (request: HealthFastifyRequest, reply: HealthFastifyReply) => Promise<string>;
  }): unknown;
}

/**
 * A Fastify 4/5 plugin serving `GET` (and Fastify's automatic `HEAD`) on `/livez`, `/readyz`,
 * `/startupz` and `/healthz` after `prefix`: 200 or 503, `Cache-Control: no-store`, JSON; per-check
 * results with `?verbose`. Not encapsulated (routes land on the instance it is registered on), so
 * Fastify's own `prefix` does not apply: use this plugin's `prefix` option.
 * @example
 * await app.register(healthPlugin, { health: h, prefix: '/ops' });
 */
export function healthPlugin(app: HealthFastifyInstance, options: HealthPluginOptions, done: (error?: Error) => void): void {
  try {
    const { health: h, ...rest } = options ?? ({} as HealthPluginOptions);
    assertHealth('healthPlugin: option "health"', h);
    const routes = resolveRoutes('healthPlugin', rest);
    for (const url of routes.paths.keys()) {
      app.route({
        method: 'GET',
        url,
        handler: async (request, reply) => {
          // The router may send other spellings here (ignoreTrailingSlash, caseSensitive: false):
          // read the query against the registered path.
          const q = request.url.indexOf('?');
          const match = matchRoute(routes, 'GET', q === -1 ? url : url + request.url.slice(q));
          const answer = await respond(h, routes.paths.get(url)!, match?.verbose ?? routes.verbose === 'always');
          reply.code(answer.statusCode);
          for (const [name, value] of Object.entries(answer.headers)) reply.header(name, value);
          return answer.body;
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
