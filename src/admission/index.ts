export { parsePriority, type Priority, type PriorityClass, type PriorityLevel } from './priority.js';
export { currentAdmissionScope, withAdmissionScope, type AdmissionScope } from './scope.js';
export type { AdmissionMode } from './types.js';
