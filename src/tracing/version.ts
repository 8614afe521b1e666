/**
 * The version `bulwark/otel` reports as its instrumentation scope version: the package's own
 * (a unit test keeps the two equal).
 * @example
 * console.log(`bulwark/otel ${VERSION}`);
 */
export const VERSION = '0.1.0';
