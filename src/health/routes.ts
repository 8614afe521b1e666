// The HTTP side of health shared by the node:http handler and the Express and Fastify adapters:
// which path is which probe, and what the answer looks like. Bodies are built from a whitelist
// of fields, so an error's message, stack or socket address can never end up in one.
import { checkOptions, enumOption, show } from '../core/validate.js';
import type { Health } from './health.js';
import { registerServedHealth } from './served-health.js';
import { registerServedPath } from './served-paths.js';
import type { HealthReport, Probe } from './types.js';

/**
 * Options shared by every health HTTP handler (`healthHandler`, `healthMiddleware`, `healthPlugin`).
 * @example
 * const options: HealthRoutesOptions = { prefix: '/ops', verbose: 'query' };
 */
export interface HealthRoutesOptions {
  /**
   * Put in front of `/livez`, `/readyz`, `/startupz` and `/healthz`, e.g. `'/ops'`. The prefixed
   * paths are added to the list bulwark's rate limits and load shedding let through (see
   * `registerServedPath`). @default ''
   */
  readonly prefix?: string;
  /**
   * When per-check results appear in the body: `'never'`, `'query'` (when the request has
   * `?verbose`), or `'always'`. Opt-in, because the names of your checks and dependencies are
   * nobody else's business; even verbose bodies carry only status, failure kind, duration and the
   * checks' own flat details — never error messages, stacks or addresses.
   * @default 'never'
   */
  readonly verbose?: 'query' | 'always' | 'never';
}

/** The probe behind each path (`'summary'` is `/healthz`). */
export type HealthRoute = 'live' | 'ready' | 'startup' | 'summary';

/** An HTTP answer, ready to write. */
export interface HealthHttpResponse {
  /** 404 for a per-check path naming no check of that probe. */
  readonly statusCode: 200 | 404 | 503;
  readonly headers: Readonly<Record<string, string>>;
  readonly body: string;
}

/** Options resolved once. */
export interface ResolvedRoutes {
  readonly paths: ReadonlyMap<string, HealthRoute>;
  readonly verbose: 'query' | 'always' | 'never';
}

export const ROUTE_OPTION_KEYS = ['prefix', 'verbose'] as const;

/** Throws unless `h` looks like a {@link Health} (structural, so ESM and CJS copies mix). */
export function assertHealth(owner: string, h: unknown): asserts h is Health {
  const x = h as Record<string, unknown> | null;
  if (
    typeof x !== 'object' ||
    x === null ||
    typeof x.liveness !== 'function' ||
    typeof x.readiness !== 'function' ||
    typeof x.startup !== 'function' ||
    typeof x.summary !== 'function'
  ) {
    throw new TypeError(`${owner}: expected a health() instance, got ${show(h)}`);
  }
}

/**
 * What every probe route does when it is made: checks `h` and the options, builds the path table,
 * and notes `h` as served (a gracefulShutdown without `health` fails its readiness).
 */
export function serveHealth(owner: string, h: unknown, options: HealthRoutesOptions | undefined): ResolvedRoutes {
  assertHealth(owner, h);
  const routes = resolveRoutes(owner, options);
  registerServedHealth(h);
  return routes;
}

