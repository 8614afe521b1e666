export {
  faultInjection,
  FaultInjectionPolicy,
  type FaultInjectedEvent,
  type FaultInjectionOptions,
  type InjectedKind,
} from './fault-injection.js';
export type { LatencySource } from './options.js';
