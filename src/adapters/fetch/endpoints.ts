import { show } from '../../core/validate.js';

/**
 * One configured endpoint: a base URL and the origin its breaker is keyed by.
 * @example
 * const [primary] = parseEndpoints('createFetch', ['http://a:8080/api']); // { base: 'http://a:8080/api', origin: 'http://a:8080' }
 */
export interface Endpoint {
  /** The base URL as given, without a trailing slash (`http://a:8080/api`). */
  readonly base: string;
  /** Its origin (`http://a:8080`). */
  readonly origin: string;
}

/**
 * Most endpoints one fetch may fail over between.
 * @example
 * if (bases.length > MAX_ENDPOINTS) throw new RangeError('too many endpoints');
 */
export const MAX_ENDPOINTS = 64;

/**
 * Checks and normalises the `endpoints` option: 1 to 64 absolute http(s) base URLs with distinct
 * origins, no query or fragment. Throws a TypeError or RangeError naming the bad entry.
 * @example
 * parseEndpoints(['http://primary:8080/api/', 'http://standby:8080/api']);
 */
export function parseEndpoints(owner: string, value: unknown): Endpoint[] {
  if (!Array.isArray(value)) {
    throw new TypeError(`${owner}: option "endpoints" must be an array of base URLs, got ${show(value)}`);
  }
  if (value.length === 0 || value.length > MAX_ENDPOINTS) {
    throw new RangeError(`${owner}: option "endpoints" must hold 1 to ${MAX_ENDPOINTS} base URLs, got ${value.length}`);
  }
  const seen = new Set<string>();
  return value.map((entry: unknown, i) => {
    const name = `endpoints[${i}]`;
    if (typeof entry !== 'string' && !(entry instanceof URL)) {
      throw new TypeError(`${owner}: option "${name}" must be a URL string or a URL, got ${show(entry)}`);
    }
    let url: URL;
    try {
      url = new URL(entry);
    } catch {
      throw new TypeError(`${owner}: option "${name}" must be an absolute URL, got ${show(String(entry))}`);
    }
    if (url.protocol !== 'http:' && url.protocol !== 'https:') {
      throw new TypeError(`${owner}: option "${name}" must be an http: or https: URL, got ${show(String(entry))}`);
    }
    if (url.search !== '' || url.hash !== '' || url.username !== '' || url.password !== '') {
      throw new TypeError(
        `${owner}: option "${name}" must be a base URL without query, fragment or credentials, got ${show(String(entry))}`,
      );
    }
    if (seen.has(url.origin)) {
      throw new TypeError(`${owner}: option "${name}" repeats the origin ${url.origin}: each endpoint needs its own origin`);
    }
    seen.add(url.origin);
    // origin + pathname, not href: an empty '?' or '#' (which search and hash do not show) stays out.
    return { base: `${url.origin}${url.pathname}`.replace(/\/+$/, ''), origin: url.origin };
  });
}

/**
 * Joins a request path to an endpoint's base: `join('http://a/api', '/users?x=1')` is
 * `http://a/api/users?x=1` (the base's path is kept, unlike `new URL(path, base)`). A path that
 * is itself absolute (`http://…`, `//host`) is refused with a TypeError.
 * @example
 * joinPath('http://a:8080/v1', 'users/7'); // 'http://a:8080/v1/users/7'
 */
export function joinPath(base: string, path: string): string {
  if (/^[A-Za-z][A-Za-z0-9+.-]*:/.test(path) || path.startsWith('//')) {
    throw new TypeError(`fetch: with "endpoints", the input must be a path such as '/users', got ${show(path)}`);
  }
  if (path === '' || path === '/') return `${base}/`;
  if (path.startsWith('?') || path.startsWith('#')) return `${base}/${path}`;
  return `${base}/${path.replace(/^\/+/, '')}`;
}

/**
 * The order in which one call tries the endpoints for its next attempt: those it has not used
 * yet first, in configured order (the primary first), then those it used longest ago. `lastUsed`
 * holds, per endpoint, the call's sequence number of its latest attempt there (0 = never).
 * Bounded by the endpoint count (at most 64).
 * @example
 * preferenceOrder([0, 0, 0]); // [0, 1, 2]
 * preferenceOrder([1, 0, 0]); // [1, 2, 0]: the primary failed, try the standbys first
 */
export function preferenceOrder(lastUsed: readonly number[]): number[] {
  const order = lastUsed.map((_, i) => i);
  // A stable sort keeps the configured order among endpoints used equally long ago.
  return order.sort((a, b) => lastUsed[a]! - lastUsed[b]!);
}
