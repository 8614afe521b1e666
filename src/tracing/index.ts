/**
 * bulwark/otel: OpenTelemetry tracing for bulwark — span events on the caller's span for what the
 * policies do (retries, breaker changes, rate-limit decisions, timeouts, hedges, ...), and
 * optionally a span per policy execution. Subscribes to bulwark's diagnostics channels; needs
 * `@opentelemetry/api`.
 * @packageDocumentation
 */
export { type BulwarkInstrumentationConfig, type PolicyKind, policyKinds } from './config.js';
export {
  BulwarkInstrumentation,
  enableTracing,
  type EnableTracingOptions,
  instrumentationName,
  type TracingHandle,
} from './instrumentation.js';
export { attributeNames, eventNames } from './names.js';
export { resendCountAttributes } from './resend.js';
export { VERSION } from './version.js';
