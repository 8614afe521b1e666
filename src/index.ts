/**
 * bulwark: resilience policies for Node.js services.
 * @packageDocumentation
 */
export * from './core/index.js';
export * from './backoff/index.js';
export * from './circuit/index.js';
export * from './retry/index.js';
export * from './timeout/index.js';
export * from './bulkhead/index.js';
export * from './fallback/index.js';
export * from './hedge/index.js';
export * from './ratelimit/index.js';
export * from './health/index.js';
export * from './shedding/index.js';
export * from './admission/index.js';
export * from './chaos/index.js';
export * from './throttle/index.js';
export * from './introspection/index.js';
