// The store's view of its connection to Redis: whether a call may go now (a breaker that opens
// after failures in a row, one stall counting once, and probes when it is time), when to force a
// reconnect (calls time out while the client claims to be connected), and whether the server
// behind it changed (a restart that lost every counter). The store (redis-store.ts) and its
// batcher (batch.ts) ask this object before and after every call; they never read the state
// below directly. On a Cluster the breaker is per master (node-breaker.ts): a call to a node
// reports to that node's breaker, and the link's own answers only for the whole client. The
// server check also looks, every `stateCheckMs` at most, for the store's marker keys (marker.ts):
// a FLUSHALL leaves the run_id as it was.
import diagnosticsChannel from 'node:diagnostics_channel';
import { systemClock } from '../../core/clock.js';
import { channelNames } from '../../core/diagnostics.js';
import { StoreUnavailableError } from '../../core/errors.js';
import { StateMarkers } from './marker.js';
import { NodeBreaker, NodeBreakers } from './node-breaker.js';
import type { RedisClient } from './client.js';
import type { StateLostReason, StoreErrorMessage } from './types.js';

/**
 * Longest `retryAfterMs` a fail-closed decision suggests: an outage denial is a hint to try again
 * soon, never a quota period's reset.
 */
export const MAX_OUTAGE_RETRY_MS = 5_000;

/**
 * How long a new connection may wait, with not one byte read, for the answer to its ready check
 * before the store closes it and lets the client connect again. A proxy or load balancer that
 * accepts connections while its path to Redis is dead swallows that check, and ioredis waits for
 * it for ever (only `socketTimeout` would end it). A Redis busy loading its data answers (with
 * `loading:1`), so it is not cut off.
 */
export const HANDSHAKE_WATCH_MS = 2_000;

const storeErrorChannel = diagnosticsChannel.channel(channelNames.storeError);

/** The store's settings the link follows (see `RedisStoreOptions`). */
export interface LinkSettings {
  readonly timeoutMs: number;
  readonly openMs: number;
  readonly openAfterFailures: number;
  readonly reconnectAfterTimeouts: number;
  readonly cluster: boolean;
  readonly prefix: string;
  readonly stateCheckMs: number;
}

/** Internal: the breaker, reconnect and server-change bookkeeping of one `RedisStore`. */
export class RedisLink {
  /** The breaker around the whole client (on a Cluster, the masters' own count instead: `nodes`). */
  private readonly breaker: NodeBreaker;
  /** Calls sent to Redis so far (batches and deletes), numbering them. */
  private sentSeq = 0;
  /** Counted failures in a row that were timeouts while the client said `'ready'`. */
  private silentTimeouts = 0;
  /** The client may have reconnected since the server's `run_id` was last read. */
  private mayHaveReconnected = true;
  /** The client's socket when the server's `run_id` was last asked for. */
  private stream: unknown;
  /**
   * Until when (ms, system clock) the store waits for a connection it dropped to close, sending
   * nothing meanwhile; 0 when it is not waiting.
   */
  private reconnectingUntil = 0;
  /** The client's socket when the store dropped it: a different one that is ready is a new connection. */
  private droppedStream: unknown;
  /** The socket of a connection seen waiting for its ready check, and since when (ms, system clock). */
  private handshakeStream: unknown;
  private handshakeSince = 0;
  /** The server's `run_id`, once read. */
  private runId: string | undefined;
  private readonly markers: StateMarkers;
  /** When (ms, system clock) the marker keys are next checked. */
  private markersDueAt = 0;
  /** On a Cluster: the breaker of each master, for the calls the batcher sends to one node. */
  readonly nodes: NodeBreakers | undefined;

  constructor(
    private readonly client: RedisClient,
    private readonly settings: LinkSettings,
  ) {
    this.breaker = new NodeBreaker('', settings);
    this.markers = new StateMarkers(client, settings.prefix);
    this.nodes = settings.cluster ? new NodeBreakers(client, settings) : undefined;
  }

  /** The client is connected and no breaker is open (on a Cluster, not even one master's). */
  get healthy(): boolean {
    return this.reachable && (this.nodes === undefined || !this.nodes.anyOpen());
  }

  /** The client is connected and the link's own breaker is not open (a Cluster master's may be). */
  get reachable(): boolean {
    return this.client.status === 'ready' && !this.breaker.open;
  }

  /** The number of the next call sent to Redis. */
  nextSeq(): number {
    return ++this.sentSeq;
  }

  /** A reply arrived, even a late one: the connection carries bytes, its timeouts were not silent. */
  replied(): void {
    this.silentTimeouts = 0;
  }

  /** The connection dropped (or may have): the server is checked again on the next call. */
  lostConnection(): void {
    this.mayHaveReconnected = true;
  }

  /** The batches of this tick are sent: while probing, later decisions wait for the probe's verdict. */
  closeProbe(): void {
    this.breaker.closeProbe();
  }

  /**
   * A probe ran out of time while this process was busy: it has no verdict, so the next call
   * probes again, rather than the store staying half-open with no probe in flight.
   */
  probeAbandoned(node?: NodeBreaker): void {
    (node ?? this.breaker).probeAbandoned();
  }

