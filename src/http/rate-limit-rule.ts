// One rate limit as an adapter applies it to a request: the rule (key, cost, skip and header strings
// made once), the decision, the headers it writes and the answer. The options and their checks are
// in rate-limit-options.ts.
import { show } from '../core/validate.js';
import type { Decider } from '../ratelimit/rate-limit-policy.js';
import { decideNow, type SyncDecider } from '../ratelimit/fast-path.js';
import type { LimiterDecision } from '../ratelimit/store.js';
import type { AddressedRequest } from './client-address.js';
import { chargedKey, chargeParts, type Charges, chargesOf, firstCharge } from './rate-limit-charges.js';
import type { CostFunction, KeyFunction, RateLimitRuleOptions, SharedRuleOptions, SkipFunction } from './rate-limit-options.js';
import {
  badCostProblem,
  costTooLargeProblem,
  countValue,
  MAX_SF_INTEGER,
  type ProblemResponse,
  quotaExceededProblem,
  rateLimitedProblem,
  secondsUp,
  storeUnavailableProblem,
} from './problem.js';


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

/** How a decider's allowed decisions tell the draft's effective window `t`. */
type Shape =
  /** Units come back all at once at `resetMs` (fixed windows, calendar quotas, unknown limiters). */
  | 'reset'
  /** One unit refills every emission interval (GCRA). */
  | 'gcra'
  /** Units come back continuously at a rate the decision does not tell (sliding window): no `t`. */
  | 'sliding';

interface AlgorithmView {
  readonly kind?: unknown;
  readonly limit?: unknown;
  readonly windowMs?: unknown;
  readonly burst?: unknown;
  readonly emissionIntervalUs?: unknown;
}

function isCount(n: unknown): n is number {
  return typeof n === 'number' && Number.isSafeInteger(n) && n >= 1;
}

/** What the adapters can tell about a decider without depending on its class: read by duck typing. */
interface DeciderView {
  /** `"name";q=…;w=…`, or undefined when only a decision can tell the quota. */
  readonly policy: string | undefined;
  readonly shape: Shape;
  /** GCRA: units a full bucket holds, and µs per unit. */
  readonly burst: number;
  readonly intervalUs: number;
  /** The largest cost that can ever be admitted, when it can be told. */
  readonly maxCost: number | undefined;
  /** The advertised quota, when the limiter tells it. */
  readonly q: number | undefined;
}

/**
 * The `RateLimit-Policy` item and the rest of what headers need, when the limiter's shape can be
 * told from the limiter itself: `"name";q=<units>;w=<seconds>` (`w` left out when the window is not
 * a whole number of seconds, or a calendar month). A GCRA limiter is advertised by its bucket:
 * `q` is its burst (what `r` counts down from) and `w` the seconds a full bucket takes to refill.
 */
function viewOf(decider: Decider, sfName: string): DeciderView {
  const algorithm = (decider as { algorithm?: AlgorithmView }).algorithm;
  const declared = (decider as { maxCost?: unknown }).maxCost;
  let q: unknown;
  let w: number | undefined;
  let shape: Shape = 'reset';
  let burst = 0;
  let intervalUs = 0;
  if (typeof algorithm === 'object' && algorithm !== null && isCount(algorithm.limit)) {
    const limit = algorithm.limit;
    const ms = algorithm.windowMs;
    if (algorithm.kind === 'gcra' && isCount(algorithm.burst) && isCount(algorithm.emissionIntervalUs)) {
      shape = 'gcra';
      burst = algorithm.burst;
      intervalUs = algorithm.emissionIntervalUs;
      q = burst;
      // The nominal refill time of a full bucket, burst × periodMs / limit, when it is whole seconds.
      const scaled = burst * (typeof ms === 'number' ? ms : Number.NaN);
      if (Number.isSafeInteger(scaled) && scaled > 0 && scaled % (limit * 1000) === 0) w = scaled / (limit * 1000);
    } else {
      if (algorithm.kind === 'sliding-window') shape = 'sliding';
      q = limit;
      if (typeof ms === 'number' && ms >= 1000 && ms % 1000 === 0) w = ms / 1000;
    }
  } else if (decider.kind === 'quota') {
    const d = decider as { limit?: unknown; period?: unknown };
    q = d.limit;
    if (typeof d.period === 'string') w = nominalSeconds[d.period];
  }
  const maxCost = isCount(declared) ? declared : isCount(q) ? (q as number) : undefined;
  const policy = typeof q === 'number' && Number.isSafeInteger(q) && q >= 0 ? `${sfName};q=${countValue(q)}${w === undefined ? '' : `;w=${w}`}` : undefined;
  return { policy, shape, burst, intervalUs, maxCost, q: policy === undefined ? undefined : countValue(q as number) };
}

