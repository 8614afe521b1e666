// What an upstream says about its own rate limits, read from a response: the IETF draft-11
// fields `RateLimit-Policy` (each policy's quota `q` per window `w`, unit `qu`, partition key
// `pk`) and `RateLimit` (units left `r`, seconds `t`), the older `X-RateLimit-*` trio, and
// `Retry-After`. The pacer (pacer.ts) turns this into a rate and a "blocked until".
import { parseHttpDate, parseRetryAfter } from '../retry-after.js';

/** A structured-field bare item as kept here: integers, decimals, strings, tokens, byte sequences (as base64 text), booleans. */
export type FieldValue = number | string | boolean;

/** One member of a structured-field list: its value (a string or token) and its parameters. */
export interface FieldItem {
  readonly value: string;
  readonly params: ReadonlyMap<string, FieldValue>;
}

/** One `RateLimit-Policy` member: `q` units per `w` seconds (`w` absent when the server left it out). */
export interface QuotaPolicy {
  readonly name: string;
  readonly q: number;
  readonly w: number | undefined;
  /** `qu`: what `q` counts; the draft's default is `'requests'`. */
  readonly unit: string;
  /** `pk`, the partition key, as the base64 text of its byte sequence. */
  readonly pk: string | undefined;
}

/** One `RateLimit` member: `r` units left, for `t` seconds (the draft's effective window). */
export interface QuotaState {
  readonly name: string;
  readonly r: number;
  readonly t: number | undefined;
  readonly pk: string | undefined;
}

/** Everything a response said about its server's limits. */
export interface RateAdvice {
  readonly policies: readonly QuotaPolicy[];
  readonly states: readonly QuotaState[];
  /** `X-RateLimit-Limit`, `-Remaining` and the ms until `-Reset` (epoch seconds or delta seconds), when sent. */
  readonly legacy: { readonly limit: number | undefined; readonly remaining: number | undefined; readonly resetMs: number | undefined } | undefined;
  /** `Retry-After` as ms from now, when sent and valid. */
  readonly retryAfterMs: number | undefined;
}

