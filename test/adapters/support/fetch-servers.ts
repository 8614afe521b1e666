import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { close, listen } from './inbound-http.js';

/** node:http servers on 127.0.0.1 for the fetch tests, each closed (with its connections) by `closeAll`. */
export function loopbackServers(): {
  serve(handler: (req: IncomingMessage, res: ServerResponse) => void): Promise<string>;
  closeLast(): Promise<void>;
  closeAll(): Promise<void>;
} {
  const servers: Server[] = [];
  return {
    /** Starts a server on a free port; resolves to its base URL. */
    async serve(handler) {
      const server = createServer(handler);
      servers.push(server);
      return `http://127.0.0.1:${await listen(server)}`;
    },
    /** Closes the latest server, so its port refuses connections. */
    closeLast: () => close(servers.pop()!),
    closeAll: async () => {
      await Promise.all(servers.splice(0).map(close));
    },
  };
}
