/**
 * bulwark/fastify: Fastify 4 and 5 plugins for rate limits, load shedding and health routes.
 * @packageDocumentation
 */
export * from './fastify/rate-limit.js';
export * from './fastify/load-shedding.js';
export type { FastifyPluginLike, FastifyReplyLike, FastifyRequestLike } from './fastify/types.js';
export * from './fastify/admission.js';
export * from '../http/index.js';
export * from './fastify/health.js';
