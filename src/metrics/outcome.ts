import { type BulwarkErrorCode, isAbortError, isBulwarkError } from '../core/errors.js';

/**
 * The `outcome` label of an execution: `success`, a bounded name for each bulwark rejection,
 * `aborted` for a cancellation, and `error` for anything else the function threw.
 * @example
 * const outcome: ExecutionOutcome = 'circuit_open';
 */
export type ExecutionOutcome =
  | 'success'
  | 'error'
  | 'aborted'
  | 'circuit_open'
  | 'circuit_isolated'
  | 'timeout'
  | 'bulkhead_rejected'
  | 'concurrency_limited'
  | 'rate_limited'
  | 'quota_exceeded'
  | 'store_unavailable'
  | 'http_status'
  | 'throttled';

const byCode: Readonly<Record<BulwarkErrorCode, ExecutionOutcome>> = {
  ERR_BULWARK_BROKEN_CIRCUIT: 'circuit_open',
  ERR_BULWARK_ISOLATED_CIRCUIT: 'circuit_isolated',
  ERR_BULWARK_TIMEOUT: 'timeout',
  ERR_BULWARK_DEADLINE_EXCEEDED: 'timeout',
  ERR_BULWARK_BULKHEAD_REJECTED: 'bulkhead_rejected',
  ERR_BULWARK_CONCURRENCY_LIMITED: 'concurrency_limited',
  ERR_BULWARK_RATE_LIMITED: 'rate_limited',
  ERR_BULWARK_QUOTA_EXCEEDED: 'quota_exceeded',
  ERR_BULWARK_STORE_UNAVAILABLE: 'store_unavailable',
  ERR_BULWARK_RATE_LIMIT_STORE_UNAVAILABLE: 'store_unavailable',
  ERR_BULWARK_HTTP_STATUS: 'http_status',
  ERR_BULWARK_RETRY_AFTER: 'http_status',
  ERR_BULWARK_THROTTLED: 'throttled',
};

/**
 * Classifies what an execution rejected with. Only the error's bulwark `code` and its `name`
 * are read, never its message, so the label set stays small whatever the functions throw.
 */
export function outcomeOf(error: unknown): ExecutionOutcome {
  try {
    if (isBulwarkError(error)) {
      // A code from a newer copy of bulwark that this one does not know counts as a plain error.
      return Object.hasOwn(byCode, error.code) ? byCode[error.code] : 'error';
    }
    if (isAbortError(error)) return 'aborted';
  } catch {
    // A hostile value (a revoked Proxy, a getter that throws) is still a failed execution. This
    // runs in a channel subscriber, where a throw would become the process's uncaught exception.
  }
  return 'error';
}
