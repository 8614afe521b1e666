import type { ServerResponse } from 'node:http';
import type { AdmissionController } from '../../admission/controller.js';
import { type AdmissionOptions, InboundAdmission, InboundPropagation, type PropagationOptions } from '../../http/admission.js';
import { deadlineExceededProblem, writeProblem } from '../../http/problem.js';
import { boundedConsoleReporter } from '../../http/rate-limit-options.js';
import type { BulwarkMiddleware, ExpressRequestLike } from './rate-limit.js';

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
  const propagation = new InboundPropagation('propagationMiddleware', options);
  return function bulwarkPropagation(request, response, next) {
    propagation.run(request, response, next, refuseExpired);
  };
}

function refuseExpired(response: ServerResponse): void {
  writeProblem(response, deadlineExceededProblem);
}

/**
 * The middleware {@link admissionMiddleware} returns, with the controller it decides with.
 * @example
 * const admission = admissionMiddleware({ limit: gradient2() });
 * setInterval(() => console.log(admission.controller.limit), 10_000).unref();
 */
export interface AdmissionMiddleware extends BulwarkMiddleware {
  /** The admission controller (the one given, or the one the middleware made from options). */
  readonly controller: AdmissionController;
}

/**
 * What {@link admissionMiddleware} takes: a controller, `{ controller, ...options }`, or controller
 * options (`limit`, `maxQueue`, `maxWaitMs`, `mode`, …) with the adapter's beside them.
 * @example
 * const options: AdmissionMiddlewareOptions = { limit: gradient2({ maxLimit: 200 }), priority: (req) => (req.path.startsWith('/checkout') ? 'critical' : 'sheddable') };
 */
export type AdmissionMiddlewareOptions = AdmissionOptions<ExpressRequestLike>;

/**
 * Express 4/5 middleware that puts every request through an admission controller, decided on
 * arrival: an adaptive concurrency limit (gradient2 by default) with priority shedding — under
 * overload the lowest class goes first — and per-tenant fairness. A request turned away gets 503
 * with `Retry-After` and an `application/problem+json` body whose `reason` says why. An admitted
 * request holds its permit until its response has been sent or its client has gone; 503, 504 and
 * a client gone early count as `dropped` (overload), other 5xx are ignored by the limit. The
 * handler runs in the request's admission scope (class, propagated deadline, tenant), which a
 * `bulwark/fetch` with `propagate` sends on. bulwark's own routes are never shed. Put it first.
 * @example
 * app.use(admissionMiddleware({
 *   limit: gradient2({ maxLimit: 500 }),
 *   priority: (req, propagated) => propagated ?? (req.path.startsWith('/checkout') ? 'critical' : 'sheddable'),
 *   trustProxy: 'uniquelocal',
 * }));
 */
export function admissionMiddleware(options?: AdmissionMiddlewareOptions): AdmissionMiddleware {
  const owner = 'admissionMiddleware';
  const inbound = new InboundAdmission<ExpressRequestLike>(owner, options, boundedConsoleReporter(owner, 10_000, 'a request could not be checked for admission'));
  const middleware: BulwarkMiddleware = function bulwarkAdmission(request, response, next) {
    // The URL as the client sent it: under `app.use('/api', ...)` `/api/metrics` is not bulwark's `/metrics`.
    const url = (request as { originalUrl?: string }).originalUrl ?? request.url;
    inbound.run(request as ExpressRequestLike, request, url, response, response, writeProblem, next);
  };
  return Object.assign(middleware, { controller: inbound.controller });
}
