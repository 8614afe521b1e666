import { MAX_TIMER_MS } from '../../core/validate.js';

// RFC 9110 §5.6.7 allows three date shapes; anything else is garbage, even if Date.parse would
// make something of it (V8 reads "5 minutes" or "soon 2030" as dates).
const monthNames = ['jan', 'feb', 'mar', 'apr', 'may', 'jun', 'jul', 'aug', 'sep', 'oct', 'nov', 'dec'];
/** `Sun, 06 Nov 1994 08:49:37 GMT` (IMF-fixdate, the one servers send). */
const imfFixdate = /^[A-Za-z]{3}, (\d{2}) ([A-Za-z]{3}) (\d{4}) (\d{2}):(\d{2}):(\d{2}) GMT$/;
/** `Sunday, 06-Nov-94 08:49:37 GMT` (obsolete RFC 850). */
const rfc850 = /^[A-Za-z]{6,9}, (\d{2})-([A-Za-z]{3})-(\d{2}) (\d{2}):(\d{2}):(\d{2}) GMT$/;
/** `Sun Nov  6 08:49:37 1994` (obsolete asctime, always GMT). */
const asctime = /^[A-Za-z]{3} ([A-Za-z]{3}) ([ \d]\d) (\d{2}):(\d{2}):(\d{2}) (\d{4})$/;

/**
 * Reads an HTTP date in one of the three forms RFC 9110 allows, as epoch milliseconds, or
 * undefined when the text is not one of them or names an impossible date.
 * @example
 * parseHttpDate('Sun, 06 Nov 1994 08:49:37 GMT'); // 784111777000
 */
export function parseHttpDate(text: string): number | undefined {
  const value = text.trim();
  let m = imfFixdate.exec(value);
  if (m !== null) return utc(m[3]!, m[2]!, m[1]!, m[4]!, m[5]!, m[6]!);
  m = rfc850.exec(value);
  if (m !== null) {
    // Two-digit years: RFC 9110 says read them as the most recent year that ends so, which for
    // any date a server sends today means 20xx below 70 and 19xx above.
    const yy = Number(m[3]);
    return utc(String(yy < 70 ? 2000 + yy : 1900 + yy), m[2]!, m[1]!, m[4]!, m[5]!, m[6]!);
  }
  m = asctime.exec(value);
  if (m !== null) return utc(m[6]!, m[1]!, m[2]!.trim(), m[3]!, m[4]!, m[5]!);
  return undefined;
}

function utc(year: string, month: string, day: string, h: string, min: string, s: string): number | undefined {
  const mon = monthNames.indexOf(month.toLowerCase());
  const d = Number(day);
  const hh = Number(h);
  const mm = Number(min);
  const ss = Number(s);
  if (mon === -1 || d < 1 || d > 31 || hh > 23 || mm > 59 || ss > 60) return undefined;
  const ms = Date.UTC(Number(year), mon, d, hh, mm, Math.min(ss, 59));
  // Date.UTC rolls 31 Feb over into March: such a date is garbage.
  return new Date(ms).getUTCDate() === d ? ms : undefined;
}

/**
 * Reads a `Retry-After` value as a delay in milliseconds: delta seconds (`"120"`) or an HTTP date
 * (measured from `nowMs`, epoch milliseconds; a date in the past means 0). Garbage (`"soon"`,
 * `"-1"`, `"1.5"`, empty) gives undefined. Huge values are clamped to 2^31 − 1 ms so that a retry
 * policy caps them at its `maxDelayMs` instead of ignoring them.
 * @example
 * parseRetryAfter('3', Date.now()); // 3000
 * parseRetryAfter(new Date(Date.now() + 5_000).toUTCString(), Date.now()); // about 5000
 */
export function parseRetryAfter(value: string | null | undefined, nowMs: number): number | undefined {
  if (value === null || value === undefined) return undefined;
  const text = value.trim();
  if (/^\d+$/.test(text)) return clamp(Number(text) * 1_000);
  const at = parseHttpDate(text);
  return at === undefined ? undefined : clamp(Math.max(0, at - nowMs));
}

function clamp(ms: number): number {
  // A long digit string is Infinity: still "as long as allowed", not garbage.
  return ms > MAX_TIMER_MS ? MAX_TIMER_MS : ms;
}

