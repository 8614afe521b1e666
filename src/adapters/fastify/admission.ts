import type { ServerResponse } from 'node:http';
import { type AdmissionOptions, InboundAdmission, InboundPropagation, type PropagationOptions } from '../../http/admission.js';
import { deadlineExceededProblem } from '../../http/problem.js';
import {
  type FastifyInstanceLike,
  type FastifyPluginLike,
  type FastifyReplyLike,
  type FastifyRequestLike,
  pluginOf,
  registerOptionKeys,
  sendProblem,
} from './types.js';

function setupPropagation(app: unknown, options: PropagationOptions): void {
  const propagation = new InboundPropagation('propagationPlugin', options, registerOptionKeys);
  // Callback style: `done` runs inside the scope, and with it the rest of the request (later hooks,
  // body parsing, the handler). An async hook would resume Fastify outside it.
  (app as FastifyInstanceLike).addHook(
    'onRequest',
    function bulwarkPropagation(request: FastifyRequestLike, reply: FastifyReplyLike, done: (error?: Error) => void) {
      // An expired request is answered; `done` is not called then, so nothing else runs for it.
      propagation.run(request.raw, reply, done, refuseExpired);
    },
  );
}

function refuseExpired(reply: FastifyReplyLike): void {
  sendProblem(reply, deadlineExceededProblem);
}

/**
 * Fastify 4/5 plugin that reads the caller's traffic class and remaining deadline
 * (`bulwark-priority`, `bulwark-deadline`) from peers trusted by `trustProxy` — never from others —
 * and runs the rest of the request, its route handler included, inside that admission scope. A
 * request whose deadline had passed on arrival is answered 504 with an `application/problem+json`
 * body and not handled. Malformed values are ignored. Not encapsulated; register it first.
 * @example
 * await app.register(propagationPlugin, { trustProxy: ['10.0.0.0/8'] });
 */
export const propagationPlugin: FastifyPluginLike<PropagationOptions> = pluginOf(setupPropagation, 'bulwark-propagation');

/**
 * Options of {@link admissionPlugin}: `{ controller }`, or the options of a controller the plugin
 * makes; either with the adapter's options (`priority`, `tenant`, `skip`, `exemptProbes`,
 * `trustProxy`, `onError`) beside them.
 * @example
 * await app.register(admissionPlugin, { limit: gradient2(), priority: (req) => (req.url.startsWith('/checkout') ? 'critical' : 'sheddable') });
 */
export type AdmissionPluginOptions = AdmissionOptions<FastifyRequestLike>;

function setupAdmission(app: unknown, options: AdmissionPluginOptions): void {
  const inbound = new InboundAdmission<FastifyRequestLike>(
    'admissionPlugin',
    options,
    (error, request) => request.log.error({ err: error }, 'bulwark: a request could not be checked for admission'),
    registerOptionKeys,
  );
  // Callback style, so that `done` — and with it the rest of the request — runs in the admission
  // scope, also when it is called later, once a queued request gets its slot.
  (app as FastifyInstanceLike).addHook(
    'onRequest',
    function bulwarkAdmission(request: FastifyRequestLike, reply: FastifyReplyLike, done: (error?: Error) => void) {
      inbound.run(request, request.raw, request.url, (reply as FastifyReplyLike & { readonly raw: ServerResponse }).raw, reply, sendProblem, done);
    },
  );
}

/**
 * Fastify 4/5 plugin that puts every request through an admission controller, decided on arrival
 * in its `onRequest` hook: an adaptive concurrency limit (gradient2 by default) with priority
 * shedding and per-tenant fairness. A request turned away gets 503 with `Retry-After` and an
 * `application/problem+json` body whose `reason` says why; an admitted one holds its permit until
 * its response has been sent or its client has gone (503, 504 and a client gone early count as
 * `dropped`, other 5xx are ignored by the limit), and its route handler runs in its admission
 * scope. bulwark's own routes are never shed. Not encapsulated; register it first.
 * @example
 * await app.register(admissionPlugin, { controller: admissionController({ limit: gradient2(), maxQueue: 50, maxWaitMs: 20 }), trustProxy: 'uniquelocal' });
 */
export const admissionPlugin: FastifyPluginLike<AdmissionPluginOptions> = pluginOf(setupAdmission, 'bulwark-admission');
