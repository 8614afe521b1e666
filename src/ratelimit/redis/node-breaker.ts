// On a Redis Cluster, one breaker per master, so that a master that stops answering sends only
// its own keys to the fallback while the other masters' keys stay on Redis. Each breaker follows
// the link's rules (link.ts): `openAfterFailures` failures in a row open it, calls already in
// flight when a failure was counted fail with it and do not count again (the link's call numbers),
// and after `openMs` the calls of one tick probe it. A batch's node is its slot's master in the
// client's slot table (ioredis `Cluster.slots`, slot → node keys, the master first); a slot with
// no known master shares one breaker. The batcher (batch.ts) asks a node's breaker when it sends a
// batch and reports the outcome to it; on a single node none of this exists.
import { systemClock } from '../../core/clock.js';
import type { RedisClient } from './client.js';

/** A breaker's states (the link's own breaker uses them too). */
export const CLOSED = 0;
export const OPEN = 1;
export const PROBING = 2;

/** The link's settings a node's breaker follows. */
export interface NodeBreakerSettings {
  readonly openMs: number;
  readonly openAfterFailures: number;
}

/** Internal: the breaker of one Cluster master (or of the slots whose master is not known). */
export class NodeBreaker {
  private state = CLOSED;
  private failures = 0;
  /** The link's call number when the latest failure was counted (see `RedisLink.failed`). */
  private countedUpTo = 0;
  private openUntil = 0;
  /** While probing, whether the probe's tick still sends calls. */
  private probeOpen = false;

  constructor(
    /** The master's `host:port`, or '' for slots whose master is not known. */
    readonly name: string,
    private readonly group: NodeBreakers,
  ) {}

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
      this.group.probing.push(this);
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
    return `${node}: ${this.failures} failed calls in a row; next try in at most ${this.group.settings.openMs} ms`;
  }

  succeeded(): void {
    this.failures = 0;
    this.state = CLOSED;
  }

  /** Counts a failed call numbered `seq`; `sentUpTo`: the link's latest call number. */
  failed(seq: number, sentUpTo: number): void {
    if (seq <= this.countedUpTo) return;
    this.countedUpTo = sentUpTo;
    this.failures++;
    if (this.state === PROBING || this.failures >= this.group.settings.openAfterFailures) {
      this.state = OPEN;
      this.openUntil = systemClock.now() + this.group.settings.openMs;
    }
  }

  /** A probe ran out of time while this process was busy: the next call probes again. */
  probeAbandoned(): void {
    if (this.state !== PROBING) return;
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
      node = new NodeBreaker(name, this);
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
