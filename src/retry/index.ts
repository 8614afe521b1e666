export { retryBudget, RetryBudget, type RetryBudgetOptions } from './budget.js';
export {
  defaultRetryHandle,
  retry,
  RetryPolicy,
  type GiveUpEvent,
  type GiveUpReason,
  type RetryEvent,
  type RetryOptions,
} from './retry.js';
