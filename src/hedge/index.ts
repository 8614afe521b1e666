export { hedge, HedgePolicy, type HedgeEvent, type HedgeOptions } from './hedge.js';
