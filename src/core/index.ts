export type { CallbackErrorMessage } from './callback-error.js';
export { ManualClock, systemClock, wallClock, type Clock, type TimerHandle } from './clock.js';
export type { ExecutionContext } from './context.js';
export {
  channelNames,
  type CircuitRejectedMessage,
  type ExecuteMessage,
  type FetchOriginEvictedMessage,
  type HealthCheckMessage,
  type SheddingRejectedMessage,
  type ShutdownPhaseMessage,
} from './diagnostics.js';
export {
  BrokenCircuitError,
  BulkheadRejectedError,
  BulwarkError,
  ConcurrencyLimitedError,
  IsolatedCircuitError,
  isBulwarkError,
  QuotaExceededError,
  RateLimitedError,
  RateLimitStoreUnavailableError,
  StoreUnavailableError,
  TimeoutError,
  type BulwarkErrorCode,
  type ConcurrencyLimitedReason,
  type RateLimitDecision,
} from './errors.js';
export { EventEmitter, toDisposable, type Disposable, type EventSubscriber } from './events.js';
export { pipeline, PipelinePolicy, type PipelineResult } from './pipeline.js';
export { type ExecuteOptions, type Policy, type PolicyFunction } from './policy.js';
