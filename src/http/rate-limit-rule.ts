import { checkOptions, countOption, enumOption, show } from '../core/validate.js';
import type { Decider } from '../ratelimit/rate-limit-policy.js';
import { decideNow, type LimiterDecision, type SyncDecider } from '../ratelimit/store.js';
import { type AddressedRequest, clientAddressResolver, type TrustProxy } from './client-address.js';
import { countValue, type ProblemResponse, quotaExceededProblem, rateLimitedProblem, secondsUp } from './problem.js';

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
type KeyFunction<Req> = { fn(request: Req): string | Promise<string> }['fn'];
type CostFunction<Req> = { fn(request: Req): number }['fn'];
type SkipFunction<Req> = { fn(request: Req): boolean | Promise<boolean> }['fn'];

/**
 * What a request is limited by: the part of the adapters' options that can also be set per route.
 * @example
 * const perTenant: RateLimitRuleOptions<IncomingMessage> = { key: (req) => String(req.headers['x-tenant']), cost: 2 };
 */
export interface RateLimitRuleOptions<Req> {
  /** The client's key; must return a non-empty string. @default the client address (see `trustProxy`) */
  readonly key?: KeyFunction<Req>;
  /** Units a request takes, or a function of the request returning them. @default 1 */
  readonly cost?: number | CostFunction<Req>;
  /** Requests for which it returns true are not limited (and get no rate-limit headers). */
  readonly skip?: SkipFunction<Req>;
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
}

const nominalSeconds: Record<string, number> = { hour: 3_600, day: 86_400, week: 604_800 };

/** Renders a limiter name as a structured-field String: printable ASCII, `"` and `\` escaped. */
function sfString(name: string): string {
  let out = '"';
  for (const ch of name) {
    const c = ch.charCodeAt(0);
    if (ch.length > 1 || c < 0x20 || c > 0x7e) out += '_';
    else out += c === 0x22 || c === 0x5c ? `\\${ch}` : ch;
  }
  return `${out}"`;
}

/**
 * The `RateLimit-Policy` value for a limiter, when its shape can be told from the limiter itself:
 * `"name";q=<units>;w=<seconds>` (`w` left out when the window is not a whole number of seconds,
 * or a calendar month).
 */
function policyHeaderOf(decider: Decider, name: string): string | undefined {
  const algorithm = (decider as { algorithm?: { limit?: unknown; windowMs?: unknown } }).algorithm;
  let q: unknown;
  let w: number | undefined;
  if (typeof algorithm === 'object' && algorithm !== null && typeof algorithm.limit === 'number') {
    q = algorithm.limit;
    const ms = algorithm.windowMs;
    if (typeof ms === 'number' && ms >= 1000 && ms % 1000 === 0) w = ms / 1000;
  } else if (decider.kind === 'quota') {
    const d = decider as { limit?: unknown; period?: unknown };
    q = d.limit;
    if (typeof d.period === 'string') w = nominalSeconds[d.period];
  }
  if (typeof q !== 'number' || !Number.isSafeInteger(q) || q < 0) return undefined;
  return `${name};q=${q}${w === undefined ? '' : `;w=${w}`}`;
}

/**
 * Sets the rate-limit headers `rule` asks for (the draft's two, and the legacy three when asked)
 * through `set`, the framework's own header setter, given once as a plain function so no closure is
 * made per request.
 */
export function writeRateLimitHeaders<R, T>(
  rule: RateLimitRule<R>,
  decision: LimiterDecision,
  target: T,
  set: (target: T, name: string, value: string) => void,
): void {
  set(target, 'RateLimit-Policy', rule.policyHeader(decision));
  set(target, 'RateLimit', rule.rateLimitHeader(decision));
  if (rule.legacy) {
    set(target, 'X-RateLimit-Limit', String(countValue(decision.limit)));
    set(target, 'X-RateLimit-Remaining', String(countValue(decision.remaining)));
    set(target, 'X-RateLimit-Reset', String(secondsUp(decision.resetMs)));
  }
}

/**
 * One rate limit as an adapter applies it: the limiter, how the key and cost are found, and the
 * header strings computed once.
 */
