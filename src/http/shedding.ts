import { checkOptions, show } from '../core/validate.js';
import { isServedPath } from '../health/served-paths.js';
import { LoadShedder, type LoadShedderOptions } from '../shedding/load-shedder.js';

/** A shedder given to an adapter, or the options to build one (which the adapter then owns). */
export type ShedderOrOptions = LoadShedder | LoadShedderOptions;

// Method-shaped, so that a function written for a framework's own request type (a subtype of the
// one named here) is accepted.
type SheddingSkipFunction<Req> = { fn(request: Req): boolean }['fn'];
type SheddingErrorFunction<Req> = { fn(error: unknown, request: Req): void }['fn'];

/**
 * What the load-shedding adapters add to the shedder: which requests are never turned away.
 * @example
 * const options: LoadSheddingAdapterOptions<IncomingMessage> = { skip: (req) => req.url?.startsWith('/admin/') === true };
 */
export interface LoadSheddingAdapterOptions<Req> {
  /**
   * Requests for which it returns `true` are never shed (your own status or admin routes). Called
   * only while the shedder reports pressure; must return a boolean, synchronously.
   */
  readonly skip?: SheddingSkipFunction<Req>;
  /**
   * Let through, even under pressure, every request for a route bulwark serves itself: the health
   * probes (`/livez`, `/readyz`, `/startupz`, `/healthz`, prefixed ones, their per-check paths) and
   * `/metrics` (see `isServedPath`). An overloaded pod whose liveness probe is shed gets restarted
   * instead of recovering. @default true
   */
  readonly exemptProbes?: boolean;
  /**
   * Told when `skip` throws or answers something other than a boolean; the request then gets a
   * 500 problem+json answer from the adapter (never the framework's error page).
   * @default Express: `console.error`, at most one line per 10 s; Fastify: `request.log.error`
   */
  readonly onError?: SheddingErrorFunction<Req>;
}

/**
 * What a load-shedding adapter takes: a shedder, `{ shedder, ...adapter options }`, or shedder
 * options with the adapter options beside them (the adapter then makes the shedder and owns it).
 * @example
 * const a: LoadSheddingOptions<IncomingMessage> = { shedder: loadShedder({ maxEventLoopDelayMs: 200 }), skip: (req) => req.url === '/ping' };
 * const b: LoadSheddingOptions<IncomingMessage> = { maxEventLoopDelayMs: 200, exemptProbes: false };
 */
export type LoadSheddingOptions<Req> =
  | LoadShedder
  | (LoadSheddingAdapterOptions<Req> & { readonly shedder: LoadShedder })
  | (LoadSheddingAdapterOptions<Req> & LoadShedderOptions);

/** Whether `value` is a load shedder (from this copy of bulwark or another build of it). */
export function isShedder(value: unknown): value is LoadShedder {
  const v = value as Partial<LoadShedder> | null;
  return typeof v === 'object' && v !== null && typeof v.check === 'function' && typeof v.reject === 'function' && typeof v.retryAfter === 'string';
}

/** The shedder to use, and whether the adapter made it (and so must dispose of it). */
export function shedderFrom(owner: string, value: ShedderOrOptions): { readonly shedder: LoadShedder; readonly owned: boolean } {
  // Duck-typed, so a shedder from the CommonJS build works with the ESM adapters and back.
  if (value instanceof LoadShedder || isShedder(value)) return { shedder: value as LoadShedder, owned: false };
  if (typeof value !== 'object' || value === null) {
    throw new TypeError(`${owner}: the argument must be a load shedder or loadShedder options, got ${show(value)}`);
  }
  return { shedder: new LoadShedder(value), owned: true };
}

/** A load-shedding adapter's options, resolved once. */
export interface SheddingSetup<Req> {
  readonly shedder: LoadShedder;
  /** True when the adapter made the shedder, and so must dispose of it. */
  readonly owned: boolean;
  /**
   * Whether a request goes through although the shedder reports pressure. Throws when `skip`
   * throws or returns something other than a boolean (the adapter turns that into an error answer).
   */
  readonly exempt: ((request: Req, url: string | undefined) => boolean) | undefined;
  /** The user's `onError`, when given. */
  readonly onError: SheddingErrorFunction<Req> | undefined;
}

const ADAPTER_KEYS = ['skip', 'exemptProbes', 'onError'] as const;

/**
 * Splits what a load-shedding adapter was given into the shedder and the adapter's own options,
 * and validates both. `ignoredKeys` are dropped first (Fastify's `register` options).
 */
export function sheddingSetup<Req>(owner: string, value: unknown, ignoredKeys: readonly string[] = []): SheddingSetup<Req> {
  if (typeof value !== 'object' || value === null) {
    throw new TypeError(`${owner}: the argument must be a load shedder, { shedder } or loadShedder options, got ${show(value)}`);
  }
  if (isShedder(value)) return { shedder: value, owned: false, exempt: exemption(owner, undefined, undefined), onError: undefined };
  const own: Record<string, unknown> = { ...value };
  for (const k of ignoredKeys) delete own[k];
  const adapter: Record<string, unknown> = {};
  for (const k of ADAPTER_KEYS) {
    if (k in own) {
      adapter[k] = own[k];
      delete own[k];
    }
  }
  const o = checkOptions(owner, adapter as LoadSheddingAdapterOptions<Req>, ADAPTER_KEYS);
  if (o.skip !== undefined && typeof o.skip !== 'function') {
    throw new TypeError(`${owner}: option "skip" must be a function returning a boolean, got ${show(o.skip)}`);
  }
  if (o.exemptProbes !== undefined && typeof o.exemptProbes !== 'boolean') {
    throw new TypeError(`${owner}: option "exemptProbes" must be a boolean, got ${show(o.exemptProbes)}`);
  }
  if (o.onError !== undefined && typeof o.onError !== 'function') {
    throw new TypeError(`${owner}: option "onError" must be a function (error, request) => void, got ${show(o.onError)}`);
  }
  let given: unknown = own;
  if ('shedder' in own) {
    if (Object.keys(own).length > 1) {
      throw new TypeError(`${owner}: pass either { shedder } or shedder options, not both (got ${Object.keys(own).join(', ')})`);
    }
    if (!isShedder(own.shedder)) throw new TypeError(`${owner}: option "shedder" must be a load shedder, got ${show(own.shedder)}`);
    given = own.shedder;
  }
  const { shedder, owned } = shedderFrom(owner, given as ShedderOrOptions);
  return { shedder, owned, exempt: exemption(owner, o.skip, o.exemptProbes), onError: o.onError };
}

function exemption<Req>(
  owner: string,
  skip: SheddingSkipFunction<Req> | undefined,
  exemptProbes: boolean | undefined,
): ((request: Req, url: string | undefined) => boolean) | undefined {
  const probes = exemptProbes ?? true;
  if (skip === undefined) return probes ? (_request, url) => isServedPath(url) : undefined;
  return (request, url) => {
    if (probes && isServedPath(url)) return true;
    const skipped: unknown = skip(request);
    if (typeof skipped !== 'boolean') {
      throw new TypeError(`${owner}: option "skip" must return a boolean, got ${show(skipped)}`);
    }
    return skipped;
  };
}
