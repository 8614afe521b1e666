import { diag, type MeterProvider, trace, type Tracer, type TracerProvider } from '@opentelemetry/api';
import { type Disposable, toDisposable } from '../core/events.js';
import { checkOptions, show } from '../core/validate.js';
import {
  type BulwarkInstrumentationConfig,
  configKeys,
  enabledOption,
  type PolicyKind,
  resolveSettings,
  type Settings,
} from './config.js';
import { Recorder } from './recorder.js';
import { VERSION } from './version.js';

/**
 * The instrumentation scope name of bulwark's spans and tracer.
 * @example
 * const ours = exporter.getFinishedSpans().filter((s) => s.instrumentationScope.name === instrumentationName);
 */
export const instrumentationName = 'bulwark/otel';

/**
 * Which instrumentation records, process-wide. The channels are shared by name and the execute
 * scope lives on `globalThis`, so two copies of bulwark (its ESM and CommonJS builds) or two
 * instrumentations would each record everything once more; the first to enable holds this slot
 * until it is disabled.
 */
const activeKey = Symbol.for('bulwark.otel.active');
type Registry = { [activeKey]?: object };

function activeOwner(): object | undefined {
  return (globalThis as Registry)[activeKey];
}

function claim(owner: object): boolean {
  const registry = globalThis as Registry;
  const current = registry[activeKey];
  if (current !== undefined && current !== owner) return false;
  registry[activeKey] = owner;
  return true;
}

function release(owner: object): void {
  const registry = globalThis as Registry;
  if (registry[activeKey] === owner) delete registry[activeKey];
}

/** Where `getConfig()` reports the recording options from: the defaults applied, `enabled` aside. */
interface StoredConfig {
  readonly spans: boolean | readonly PolicyKind[];
  readonly events: boolean;
  readonly recordErrorMessages: boolean;
}

function parseConfig(
  owner: string,
  config: BulwarkInstrumentationConfig | undefined,
): { settings: Settings; stored: StoredConfig; enabled: boolean | undefined } {
  const o = checkOptions(owner, config, configKeys);
  const settings = resolveSettings(owner, o);
  const spans = o.spans === undefined ? false : typeof o.spans === 'boolean' ? o.spans : Object.freeze([...o.spans]);
  return {
    settings,
    stored: { spans, events: settings.events, recordErrorMessages: settings.recordErrorMessages },
    enabled: enabledOption(owner, o.enabled),
  };
}

function checkTracerProvider(owner: string, name: string, value: unknown): TracerProvider {
  if (typeof value !== 'object' || value === null || typeof (value as TracerProvider).getTracer !== 'function') {
    throw new TypeError(`${owner}: ${name} must be a TracerProvider (with getTracer()), got ${show(value)}`);
  }
  return value as TracerProvider;
}

/**
 * An OpenTelemetry instrumentation for bulwark: pass it to `NodeSDK` (or `registerInstrumentations`)
 * like any other. While enabled it subscribes to bulwark's diagnostics channels and records span
 * events on the active span (retries, breaker state changes and rejections, rate-limit and quota
 * decisions, timeouts, bulkhead rejections, hedges, fallbacks, fetch failovers, load shedding)
 * and, with `spans`, a span per policy execution. It patches nothing and needs no
 * `@opentelemetry/instrumentation`: it implements the interface that package's loader calls.
 *
 * Unlike OpenTelemetry's own instrumentations, constructing it subscribes to nothing (unless
 * `enabled: true`): `NodeSDK.start()` enables it, or call `enable()`. `sdk.shutdown()` does not
 * disable instrumentations (NodeSDK only shuts its providers down); call `disable()` to
 * unsubscribe. Only one instrumentation records per process: enabling a second one while another
 * is enabled logs a warning through `diag` and records nothing.
 *
 * Its stop verb is `disable()`, not the `dispose()` of bulwark's other handles: `enable()` and
 * `disable()` are the OpenTelemetry instrumentation interface, which `NodeSDK` and
 * `registerInstrumentations` call by those names. {@link enableTracing}'s handle, which is
 * bulwark's own, has `dispose()`.
 * @example
 * const sdk = new NodeSDK({ instrumentations: [new BulwarkInstrumentation({ spans: true })] });
 * sdk.start();
 */
export class BulwarkInstrumentation {
  /** The instrumentation scope name (`'bulwark/otel'`). */
  readonly instrumentationName: string = instrumentationName;
  /** The instrumentation scope version: bulwark's version. */
  readonly instrumentationVersion: string = VERSION;

  private stored: StoredConfig;
  private settings: Settings;
  private tracer: Tracer;
  private recorder: Recorder | undefined = undefined;

  constructor(config?: BulwarkInstrumentationConfig) {
    const parsed = parseConfig('BulwarkInstrumentation', config);
    this.stored = parsed.stored;
    this.settings = parsed.settings;
    // The global provider is a proxy: spans reach whichever SDK registers later.
    this.tracer = trace.getTracer(instrumentationName, VERSION);
    if (parsed.enabled === true) this.enable();
  }