  /**
   * Before a call goes out: a reconnect may happen while no decision is made (a quick restart),
   * and a new socket tells. One comparison per call to Redis, not per decision; and, at most
   * once per `stateCheckMs`, the marker check.
   */
  beforeSend(): void {
    const stream = this.client.stream;
    if (this.mayHaveReconnected || stream !== this.stream) {
      this.stream = stream;
      this.checkServer();
    } else if (systemClock.now() >= this.markersDueAt) {
      this.checkMarkers(false);
    }
  }

  /** Whether a new operation may go to Redis now. */
  admitsCalls(): boolean {
    if (this.client.status !== 'ready') {
      this.mayHaveReconnected = true;
      this.reconnectingUntil = 0;
      if (this.client.status === 'connect') this.watchHandshake();
      return false;
    }
    // After a forced reconnect, ioredis still says 'ready' until the dead socket is closed
    // (`disconnectTimeout`): calls sent meanwhile would only time out and push the probe later.
    // A new socket means the reconnect is done, even when no decision saw the client leave
    // 'ready' (it can close and reconnect between two decisions under light traffic).
    if (this.reconnectingUntil !== 0) {
      if (systemClock.now() < this.reconnectingUntil && (this.client.stream === this.droppedStream || this.droppedStream === undefined)) return false;
      this.reconnectingUntil = 0;
    }
    return this.breaker.admits();
  }

  unavailableReason(): string {
    if (this.client.status !== 'ready') return `client status is "${this.client.status}"`;
    if (this.reconnectingUntil !== 0) return 'reconnecting after calls timed out on a connection that looked ready';
    return `${this.breaker.failureCount} failed calls in a row; next try in at most ${this.settings.openMs} ms`;
  }

  /**
   * When a denied caller may try again: when the store next tries Redis (the breaker is open),
   * the reconnect horizon (the client is down), or the timeout (Redis was slow); at most
   * {@link MAX_OUTAGE_RETRY_MS}. `node`: the Cluster master the decision was for.
   */
  outageRetryAfterMs(node?: NodeBreaker): number {
    let ms: number;
    if (this.reconnectingUntil !== 0) ms = this.settings.openMs;
    else if (this.breaker.open) ms = this.breaker.retryAfterMs();
    else if (node?.open === true) ms = node.retryAfterMs();
    else if (this.client.status !== 'ready') ms = this.settings.openMs;
    else ms = Math.ceil(this.settings.timeoutMs);
    return Math.min(MAX_OUTAGE_RETRY_MS, Math.max(1, ms));
  }

  /** A call answered in time (`node`: the Cluster master it went to). */
  succeeded(node?: NodeBreaker): void {
    if (node !== undefined) {
      node.succeeded();
      return;
    }
    this.silentTimeouts = 0;
    this.breaker.succeeded();
  }

  /**
   * Counts a failed call sent as number `seq`. Calls that were already in flight when the latest
   * failure was counted fail with it (one stall times out every batch in flight at once): they do
   * not count again, so a stall shorter than `openAfterFailures` timeouts never opens the breaker.
   * `node`: the Cluster master the call went to, whose breaker alone counts it (a Cluster is never
   * reconnected by the store).
   */
  failed(seq: number, timedOut: boolean, node?: NodeBreaker): void {
    if (node !== undefined) {
      node.failed(seq, this.sentSeq);
      return;
    }
    if (!this.breaker.failed(seq, this.sentSeq)) return;
    if (!timedOut || this.client.status !== 'ready') {
      this.silentTimeouts = 0;
    } else if (++this.silentTimeouts >= this.settings.reconnectAfterTimeouts) {
      this.reconnect();
    }
  }

  /**
   * Drops the connection and lets the client reconnect: calls keep timing out while the client
   * says it is connected, as when a NAT or firewall dropped the flow without a reset (the kernel
   * would notice only after about 15 minutes of retransmissions).
   */
  private reconnect(): void {
    const count = this.silentTimeouts;
    this.silentTimeouts = 0;
    // A Cluster's disconnect(true) drops every node and reloads the slots: too much for one
    // silent node. Its per-node connections rely on keepAlive and socketTimeout (see docs/redis.md, "Client setup").
    if (this.settings.cluster || typeof this.client.disconnect !== 'function') return;
    this.mayHaveReconnected = true;
    // Nothing is sent until the client has left 'ready' (bounded, in case it never does), and
    // the first call once it is ready again probes at once.
    this.reconnectingUntil = systemClock.now() + MAX_OUTAGE_RETRY_MS;
    this.droppedStream = this.client.stream;
    this.breaker.openNow();
    let error: unknown = new StoreUnavailableError('redis', `${count} calls in a row timed out while the client was ready: reconnecting`);
    // ioredis ends the socket and destroys it only after `disconnectTimeout` (2 s by default) if
    // the far end never closes, which a dropped flow never does. Nothing has come back on it for
    // `count` calls: destroying it at once lets the client reconnect now, not 2 s later. A new
    // connection that lands in an outage still under way and never gets past its ready check is
    // closed in turn (watchHandshake).
    const stream = this.client.stream as { destroy?: () => void } | null | undefined;
    try {
      this.client.disconnect(true);
      if (typeof stream?.destroy === 'function') stream.destroy();
    } catch (thrown) {
      error = new StoreUnavailableError('redis', `reconnecting after ${count} silent timeouts failed: ${errorText(thrown)}`, { cause: thrown });
    }
    this.publishEvent('reconnect', error);
  }

