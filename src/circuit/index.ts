export {
  circuitBreaker,
  CircuitBreakerPolicy,
  defaultHandle,
  type CircuitBreakerOptions,
  type CircuitBreakerSnapshot,
  type CircuitState,
  type StateChangeEvent,
  type StateChangeReason,
} from './circuit-breaker.js';
export {
  consecutive,
  countWindow,
  timeWindow,
  type BreakerStrategy,
  type CountWindowOptions,
  type FailureTracker,
  type TimeWindowOptions,
} from './strategies.js';
export {
  memoryBreakerStore,
  type BreakerPeer,
  type BreakerStore,
  type FleetRule,
  type FleetState,
  type SharedBreaker,
} from './store.js';
