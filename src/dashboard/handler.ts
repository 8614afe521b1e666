import { randomBytes } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { checkOptions, show } from '../core/validate.js';
import { accessCheck } from './access.js';
import { renderPage } from './page.js';
import { addViewer, SAMPLE_INTERVAL_MS } from './sampler.js';

/** Options of {@link dashboard}. */
export interface DashboardOptions {
  /**
   * A secret that opens the dashboard to any client sending it as `Authorization: Bearer <token>`
   * or `?token=<token>` (16 characters or more). @default none: loopback clients only
   */
  readonly token?: string;
  /**
   * Whether clients on this host (127.0.0.0/8, ::1) get in without the token. Set it to false
   * behind a reverse proxy on the same host, where every request comes from loopback. @default true
   */
  readonly loopback?: boolean;
  /** The page's title and heading. @default 'bulwark' */
  readonly title?: string;
}

/**
 * A `node:http` request handler, that is also Express middleware (`next` is called for nothing:
 * the dashboard answers every request it is given).
 * @example
 * const handle: DashboardHandler = dashboard();
 */
export type DashboardHandler = (req: IncomingMessage, res: ServerResponse, next?: (error?: unknown) => void) => void;

const TEXT = 'text/plain; charset=utf-8';

function refuse(res: ServerResponse, status: number, body: string, extra: Record<string, string> = {}): void {
  res.writeHead(status, { 'Content-Type': TEXT, 'Cache-Control': 'no-store', 'Content-Length': Buffer.byteLength(body), ...extra });
  res.end(body);
}

function checkDashboardOptions(options: DashboardOptions | undefined): { token: string | undefined; loopback: boolean; title: string } {
  const o = checkOptions('dashboard', options, ['token', 'loopback', 'title']);
  if (o.token !== undefined && (typeof o.token !== 'string' || o.token.length < 16)) {
    const got = typeof o.token === 'string' ? `a string of ${o.token.length} characters` : show(o.token);
    throw new TypeError(`dashboard: option "token" must be a string of 16 characters or more, got ${got}`);
  }
  if (o.loopback !== undefined && typeof o.loopback !== 'boolean') {
    throw new TypeError(`dashboard: option "loopback" must be a boolean, got ${show(o.loopback)}`);
  }
  if (o.loopback === false && o.token === undefined) {
    throw new TypeError('dashboard: option "loopback" is false and no "token" is set, so nobody could open the dashboard');
  }
  if (o.title !== undefined && (typeof o.title !== 'string' || o.title.length === 0 || o.title.length > 100)) {
    throw new TypeError(`dashboard: option "title" must be a string of 1 to 100 characters, got ${show(o.title)}`);
  }
  return { token: o.token, loopback: o.loopback ?? true, title: o.title ?? 'bulwark' };
}

function serveEvents(req: IncomingMessage, res: ServerResponse): void {
  res.writeHead(200, {
    'Content-Type': 'text/event-stream; charset=utf-8',
    'Cache-Control': 'no-store',
    Connection: 'keep-alive',
    'X-Accel-Buffering': 'no',
    'X-Content-Type-Options': 'nosniff',
  });
  res.write(`retry: ${SAMPLE_INTERVAL_MS}\n\n`);
  const remove = addViewer(res);
  req.socket.setNoDelay(true);
  res.once('close', remove);
}

function servePage(res: ServerResponse, method: string, title: string): void {
  const nonce = randomBytes(16).toString('base64');
  const html = renderPage(title, nonce);
  res.writeHead(200, {
    'Content-Type': 'text/html; charset=utf-8',
    'Cache-Control': 'no-store',
    'Content-Length': Buffer.byteLength(html),
    'Content-Security-Policy': `default-src 'none'; script-src 'nonce-${nonce}'; style-src 'nonce-${nonce}'; connect-src 'self'; img-src data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'`,
    'X-Content-Type-Options': 'nosniff',
    'Referrer-Policy': 'no-referrer',
  });
  res.end(method === 'HEAD' ? undefined : html);
}

/**
 * A live page of every policy in the process: a tile per circuit breaker, limiter, quota,
 * bulkhead and admission limit, the load shedder's signals and the health checks, updated once a
 * second over Server-Sent Events from {@link inspect}. One self-contained page (no CDN, works
 * offline) under a strict Content-Security-Policy with a fresh nonce per response; read-only. A
 * request whose path ends in `/events` gets the stream, any other the page. It answers loopback
 * clients, and clients sending `token`; others get 404 (403 when a token is set and theirs is
 * missing or wrong). Every open page shares one sampler; a page that closes releases its part.
 * @example
 * import express from 'express';
 * const app = express();
 * app.use('/dashboard', dashboard());
 * // node:http: if (req.url?.startsWith('/dashboard')) return handle(req, res);
 */
export function dashboard(options?: DashboardOptions): DashboardHandler {
  const { token, loopback, title } = checkDashboardOptions(options);
  const allowed = accessCheck(token, loopback);
  return (req, res) => {
    const url = new URL(req.url ?? '/', 'http://dashboard.invalid');
    if (!allowed(req, url)) {
      if (token === undefined) refuse(res, 404, 'Not Found\n');
      else refuse(res, 403, 'Forbidden\n');
      return;
    }
    const method = req.method ?? 'GET';
    if (method !== 'GET' && method !== 'HEAD') {
      refuse(res, 405, 'Method Not Allowed\n', { Allow: 'GET, HEAD' });
      return;
    }
    if (url.pathname.endsWith('/events') && method === 'GET') serveEvents(req, res);
    else servePage(res, method, title);
  };
}