/**
 * How the adapters read and write a response's headers (names given in lower case, as HTTP/2 sends
 * them: both frameworks lower-case names on every get and set, and an already lower-case constant
 * makes that free): the framework's own getter and setter,
 * given once as plain functions so no closure is made per request.
 */
export interface HeaderAccess<T> {
  get(target: T, name: string): unknown;
  set(target: T, name: string, value: string): void;
}

/** Sets a list-valued field, or appends an item to what an earlier limiter on this request set. */
/**
 * Adds `rule`'s item to `RateLimit-Policy`. An item of the same name already there comes from
 * another limiter of that name (unless this limiter charged the request under another key too,
 * which only a rule that records its charges can): the client could not tell the two apart.
 */
function putPolicyItem<R, T>(rule: RateLimitRule<R>, raw: object, target: T, access: HeaderAccess<T>, item: string): void {
  const earlier = access.get(target, 'ratelimit-policy');
  if (typeof earlier !== 'string' || earlier.length === 0) {
    access.set(target, 'ratelimit-policy', item);
    return;
  }
  if ((earlier.startsWith(`${rule.sfName};`) || earlier.includes(`, ${rule.sfName};`)) && !Array.isArray(rule.charges.requests.get(raw))) {
    throw new TypeError(`${rule.owner}: two limiters named ${show(rule.decider.name)} decide on this request; give them distinct names so the headers tell them apart`);
  }
  access.set(target, 'ratelimit-policy', `${earlier}, ${item}`);
}

function putItem<T>(target: T, access: HeaderAccess<T>, name: string, item: string): void {
  const earlier = access.get(target, name);
  access.set(target, name, typeof earlier === 'string' && earlier.length > 0 ? `${earlier}, ${item}` : item);
}

/** A compound decision's decision per limit, in the order of `parts`; undefined when it has none that fit. */
function partDecisions<Req>(parts: readonly RateLimitRule<Req>[], decision: LimiterDecision): LimiterDecision[] | undefined {
  const given = (decision as { parts?: unknown }).parts;
  if (!Array.isArray(given) || given.length !== parts.length) return undefined;
  return given.map((p: { decision: LimiterDecision }) => p.decision);
}

/** Longest reset written in `X-RateLimit-Reset`, in ms (as `secondsUp` caps seconds). */
const MAX_RESET_MS = 2_147_483_647_000;

/**
 * Sets the rate-limit headers `rule` asks for: one item per policy in `RateLimit-Policy` and
 * `RateLimit` (appended to the items of limiters that decided earlier on this request), and the
 * legacy three when asked, for the policy closest to exhaustion (or the one that denied). A
 * fail-open decision (the store could not count) gets its policy item only: its numbers would be
 * made up.
 */
