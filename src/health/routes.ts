// The HTTP side of health shared by the node:http handler and the Express and Fastify adapters:
// which path is which probe, and what the answer looks like. Bodies are built from a whitelist
// of fields, so an error's message, stack or socket address can never end up in one.
import { checkOptions, enumOption, show } from '../core/validate.js';
import type { Health } from './health.js';
import type { HealthReport } from './types.js';

/**
 * Options shared by every health HTTP handler (`healthHandler`, `healthMiddleware`, `healthPlugin`).
 * @example
 * const options: HealthRoutesOptions = { prefix: '/ops', verbose: 'query' };
 */
export interface HealthRoutesOptions {
  /** Put in front of `/livez`, `/readyz`, `/startupz` and `/healthz`, e.g. `'/ops'`. @default '' */
  readonly prefix?: string;
  /**
   * When per-check results appear in the body: `'query'` when the request has `?verbose`,
   * `'always'`, or `'never'`. Even verbose bodies carry only status, failure kind, duration and
   * the checks' own flat details — never error messages, stacks or addresses.
   * @default 'query'
   */
  readonly verbose?: 'query' | 'always' | 'never';
}

/** The probe behind each path (`'summary'` is `/healthz`). */
export type HealthRoute = 'live' | 'ready' | 'startup' | 'summary';

/** An HTTP answer, ready to write. */
export interface HealthHttpResponse {
  readonly statusCode: 200 | 503;
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

/** Validates the shared options and builds the path table. */
export function resolveRoutes(owner: string, options: HealthRoutesOptions | undefined, extraKeys: readonly string[] = []): ResolvedRoutes {
  const o = checkOptions(owner, options, [...ROUTE_OPTION_KEYS, ...extraKeys]);
  const prefix = o.prefix ?? '';
  if (typeof prefix !== 'string' || (prefix !== '' && (!prefix.startsWith('/') || prefix.endsWith('/') || /[?#\s]/.test(prefix)))) {
    throw new TypeError(`${owner}: option "prefix" must be '' or a path like '/ops' (leading slash, no trailing slash), got ${show(prefix)}`);
  }
  const verbose = enumOption(owner, 'verbose', o.verbose, ['query', 'always', 'never'] as const, 'query');
  const paths = new Map<string, HealthRoute>([
    [`${prefix}/livez`, 'live'],
    [`${prefix}/readyz`, 'ready'],
    [`${prefix}/startupz`, 'startup'],
    [`${prefix}/healthz`, 'summary'],
  ]);
  return { paths, verbose };
}

/** The route a request asks for, or undefined when it is not a health request (or not GET/HEAD). */
export function matchRoute(
  routes: ResolvedRoutes,
  method: string | undefined,
  url: string | undefined,
): { readonly route: HealthRoute; readonly verbose: boolean } | undefined {
  if ((method !== 'GET' && method !== 'HEAD') || url === undefined) return undefined;
  const q = url.indexOf('?');
  const path = q === -1 ? url : url.slice(0, q);
  const route = routes.paths.get(path);
  if (route === undefined) return undefined;
  let verbose = routes.verbose === 'always';
  if (routes.verbose === 'query' && q !== -1) {
    const flag = new URLSearchParams(url.slice(q + 1)).get('verbose');
    verbose = flag !== null && flag !== 'false' && flag !== '0';
  }
  return { route, verbose };
}

/** Runs the probe and renders the answer. Never rejects. */
export async function respond(h: Health, route: HealthRoute, verbose: boolean): Promise<HealthHttpResponse> {
  let report: HealthReport;
  try {
    report =
      route === 'live'
        ? await h.liveness()
        : route === 'ready'
          ? await h.readiness()
          : route === 'startup'
            ? await h.startup()
            : await h.summary();
  } catch {
    report = { status: 'fail', checks: {} };
  }
  return {
    statusCode: report.status === 'pass' ? 200 : 503,
    headers: {
      'content-type': 'application/json; charset=utf-8',
      'cache-control': 'no-store',
    },
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