  /**
   * Subscribes to bulwark's channels and starts recording. Does nothing when already enabled;
   * logs a warning and records nothing while another instrumentation (or another copy of
   * bulwark) records in this process.
   */
  enable(): void {
    if (this.recorder !== undefined) return;
    if (!claim(this)) {
      diag.warn(
        'bulwark/otel: another BulwarkInstrumentation is already enabled in this process (maybe from another copy ' +
          'of bulwark); this one records nothing until that one is disabled',
      );
      return;
    }
    const recorder = new Recorder(this.tracer, this.settings);
    recorder.start();
    this.recorder = recorder;
  }

  /** Unsubscribes from every channel and stops recording. Spans already started still end. */
  disable(): void {
    const recorder = this.recorder;
    if (recorder === undefined) return;
    this.recorder = undefined;
    recorder.stop();
    release(this);
  }

  /** Whether this instrumentation is recording now. */
  isEnabled(): boolean {
    return this.recorder !== undefined;
  }

  /** Sets where spans go (NodeSDK calls it with the global provider before enabling). */
  setTracerProvider(tracerProvider: TracerProvider): void {
    checkTracerProvider('BulwarkInstrumentation.setTracerProvider', 'the argument', tracerProvider);
    this.tracer = tracerProvider.getTracer(instrumentationName, VERSION);
    if (this.recorder !== undefined) this.recorder.tracer = this.tracer;
  }

  /** Part of the instrumentation interface; bulwark/otel records no metrics (see `bulwark/prometheus`). */
  setMeterProvider(_meterProvider: MeterProvider): void {}

  /** The configuration with its defaults applied; `enabled` says whether it is enabled now. */
  getConfig(): BulwarkInstrumentationConfig {
    return { ...this.stored, enabled: this.isEnabled() };
  }

  /**
   * Replaces the configuration (keys left out take their defaults), applying it at once when
   * enabled. An `enabled` key enables or disables, so `setConfig(getConfig())` changes nothing.
   */
  setConfig(config?: BulwarkInstrumentationConfig): void {
    const parsed = parseConfig('BulwarkInstrumentation.setConfig', config);
    this.stored = parsed.stored;
    this.settings = parsed.settings;
    if (this.recorder !== undefined) {
      this.recorder.stop();
      this.recorder = new Recorder(this.tracer, this.settings);
      this.recorder.start();
    }
    if (parsed.enabled === true) this.enable();
    else if (parsed.enabled === false) this.disable();
  }
}

/**
 * Options of {@link enableTracing}: the recording options of {@link BulwarkInstrumentationConfig}
 * and where spans go.
 * @example
 * enableTracing({ tracerProvider: provider, spans: ['retry', 'hedge'] });
 */
export interface EnableTracingOptions extends Omit<BulwarkInstrumentationConfig, 'enabled'> {
  /** Where spans go. @default the global tracer provider (`trace.getTracerProvider()`) */
  readonly tracerProvider?: TracerProvider;
}

/**
 * What {@link enableTracing} returns: stops recording when disposed (`dispose()` or `using`).
 * @example
 * using tracing = enableTracing();
 */
export interface TracingHandle extends Disposable {
  /** Unsubscribes and stops recording; later calls do nothing. */
  dispose(): void;
  /** @deprecated use {@link TracingHandle.dispose} (the one verb of every bulwark handle that stops something). */
  disable(): void;
}

const enableKeys = ['tracerProvider', 'spans', 'events', 'recordErrorMessages'] as const;

/**
 * Starts recording bulwark's telemetry without an SDK's instrumentation list: with the given
 * tracer provider, or the global one. Throws if bulwark tracing is already enabled in this
 * process (by another call, or a registered {@link BulwarkInstrumentation}).
 * @example
 * const tracing = enableTracing({ tracerProvider: provider, spans: true });
 * // ... later
 * tracing.dispose();
 */
export function enableTracing(options?: EnableTracingOptions): TracingHandle {
  const o = checkOptions('enableTracing', options, enableKeys);
  const provider =
    o.tracerProvider === undefined ? undefined : checkTracerProvider('enableTracing', 'option "tracerProvider"', o.tracerProvider);
  resolveSettings('enableTracing', o); // validates under this function's name
  if (activeOwner() !== undefined) {
    throw new Error(
      'enableTracing: bulwark tracing is already enabled in this process ' +
        '(by another enableTracing() or a BulwarkInstrumentation); disable it first',
    );
  }
  const instrumentation = new BulwarkInstrumentation({
    spans: o.spans,
    events: o.events,
    recordErrorMessages: o.recordErrorMessages,
  });
  if (provider !== undefined) instrumentation.setTracerProvider(provider);
  instrumentation.enable();
  const handle = toDisposable(() => instrumentation.disable());
  return Object.assign(handle, { disable: handle.dispose });
}
