export { fixedWindow, type FixedWindowOptions } from './fixed-window.js';
export { gcra, type GcraAlgorithm, type GcraOptions } from './gcra.js';
export { slidingWindow, type SlidingWindowOptions } from './sliding-window.js';