const tokenStart = /[A-Za-z*]/;
const tokenChar = /[A-Za-z0-9!#$%&'*+\-.^_`|~:/]/;
const keyStart = /[a-z*]/;
const keyChar = /[a-z0-9_\-.*]/;

/**
 * Parses an RFC 8941 (RFC 9651) list whose members are strings or tokens with parameters, as
 * both draft-11 fields are. Undefined on a syntax error (the draft says to ignore such a field).
 * Inner lists are not allowed here. Linear in the length: each step consumes a character.
 */
export function parseFieldList(text: string): FieldItem[] | undefined {
  const items: FieldItem[] = [];
  let i = 0;
  const n = text.length;
  const spaces = (): void => {
    while (i < n && (text[i] === ' ' || text[i] === '\t')) i++;
  };
  const bare = (): FieldValue | undefined => {
    const c = text[i];
    if (c === undefined) return undefined;
    if (c === '"') {
      let out = '';
      i++;
      while (i < n) {
        const ch = text[i]!;
        if (ch === '\\') {
          const next = text[i + 1];
          if (next !== '"' && next !== '\\') return undefined;
          out += next;
          i += 2;
        } else if (ch === '"') {
          i++;
          return out;
        } else {
          if (ch < ' ' || ch > '~') return undefined;
          out += ch;
          i++;
        }
      }
      return undefined;
    }
    if (c === ':') {
      const end = text.indexOf(':', i + 1);
      if (end === -1) return undefined;
      const b64 = text.slice(i + 1, end);
      if (!/^[A-Za-z0-9+/]*={0,2}$/.test(b64)) return undefined;
      i = end + 1;
      return b64;
    }
    if (c === '?') {
      const b = text[i + 1];
      if (b !== '0' && b !== '1') return undefined;
      i += 2;
      return b === '1';
    }
    if (c === '-' || (c >= '0' && c <= '9')) {
      const m = /^-?\d{1,15}(\.\d{1,3})?/.exec(text.slice(i, i + 20));
      if (m === null) return undefined;
      i += m[0].length;
      return Number(m[0]);
    }
    if (tokenStart.test(c)) {
      const start = i;
      while (i < n && tokenChar.test(text[i]!)) i++;
      return text.slice(start, i);
    }
    return undefined;
  };
  spaces();
  if (i >= n) return undefined; // both fields are non-empty lists
  while (i < n) {
    const value = bare();
    if (typeof value !== 'string') return undefined;
    const params = new Map<string, FieldValue>();
    while (i < n && text[i] === ';') {
      i++;
      spaces();
      if (i >= n || !keyStart.test(text[i]!)) return undefined;
      const start = i;
      while (i < n && keyChar.test(text[i]!)) i++;
      const key = text.slice(start, i);
      let v: FieldValue | undefined = true;
      if (text[i] === '=') {
        i++;
        v = bare();
        if (v === undefined) return undefined;
      }
      params.set(key, v);
    }
    items.push({ value, params });
    spaces();
    if (i >= n) break;
    if (text[i] !== ',') return undefined;
    i++;
    spaces();
    if (i >= n) return undefined; // a trailing comma
  }
  return items;
}

const count = (v: FieldValue | undefined): number | undefined => (typeof v === 'number' && Number.isInteger(v) && v >= 0 ? v : undefined);
const bytes = (v: FieldValue | undefined): string | undefined => (typeof v === 'string' ? v : undefined);

/** The members of a field, none when it is absent or does not parse. */
const membersOf = (value: string | null | undefined): FieldItem[] => (value == null ? undefined : parseFieldList(value)) ?? [];

/** `RateLimit-Policy` members that carry a valid `q` (a member without one is ignored, as the draft says). */
export function parsePolicies(value: string | null | undefined): QuotaPolicy[] {
  const out: QuotaPolicy[] = [];
  for (const { value: name, params } of membersOf(value)) {
    const q = count(params.get('q'));
    if (q === undefined) continue;
    const w = count(params.get('w'));
    const qu = params.get('qu');
    out.push({ name, q, w: w === 0 ? undefined : w, unit: typeof qu === 'string' ? qu : 'requests', pk: bytes(params.get('pk')) });
  }
  return out;
}

/** `RateLimit` members that carry a valid `r`. */
export function parseStates(value: string | null | undefined): QuotaState[] {
  const out: QuotaState[] = [];
  for (const { value: name, params } of membersOf(value)) {
    const r = count(params.get('r'));
    if (r === undefined) continue;
    out.push({ name, r, t: count(params.get('t')), pk: bytes(params.get('pk')) });
  }
  return out;
}

/** A reset above this is an epoch time in seconds (GitHub's form), below it a delta (about 3 years). */
const EPOCH_THRESHOLD_S = 100_000_000;

/**
 * Reads every rate-limit field of a response. `nowMs` is the local epoch time; an HTTP date in
 * `Retry-After` is measured against the response's own `Date` when valid.
 * @example
 * readAdvice(response.headers, Date.now()).policies; // [{ name: 'default', q: 100, w: 10, ... }]
 */
export function readAdvice(headers: Headers, nowMs: number): RateAdvice {
  const served = headers.get('date');
  const serverNow = served === null ? undefined : parseHttpDate(served);
  const limit = legacyCount(headers.get('x-ratelimit-limit'));
  const remaining = legacyCount(headers.get('x-ratelimit-remaining'));
  const resetS = legacyCount(headers.get('x-ratelimit-reset'));
  const resetMs = resetS === undefined ? undefined : resetS > EPOCH_THRESHOLD_S ? Math.max(0, resetS * 1000 - (serverNow ?? nowMs)) : resetS * 1000;
  return {
    policies: parsePolicies(headers.get('ratelimit-policy')),
    states: parseStates(headers.get('ratelimit')),
    legacy: limit === undefined && remaining === undefined && resetMs === undefined ? undefined : { limit, remaining, resetMs },
    retryAfterMs: parseRetryAfter(headers.get('retry-after'), serverNow ?? nowMs),
  };
}

function legacyCount(text: string | null): number | undefined {
  return text !== null && /^\s*\d{1,15}\s*$/.test(text) ? Number(text) : undefined;
}

/** What the pacer takes from advice: a sustainable rate (units per second) and how long nothing may go. */
export interface PaceHint {
  /** The lowest sustainable rate among the advertised policies, per second; undefined when none says. */
  readonly ratePerSec: number | undefined;
  /** Ms from now during which no request should go (a `Retry-After`, or a policy with `r=0`). */
  readonly blockMs: number;
  /** Whether the response said anything at all about limits. */
  readonly advised: boolean;
}

/**
 * Turns advice into a pace: the slowest `q / w` among the policies; without policies, the legacy
 * `remaining` spread over the time to `reset`; and a block for `Retry-After`, for a `RateLimit`
 * member with `r=0` (its `t`), or for `X-RateLimit-Remaining: 0` (its reset).
 */
export function paceHint(advice: RateAdvice): PaceHint {
  let rate: number | undefined;
  for (const p of advice.policies) {
    if (p.w === undefined || p.q === 0) continue;
    const r = p.q / p.w;
    rate = rate === undefined ? r : Math.min(rate, r);
  }
  let blockMs = advice.retryAfterMs ?? 0;
  for (const s of advice.states) if (s.r === 0 && s.t !== undefined) blockMs = Math.max(blockMs, s.t * 1000);
  const legacy = advice.legacy;
  if (legacy !== undefined && legacy.resetMs !== undefined && legacy.remaining !== undefined) {
    if (legacy.remaining === 0) blockMs = Math.max(blockMs, legacy.resetMs);
    else if (rate === undefined && legacy.resetMs > 0) rate = legacy.remaining / (legacy.resetMs / 1000);
  }
  const advised = advice.policies.length > 0 || advice.states.length > 0 || legacy !== undefined || advice.retryAfterMs !== undefined;
  return { ratePerSec: rate, blockMs, advised };
}