export function writeRateLimitHeaders<R, T>(
  rule: RateLimitRule<R>,
  decision: LimiterDecision,
  raw: object,
  target: T,
  access: HeaderAccess<T>,
): void {
  let pk = '';
  if (rule.partitionKey !== undefined) {
    const shown: unknown = rule.partitionKey(chargedKey(rule, raw));
    if (typeof shown !== 'string') throw new TypeError(`${rule.owner}: option "partitionKey" must return a string, got ${show(shown)}`);
    pk = `;pk=:${Buffer.from(shown).toString('base64')}:`;
  }
  const parts = rule.parts;
  const split = parts === undefined ? undefined : partDecisions(parts, decision);
  if (split === undefined) {
    putPolicyItem(rule, raw, target, access, pk === '' ? rule.policyHeader(decision) : rule.policyHeader(decision) + pk);
    if (decision.store === 'fail-open') return;
    putItem(target, access, 'ratelimit', pk === '' ? rule.rateLimitHeader(decision) : rule.rateLimitHeader(decision) + pk);
  } else {
    // A compound limit: one item per limit it charges, each with its own policy and numbers.
    for (let i = 0; i < split.length; i++) putPolicyItem(parts![i]!, raw, target, access, parts![i]!.partPolicyHeader(split[i]!) + pk);
    if (decision.store === 'fail-open') return;
    for (let i = 0; i < split.length; i++) putItem(target, access, 'ratelimit', parts![i]!.rateLimitHeader(split[i]!) + pk);
  }
  if (!rule.legacy) return;
  const remaining = countValue(decision.remaining);
  if (decision.allowed) {
    const earlier = access.get(target, 'x-ratelimit-remaining');
    if (earlier !== undefined && Number(earlier) <= remaining) return;
  }
  access.set(target, 'x-ratelimit-limit', String(countValue(decision.limit)));
  access.set(target, 'x-ratelimit-remaining', String(remaining));
  // Epoch seconds, as GitHub and express-rate-limit send it.
  const resetMs = decision.resetMs > 0 ? (decision.resetMs < MAX_RESET_MS ? decision.resetMs : MAX_RESET_MS) : 0;
  access.set(target, 'x-ratelimit-reset', String(Math.ceil((Date.now() + resetMs) / 1000)));
}

