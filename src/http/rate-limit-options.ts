// The options of the rate-limit adapters: their types, and the checks that run once when a
// middleware or plugin is made. What a rule does per request is in rate-limit-rule.ts.
import { checkOptions, countOption, enumOption, show } from '../core/validate.js';
import type { Decider } from '../ratelimit/rate-limit-policy.js';
import { type AddressedRequest, clientAddressResolver, type TrustProxy } from './client-address.js';

/**
 * Which rate-limit headers a response carries: `'draft'` (the IETF draft's structured
 * `RateLimit-Policy` and `RateLimit`), `'draft+legacy'` (also `X-RateLimit-Limit`,
 * `X-RateLimit-Remaining` and `X-RateLimit-Reset`), or `'none'`. A denial always carries
 * `Retry-After`.
 * @example
 * rateLimitMiddleware(limiter, { headers: 'draft+legacy' });
 */
export type RateLimitHeaders = 'draft' | 'draft+legacy' | 'none';

// Method-shaped types, so that a function written for a framework's own request type (a subtype
// of the one named here) is accepted.
/** Internal: the shape of the `key` option's function. */
export type KeyFunction<Req> = { fn(request: Req): string | Promise<string> }['fn'];
/** Internal: the shape of the `cost` option's function. */
export type CostFunction<Req> = { fn(request: Req): number | Promise<number> }['fn'];
/** Internal: the shape of the `skip` option's function. */
export type SkipFunction<Req> = { fn(request: Req): boolean | Promise<boolean> }['fn'];
/** Internal: the shape of the `error` option's function. */
export type ErrorFunction<Req> = { fn(error: unknown, request: Req): void }['fn'];

/**
 * What a policy's units measure, as the draft's `qu` parameter names it (its registered values).
 * @example
 * rateLimitMiddleware(uploadBytes, { cost: (req) => Number(req.headers['content-length']), quotaUnit: 'content-bytes' });
 */
export type QuotaUnit = 'requests' | 'content-bytes' | 'concurrent-requests';

const quotaUnits: readonly QuotaUnit[] = ['requests', 'content-bytes', 'concurrent-requests'];

/**
 * What a request is limited by: the part of the adapters' options that can also be set per route.
 * @example
 * const perTenant: RateLimitRuleOptions<IncomingMessage> = { key: (req) => String(req.headers['x-tenant']), cost: 2 };
 */
export interface RateLimitRuleOptions<Req> {
  /** The client's key; must return (or resolve to) a non-empty string. @default the client address (see `trustProxy`) */
  readonly key?: KeyFunction<Req>;
  /**
   * Units a request takes, or a function of the request returning (or resolving to) them. A
   * function's answer that is not a whole number from 1 to the limiter's `maxCost` gets a 400
   * problem answer. @default 1
   */
  readonly cost?: number | CostFunction<Req>;
  /**
   * Requests for which it returns (or resolves to) true are not limited (and get no rate-limit
   * headers); an answer that is not a boolean fails the check (500, `onError`). @default none
   */
  readonly skip?: SkipFunction<Req>;
  /** Advertised as `qu` in `RateLimit-Policy`; left out by default, which the draft reads as `'requests'`. @default none */
  readonly quotaUnit?: QuotaUnit;
}

/**
 * Options shared by the Express middleware and the Fastify plugin.
 * @example
 * const options: HttpRateLimitOptions<IncomingMessage> = { trustProxy: 'loopback', headers: 'none' };
 */
export interface HttpRateLimitOptions<Req> extends RateLimitRuleOptions<Req> {
  /** Rate-limit headers on every limited response. @default 'draft' */
  readonly headers?: RateLimitHeaders;
  /** Proxies believed about the client address (for the default key). @default false */
  readonly trustProxy?: TrustProxy;
  /** IPv6 clients are keyed by this prefix length (1–128); 6to4 by its IPv4 address. @default 56 */
  readonly ipv6Subnet?: number;
  /**
   * Let the paths bulwark serves itself (health probes, `/metrics`: see `isServedPath`) through
   * untouched and uncharged. @default true
   */
  readonly exemptProbes?: boolean;
  /**
   * Told when a limit could not be checked (a `key`, `cost` or `skip` function threw or answered
   * nonsense, or the limiter failed); the request has been answered 500 already. @default Express: `console.error`,
   * at most one line per 10 s; Fastify: `request.log.error`
   */
  readonly onError?: ErrorFunction<Req>;
  /**
   * Adds the draft's partition key `pk` (a byte sequence) to both header items: the answer of this
   * function for the request's key. The key itself may be a secret (an API key): return a hash or
   * an id you are happy to show the client. @default none (no `pk`)
   */
  readonly partitionKey?: (key: string) => string;
}