export class RateLimitRule<Req> {
  readonly decider: Decider;
  readonly key: KeyFunction<Req> | undefined;
  readonly cost: number;
  readonly costOf: CostFunction<Req> | undefined;
  readonly skip: SkipFunction<Req> | undefined;
  /** `{ cost }` for a fixed cost other than 1, made once. */
  readonly costOptions: { readonly cost: number } | undefined;
  /** No key, cost or skip function: the fast path applies. */
  readonly plain: boolean;
  /** The decider's synchronous consume, when it has one (bulwark's limiters and quotas). */
  readonly now: SyncDecider[typeof decideNow] | undefined;
  /** RateLimit-Policy and RateLimit headers. */
  readonly draft: boolean;
  /** X-RateLimit-* headers. */
  readonly legacy: boolean;
  readonly denial: ProblemResponse;
  readonly clientOf: (request: AddressedRequest) => string;
  /** `"name";r=` */
  readonly remainingPrefix: string;
  private readonly sfName: string;
  private policy: string | undefined;

  constructor(
    readonly owner: string,
    decider: Decider,
    rule: RateLimitRuleOptions<Req>,
    shared: { readonly headers: RateLimitHeaders; readonly clientOf: (request: AddressedRequest) => string },
  ) {
    this.decider = decider;
    this.key = rule.key;
    this.costOf = typeof rule.cost === 'function' ? rule.cost : undefined;
    this.cost = typeof rule.cost === 'number' ? rule.cost : 1;
    this.skip = rule.skip;
    this.costOptions = this.cost === 1 ? undefined : { cost: this.cost };
    this.plain = this.key === undefined && this.costOf === undefined && this.skip === undefined;
    const now = (decider as Partial<SyncDecider>)[decideNow];
    this.now = typeof now === 'function' ? now : undefined;
    this.draft = shared.headers !== 'none';
    this.legacy = shared.headers === 'draft+legacy';
    this.clientOf = shared.clientOf;
    this.denial = decider.kind === 'quota' ? quotaExceededProblem : rateLimitedProblem;
    this.sfName = sfString(typeof decider.name === 'string' && decider.name.length > 0 ? decider.name : 'ratelimit');
    this.remainingPrefix = `${this.sfName};r=`;
    this.policy = policyHeaderOf(decider, this.sfName);
  }

  /** The `RateLimit-Policy` value; for a limiter whose shape is unknown, built from its first decision's limit. */
  policyHeader(decision: LimiterDecision): string {
    if (this.policy === undefined) this.policy = `${this.sfName};q=${countValue(decision.limit)}`;
    return this.policy;
  }

  /** The `RateLimit` value: remaining units, and seconds until the limit resets (on a denial: until a retry can be admitted). */
  rateLimitHeader(decision: LimiterDecision): string {
    const t = decision.allowed ? secondsUp(decision.resetMs) : retryAfterValue(decision);
    return `${this.remainingPrefix}${countValue(decision.remaining)};t=${t}`;
  }
}

