export { inspect, type Introspection, type PolicyEvent, type PolicyRates, type PolicyViewBase } from './inspect.js';
export { inspectHandler, type InspectRequestHandler } from './handler.js';
export { recordPolicies } from './recorder.js';
