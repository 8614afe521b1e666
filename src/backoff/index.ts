export { constant, exponential, isBackoff, type Backoff, type ExponentialOptions } from './backoff.js';