/**
 * One rate limit as an adapter applies it: the limiter, how the key and cost are found, and the
 * header strings and problem bodies computed once.
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
  /** The largest cost the limiter can ever admit, when it can be told. */
  readonly maxCost: number | undefined;
  /** 429 naming this policy. */
  readonly denial: ProblemResponse;
  /** 503 when this policy's store failed closed. */
  readonly unavailable: ProblemResponse;
  /** 400 for a cost that is not a whole number ≥ 1. */
  readonly badCost: ProblemResponse;
  /** 400 for a cost above `maxCost`. */
  readonly costTooLarge: ProblemResponse;
  readonly clientOf: (request: AddressedRequest) => string;
  /** The requests this rule's limiter has charged (shared by every rule over the same limiter). */
  readonly charges: Charges;
  /** Charges are recorded even with one rule over the limiter: the rule may meet a request twice, or `pk` needs the key. */
  readonly reentrant: boolean;
  /** Turns the key into the draft's `pk`, when asked. */
  readonly partitionKey: ((key: string) => string) | undefined;
  /** `"name";r=` */
  readonly remainingPrefix: string;
  /** A compound limit's limits, a rule each (for their header items and denials); undefined otherwise. */
  readonly parts: readonly RateLimitRule<Req>[] | undefined;
  /** The name as a structured-field String. */
  readonly sfName: string;
  private readonly shape: Shape;
  private readonly burst: number;
  private readonly intervalUs: number;
  private policy: string | undefined;
  private readonly q: number | undefined;
  /** `;qu="…"`, or empty. */
  private readonly unit: string;

  constructor(
    readonly owner: string,
    decider: Decider,
    rule: RateLimitRuleOptions<Req>,
    shared: Pick<SharedRuleOptions<Req>, 'headers' | 'clientOf'> & Partial<Pick<SharedRuleOptions<Req>, 'partitionKey'>>,
    /** The same rule may meet one request more than once (an Express middleware mounted twice). */
    reentrant = true,
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
    // A compound limit's parts share the charges of their limiters, so that one of them also
    // charged on its own on the same request is caught (chargeParts).
    this.charges = chargesOf(decider);
    this.charges.rules++;
    this.partitionKey = shared.partitionKey;
    this.reentrant = reentrant || this.partitionKey !== undefined;
    this.unit = rule.quotaUnit === undefined ? '' : `;qu="${rule.quotaUnit}"`;
    const name = typeof decider.name === 'string' && decider.name.length > 0 ? decider.name : 'ratelimit';
    this.sfName = sfString(name);
    this.remainingPrefix = `${this.sfName};r=`;
    const view = viewOf(decider, this.sfName);
    this.policy = view.policy === undefined ? undefined : view.policy + this.unit;
    this.shape = view.shape;
    this.burst = view.burst;
    this.intervalUs = view.intervalUs;
    this.maxCost = view.maxCost;
    this.q = view.q;
    if (this.maxCost !== undefined && this.cost > this.maxCost) {
      throw new RangeError(
        `${owner}: option "cost" must not exceed what limiter ${JSON.stringify(name)} can ever admit (${this.maxCost}), got ${show(this.cost)}`,
      );
    }
    const limits = (decider as { limits?: unknown }).limits;
    this.parts =
      decider.kind === 'compound' && Array.isArray(limits) && limits.length > 1
        ? limits.map((l: Decider) => new RateLimitRule<Req>(owner, l, { quotaUnit: rule.quotaUnit }, shared, false))
        : undefined;
    this.denial = decider.kind === 'quota' ? quotaExceededProblem(name) : rateLimitedProblem(name);
    this.unavailable = storeUnavailableProblem(name);
    this.badCost = badCostProblem(name);
    this.costTooLarge = costTooLargeProblem(name, this.maxCost ?? MAX_SF_INTEGER);
  }

  /** The 429 for a denial: a compound limit's names the limit that denied. */
  denialOf(decision: LimiterDecision): ProblemResponse {
    const by = (decision as { deniedBy?: unknown }).deniedBy;
    if (this.parts !== undefined && typeof by === 'string') for (const p of this.parts) if (p.decider.name === by) return p.denial;
    return this.denial;
  }

  /** A compound limit's part: its own item, unless a limit set at run time for this key (setLimit) decided with another quota. */
  partPolicyHeader(decision: LimiterDecision): string {
    const q = countValue(decision.limit);
    return this.q === undefined || q === this.q ? this.policyHeader(decision) : `${this.sfName};q=${q}${this.unit}`;
  }

  /** The `RateLimit-Policy` item; for a limiter whose shape is unknown, built from its first decision's limit. */
  policyHeader(decision: LimiterDecision): string {
    if (this.policy === undefined) this.policy = `${this.sfName};q=${countValue(decision.limit)}${this.unit}`;
    return this.policy;
  }

  /**
   * The `RateLimit` item: `r`, the units left, and `t`, the draft's effective window: seconds
   * within which no more than `r` units can be used. On a denial `t` is the `Retry-After` value.
   * When allowed: the seconds until the window or period resets, for a GCRA limiter until its
   * next unit refills (never longer than the `t` of a denial that follows), and no `t` for a
   * sliding window, whose units come back continuously.
   */
  rateLimitHeader(decision: LimiterDecision): string {
    const r = countValue(decision.remaining);
    if (!decision.allowed) return `${this.remainingPrefix}${r};t=${retryAfterValue(decision)}`;
    if (this.shape === 'reset') return `${this.remainingPrefix}${r};t=${secondsUp(decision.resetMs)}`;
    if (this.shape === 'sliding') return `${this.remainingPrefix}${r}`;
    return `${this.remainingPrefix}${r};t=${this.nextUnitSeconds(decision, r)}`;
  }

  /**
   * GCRA: whole seconds until one more unit is back. The bucket is full `resetMs` from now and
   * holds `r` units, so the next one is back `resetMs − (burst − r − 1) × interval` from now
   * (resetMs is rounded up to a ms: taking 999 µs off keeps this a lower bound).
   */
  private nextUnitSeconds(decision: LimiterDecision, r: number): number {
    const resetUs = (decision.resetMs > 0 ? decision.resetMs : 0) * 1000 - 999;
    let us = resetUs - (this.burst - r - 1) * this.intervalUs;
    if (us > this.intervalUs) us = this.intervalUs;
    const s = Math.ceil(us / 1_000_000);
    return s > 1 ? s : 1;
  }
}

/** `Retry-After` for a denial: whole seconds, rounded up, at least 1. */
export function retryAfterValue(decision: LimiterDecision): string {
  const s = secondsUp(decision.retryAfterMs);
  return s > 0 ? String(s) : '1';
}


function badKey(owner: string, key: unknown): TypeError {
  return new TypeError(`${owner}: option "key" must return a non-empty string, got ${show(key)}`);
}

/**
 * What one rule did to a request: undefined (skipped, or this limiter already charged it), a
 * decision, or a problem to answer with (a bad cost).
 */
export type RuleOutcome = LimiterDecision | ProblemResponse | undefined;

