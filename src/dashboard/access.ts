// Who may see the dashboard: loopback clients (unless turned off) and requests carrying the
// configured token, as `Authorization: Bearer <token>` or `?token=<token>`.
import { createHash, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage } from 'node:http';

/** Whether the socket's peer is this host (127.0.0.0/8, ::1, or either mapped into IPv6). */
export function isLoopback(address: string | undefined): boolean {
  if (address === undefined) return false;
  const v4 = address.startsWith('::ffff:') ? address.slice(7) : address;
  return v4.startsWith('127.') || address === '::1';
}

const digest = (value: string): Buffer => createHash('sha256').update(value).digest();

/** The token a request carries, from its `Authorization: Bearer` header or its `token` query parameter. */
function tokenOf(req: IncomingMessage, url: URL): string | undefined {
  const header = req.headers.authorization;
  if (typeof header === 'string' && /^bearer /i.test(header)) return header.slice(7).trim();
  return url.searchParams.get('token') ?? undefined;
}

/** A check of requests against the token (compared in constant time) and the loopback rule. */
export function accessCheck(token: string | undefined, loopback: boolean): (req: IncomingMessage, url: URL) => boolean {
  const expected = token === undefined ? undefined : digest(token);
  return (req, url) => {
    if (loopback && isLoopback(req.socket.remoteAddress)) return true;
    if (expected === undefined) return false;
    const given = tokenOf(req, url);
    return given !== undefined && timingSafeEqual(digest(given), expected);
  };
}
