import type { ServerResponse } from 'node:http';
import { inPropagatedScope, propagationSetup, type PropagationOptions } from '../../http/admission.js';
import { deadlineExceededProblem, writeProblem } from '../../http/problem.js';
import type { BulwarkMiddleware } from './rate-limit.js';

/**
 * Express 4/5 middleware that reads the caller's traffic class and remaining deadline
 * (`bulwark-priority`, `bulwark-deadline`) from peers trusted by `trustProxy` — never from others —
 * and runs the rest of the request inside that admission scope, so `currentAdmissionScope()`, the
 * admission controllers and a `bulwark/fetch` with `propagate` see them. A request whose deadline
 * had passed on arrival is answered 504 with an `application/problem+json` body and not handled.
 * Malformed values are ignored. Put it first.
 * @example
 * app.use(propagationMiddleware({ trustProxy: ['10.0.0.0/8'] }));
 * app.get('/price', async (req, res) => res.json(await pricing('/v1/price'))); // pricing: createFetch({ propagate: true })
 */
export function propagationMiddleware(options: PropagationOptions): BulwarkMiddleware {
  const read = propagationSetup('propagationMiddleware', options);
  return function bulwarkPropagation(request, response, next) {
    inPropagatedScope(read, request, response, next, refuseExpired);
  };
}

function refuseExpired(response: ServerResponse): void {
  writeProblem(response, deadlineExceededProblem);
}