  /**
   * A connection the client opened but that never got an answer to its ready check (status
   * `'connect'`, no byte read) for {@link HANDSHAKE_WATCH_MS}: closed, so that the client connects
   * again (its retry strategy decides when) instead of waiting on it for ever. Seen from the
   * decisions that find the client not ready; a Cluster's node connections are its own business.
   */
  private watchHandshake(): void {
    if (this.settings.cluster) return;
    const stream = this.client.stream as { readonly bytesRead?: number; destroy?: () => void } | undefined;
    if (stream === undefined) return;
    const now = systemClock.now();
    if (stream !== this.handshakeStream) {
      this.handshakeStream = stream;
      this.handshakeSince = now;
      return;
    }
    if (now - this.handshakeSince < HANDSHAKE_WATCH_MS || stream.bytesRead !== 0) return;
    this.handshakeStream = undefined;
    let error: unknown = new StoreUnavailableError(
      'redis',
      `a new connection got no answer to its ready check within ${HANDSHAKE_WATCH_MS} ms (a proxy whose path to Redis is down?): reconnecting`,
    );
    try {
      // Nothing was sent on it but the client's own handshake: closing it at once loses nothing.
      if (typeof stream.destroy === 'function') stream.destroy();
      else this.client.disconnect?.(true);
    } catch (thrown) {
      error = new StoreUnavailableError('redis', `closing a connection stuck before its ready check failed: ${errorText(thrown)}`, { cause: thrown });
    }
    this.publishEvent('reconnect', error);
  }

  /**
   * Reads the server's `run_id` (once after each possible reconnect, never per decision) and
   * reports a change: a restarted server without persistence has lost every counter, and would
   * hand every quota out again. A failover to a replica changes it too (state not yet
   * replicated is lost). A Cluster's INFO answers for one node only: not checked. Then the
   * marker keys are checked, and a loss the new `run_id` already reported is not reported again.
   */
  private checkServer(): void {
    this.mayHaveReconnected = false;
    // No marker check of its own while this one is on its way.
    this.markersDueAt = systemClock.now() + this.settings.stateCheckMs;
    if (this.settings.cluster || typeof this.client.info !== 'function') {
      this.checkMarkers(false);
      return;
    }
    let reply: Promise<string>;
    try {
      reply = this.client.info('server');
    } catch {
      this.checkMarkers(false);
      return;
    }
    Promise.resolve(reply).then(
      (text) => {
        const runId = /(?:^|\n)run_id:([0-9a-f]+)/.exec(String(text))?.[1];
        const previous = this.runId;
        if (runId !== undefined) this.runId = runId;
        const changed = runId !== undefined && previous !== undefined && previous !== runId;
        if (changed) {
          this.publishEvent(
            'state-lost',
            new StoreUnavailableError(
              'redis',
              `the Redis server changed (run_id ${previous} → ${runId}): a restart without persistence, or a failover, may have reset every limit and quota`,
            ),
            'server-changed',
          );
        }
        this.checkMarkers(changed);
      },
      // Refused (an ACL without INFO) or cut off: asked again on the next connection only, never
      // once per call. The markers still tell a server that came back empty.
      () => this.checkMarkers(false),
    );
  }

  /**
   * Looks for the store's marker keys (at most once per `stateCheckMs`, on a call the store
   * makes anyway, never per decision) and reports one that vanished while the server stayed the
   * same. `baseline`: a loss was just reported another way.
   */
  private checkMarkers(baseline: boolean): void {
    this.markersDueAt = systemClock.now() + this.settings.stateCheckMs;
    this.markers.check(baseline).then(({ lost, checked }) => {
      if (lost === 0) return;
      const where = this.settings.cluster ? ` on ${lost} of ${checked} Cluster masters` : '';
      this.publishEvent(
        'state-lost',
        new StoreUnavailableError(
          'redis',
          `the store's marker key was gone${where}, with no new server seen: a FLUSHALL or FLUSHDB, an eviction, or a server that came back empty may have reset every limit and quota`,
        ),
        'keys-lost',
      );
    }, ignore);
  }

  private publishEvent(kind: 'reconnect' | 'state-lost', error: unknown, reason?: StateLostReason): void {
    if (!storeErrorChannel.hasSubscribers) return;
    const message: StoreErrorMessage =
      reason === undefined
        ? { store: 'redis', kind, error, fallback: kind, operations: 0 }
        : { store: 'redis', kind, error, fallback: kind, operations: 0, reason };
    storeErrorChannel.publish(message);
  }
}

/** Does nothing: for promises whose failure is already accounted for. */
export function ignore(): void {}

/** An error's message, or the value as text. */
export function errorText(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