/**
 * Reads the IETF `RateLimit` header (draft-ietf-httpapi-ratelimit-headers, structured-field
 * form: `"default";r=0;t=5, "burst";r=3;t=1`) as a delay in milliseconds: the longest `t` among
 * the policies whose remaining quota `r` is 0 (or not given). Undefined when no such policy has
 * a valid `t`, or the header does not parse.
 * @example
 * parseRateLimit('"default";r=0;t=5'); // 5000
 */
export function parseRateLimit(value: string | null | undefined): number | undefined {
  if (value === null || value === undefined) return undefined;
  const items = parseList(value);
  if (items === undefined) return undefined;
  let longest: number | undefined;
  for (const params of items) {
    const r = params.get('r');
    const t = params.get('t');
    if (r !== undefined && r !== 0) continue;
    if (t === undefined) continue;
    longest = longest === undefined ? t : Math.max(longest, t);
  }
  return longest === undefined ? undefined : clamp(longest * 1_000);
}

/**
 * A small reader for the structured-field lists the `RateLimit` header uses (RFC 8941): each
 * item a string or token, then `;key=integer` parameters. Only non-negative integer parameters
 * are kept (others are dropped, which makes `t=-1` or `t=soon` as good as absent). Undefined on
 * a syntax error. Bounded by the header's length: each step consumes at least one character.
 */
function parseList(text: string): Map<string, number>[] | undefined {
  const items: Map<string, number>[] = [];
  let i = 0;
  const n = text.length;
  const skipSpaces = (): void => {
    while (i < n && (text[i] === ' ' || text[i] === '\t')) i++;
  };
  skipSpaces();
  while (i < n) {
    // The item itself: a quoted string or a token; its value does not matter here.
    if (text[i] === '"') {
      i++;
      while (i < n && text[i] !== '"') i += text[i] === '\\' ? 2 : 1;
      if (i >= n) return undefined;
      i++;
    } else {
      const start = i;
      while (i < n && /[A-Za-z0-9*_.:/%&+!#$'^`|~-]/.test(text[i]!)) i++;
      if (i === start) return undefined;
    }
    const params = new Map<string, number>();
    skipSpaces(); // more lenient than RFC 8941 (no space before ';'): some servers send one
    while (i < n && text[i] === ';') {
      i++;
      skipSpaces();
      const keyStart = i;
      while (i < n && /[a-z0-9_.*-]/.test(text[i]!)) i++;
      const key = text.slice(keyStart, i);
      if (key.length === 0) return undefined;
      if (text[i] !== '=') continue; // a boolean parameter: nothing to keep
      i++;
      const valueStart = i;
      while (i < n && text[i] !== ';' && text[i] !== ',') i++;
      const raw = text.slice(valueStart, i).trim();
      if (/^\d{1,15}$/.test(raw)) params.set(key, Number(raw));
    }
    items.push(params);
    skipSpaces();
    if (i >= n) break;
    if (text[i] !== ',') return undefined;
    i++;
    skipSpaces();
  }
  return items;
}

/**
 * The delay a response asks for before the next request, in milliseconds: `Retry-After` first,
 * then the IETF `RateLimit` header's `t`, then the older drafts' `RateLimit-Reset` delta seconds.
 * An HTTP date is measured against the response's own `Date` header when it has a valid one (so
 * a client whose clock is off still waits the intended time), else against `nowMs`.
 * @example
 * delayHint(response.headers, Date.now()); // e.g. 2000 for `Retry-After: 2`
 */
export function delayHint(headers: Headers, nowMs: number): number | undefined {
  const retryAfter = headers.get('retry-after');
  if (retryAfter !== null) {
    const served = headers.get('date');
    const serverNow = served === null ? undefined : parseHttpDate(served);
    const ms = parseRetryAfter(retryAfter, serverNow ?? nowMs);
    if (ms !== undefined) return ms;
  }
  const rateLimit = parseRateLimit(headers.get('ratelimit'));
  if (rateLimit !== undefined) return rateLimit;
  const reset = headers.get('ratelimit-reset');
  return reset !== null && /^\s*\d+\s*$/.test(reset) ? clamp(Number(reset) * 1_000) : undefined;
}
