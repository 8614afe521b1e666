import type { IncomingMessage, ServerResponse } from 'node:http';
import { faultCheckFailedProblem, type HttpFault, type HttpFaultInjectionOptions, type HttpFaultInjector, holdRequest, injectorFrom } from '../../http/fault-injection.js';
import { PROBLEM_CONTENT_TYPE, type ProblemResponse } from '../../http/problem.js';
import { boundedConsoleReporter } from '../../http/rate-limit-options.js';
import type { BulwarkMiddleware } from './rate-limit.js';

/**
 * The middleware {@link faultInjectionMiddleware} returns, with the injector it consults (switch
 * it with `faults.enabled`, tune it with `faults.rate`).
 * @example
 * const chaos = faultInjectionMiddleware({ rate: 0.3, status: 503 });
 * chaos.faults.enabled = false;
 */
export interface FaultInjectionMiddleware extends BulwarkMiddleware {
  readonly faults: HttpFaultInjector<IncomingMessage>;
}

/**
 * Express 4/5 middleware (any `(req, res, next)` server, in fact) that injects faults into a share
 * of requests: latency before the request goes on, an error status with an
 * `application/problem+json` body, or a dropped connection. bulwark's own routes (health probes,
 * `/metrics`) are never touched unless `exemptProbes: false`. A request may ask for the configured
 * faults with a header only when the `header` option is given and its socket's peer is trusted.
 * Injected latency ends at once, timer and listener removed, when the client goes away.
 * @example
 * const faults = httpFaultInjector({ rate: 0.3, status: 503, when: (req) => req.url?.startsWith('/quote') === true });
 * app.use(faultInjectionMiddleware(faults));
 */
export function faultInjectionMiddleware(options: HttpFaultInjector<IncomingMessage> | HttpFaultInjectionOptions<IncomingMessage>): FaultInjectionMiddleware {
  const faults = injectorFrom<IncomingMessage>(options);
  const report = faults.onError ?? boundedConsoleReporter('faultInjectionMiddleware', 10_000, 'fault injection could not check a request');
  const middleware: BulwarkMiddleware = function bulwarkFaultInjection(request, response, next) {
    // Switched off (its usual state outside an experiment): one property read, and on.
    if (!faults.enabled) {
      next();
      return;
    }
    let fault: HttpFault | undefined;
    try {
      fault = faults.decide(request, (request as { originalUrl?: string }).originalUrl ?? request.url, request);
    } catch (error) {
      try {
        report(error, request);
      } catch {
        // A reporter that throws must not turn one failed check into a crashed process.
      }
      answer(response, faultCheckFailedProblem);
      return;
    }
    if (fault === undefined) {
      next();
      return;
    }
    const injected = fault;
    const act = (): void => {
      if (injected.abort) request.socket.destroy();
      else if (injected.answer !== undefined) answer(response, injected.answer);
      else next();
    };
    if (injected.latencyMs === 0) act();
    else holdRequest(response, injected.latencyMs, (gone) => gone || act());
  };
  return Object.assign(middleware, { faults });
}

function answer(response: ServerResponse, body: ProblemResponse): void {
  response.statusCode = body.status;
  response.setHeader('Content-Type', PROBLEM_CONTENT_TYPE);
  response.setHeader('Content-Length', body.length);
  response.end(body.body);
}
