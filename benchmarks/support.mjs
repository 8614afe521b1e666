// Helpers shared by the benchmark scripts (not a benchmark itself).
import { accessSync, constants } from 'node:fs';
import net from 'node:net';
import path from 'node:path';

/** The executable `name` on PATH, or undefined. */
export function onPath(name) {
  for (const dir of (process.env.PATH ?? '').split(path.delimiter)) {
    if (!dir) continue;
    const file = path.join(dir, name);
    try {
      accessSync(file, constants.X_OK);
      return file;
    } catch {
      // not here
    }
  }
  return undefined;
}

/** A TCP port free on `host` right now (the system picks it). */
export function freePort(host = '127.0.0.1') {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen({ host, port: 0, exclusive: true }, () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

/** Sends one command on a fresh connection to `host:port` and returns the raw RESP reply (PING and INFO only). */
export function redisCommand(port, argv, timeoutMs = 2_000, host = '127.0.0.1') {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host, port });
    let reply = '';
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`redis ${argv[0]}: no reply within ${timeoutMs} ms`));
    }, timeoutMs);
    socket.on('connect', () => socket.write(`*${argv.length}\r\n${argv.map((a) => `$${Buffer.byteLength(a)}\r\n${a}\r\n`).join('')}`));
    socket.on('data', (chunk) => {
      reply += chunk;
      if (complete(reply)) {
        clearTimeout(timer);
        socket.destroy();
        resolve(reply);
      }
    });
    socket.on('error', (error) => {
      clearTimeout(timer);
      reject(error);
    });
  });
  // Enough of RESP for PING (simple string) and INFO (bulk string).
  function complete(s) {
    if (s[0] === '+' || s[0] === '-') return s.includes('\r\n');
    if (s[0] !== '$') return false;
    const eol = s.indexOf('\r\n');
    return eol >= 0 && Buffer.byteLength(s) >= eol + 2 + Number(s.slice(1, eol)) + 2;
  }
}

/**
 * cockatiel's counterpart of createFetch's defaults, for the fetch benchmarks: retry (2 attempts),
 * a consecutive(5) breaker and an aggressive 10 s timeout, all counting errors and 5xx answers.
 */
export async function cockatielFetchPolicy() {
  const c = await import('cockatiel');
  const failed = c.handleAll.orWhenResult((res) => res.status >= 500);
  return c.wrap(
    c.retry(failed, { maxAttempts: 2, backoff: new c.ExponentialBackoff() }),
    c.circuitBreaker(failed, { halfOpenAfter: 10_000, breaker: new c.ConsecutiveBreaker(5) }),
    c.timeout(10_000, c.TimeoutStrategy.Aggressive),
  );
}
