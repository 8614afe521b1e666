// The breaker around Redis: `openAfterFailures` failures in a row open it, calls already in
// flight when a failure was counted fail with it and do not count again (the link's call
// numbers), and after `openMs` the calls of one tick probe it. The link (link.ts) keeps one for
// the whole client. On a Redis Cluster there is one per master as well, so that a master that
// stops answering sends only its own keys to the fallback while the other masters' keys stay on
// Redis: a batch's node is its slot's master in the client's slot table (ioredis `Cluster.slots`,
// slot → node keys, the master first); a slot with no known master shares one breaker. The
// batcher (batch.ts) asks a node's breaker when it sends a batch and reports the outcome to it.
import { systemClock } from '../../core/clock.js';
import type { RedisClient } from './client.js';

/** A breaker's states. */
const CLOSED = 0;
const OPEN = 1;
const PROBING = 2;

/** The link's settings a node's breaker follows. */
export interface NodeBreakerSettings {
  readonly openMs: number;
  readonly openAfterFailures: number;
}

/**
 * Internal: one breaker around Redis: a Cluster master's (or that of the slots whose master is
 * not known), or the link's own for the whole client (link.ts).
 */
export class NodeBreaker {
  private state = CLOSED;
  private failures = 0;
  /** The link's call number when the latest failure was counted (see `RedisLink.failed`). */
  private countedUpTo = 0;
  private openUntil = 0;
  /** While probing, whether the probe's tick still sends calls. */
  private probeOpen = false;

  constructor(
    /** The master's `host:port`, or '' for slots whose master is not known (and for the link's own). */
    readonly name: string,
    private readonly settings: NodeBreakerSettings,
    /** Where a breaker that starts a probe puts itself, for the batcher to close its tick; none for the link's own. */
    private readonly probing?: NodeBreaker[],
  ) {}

  /** Failed calls counted in a row. */
  get failureCount(): number {
    return this.failures;
  }

  /** Open: the node's calls follow `onStoreError` until `openMs` has passed. */
  get open(): boolean {
    return this.state === OPEN;
  }

  /** Whether a call to this node may go now; the first call after `openMs` starts a probe. */
  admits(): boolean {
    if (this.state === CLOSED) return true;
    if (this.state === OPEN) {
      if (systemClock.now() < this.openUntil) return false;
      this.state = PROBING;
      this.probeOpen = true;
      this.probing?.push(this);
      return true;
    }
    return this.probeOpen;
  }

  /** Ms until the node is tried again (at least 1): for a fail-closed decision's `retryAfterMs`. */
  retryAfterMs(): number {
    return Math.max(1, Math.ceil(this.openUntil - systemClock.now()));
  }

  unavailableReason(): string {
    const node = this.name === '' ? 'a Cluster node not in the slot table' : `Cluster node ${this.name}`;
    if (this.state === PROBING) return `${node}: waiting for the answer to a probe after ${this.failures} failed calls in a row`;
    return `${node}: ${this.failures} failed calls in a row; next try in at most ${this.settings.openMs} ms`;
  }

  succeeded(): void {
    this.failures = 0;
    this.state = CLOSED;
  }

  /**
   * Counts a failed call numbered `seq`; `sentUpTo`: the link's latest call number. False when
   * the call was in flight with a failure already counted (it fails with that one).
   */
  failed(seq: number, sentUpTo: number): boolean {
    if (seq <= this.countedUpTo) return false;
    this.countedUpTo = sentUpTo;
    this.failures++;
    if (this.state === PROBING || this.failures >= this.settings.openAfterFailures) {
      this.state = OPEN;
      this.openUntil = systemClock.now() + this.settings.openMs;
    }
    return true;
  }

  /** A probe ran out of time while this process was busy: the next call probes again. */
  probeAbandoned(): void {
    if (this.state === PROBING) this.openNow();
  }

  /** Open, with the next call probing at once (the link after it dropped a silent connection). */
  openNow(): void {
    this.state = OPEN;
    this.openUntil = systemClock.now();
  }

  /** The probe's tick is over: later calls wait for its verdict. */
  closeProbe(): void {
    this.probeOpen = false;
  }
}

/** Internal: the breakers of a Cluster's masters, by node. */
export class NodeBreakers {
  private readonly nodes = new Map<string, NodeBreaker>();
  /** Breakers that started a probe since the batcher last closed them. */
  readonly probing: NodeBreaker[] = [];

  constructor(
    private readonly client: RedisClient,
    readonly settings: NodeBreakerSettings,
  ) {}

  /** The breaker of the master serving `slot` (the shared one when the slot table does not say). */
  forSlot(slot: number): NodeBreaker {
    const name = this.client.slots?.[slot]?.[0] ?? '';
    let node = this.nodes.get(name);
    if (node === undefined) {
      // A new master (a failover, a node added): the breakers of nodes that serve no slot any
      // more are dropped, so a dead master's open breaker does not stay for ever.
      this.prune();
      node = new NodeBreaker(name, this.settings, this.probing);
      this.nodes.set(name, node);
    }
    return node;
  }

  /** Ends the tick of every probe started since the last call. */
  closeProbes(): void {
    for (const node of this.probing) node.closeProbe();
    this.probing.length = 0;
  }

  /** Whether the breaker of a node that still serves slots is open (a master that left the slot table no longer counts). */
  anyOpen(): boolean {
    let open = false;
    for (const node of this.nodes.values()) open ||= node.open;
    if (!open) return false;
    this.prune();
    for (const node of this.nodes.values()) if (node.open) return true;
    return false;
  }

  /** Drops the breakers of nodes no slot names as its master (the shared one stays). */
  private prune(): void {
    const slots = this.client.slots;
    if (slots === undefined || this.nodes.size === 0) return;
    const masters = new Set<string>();
    for (const entry of slots) if (entry?.[0] !== undefined) masters.add(entry[0]);
    if (masters.size === 0) return;
    for (const name of this.nodes.keys()) if (name !== '' && !masters.has(name)) this.nodes.delete(name);
  }
}
