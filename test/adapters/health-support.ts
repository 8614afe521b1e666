// Helpers for the health adapter tests (not a test file itself).
import { request, type Agent } from 'node:http';

export interface Answer {
  readonly status: number;
  readonly headers: Record<string, string | string[] | undefined>;
  readonly body: string;
}

/** One request over a fresh connection (or the given agent), read to the end. */
export function get(port: number, path: string, { method = 'GET', agent }: { method?: string; agent?: Agent } = {}): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, method, agent: agent ?? false }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (body += chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end();
  });
}

export { close, listen } from './support/inbound-http.js';

/** Busy-waits, blocking the event loop. */
export function blockLoop(ms: number): void {
  const end = performance.now() + ms;
  while (performance.now() < end) {
    // blocked
  }
}

/** A check error that carries what must never reach a probe body. */
export function secretError(): Error {
  const err = new Error('password authentication failed for user "app" (password=hunter2) at 10.20.30.40:5432');
  return Object.assign(err, { address: '10.20.30.40', port: 5432, code: 'ECONNREFUSED' });
}

/** Fragments of {@link secretError} a body must not contain. */
export const secretFragments = ['hunter2', 'password', '10.20.30.40', '5432', 'ECONNREFUSED', 'at ', 'Error'];