/** The parts of the options every rule of one middleware or plugin shares. */
export interface SharedRuleOptions<Req> {
  readonly headers: RateLimitHeaders;
  readonly clientOf: (request: AddressedRequest) => string;
  readonly exemptProbes: boolean;
  readonly onError: ErrorFunction<Req> | undefined;
  readonly partitionKey: ((key: string) => string) | undefined;
}

function isDecider(value: unknown): value is Decider {
  return typeof value === 'object' && value !== null && typeof (value as Decider).consume === 'function';
}

/** Checks a limiter argument or option. */
export function checkDecider(owner: string, name: string, value: unknown): Decider {
  if (!isDecider(value)) {
    throw new TypeError(`${owner}: ${name} must be a rate limiter or a quota (anything with consume(key, { cost })), got ${show(value)}`);
  }
  return value;
}

/** An option given as null or a wrong type: refused by name, never read as "not given". */
function checkFunctionOption(owner: string, name: string, value: unknown, what: string): void {
  if (value !== undefined && typeof value !== 'function') {
    throw new TypeError(`${owner}: option "${name}" must be ${what}, got ${show(value)}`);
  }
}

/** Checks the per-route part of the options (key, cost, skip); what is not given comes from `base`. */
export function checkRuleOptions<Req>(
  owner: string,
  options: RateLimitRuleOptions<Req>,
  base?: RateLimitRuleOptions<Req>,
): RateLimitRuleOptions<Req> {
  const key = options.key === undefined ? base?.key : options.key;
  checkFunctionOption(owner, 'key', key, 'a function returning a non-empty string');
  const cost = options.cost === undefined ? base?.cost : options.cost;
  if (cost !== undefined && typeof cost !== 'function') {
    countOption(owner, 'cost', cost, 1, { max: Number.MAX_SAFE_INTEGER });
  }
  const skip = options.skip === undefined ? base?.skip : options.skip;
  checkFunctionOption(owner, 'skip', skip, 'a function returning a boolean');
  const given = options.quotaUnit === undefined ? base?.quotaUnit : options.quotaUnit;
  const quotaUnit = given === undefined ? undefined : enumOption<QuotaUnit>(owner, 'quotaUnit', given, quotaUnits, 'requests');
  return { key, cost, skip, quotaUnit };
}

/** Checks the options shared by both adapters (plus the adapter's own `extra` keys); returns the pieces every rule shares. */
export function checkHttpOptions<Req>(
  owner: string,
  options: (HttpRateLimitOptions<Req> & Record<string, unknown>) | undefined,
  extra: readonly string[] = [],
): {
  readonly options: Partial<HttpRateLimitOptions<Req> & Record<string, unknown>>;
  readonly rule: RateLimitRuleOptions<Req>;
  readonly shared: SharedRuleOptions<Req>;
} {
  const o = checkOptions(owner, options, [
    'key',
    'cost',
    'skip',
    'quotaUnit',
    'headers',
    'trustProxy',
    'ipv6Subnet',
    'exemptProbes',
    'onError',
    'partitionKey',
    ...extra,
  ]);
  const headers = enumOption<RateLimitHeaders>(owner, 'headers', o.headers, ['draft', 'draft+legacy', 'none'], 'draft');
  const clientOf = clientAddressResolver({ trustProxy: o.trustProxy, ipv6Subnet: o.ipv6Subnet }, owner);
  if (o.exemptProbes !== undefined && typeof o.exemptProbes !== 'boolean') {
    throw new TypeError(`${owner}: option "exemptProbes" must be a boolean, got ${show(o.exemptProbes)}`);
  }
  checkFunctionOption(owner, 'onError', o.onError, 'a function (error, request) => void');
  checkFunctionOption(owner, 'partitionKey', o.partitionKey, 'a function (key) => string');
  return {
    options: o,
    rule: checkRuleOptions(owner, o),
    shared: { headers, clientOf, exemptProbes: o.exemptProbes ?? true, onError: o.onError, partitionKey: o.partitionKey },
  };
}

/**
 * Reports errors on `console.error`, at most one line per `intervalMs` (with the number left
 * out since), so that a failing key function or store cannot flood the log.
 * @example
 * const report = boundedConsoleReporter('rateLimitMiddleware');
 */
export function boundedConsoleReporter(
  owner: string,
  intervalMs = 10_000,
  what = 'a rate limit could not be checked',
): (error: unknown) => void {
  let last = Number.NEGATIVE_INFINITY;
  let suppressed = 0;
  return (error) => {
    const now = Date.now();
    if (now - last < intervalMs) {
      suppressed++;
      return;
    }
    last = now;
    const more = suppressed > 0 ? ` (and ${suppressed} more since the last report)` : '';
    suppressed = 0;
    console.error(`${owner}: ${what}; the request was answered 500${more}:`, error);
  };
}
