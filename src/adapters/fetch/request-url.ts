// The URL an attempt goes to, without parsing it on every call (issue 14 §4). Most requests name
// a URL already in its canonical form (`http://api.internal:8080/v1/items?id=7`): the origin the
// breaker is keyed by can be read off the string, and `fetch` parses the string itself anyway.
// Anything less plain — upper case, a default or padded port, a numeric host other than a dotted
// quad, punycode, dot segments, characters the URL parser would escape — goes through `new URL`,
// as before. The parsed URL is still made on demand: for a rate-limit key, or the `url` of an
// HttpStatusError.

/**
 * An absolute http(s) URL whose `href` is the string itself: lower-case scheme and host, a host of
 * DNS labels or a dotted quad, a port without leading zeros that is not the scheme's default, then
 * a path of characters the parser leaves as they are, no dot segments, no fragment.
 */
const canonical = /^(https?):\/\/((?:[a-z0-9-]{1,63}\.)*[a-z0-9-]{1,63})(?::([1-9][0-9]{0,4}))?\/[A-Za-z0-9\-._~!$&()*+,;=:@%/?]*$/;
/** A canonical dotted quad: four numbers 0–255 without leading zeros. */
const dottedQuad = /^(?:(?:25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])\.){3}(?:25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])$/;
/** A host label the parser reads as a number (then the whole host is an IPv4 address). */
const numericLabel = /(?:^|\.)(?:[0-9]+|0x[0-9a-f]*)$/;
/** `.` or `..` as a path segment, also percent-encoded: the parser would resolve it. */
const dotSegment = /\/(?:\.|%2e){1,2}(?:[/?]|$)/i;

/**
 * The origin of `url` when it is already canonical (its `href` is itself), else undefined.
 * Exported for its tests.
 * @example
 * canonicalOrigin('http://a.internal:8080/v1?x=1'); // 'http://a.internal:8080'
 * canonicalOrigin('HTTP://A/'); // undefined: new URL() would rewrite it
 */
export function canonicalOrigin(url: string): string | undefined {
  const m = canonical.exec(url);
  if (m === null) return undefined;
  const [, scheme, host, port] = m as unknown as [string, string, string, string | undefined];
  if (numericLabel.test(host) && !dottedQuad.test(host)) return undefined;
  if (host.startsWith('xn--') || host.includes('.xn--')) return undefined;
  if (port !== undefined && (Number(port) > 65_535 || port === (scheme === 'http' ? '80' : '443'))) return undefined;
  const pathStart = scheme.length + 3 + host.length + (port === undefined ? 0 : port.length + 1);
  // Dot segments are looked for in the path only: in the query they are plain characters.
  const query = url.indexOf('?', pathStart);
  if (dotSegment.test(query < 0 ? url.slice(pathStart) : url.slice(pathStart, query + 1))) return undefined;
  return url.slice(0, pathStart);
}

/**
 * The URL of one request: `href` (what is sent) and `origin` (what breakers, pauses and rate
 * limits are keyed by) at once, the URL object only when something asks for it.
 */
export class RequestUrl {
  private parsed: URL | undefined;

  private constructor(
    readonly href: string,
    readonly origin: string,
    parsed: URL | undefined,
  ) {
    this.parsed = parsed;
  }

  /**
   * From what the caller gave: a string or a URL (copied: the caller may change it later).
   * Throws the TypeError `new URL` throws for a relative or malformed URL, as fetch would reject.
   */
  static of(input: string | URL): RequestUrl {
    if (typeof input === 'string') {
      const origin = canonicalOrigin(input);
      if (origin !== undefined) return new RequestUrl(input, origin, undefined);
    }
    const url = new URL(input);
    return new RequestUrl(url.href, url.origin, url);
  }

  /** An endpoint's URL: its origin is the endpoint's, whatever the (joined, relative) path. */
  static atOrigin(href: string, origin: string): RequestUrl {
    return canonicalOrigin(href) === origin ? new RequestUrl(href, origin, undefined) : RequestUrl.of(href);
  }

  /** The parsed URL, made on first use (a copy per request, as before: the caller may change it). */
  get url(): URL {
    return (this.parsed ??= new URL(this.href));
  }
}
