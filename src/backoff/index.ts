export { constant, exponential, isBackoff, nextDelay, type Backoff, type ExponentialOptions } from './backoff.js';
