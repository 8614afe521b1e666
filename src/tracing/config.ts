import { show } from '../core/validate.js';

/**
 * The policy kinds bulwark publishes on `bulwark:execute` (`ExecuteMessage.kind`), those of
 * `bulwark/opossum` and `bulwark/bottleneck` included: what a `spans` list may name.
 * @example
 * new BulwarkInstrumentation({ spans: policyKinds.filter((k) => k !== 'pipeline') });
 */
export const policyKinds = [
  'pipeline',
  'retry',
  'circuit-breaker',
  'timeout',
  'bulkhead',
  'adaptive-concurrency',
  'fallback',
  'hedge',
  'rate-limit',
  'opossum',
  'bottleneck',
] as const;

/**
 * One of {@link policyKinds}.
 * @example
 * const traced: PolicyKind[] = ['retry', 'circuit-breaker'];
 */
export type PolicyKind = (typeof policyKinds)[number];

/**
 * What `bulwark/otel` records. Every option is optional; the defaults record events only.
 * @example
 * const config: BulwarkInstrumentationConfig = { spans: ['retry', 'hedge'], recordErrorMessages: false };
 */
export interface BulwarkInstrumentationConfig {
  /**
   * Subscribe at construction, as OpenTelemetry's own instrumentations do. By default nothing is
   * subscribed until `enable()` is called, which `NodeSDK.start()` and `registerInstrumentations()`
   * do. `getConfig().enabled` reports whether it is enabled now.
   * @default false
   */
  readonly enabled?: boolean;
  /**
   * A span around each policy execution (kind INTERNAL), made the active span inside it so that
   * attempts and outbound requests nest under it: `true` for every policy, or the kinds to trace.
   * @default false
   */
  readonly spans?: boolean | readonly PolicyKind[];
  /**
   * Span events on the active span for retries, breaker state changes and rejections, rate-limit
   * and quota decisions, timeouts, bulkhead rejections, hedges, fallbacks, fetch failovers and
   * load shedding.
   * @default true
   */
  readonly events?: boolean;
  /**
   * Record error messages: as the status description of a failed span, and as `exception.message`
   * on bulwark's retry and fallback events. Messages often carry user data (ids, addresses, query
   * text), so by default only the error's class is recorded (`error.type`). Stack traces are never
   * recorded: no `exception` span event is added (see docs/observability.md, "What is recorded").
   * @default false
   */
  readonly recordErrorMessages?: boolean;
}

/** Internal: a validated configuration with its defaults applied. */
export interface Settings {
  /** The kinds to make spans for: `'all'`, or a set (empty for none). */
  readonly spanKinds: 'all' | ReadonlySet<string>;
  readonly events: boolean;
  readonly recordErrorMessages: boolean;
}

/** Keys of {@link BulwarkInstrumentationConfig}. */
export const configKeys = ['enabled', 'spans', 'events', 'recordErrorMessages'] as const;

function booleanOption(owner: string, name: string, value: unknown, fallback: boolean): boolean {
  if (value === undefined) return fallback;
  if (typeof value !== 'boolean') throw new TypeError(`${owner}: option "${name}" must be a boolean, got ${show(value)}`);
  return value;
}

/** Validates the `spans` option: a boolean, or an array of known policy kinds. */
function spanKinds(owner: string, value: unknown): 'all' | ReadonlySet<string> {
  if (value === undefined || value === false) return new Set();
  // Every kind, including one a newer or foreign policy publishes.
  if (value === true) return 'all';
  if (!Array.isArray(value)) {
    throw new TypeError(`${owner}: option "spans" must be a boolean or an array of policy kinds, got ${show(value)}`);
  }
  value.forEach((kind: unknown, i) => {
    if (typeof kind !== 'string' || !(policyKinds as readonly string[]).includes(kind)) {
      throw new TypeError(
        `${owner}: option "spans[${i}]" must be one of ${policyKinds.map((k) => JSON.stringify(k)).join(', ')}, got ${show(kind)}`,
      );
    }
  });
  return new Set(value as string[]);
}

/** Validates the recording options of a config (the caller has checked the keys). */
export function resolveSettings(owner: string, config: Partial<BulwarkInstrumentationConfig>): Settings {
  return {
    spanKinds: spanKinds(owner, config.spans),
    events: booleanOption(owner, 'events', config.events, true),
    recordErrorMessages: booleanOption(owner, 'recordErrorMessages', config.recordErrorMessages, false),
  };
}

/** Validates `enabled`. */
export function enabledOption(owner: string, value: unknown): boolean | undefined {
  return value === undefined ? undefined : booleanOption(owner, 'enabled', value, false);
}
