// A loopback upstream that enforces a GCRA limit per key (the `x-api-key` header, else one key)
// with bulwark's own limiter and header writer, as a server using bulwark/express would: 429 with
// `Retry-After` and the draft-11 fields. `bare` answers 429 with no header at all (for AIMD).
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { clientAddressResolver } from '../../src/http/client-address.js';
import { applyOutcome, decideRequest, type HeaderAccess, RateLimitRule } from '../../src/http/rate-limit-rule.js';
import { gcra, memoryStore, rateLimiter } from '../../src/index.js';

export interface LimitedUpstream {
  readonly url: string;
  /** Arrival time (performance.now()) and status of every request, in order. */
  readonly log: { at: number; status: number; key: string }[];
  close(): Promise<void>;
}

export interface UpstreamOptions {
  readonly limit: number;
  readonly periodMs?: number;
  readonly burst?: number;
  readonly headers?: 'draft' | 'draft+legacy' | 'bare';
}

const access: HeaderAccess<ServerResponse> = {
  get: (res, name) => res.getHeader(name),
  set: (res, name, value) => void res.setHeader(name, value),
};

export async function limitedUpstream(options: UpstreamOptions): Promise<LimitedUpstream> {
  const limiter = rateLimiter({
    name: 'per-key',
    algorithm: gcra({ limit: options.limit, periodMs: options.periodMs ?? 1_000, burst: options.burst ?? options.limit }),
    store: memoryStore(),
  });
  const bare = options.headers === 'bare';
  const headers = bare ? 'none' : (options.headers ?? 'draft');
  const keyOf = (req: IncomingMessage): string => String(req.headers['x-api-key'] ?? 'all');
  const rule = new RateLimitRule('upstream', limiter, { key: keyOf }, { headers, clientOf: clientAddressResolver() });
  const log: LimitedUpstream['log'] = [];
  const server: Server = createServer((req, res) => {
    const at = performance.now();
    void decideRequest(rule, req, req).then((outcome) => {
      const problem = bare ? undefined : applyOutcome(rule, outcome, req, res, access);
      const denied = bare ? outcome !== undefined && !(outcome as { allowed: boolean }).allowed : problem !== undefined;
      const status = denied ? 429 : 200;
      log.push({ at, status, key: keyOf(req) });
      res.writeHead(status).end(denied ? 'slow down' : 'ok');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    log,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
