export {
  adaptiveThrottle,
  AdaptiveThrottlePolicy,
  type AdaptiveThrottleOptions,
  type ThrottleRejectedEvent,
} from './adaptive-throttle.js';
export { ThrottledError } from './throttled-error.js';
