// The paths bulwark answers itself — health probes and the metrics route — which bulwark's own
// rate limits and load shedding never touch (DESIGN §4.9). A kubelet whose probe gets a 429 or a
// 503 restarts a pod that is merely busy; a scraper that gets one loses the very figures that
// would show the overload.
//
// The list lives on `globalThis` under a registered symbol, so the ESM and CommonJS builds of
// bulwark loaded in one process share it: a health route made by one copy is exempt in the
// limiter of the other. Health handlers add their prefixed paths when they are made, before any
// request arrives, so the order in which routes and limiters are registered does not matter.
// A path is matched against the URL the client sent (Express's `originalUrl`, not the `req.url`
// a mounted middleware sees): a health middleware mounted below a router path
// (`app.use('/ops', ...)`) registers only its own paths, not `/ops/...`, so the docs say to use
// the handler's `prefix` option, or `registerServedPath`, instead.

import { processShared } from '../core/process-shared.js';

/** The paths on the list before anything registers: the probes' standard names and `/metrics`. */
export const DEFAULT_SERVED_PATHS: readonly string[] = ['/livez', '/readyz', '/startupz', '/healthz', '/metrics'];

interface Registry {
  /** Every exempt path: no query, no trailing slash. */
  readonly paths: string[];
  /** The second character code of each path (the first is always `/`), for a one-comparison miss. */
  readonly seconds: Set<number>;
}

/** This copy's handle on the shared list, found (or made) once: the hot path reads it per request. */
let found: Registry | undefined;

function registry(): Registry {
  found ??= processShared('bulwark.servedPaths.v1', () => {
    const r: Registry = { paths: [], seconds: new Set() };
    for (const p of DEFAULT_SERVED_PATHS) add(r, p);
    return r;
  });
  return found;
}

function add(r: Registry, path: string): void {
  if (r.paths.includes(path)) return;
  r.paths.push(path);
  r.seconds.add(path.charCodeAt(1));
}

/**
 * Adds a path that bulwark itself serves (a prefixed probe, say) to the exempt list: `path`, and
 * everything below it (`/ops/readyz/redis`), are then never limited or shed by bulwark. Paths
 * must start with `/`; a trailing slash, a query or a fragment is not part of one.
 * @example
 * registerServedPath('/ops/readyz');
 */
export function registerServedPath(path: string): void {
  if (typeof path !== 'string' || !path.startsWith('/') || path.length < 2 || /[?#\s]/.test(path) || path.endsWith('/')) {
    throw new TypeError(`registerServedPath: the path must look like '/ops/readyz' (leading slash, no trailing slash, no query), got ${JSON.stringify(path)}`);
  }
  add(registry(), path);
}

/**
 * Whether a request URL (`/readyz?verbose`, `/ops/livez`) is one bulwark serves itself: the
 * path is on the list, or lies below a path on the list. Costs one character comparison for a
 * URL whose second character starts no listed path (most API routes).
 * @example
 * isServedPath('/readyz?verbose'); // true
 * isServedPath('/api/orders');     // false
 */
export function isServedPath(url: string | undefined): boolean {
  if (url === undefined || url.length < 2) return false;
  const r = registry();
  if (!r.seconds.has(url.charCodeAt(1))) return false;
  const paths = r.paths;
  for (let i = 0; i < paths.length; i++) {
    const p = paths[i]!;
    if (url.startsWith(p)) {
      if (url.length === p.length) return true;
      const next = url.charCodeAt(p.length);
      // '?' query, '/' a sub-path (or Fastify's ignoreTrailingSlash spelling), '#' never sent but harmless.
      if (next === 0x3f || next === 0x2f || next === 0x23) return true;
    }
  }
  return false;
}

/** The exempt paths, for documentation and tests. */
export function servedPaths(): readonly string[] {
  return [...registry().paths];
}
