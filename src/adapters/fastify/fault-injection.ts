import type { ServerResponse } from 'node:http';
import { faultCheckFailedProblem, type HttpFaultInjectionOptions, type HttpFaultInjector, holdRequest, injectorFrom, isInjector } from '../../http/fault-injection.js';
import { checkOptions, show } from '../../core/validate.js';
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
 * Options of {@link faultInjectionPlugin}: `{ faults }` (an `httpFaultInjector()`, whose
 * `enabled` and `rate` you keep in hand), or the injector's options.
 * @example
 * await app.register(faultInjectionPlugin, { faults: httpFaultInjector({ rate: 0.3, status: 503 }) });
 */
export type FaultInjectionPluginOptions =
  // Any injector: one made without `when` is typed for node's request, which Fastify's is not.
  | { readonly faults: HttpFaultInjector<never> }
  | HttpFaultInjectionOptions<FastifyRequestLike>;

/** The reply members the plugin uses beyond {@link FastifyReplyLike}: Fastify 4 and 5 have both. */
interface HijackableReply extends FastifyReplyLike {
  readonly raw: ServerResponse;
  hijack(): unknown;
}

function setup(app: unknown, options: FaultInjectionPluginOptions): void {
  const instance = app as FastifyInstanceLike;
  if (typeof options !== 'object' || options === null) {
    throw new TypeError(`faultInjectionPlugin: options must be { faults } or fault injection options, got ${show(options)}`);
  }
  const own: Record<string, unknown> = { ...options };
  for (const k of registerOptionKeys) delete own[k];
  let faults: HttpFaultInjector<FastifyRequestLike>;
  if ('faults' in own) {
    const o = checkOptions('faultInjectionPlugin', own as { faults?: unknown }, ['faults']);
    if (!isInjector(o.faults)) {
      throw new TypeError(`faultInjectionPlugin: option "faults" must be an httpFaultInjector(), got ${show(o.faults)}`);
    }
    faults = o.faults as HttpFaultInjector<FastifyRequestLike>;
  } else {
    faults = injectorFrom<FastifyRequestLike>(own);
  }
  instance.addHook('onRequest', async function bulwarkFaultInjection(request: FastifyRequestLike, reply: FastifyReplyLike) {
    // Switched off (its usual state outside an experiment): one property read, and on.
    if (!faults.enabled) return undefined;
    let fault;
    try {
      fault = faults.decide(request, request.url, request.raw);
    } catch (error) {
      try {
        if (faults.onError === undefined) request.log.error({ err: error }, 'bulwark: fault injection could not check a request');
        else faults.onError(error, request);
      } catch {
        // A reporter that throws must not turn one failed check into a crashed process.
      }
      return sendProblem(reply, faultCheckFailedProblem);
    }
    if (fault === undefined) return undefined;
    const held = reply as HijackableReply;
    if (fault.latencyMs > 0 && (await new Promise<boolean>((resolve) => holdRequest(held.raw, fault.latencyMs, resolve)))) {
      // The client went away while held: nothing is left to answer, and no handler should run.
      held.hijack();
      return reply;
    }
    if (fault.abort) {
      held.hijack();
      request.raw.socket.destroy();
      return reply;
    }
    if (fault.answer !== undefined) return sendProblem(reply, fault.answer);
    return undefined;
  });
}

/**
 * Fastify 4/5 plugin that injects faults into a share of requests from its `onRequest` hook:
 * latency before the request goes on, an error status with an `application/problem+json` body, or
 * a dropped connection. Not encapsulated; register it first so that it sees every route. bulwark's
 * own routes (health probes, `/metrics`) are never touched unless `exemptProbes: false`. A request
 * may ask for the configured faults with a header only when the `header` option is given and its
 * socket's peer is trusted. Injected latency ends at once when the client goes away.
 * @example
 * const faults = httpFaultInjector({ rate: 0.3, status: 503 });
 * await app.register(faultInjectionPlugin, { faults });
 */
export const faultInjectionPlugin: FastifyPluginLike<FaultInjectionPluginOptions> = pluginOf(setup, 'bulwark-fault-injection');
