/**
 * bulwark/dashboard: a live page of every policy in the process, served by your own server.
 * @packageDocumentation
 */
export { dashboard, type DashboardHandler, type DashboardOptions } from './handler.js';
