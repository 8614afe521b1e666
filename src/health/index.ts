export { health, Health, type HealthOptions, type ProbeOrSummary } from './health.js';
export { eventLoopDelayCheck, type EventLoopDelayCheckOptions } from './event-loop.js';
export { isServedPath, registerServedPath, servedPaths, DEFAULT_SERVED_PATHS } from './served-paths.js';
export { healthHandler, type HealthHandlerOptions, type HealthRequestHandler } from './handler.js';
export type { HealthRoutesOptions } from './routes.js';
export {
  gracefulShutdown,
  type ClosableApp,
  type GracefulShutdown,
  type GracefulShutdownOptions,
  type HttpServerLike,
  type ShutdownHook,
  type ShutdownHookContext,
  type ShutdownPhase,
  type ShutdownResult,
  type ShutdownTarget,
} from './shutdown.js';
export type {
  CheckDetails,
  CheckFailure,
  CheckOutcome,
  CheckResult,
  CheckStatus,
  HealthCheck,
  HealthReport,
  Probe,
  ProbeState,
} from './types.js';
