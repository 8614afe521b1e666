export { fallback, FallbackPolicy, type FallbackEvent, type FallbackOptions, type FallbackSource } from './fallback.js';