/** Validates the shared options and builds the path table. */
export function resolveRoutes(owner: string, options: HealthRoutesOptions | undefined, extraKeys: readonly string[] = []): ResolvedRoutes {
  const o = checkOptions(owner, options, [...ROUTE_OPTION_KEYS, ...extraKeys]);
  const prefix = o.prefix ?? '';
  if (typeof prefix !== 'string' || (prefix !== '' && (!prefix.startsWith('/') || prefix.endsWith('/') || /[?#\s]/.test(prefix)))) {
    throw new TypeError(`${owner}: option "prefix" must be '' or a path like '/ops' (leading slash, no trailing slash), got ${show(prefix)}`);
  }
  const verbose = enumOption(owner, 'verbose', o.verbose, ['query', 'always', 'never'] as const, 'never');
  const paths = new Map<string, HealthRoute>([
    [`${prefix}/livez`, 'live'],
    [`${prefix}/readyz`, 'ready'],
    [`${prefix}/startupz`, 'startup'],
    [`${prefix}/healthz`, 'summary'],
  ]);
  // Registered when the routes are made, before any request: bulwark's limits and shedding then
  // let these through whatever order the app registers things in.
  for (const path of paths.keys()) registerServedPath(path);
  return { paths, verbose };
}

/**
 * What a health request asks for: the probe, whether the body is verbose, and, for a per-check
 * path (`/readyz/db`), the check's name.
 */
export interface RouteMatch {
  readonly route: HealthRoute;
  readonly verbose: boolean;
  /** The check named after the probe's path (percent-decoded), when there is one. */
  readonly check?: string;
}

/** The route a request asks for, or undefined when it is not a health request (or not GET/HEAD). */
export function matchRoute(routes: ResolvedRoutes, method: string | undefined, url: string | undefined): RouteMatch | undefined {
  if ((method !== 'GET' && method !== 'HEAD') || url === undefined) return undefined;
  const q = url.indexOf('?');
  const path = q === -1 ? url : url.slice(0, q);
  let route = routes.paths.get(path);
  let check: string | undefined;
  if (route === undefined) {
    // `/readyz/<check>`: the probe's path, a slash, the check's name (a bare trailing slash is the probe).
    const base = probeEnd(routes, path);
    if (base === undefined) return undefined;
    route = routes.paths.get(path.slice(0, base))!;
    const name = path.slice(base + 1);
    if (name !== '') check = decodeName(name);
  }
  const verbose = isVerbose(routes, q === -1 ? undefined : url.slice(q + 1));
  return check === undefined ? { route, verbose } : { route, verbose, check };
}

/** Where a probe's path ends in `path` (`/ops/readyz/db` → the index of the slash before `db`), if it starts with one. */
function probeEnd(routes: ResolvedRoutes, path: string): number | undefined {
  for (const p of routes.paths.keys()) {
    if (path.length > p.length && path.charCodeAt(p.length) === 0x2f && path.startsWith(p)) return p.length;
  }
  return undefined;
}

function decodeName(name: string): string {
  try {
    return decodeURIComponent(name);
  } catch {
    return name; // malformed escapes: looked up as written (and so, nearly always, not found)
  }
}

/** Whether a request with this query string (without `?`) gets a verbose body. */
export function isVerbose(routes: ResolvedRoutes, query: string | undefined): boolean {
  if (routes.verbose !== 'query') return routes.verbose === 'always';
  if (query === undefined) return false;
  const flag = new URLSearchParams(query).get('verbose');
  return flag !== null && flag !== 'false' && flag !== '0';
}

const PROBE_OF: Readonly<Record<HealthRoute, Probe | 'summary'>> = { live: 'live', ready: 'ready', startup: 'startup', summary: 'summary' };

const JSON_HEADERS: Readonly<Record<string, string>> = Object.freeze({
  'content-type': 'application/json; charset=utf-8',
  'cache-control': 'no-store',
});

/** The answer to a per-check path naming no check of that probe: never the app's, never the name echoed. */
const UNKNOWN_CHECK: HealthHttpResponse = Object.freeze({
  statusCode: 404,
  headers: Object.freeze({ 'content-type': 'application/problem+json', 'cache-control': 'no-store' }),
  body: JSON.stringify({ type: 'about:blank', title: 'Not Found', status: 404, detail: 'This probe has no check of that name.' }),
});

/**
 * Runs the probe (or, given `check`, that one check as the probe would) and renders the answer.
 * Never rejects.
 */
export async function respond(h: Health, route: HealthRoute, verbose: boolean, check?: string): Promise<HealthHttpResponse> {
  let report: HealthReport;
  try {
    if (check !== undefined) {
      if (!h.hasCheck(check, PROBE_OF[route])) return UNKNOWN_CHECK;
      report = await h.runCheck(check, PROBE_OF[route]);
    } else {
      report =
        route === 'live'
          ? await h.liveness()
          : route === 'ready'
            ? await h.readiness()
            : route === 'startup'
              ? await h.startup()
              : await h.summary();
    }
  } catch {
    report = { status: 'fail', checks: {} };
  }
  return {
    statusCode: report.status === 'pass' ? 200 : 503,
    headers: JSON_HEADERS,
    body: JSON.stringify(verbose ? verboseBody(report) : { status: report.status }),
  };
}

function verboseBody(report: HealthReport): unknown {
  const checks: Record<string, unknown> = {};
  for (const [name, r] of Object.entries(report.checks)) {
    checks[name] = {
      status: r.status,
      ...(r.critical ? {} : { critical: false }),
      ...(r.failure === undefined ? {} : { failure: r.failure }),
      durationMs: Math.round(r.durationMs),
      ...(r.cached ? { cached: true } : {}),
      ...(r.details === undefined ? {} : { details: r.details }),
    };
  }
  return { status: report.status, ...(report.state === undefined ? {} : { state: report.state }), checks };
}

/** The parts of a node:http response the handlers use. */
export interface ResponseLike {
  statusCode: number;
  setHeader(name: string, value: string): unknown;
  end(body?: string): unknown;
  readonly headersSent?: boolean;
  readonly destroyed?: boolean;
}

/** Writes an answer to a node:http response (HEAD gets the headers only). */
export function writeResponse(res: ResponseLike, method: string | undefined, answer: HealthHttpResponse): void {
  if (res.headersSent === true || res.destroyed === true) return;
  res.statusCode = answer.statusCode;
  for (const [name, value] of Object.entries(answer.headers)) res.setHeader(name, value);
  res.setHeader('content-length', String(Buffer.byteLength(answer.body)));
  res.end(method === 'HEAD' ? undefined : answer.body);
}
