import { inPropagatedScope, propagationSetup, type PropagationOptions } from '../../http/admission.js';
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
  const read = propagationSetup('propagationPlugin', options, registerOptionKeys);
  // Callback style: `done` runs inside the scope, and with it the rest of the request (later hooks,
  // body parsing, the handler). An async hook would resume Fastify outside it.
  (app as FastifyInstanceLike).addHook(
    'onRequest',
    function bulwarkPropagation(request: FastifyRequestLike, reply: FastifyReplyLike, done: (error?: Error) => void) {
      // An expired request is answered; `done` is not called then, so nothing else runs for it.
      inPropagatedScope(read, request.raw, reply, done, refuseExpired);
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
