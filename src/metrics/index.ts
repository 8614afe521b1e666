/**
 * bulwark/prometheus: bulwark's diagnostics channels as Prometheus metrics in a prom-client
 * registry of yours, and a `/metrics` handler for node:http, Express and Fastify.
 * @packageDocumentation
 */
export {
  registerMetrics,
  type MetricsOptions,
  type MetricsRegistration,
  type ObservedBreaker,
} from './register.js';
export {
  metricsHandler,
  metricsRoute,
  type MetricsHandlerOptions,
  type MetricsRequestHandler,
  type MetricsRouteHandler,
  type MetricsRouteReply,
  type MetricsRouteRequest,
} from './handler.js';
export type { ExecutionOutcome } from './outcome.js';
export type { ObservedAdmission } from './admission.js';
export { OVERFLOW_LABEL_VALUE } from './label-cap.js';
