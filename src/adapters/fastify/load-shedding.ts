import { overloadedProblem } from '../../http/problem.js';
import { isShedder, shedderFrom, type ShedderOrOptions } from '../../http/shedding.js';
import type { LoadShedder } from '../../shedding/load-shedder.js';
import { type FastifyInstanceLike, type FastifyPluginLike, type FastifyReplyLike, pluginOf, registerOptionKeys, sendProblem } from './types.js';

/**
 * Options of {@link loadSheddingPlugin}: `{ shedder }`, or the options of a shedder the plugin makes (and closes with the app).
 * @example
 * await app.register(loadSheddingPlugin, { shedder: loadShedder({ maxEventLoopUtilization: 0.98 }) });
 */
export type LoadSheddingPluginOptions = { readonly shedder: LoadShedder } | ShedderOrOptions;

function setup(app: unknown, options: LoadSheddingPluginOptions): void {
  const instance = app as FastifyInstanceLike;
  let given: unknown = options;
  if (!isShedder(options)) {
    const own: Record<string, unknown> = { ...(options as object) };
    for (const k of registerOptionKeys) delete own[k];
    if ('shedder' in own && Object.keys(own).length > 1) {
      throw new TypeError(`loadSheddingPlugin: pass either { shedder } or shedder options, not both (got ${Object.keys(own).join(', ')})`);
    }
    given = 'shedder' in own ? own.shedder : own;
  }
  const { shedder, owned } = shedderFrom('loadSheddingPlugin', given as ShedderOrOptions);
  if (owned) {
    instance.addHook('onClose', (_instance: unknown, closed: () => void) => {
      shedder.close();
      closed();
    });
  }
  const body = overloadedProblem;
  instance.addHook('onRequest', async function bulwarkLoadShedding(_request: unknown, reply: FastifyReplyLike) {
    if (shedder.check() === null) return undefined;
    shedder.reject();
    return sendProblem(reply, body, shedder.retryAfter);
  });
}

/**
 * Fastify 4/5 plugin that answers 503 with `Retry-After` and an `application/problem+json` body
 * while the load shedder reports pressure. Not encapsulated; register it before other plugins so
 * its `onRequest` hook runs first. Given options rather than a shedder, it makes one and closes it
 * with the app.
 * @example
 * await app.register(loadSheddingPlugin, { maxEventLoopDelayMs: 200, maxEventLoopUtilization: 0.98 });
 */
export const loadSheddingPlugin: FastifyPluginLike<LoadSheddingPluginOptions> = pluginOf(setup, 'bulwark-load-shedding');