/** `Retry-After` for a denial: whole seconds, rounded up, at least 1. */
export function retryAfterValue(decision: LimiterDecision): string {
  const s = secondsUp(decision.retryAfterMs);
  return s > 0 ? String(s) : '1';
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

/** Checks the per-route part of the options (key, cost, skip), with defaults from `base`. */
export function checkRuleOptions<Req>(
  owner: string,
  options: RateLimitRuleOptions<Req>,
  base?: RateLimitRuleOptions<Req>,
): RateLimitRuleOptions<Req> {
  const key = options.key ?? base?.key;
  if (key !== undefined && typeof key !== 'function') {
    throw new TypeError(`${owner}: option "key" must be a function returning a non-empty string, got ${show(key)}`);
  }
  const cost = options.cost ?? base?.cost;
  if (cost !== undefined && typeof cost !== 'function') {
    countOption(owner, 'cost', cost, 1, { max: Number.MAX_SAFE_INTEGER });
  }
  const skip = options.skip ?? base?.skip;
  if (skip !== undefined && typeof skip !== 'function') {
    throw new TypeError(`${owner}: option "skip" must be a function returning a boolean, got ${show(skip)}`);
  }
  return { key, cost, skip };
}

/** Checks the options shared by both adapters (plus the adapter's own `extra` keys); returns the pieces every rule shares. */
export function checkHttpOptions<Req>(
  owner: string,
  options: (HttpRateLimitOptions<Req> & Record<string, unknown>) | undefined,
  extra: readonly string[] = [],
): {
  readonly options: Partial<HttpRateLimitOptions<Req> & Record<string, unknown>>;
  readonly rule: RateLimitRuleOptions<Req>;
  readonly shared: { readonly headers: RateLimitHeaders; readonly clientOf: (request: AddressedRequest) => string };
} {
  const o = checkOptions(owner, options, ['key', 'cost', 'skip', 'headers', 'trustProxy', 'ipv6Subnet', ...extra]);
  const headers = enumOption<RateLimitHeaders>(owner, 'headers', o.headers, ['draft', 'draft+legacy', 'none'], 'draft');
  const clientOf = clientAddressResolver({ trustProxy: o.trustProxy, ipv6Subnet: o.ipv6Subnet }, owner);
  return { options: o, rule: checkRuleOptions(owner, o), shared: { headers, clientOf } };
}

function badKey(owner: string, key: unknown): TypeError {
  return new TypeError(`${owner}: option "key" must return a non-empty string, got ${show(key)}`);
}

function checkCost(owner: string, cost: unknown): number {
  if (cost === undefined) throw new TypeError(`${owner}: option "cost" must return a number, got undefined`);
  return countOption(owner, 'cost', cost, 1, { max: Number.MAX_SAFE_INTEGER });
}

/**
 * Takes units for one request: undefined when `skip` says so, else the decision. Rejects when a
 * user function throws or returns something unusable, or the limiter rejects.
 */
export function decideRequest<Req>(
  rule: RateLimitRule<Req>,
  request: Req,
  raw: AddressedRequest,
): Promise<LimiterDecision | undefined> {
  try {
    const outcome = decideRequestNow(rule, request, raw);
    return outcome instanceof Promise ? outcome : Promise.resolve(outcome);
  } catch (error) {
    return Promise.reject(error);
  }
}

/**
 * What {@link decideRequest} decides, without a promise when the decision is already made: in the
 * common case (client-address key, fixed cost, no skip) on a limiter or quota over a memory store.
 * Throws what goes wrong before a promise exists.
 */
export function decideRequestNow<Req>(
  rule: RateLimitRule<Req>,
  request: Req,
  raw: AddressedRequest,
): LimiterDecision | undefined | Promise<LimiterDecision | undefined> {
  if (!rule.plain) return decideWithFunctions(rule, request, raw);
  const key = rule.clientOf(raw);
  const now = rule.now;
  if (now !== undefined) return now.call(rule.decider, key, rule.costOptions);
  return settled(rule.owner, rule.costOptions === undefined ? rule.decider.consume(key) : rule.decider.consume(key, rule.costOptions));
}

/**
 * What a limiter without bulwark's synchronous path answered, checked: a thenable that is not a
 * native promise (another promise library, another realm) is waited for, and anything that is not
 * a decision throws, rather than being read as a denial or a skip.
 */
function settled(owner: string, outcome: unknown): LimiterDecision | Promise<LimiterDecision> {
  if (typeof outcome === 'object' && outcome !== null && typeof (outcome as PromiseLike<unknown>).then === 'function') {
    return Promise.resolve(outcome as PromiseLike<unknown>).then((decision) => checkDecision(owner, decision));
  }
  return checkDecision(owner, outcome);
}

function checkDecision(owner: string, decision: unknown): LimiterDecision {
  if (typeof decision !== 'object' || decision === null || typeof (decision as LimiterDecision).allowed !== 'boolean') {
    throw new TypeError(`${owner}: the limiter's consume must resolve to a decision ({ allowed, limit, remaining, resetMs, retryAfterMs }), got ${show(decision)}`);
  }
  return decision as LimiterDecision;
}

async function decideWithFunctions<Req>(
  rule: RateLimitRule<Req>,
  request: Req,
  raw: AddressedRequest,
): Promise<LimiterDecision | undefined> {
  if (rule.skip !== undefined && (await rule.skip(request)) === true) return undefined;
  let key: unknown;
  if (rule.key === undefined) {
    key = rule.clientOf(raw);
  } else {
    key = rule.key(request);
    if (typeof key !== 'string') key = await key;
    if (typeof key !== 'string' || key.length === 0) throw badKey(rule.owner, key);
  }
  let outcome: unknown;
  if (rule.costOf === undefined) {
    outcome = rule.costOptions === undefined ? rule.decider.consume(key as string) : rule.decider.consume(key as string, rule.costOptions);
  } else {
    const cost = checkCost(rule.owner, rule.costOf(request));
    outcome = cost === 1 ? rule.decider.consume(key as string) : rule.decider.consume(key as string, { cost });
  }
  return rule.now === undefined ? settled(rule.owner, outcome) : (outcome as Promise<LimiterDecision>);
}
