import { type Attributes, context, createContextKey } from '@opentelemetry/api';
import type { SendScope } from '../core/diagnostics.js';
import { attributeNames as A } from './names.js';

/** Where the resend ordinal of the request being sent lives in the OpenTelemetry context. */
const resendCountKey = createContextKey('bulwark.http.request.resend_count');

/**
 * The send scope `bulwark/otel` installs: a request that `bulwark/fetch` sends again (a retry, a
 * hedge, a failover) runs with its resend ordinal in the active context; the first runs as is.
 */
export const sendScope: SendScope = (message, run) =>
  message.resendCount > 0 ? context.with(context.active().setValue(resendCountKey, message.resendCount), run) : run();

/**
 * Attributes for the HTTP client span of a request `bulwark/fetch` sends: on the second and later
 * requests of one call, `http.request.resend_count` (1, 2, ...); on the first, none. OpenTelemetry's
 * undici instrumentation makes the client span, so pass this as its `startSpanHook`. Reads the
 * active context only; needs `bulwark/otel` enabled.
 * @example
 * import { UndiciInstrumentation } from '@opentelemetry/instrumentation-undici';
 * const undici = new UndiciInstrumentation({ startSpanHook: resendCountAttributes });
 */
export function resendCountAttributes(_request?: unknown): Attributes {
  const count = context.active().getValue(resendCountKey);
  return typeof count === 'number' ? { [A.httpRequestResendCount]: count } : {};
}
