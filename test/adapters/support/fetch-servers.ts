import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { close, listen } from './inbound-http.js';

/** node:http servers on 127.0.0.1 for the fetch tests, each closed (with its connections) by `closeAll`. */
export function loopbackServers(): {
  serve(handler: (req: IncomingMessage, res: ServerResponse) => void): Promise<string>;
  serveCounting(handler: (req: IncomingMessage, res: ServerResponse) => void): Promise<CountingServer>;
  closeLast(): Promise<void>;
  closeAll(): Promise<void>;
} {
  const servers: Server[] = [];
  const start = async (handler: (req: IncomingMessage, res: ServerResponse) => void): Promise<[Server, string]> => {
    const server = createServer(handler);
    servers.push(server);
    return [server, `http://127.0.0.1:${await listen(server)}`];
  };
  return {
    /** Starts a server on a free port; resolves to its base URL. */
    serve: async (handler) => (await start(handler))[1],
    /** Starts a server that counts the sockets it holds open (see {@link CountingServer}). */
    async serveCounting(handler) {
      const [server, url] = await start(handler);
      const sockets = new Set<Socket>();
      const carried = new WeakSet<Socket>();
      const busy = new Set<Socket>();
      server.on('connection', (socket: Socket) => {
        sockets.add(socket);
        socket.once('close', () => {
          sockets.delete(socket);
          busy.delete(socket);
        });
      });
      server.on('request', (req: IncomingMessage, res: ServerResponse) => {
        const socket = req.socket;
        carried.add(socket);
        if (socket.destroyed) return;
        busy.add(socket);
        res.once('finish', () => busy.delete(socket));
      });
      return {
        url,
        open: () => sockets.size,
        carrying: () => [...sockets].filter((s) => carried.has(s)).length,
        busy: () => busy.size,
      };
    },
    /** Closes the latest server, so its port refuses connections. */
    closeLast: () => close(servers.pop()!),
    closeAll: async () => {
      await Promise.all(servers.splice(0).map(close));
    },
  };
}

/** A server that counts its open sockets: `connection` events in, socket `close` events out. */
export interface CountingServer {
  readonly url: string;
  /** Sockets open now, whether or not they carried a request. */
  open(): number;
  /**
   * Of those, the ones that carried a request. undici may open a spare connection after an abort
   * that carries nothing and idles out after the server's keep-alive timeout: open, not carrying.
   */
  carrying(): number;
  /**
   * Of those, the ones whose response is not fully handed to the kernel yet: held by a client
   * that neither reads nor cancels the body (or by a handler that never answers).
   */
  busy(): number;
}
