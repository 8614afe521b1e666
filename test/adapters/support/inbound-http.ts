// Small helpers for the inbound adapter tests: one-shot HTTP requests on loopback (no keep-alive,
// so nothing lingers after a test), and servers that close every connection when stopped.
import { request as httpRequest, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

/** What the tests use of a Fastify 4 or 5 instance. */
export interface FastifyAppLike {
  register(plugin: unknown, options?: unknown): PromiseLike<unknown>;
  get(path: string, ...rest: unknown[]): unknown;
  listen(options: { port: number; host: string }): Promise<string>;
  close(): Promise<unknown>;
  server: { address(): unknown };
}

export interface Answer {
  readonly status: number;
  readonly headers: IncomingHttpHeaders;
  readonly body: string;
}

/** GET (or `method`) `path` on 127.0.0.1:`port`, on a fresh connection. */
export function send(
  port: number,
  path: string,
  options: { readonly method?: string; readonly headers?: Record<string, string> } = {},
): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(
      { host: '127.0.0.1', port, path, method: options.method ?? 'GET', headers: { connection: 'close', ...options.headers }, agent: false },
      (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => (body += chunk));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end();
  });
}

/**
 * Sends a request and destroys the connection before any answer, then waits `afterMs` so the
 * server gets to handle it.
 */
export function abortRequest(port: number, path: string, afterMs = 5): Promise<void> {
  return new Promise((resolve) => {
    const req = httpRequest({ host: '127.0.0.1', port, path, agent: false });
    req.on('error', () => {});
    req.end(() => {
      setTimeout(() => {
        req.destroy();
        resolve();
      }, afterMs);
    });
  });
}

/** Listens on 127.0.0.1, port 0; returns the port. */
export function listen(server: Server): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve((server.address() as AddressInfo).port));
  });
}

/** Closes the server (if it still listens) and every connection it still holds. */
export function close(server: Server): Promise<void> {
  return new Promise((resolve) => {
    if (!server.listening) return resolve();
    server.close(() => resolve());
    server.closeAllConnections();
  });
}

/** Waits `ms` (a timer that is gone when the promise settles). */
export function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
