import { overloadedProblem, sheddingFailedProblem } from '../../http/problem.js';
import { sheddingSetup, type LoadSheddingAdapterOptions, type ShedderOrOptions } from '../../http/shedding.js';
import type { LoadShedder } from '../../shedding/load-shedder.js';
import {
  type FastifyInstanceLike,
  type FastifyPluginLike,
  type FastifyReplyLike,
  type FastifyRequestLike,
  pluginOf,
  registerOptionKeys,
  sendProblem,
} from './types.js';

/**
 * Options of {@link loadSheddingPlugin}: `{ shedder }`, or the options of a shedder the plugin
 * makes (and disposes of with the app); either with `skip` and `exemptProbes` beside them.
 * @example
 * await app.register(loadSheddingPlugin, { shedder: loadShedder({ maxEventLoopDelayMs: 200 }), skip: (req) => req.url === '/admin/status' });
 */
export type LoadSheddingPluginOptions =
  | ShedderOrOptions
  | (LoadSheddingAdapterOptions<FastifyRequestLike> & ({ readonly shedder: LoadShedder } | Exclude<ShedderOrOptions, LoadShedder>));

function setup(app: unknown, options: LoadSheddingPluginOptions): void {
  const instance = app as FastifyInstanceLike;
  const { shedder, owned, exempt, onError } = sheddingSetup<FastifyRequestLike>('loadSheddingPlugin', options, registerOptionKeys);
  if (owned) {
    instance.addHook('onClose', (_instance: unknown, closed: () => void) => {
      shedder.dispose();
      closed();
    });
  }
  const body = overloadedProblem;
  instance.addHook('onRequest', async function bulwarkLoadShedding(request: FastifyRequestLike, reply: FastifyReplyLike) {
    // Not under pressure (nearly always): one property read, and on.
    if (shedder.check() === null) return undefined;
    if (exempt !== undefined) {
      let through: boolean;
      try {
        through = exempt(request, request.url);
      } catch (error) {
        // Answered here as problem+json: Fastify's error handler would put the message in the body.
        try {
          if (onError === undefined) request.log.error({ err: error }, 'bulwark: the load shedder could not check a request');
          else onError(error, request);
        } catch {
          // A reporter that throws must not turn one failed check into a crashed process.
        }
        return sendProblem(reply, sheddingFailedProblem);
      }
      if (through) return undefined;
    }
    // Shadow mode: published as shed, and on with the header the 503 would have carried.
    // (`=== false`: a shedder from an older copy of bulwark returns nothing and enforces.)
    if (shedder.reject() === false) {
      reply.header('Retry-After', shedder.retryAfter);
      return undefined;
    }
    return sendProblem(reply, body, shedder.retryAfter);
  });
}

/**
 * Fastify 4/5 plugin that answers 503 with `Retry-After` and an `application/problem+json` body
 * while the load shedder reports pressure. Not encapsulated; register it before other plugins so
 * its `onRequest` hook runs first. Given options rather than a shedder, it makes one and disposes of
 * it with the app. bulwark's own routes (health probes, `/metrics`) are never shed unless
 * `exemptProbes: false`; `skip` exempts your own. A shedder in shadow mode (`mode: 'shadow'`) lets
 * every request on, with the `Retry-After` a 503 would carry, and publishes it as shed.
 * @example
 * await app.register(loadSheddingPlugin, { maxEventLoopDelayMs: 200, skip: (req) => req.url.startsWith('/admin/') });
 */
export const loadSheddingPlugin: FastifyPluginLike<LoadSheddingPluginOptions> = pluginOf(setup, 'bulwark-load-shedding');
