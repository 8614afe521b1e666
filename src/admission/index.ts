export { parsePriority, type Priority, type PriorityClass, type PriorityLevel } from './priority.js';
export { currentAdmissionScope, withAdmissionScope, type AdmissionScope } from './scope.js';
export type {
  AdmissionMode,
  AdmissionRejection,
  AdmissionRejectReason,
  AdmissionRequest,
  AdmissionSnapshot,
  Permit,
  PermitOutcome,
} from './types.js';
export {
  aimd,
  gradient2,
  vegas,
  type AimdOptions,
  type Gradient2Options,
  type LimitAlgorithm,
  type LimitEstimator,
  type LimitOptions,
  type LimitWindow,
  type VegasOptions,
} from './algorithms.js';
export {
  admissionController,
  AdmissionController,
  type Admission,
  type AdmissionControllerOptions,
  type AdmissionDecisionEvent,
  type AdmissionLimitEvent,
  type LoadSignal,
} from './controller.js';
export { adaptiveConcurrency, AdaptiveConcurrencyPolicy, type AdaptiveConcurrencyOptions } from './adaptive-concurrency.js';
