export { timeout, TimeoutPolicy, type TimeoutEvent, type TimeoutOptions, type TimeoutStrategy } from './timeout.js';
