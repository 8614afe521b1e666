export { constant, exponential, type Backoff, type ExponentialOptions } from './backoff.js';