/**
 * Takes units for one request: undefined when `skip` says so (or this limiter already charged
 * this request), a problem for a bad cost, else the decision. Rejects when a user function throws
 * or returns an unusable key, or the limiter rejects.
 */
export function decideRequest<Req>(rule: RateLimitRule<Req>, request: Req, raw: AddressedRequest): Promise<RuleOutcome> {
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
export function decideRequestNow<Req>(rule: RateLimitRule<Req>, request: Req, raw: AddressedRequest): RuleOutcome | Promise<RuleOutcome> {
  if (!rule.plain) return decideWithFunctions(rule, request, raw);
  const key = rule.clientOf(raw);
  if (!firstCharge(rule, raw, key, rule.cost)) return undefined;
  if (rule.parts !== undefined) chargeParts(rule, rule.parts, raw, key, rule.cost);
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

async function decideWithFunctions<Req>(rule: RateLimitRule<Req>, request: Req, raw: AddressedRequest): Promise<RuleOutcome> {
  if (rule.skip !== undefined) {
    // Only a boolean answers: a truthy 'yes' read as "limit it" would be a silent default.
    const skipped: unknown = await rule.skip(request);
    if (typeof skipped !== 'boolean') throw new TypeError(`${rule.owner}: option "skip" must return a boolean (or a promise of one), got ${show(skipped)}`);
    if (skipped) return undefined;
  }
  let key: unknown;
  if (rule.key === undefined) {
    key = rule.clientOf(raw);
  } else {
    key = rule.key(request);
    if (typeof key !== 'string') key = await key;
    if (typeof key !== 'string' || key.length === 0) throw badKey(rule.owner, key);
  }
  let costOptions = rule.costOptions;
  if (rule.costOf !== undefined) {
    let cost: unknown = rule.costOf(request);
    if (typeof cost !== 'number') cost = await cost;
    // The cost comes from the request: a bad one is the client's mistake (400), never a 500 and
    // never a log line per request.
    if (!isCount(cost)) return rule.badCost;
    if (rule.maxCost !== undefined && cost > rule.maxCost) return rule.costTooLarge;
    costOptions = cost === 1 ? undefined : { cost };
  }
  const cost = costOptions === undefined ? 1 : costOptions.cost;
  if (!firstCharge(rule, raw, key as string, cost)) return undefined;
  if (rule.parts !== undefined) chargeParts(rule, rule.parts, raw, key as string, cost);
  const outcome = costOptions === undefined ? rule.decider.consume(key as string) : rule.decider.consume(key as string, costOptions);
  return rule.now === undefined ? settled(rule.owner, outcome) : outcome;
}

/**
 * Applies a rule's outcome to the response: writes the rate-limit headers (and `Retry-After`)
 * through `access`, and returns the problem to answer with, or undefined to let the request go on.
 * A denial by a store that failed closed is an outage: 503, `Retry-After`, and no header that
 * claims the client's limit is used up. A limiter in shadow mode gets the same headers and never
 * an answer: its denials (published on the decision channel with `mode: 'shadow'`), its outages
 * and a bad cost (which is not charged) all let the request go on.
 */
export function applyOutcome<Req, T>(
  rule: RateLimitRule<Req>,
  outcome: RuleOutcome,
  raw: object,
  target: T,
  access: HeaderAccess<T>,
): ProblemResponse | undefined {
  if (outcome === undefined) return undefined;
  if (outcome === rule.badCost || outcome === rule.costTooLarge) return enforced(rule, outcome);
  const decision = outcome as LimiterDecision;
  if (!decision.allowed && decision.store === 'fail-closed') {
    access.set(target, 'retry-after', retryAfterValue(decision));
    return enforced(rule, rule.unavailable);
  }
  if (rule.draft) writeRateLimitHeaders(rule, decision, raw, target, access);
  if (decision.allowed) return undefined;
  access.set(target, 'retry-after', retryAfterValue(decision));
  return enforced(rule, rule.denialOf(decision));
}

/** The answer, unless the rule's limiter is in shadow mode (read on a denial only: the admitted path pays nothing). */
function enforced<Req>(rule: RateLimitRule<Req>, answer: ProblemResponse): ProblemResponse | undefined {
  return rule.decider.mode === 'shadow' ? undefined : answer;
}
