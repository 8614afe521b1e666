/**
 * bulwark/express: Express 4 and 5 middleware for rate limits, load shedding and health routes.
 * @packageDocumentation
 */
export * from './express/rate-limit.js';
export * from './express/load-shedding.js';
export * from './express/admission.js';
export * from '../http/index.js';
export * from './express/health.js';
