export { loadShedder, LoadShedder, type LoadPressure, type LoadSample, type LoadShedderOptions, type ShedReason } from './load-shedder.js';
