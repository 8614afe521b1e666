// A TCP proxy on a random loopback port that forwards to a target (a redis-server) and can be
// switched, at any moment, to misbehave: swallow everything, reset connections, or add latency.
// The switch applies to the connections already open as well as to new ones (except
// 'blackhole-existing', which kills only the connections already open).
import net from 'node:net';
import { performance } from 'node:perf_hooks';

/**
 * - `'pass'`: forward bytes both ways (anything still delayed goes first, in order).
 * - `'blackhole'`: keep accepting, swallow the bytes both ways and send nothing — not even a
 *   close when the target goes away — so a client's command hangs until its own timeout.
 * - `'reset'`: reset (RST) every open connection at once and every new one as it arrives.
 * - `{ delayMs }`: forward each chunk `delayMs` after it arrived, both directions, order kept.
 * - `'blackhole-existing'`: a flow silently dropped by a NAT or firewall. The connections open
 *   now swallow every byte both ways, and a close (FIN) from either end, for as long as they
 *   live, whatever the mode later; new connections pass, as a new flow would.
 */
export type ProxyMode = 'pass' | 'blackhole' | 'reset' | 'blackhole-existing' | { delayMs: number };

/** A mode as one connection sees it: a dead connection is a blackhole, a new one passes. */
type LinkMode = Exclude<ProxyMode, 'blackhole-existing'>;

/** A proxy started by {@link startProxy}. */
export interface FaultProxy {
  readonly host: '127.0.0.1';
  readonly port: number;
  /** Switches the mode for open and new connections. */
  mode(mode: ProxyMode): void;
  /** How many client connections are open. */
  connections(): number;
  /** Destroys every connection, clears every timer and stops listening. Idempotent. */
  close(): Promise<void>;
}

/** One direction of one connection: chunks waiting for their time, and the timer for the next. */
class Pipe {
  private queue: { chunk: Buffer; due: number }[] = [];
  private timer: NodeJS.Timeout | undefined;
  private endWhenDrained = false;

  constructor(
    private readonly to: net.Socket,
    private readonly currentMode: () => LinkMode,
  ) {}

  forward(chunk: Buffer): void {
    const mode = this.currentMode();
    if (mode === 'blackhole' || mode === 'reset') return;
    const now = performance.now();
    const last = this.queue.at(-1)?.due ?? 0;
    if (mode === 'pass') {
      if (this.queue.length === 0) this.to.write(chunk);
      else this.queue.push({ chunk, due: Math.max(now, last) });
    } else {
      this.queue.push({ chunk, due: Math.max(now + mode.delayMs, last) });
    }
    this.schedule();
  }

  /** The source closed: end the destination once what is queued has gone (in blackhole, only once the mode changes). */
  sourceClosed(): void {
    this.endWhenDrained = true;
    if (this.currentMode() !== 'blackhole') this.drain();
  }

  /** The mode changed: blackhole and reset drop what is queued, pass sends it now. */
  modeChanged(): void {
    const mode = this.currentMode();
    if (mode === 'blackhole' || mode === 'reset') {
      this.queue = [];
      this.clearTimer();
    } else if (mode === 'pass') {
      const now = performance.now();
      for (const item of this.queue) item.due = Math.min(item.due, now);
      this.clearTimer();
      this.drain();
    }
  }

  dispose(): void {
    this.queue = [];
    this.clearTimer();
  }

  private clearTimer(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
  }

  private schedule(): void {
    const head = this.queue[0];
    if (this.timer || !head) return;
    // Timers may fire a fraction of a millisecond early: round up, and drain() re-checks.
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.drain();
    }, Math.max(0, Math.ceil(head.due - performance.now())));
  }

  private drain(): void {
    const now = performance.now();
    while (this.queue[0] && this.queue[0].due <= now) {
      const item = this.queue.shift()!;
      if (!this.to.destroyed) this.to.write(item.chunk);
    }
    if (this.queue.length > 0) this.schedule();
    else if (this.endWhenDrained && this.currentMode() !== 'blackhole') this.to.destroySoon();
  }
}

/** Starts a {@link FaultProxy} in `'pass'` mode on a random free port of 127.0.0.1, forwarding to `target`. */
export async function startProxy(target: { host: string; port: number }): Promise<FaultProxy> {
  let mode: ProxyMode = 'pass';
  const links = new Set<{ client: net.Socket; upstream: net.Socket; up: Pipe; down: Pipe; dead: boolean }>();

  // Half-open allowed, so that a dead connection can swallow the client's FIN; a live one ends
  // its side in turn, as Node would by itself.
  const server = net.createServer({ allowHalfOpen: true }, (client) => {
    client.on('error', () => {});
    if (mode === 'reset') {
      client.resetAndDestroy();
      return;
    }
    const upstream = net.connect({ host: target.host, port: target.port });
    upstream.on('error', () => {});
    const current = (): LinkMode => (link.dead ? 'blackhole' : mode === 'blackhole-existing' ? 'pass' : mode);
    const link = { client, upstream, up: new Pipe(upstream, current), down: new Pipe(client, current), dead: false };
    links.add(link);
    client.on('end', () => {
      if (!link.dead) client.end();
    });
    client.on('data', (chunk: Buffer) => link.up.forward(chunk));
    upstream.on('data', (chunk: Buffer) => link.down.forward(chunk));
    upstream.on('close', () => link.down.sourceClosed());
    client.on('close', () => {
      links.delete(link);
      link.up.dispose();
      link.down.dispose();
      upstream.destroy();
    });
  });

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen({ host: '127.0.0.1', port: 0 }, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const address = server.address();
  if (typeof address !== 'object' || address === null) throw new Error('the proxy has no address');

  let closing: Promise<void> | undefined;
  return {
    host: '127.0.0.1',
    port: address.port,
    mode(next: ProxyMode): void {
      if (typeof next === 'object' && !(Number.isFinite(next.delayMs) && next.delayMs >= 0)) {
        throw new RangeError(`delayMs must be a finite number ≥ 0, got ${next.delayMs}`);
      }
      mode = next;
      for (const link of [...links]) {
        if (next === 'blackhole-existing') link.dead = true;
        if (next === 'reset') {
          link.up.dispose();
          link.down.dispose();
          link.client.resetAndDestroy();
          link.upstream.destroy();
        } else {
          link.up.modeChanged();
          link.down.modeChanged();
        }
      }
    },
    connections: () => links.size,
    close(): Promise<void> {
      closing ??= new Promise<void>((resolve) => {
        for (const link of links) {
          link.up.dispose();
          link.down.dispose();
          link.client.destroy();
          link.upstream.destroy();
        }
        links.clear();
        server.close(() => resolve());
      });
      return closing;
    },
  };
}
