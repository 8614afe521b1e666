// A circuit breaker store shared by every process on one Redis (issue 16 §4). Each breaker keeps
// deciding locally on every call; its closed-state outcomes are summed here and sent in one
// script call per breaker every `maxStalenessMs / 4` (sooner when the breaker's own strategy says
// "open"), and the reply — the fleet's state by the server clock — is pushed back into the
// breaker. Half-open probe slots are claimed in the script, so exactly `halfOpenMaxCalls` probes
// run fleet-wide per half-open window. No user call waits on Redis except a half-open call asking
// for a probe slot, and that waits at most `timeoutMs`. The connection's health (a breaker around
// Redis, forced reconnects, a server that changed) is the rate-limit store's RedisLink (link.ts).
import { randomUUID } from 'node:crypto';
import type { BreakerPeer, BreakerStore, FleetState, SharedBreaker } from '../../circuit/store.js';
import { systemClock } from '../../core/clock.js';
import { checkOptions, countOption, durationOption, show } from '../../core/validate.js';
import { type RedisClient, registerScripts, type ScriptCommand } from './client.js';
import { ignore, RedisLink } from './link.js';
import breakerLua from './lua/breaker.lua';
import type { NodeBreaker } from './node-breaker.js';
import { hashSlot, redisKeyOf } from './slot.js';
import type { RedisClientLike } from './types.js';

/** The script's command name; the digit changes whenever its arguments, reply or stored fields do. */
const COMMAND = 'bulwarkBreaker1';

const OP_SYNC = 1;
const OP_CLAIM = 2;
const OP_PROBE_OK = 3;
const OP_PROBE_FAILED = 4;
const OP_PROBE_RELEASED = 5;

/** Most undelivered probe outcomes kept per breaker (a process runs at most halfOpenMaxCalls per window). */
const MAX_UNSENT = 16;

const states: readonly FleetState['state'][] = ['closed', 'open', 'half-open'];
const ruleCodes = { consecutive: 1, 'count-window': 2, 'time-window': 3 } as const;

/** Options of {@link redisBreakerStore}. */
export interface RedisBreakerStoreOptions {
  /** Put before every key; must not contain `{` or `}`. @default 'bulwark:' */
  readonly prefix?: string;
  /** Longest a call to Redis may take before the breakers decide alone, in ms. @default 100 */
  readonly timeoutMs?: number;
  /**
   * Oldest fleet state a breaker acts on, in ms: outcomes are sent, and the state read back, every
   * quarter of it; a breaker that has not heard from Redis for this long decides alone.
   * @default 1000
   */
  readonly maxStalenessMs?: number;
  /**
   * Quorum mode: the fleet's breaker opens when at least this many instances' own strategies say
   * "open" (within `quorumTtlMs`), instead of on the fleet's summed outcomes. One bad instance
   * then does not open everybody's breaker. @default 0 (off: summed outcomes)
   */
  readonly quorum?: number;
  /** How long an instance's "open" verdict counts towards the quorum unless repeated, in ms. @default 10000 */
  readonly quorumTtlMs?: number;
  /** Failed calls to Redis in a row after which the store leaves Redis alone for `openMs`. @default 3 */
  readonly openAfterFailures?: number;
  /** How long the store leaves Redis alone after `openAfterFailures` failures, in ms. @default 1000 */
  readonly openMs?: number;
}

const optionKeys = ['prefix', 'timeoutMs', 'maxStalenessMs', 'quorum', 'quorumTtlMs', 'openAfterFailures', 'openMs'] as const;

interface Settings {
  readonly timeoutMs: number;
  readonly maxStalenessMs: number;
  readonly quorum: number;
  readonly quorumTtlMs: number;
}

/**
 * A breaker store in Redis (single node, Sentinel or Cluster, through ioredis 5 or 6); built by
 * {@link redisBreakerStore}. Breakers sharing a Redis share their state by `name`.
 */
export class RedisBreakerStore implements BreakerStore {
  readonly kind = 'redis';
  readonly prefix: string;
  private readonly client: RedisClient;
  private readonly link: RedisLink;
  private readonly settings: Settings;
  private readonly handles = new Set<FleetHandle>();
  private timer: NodeJS.Timeout | undefined;
  private closed = false;
  /** On a Cluster, the slot of each breaker name's keys (one entry per name connected). */
  private readonly slots = new Map<string, number>();

  constructor(client: RedisClientLike, options?: RedisBreakerStoreOptions) {
    if (typeof client !== 'object' || client === null || typeof client.defineCommand !== 'function') {
      throw new TypeError(`redisBreakerStore: client must be an ioredis Redis or Cluster instance, got ${show(client)}`);
    }
    const o = checkOptions('redisBreakerStore', options, optionKeys);
    const prefix = o.prefix ?? 'bulwark:';
    if (typeof prefix !== 'string' || /[{}]/.test(prefix) || prefix.length > 128) {
      throw new TypeError(`redisBreakerStore: option "prefix" must be a string of at most 128 characters without "{" or "}", got ${show(prefix)}`);
    }
    this.prefix = prefix;
    const timeoutMs = durationOption('redisBreakerStore', 'timeoutMs', o.timeoutMs, 100, { min: 1 });
    const maxStalenessMs = durationOption('redisBreakerStore', 'maxStalenessMs', o.maxStalenessMs, 1_000, { min: 4 });
    if (maxStalenessMs < timeoutMs) {
      throw new RangeError(`redisBreakerStore: option "maxStalenessMs" must be at least "timeoutMs" (${timeoutMs} ms), got ${show(maxStalenessMs)}`);
    }
    this.settings = {
      timeoutMs,
      maxStalenessMs,
      quorum: o.quorum === undefined ? 0 : countOption('redisBreakerStore', 'quorum', o.quorum, 0, { max: 100_000 }),
      quorumTtlMs: durationOption('redisBreakerStore', 'quorumTtlMs', o.quorumTtlMs, 10_000, { min: 1 }),
    };
    this.client = client;
    this.link = new RedisLink(client, {
      timeoutMs,
      openMs: durationOption('redisBreakerStore', 'openMs', o.openMs, 1_000, { min: 1 }),
      openAfterFailures: countOption('redisBreakerStore', 'openAfterFailures', o.openAfterFailures, 3, { max: 1_000_000 }),
      reconnectAfterTimeouts: 3,
      cluster: client.isCluster === true,
      prefix,
      stateCheckMs: 5_000,
    });
    registerScripts(this.client);
    if (typeof (this.client as { [COMMAND]?: unknown })[COMMAND] !== 'function') this.client.defineCommand(COMMAND, { lua: breakerLua });
  }

  /**
   * `'ready'` while the breakers follow the fleet; `'degraded'` while they decide alone (on a
   * Cluster, while those of one master or more do).
   */
  get status(): 'ready' | 'degraded' {
    return this.link.healthy ? 'ready' : 'degraded';
  }

  /** @internal Whether Redis is reachable for the breaker `name` (on a Cluster, its slot's master's breaker is not open). */
  reachableFor(name: string): boolean {
    if (!this.link.reachable) return false;
    return this.link.nodes === undefined || !this.nodeOf(name)!.open;
  }

  connect(peer: BreakerPeer): SharedBreaker {
    if (this.closed) throw new Error('redisBreakerStore: the store is closed');
    const handle = new FleetHandle(this, peer);
    this.handles.add(handle);
    this.schedule(0);
    return handle;
  }

  /** Stops syncing (the timer) and disconnects every breaker: they decide alone from now on. The client stays open. */
  close(): void {
    this.closed = true;
    clearTimeout(this.timer);
    this.timer = undefined;
    this.handles.clear();
  }

  /** @internal */
  forget(handle: FleetHandle): void {
    this.handles.delete(handle);
  }

  /** @internal */
  get config(): Settings {
    return this.settings;
  }

  /**
   * @internal Whether a call for the breaker `name` may go to Redis now: on a Cluster, its
   * slot's master must admit calls too (one master's failures leave the others' breakers synced).
   */
  admits(name: string): boolean {
    if (this.closed || !this.link.admitsCalls()) return false;
    return this.link.nodes === undefined || this.nodeOf(name)!.admits();
  }

  /** On a Cluster, the breaker of the master serving the slot of the breaker `name`'s keys. */
  private nodeOf(name: string): NodeBreaker | undefined {
    const nodes = this.link.nodes;
    if (nodes === undefined) return undefined;
    let slot = this.slots.get(name);
    if (slot === undefined) {
      slot = hashSlot(redisKeyOf(this.prefix, `breaker:${name}`));
      this.slots.set(name, slot);
    }
    return nodes.forSlot(slot);
  }

  /**
   * @internal Runs the script for `name` with `args` (after the keys), within `timeoutMs`;
   * resolves with its reply, or undefined when Redis could not answer in time. On a Cluster the
   * outcome counts for the master of the breaker's slot only, and one call probes a master whose
   * breaker was open (later calls for it wait for that call's answer).
   */
  call(name: string, args: readonly (string | number)[]): Promise<readonly number[] | undefined> {
    const key = redisKeyOf(this.prefix, `breaker:${name}`);
    const node = this.nodeOf(name);
    const seq = this.link.nextSeq();
    this.link.beforeSend();
    let reply: Promise<unknown>;
    try {
      reply = Promise.resolve((this.client as { [COMMAND]?: ScriptCommand })[COMMAND]!(3, key, `${key}:w`, `${key}:q`, ...args));
    } catch {
      this.link.failed(seq, false, node);
      return Promise.resolve(undefined);
    } finally {
      this.link.nodes?.closeProbes();
    }
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.link.failed(seq, true, node);
        resolve(undefined);
      }, this.settings.timeoutMs);
      reply.then(
        (value) => {
          clearTimeout(timer);
          this.link.replied();
          if (!Array.isArray(value) || value.length !== 5) {
            this.link.failed(seq, false, node);
            resolve(undefined);
            return;
          }
          this.link.succeeded(node);
          resolve(value.map(Number));
        },
        () => {
          clearTimeout(timer);
          this.link.failed(seq, false, node);
          resolve(undefined);
        },
      );
    });
  }

  /** @internal Syncs every breaker soon (`delayMs` from now, or sooner if already due). */
  schedule(delayMs: number): void {
    if (this.closed) return;
    if (this.timer !== undefined) {
      if (delayMs > 0) return;
      clearTimeout(this.timer);
    }
    this.timer = setTimeout(() => void this.tick().catch(ignore), delayMs);
    this.timer.unref();
  }

  private async tick(): Promise<void> {
    this.timer = undefined;
    try {
      await Promise.all([...this.handles].map((h) => h.sync()));
    } finally {
      // Whatever a sync met (a listener of the breaker's events that threw), the next one comes.
      this.schedule(Math.max(1, Math.floor(this.settings.maxStalenessMs / 4)));
    }
  }
}

/** One breaker's connection to the store: its outcomes since the last sync, and its view of the fleet. */
class FleetHandle implements SharedBreaker {
  private readonly instance = randomUUID();
  private calls = 0;
  private failures = 0;
  private slow = 0;
  /** Failures after the latest success since the last sync; -1: no success since then. */
  private trailing = -1;
  /** The breaker's own verdict at its latest outcome (-1: none since the last sync). */
  private judged = -1;
  /** The verdict last sent (quorum mode sends only changes, and repeats within the TTL). */
  private sentJudged = 0;
  private judgedSentAt = 0;
  /** When (system clock) the fleet's state was last read. */
  private syncedAt = -Infinity;
  private opens = 0;
  private epoch = 0;
  private syncing = false;
  /** Probe outcomes not delivered yet: [op, epoch]. */
  private readonly unsent: [number, number][] = [];
  private readonly fixedArgs: (string | number)[];

  constructor(
    private readonly store: RedisBreakerStore,
    private readonly peer: BreakerPeer,
  ) {
    const { quorum, quorumTtlMs } = store.config;
    const rule = peer.rule;
    if (rule === undefined && quorum === 0) {
      throw new TypeError(
        `redisBreakerStore: breaker "${peer.name}" has a custom strategy, which Redis cannot sum; set the store's "quorum" option to share it`,
      );
    }
    const ttlMs = 2 * Math.max(peer.maxOpenMs, peer.probeTimeoutMs, quorumTtlMs, rule !== undefined && rule.kind !== 'consecutive' ? rule.size : 0) + 60_000;
    this.fixedArgs = [
      this.instance,
      quorum,
      quorumTtlMs,
      peer.halfOpenMaxCalls,
      peer.probeTimeoutMs,
      0, // the next open period, filled in per call
      Math.ceil(ttlMs),
      rule === undefined ? 0 : ruleCodes[rule.kind],
      rule === undefined ? 0 : rule.kind === 'consecutive' ? rule.threshold : rule.size,
      rule === undefined || rule.kind === 'consecutive' ? 1 : rule.failureRate,
      rule === undefined || rule.kind === 'consecutive' ? 0 : rule.minimumCalls,
      rule === undefined || rule.kind === 'consecutive' ? 1 : rule.slowRate,
    ];
  }

  get active(): boolean {
    return systemClock.now() - this.syncedAt <= this.store.config.maxStalenessMs && this.store.reachableFor(this.peer.name);
  }

  record(failed: boolean, slow: boolean, judged: boolean): void {
    this.calls++;
    if (failed) {
      this.failures++;
      if (this.trailing >= 0) this.trailing++;
    } else {
      this.trailing = 0;
    }
    if (slow) this.slow++;
    // The breaker's own strategy says "open": tell the fleet now rather than at the next sync.
    if (judged && this.judged !== 1 && this.sentJudged !== 1) this.store.schedule(0);
    this.judged = judged ? 1 : 0;
  }

  async claimProbe(): Promise<boolean | undefined> {
    if (!this.active || !this.store.admits(this.peer.name)) return undefined;
    const reply = await this.send(OP_CLAIM, this.epoch, 0, 0, 0, -1, -1);
    if (reply === undefined) return undefined;
    return reply[4] === 1;
  }

  probeDone(outcome: 'succeeded' | 'failed' | 'released'): void {
    const op = outcome === 'succeeded' ? OP_PROBE_OK : outcome === 'failed' ? OP_PROBE_FAILED : OP_PROBE_RELEASED;
    this.report(op, this.epoch).then(ignore, ignore);
  }

  /**
   * Sends a probe's outcome for the half-open window `epoch`; one that cannot go now (Redis away,
   * a failover under way) is kept and sent before the next sync. Otherwise the fleet would wait
   * `probeTimeoutMs` for it: a failover to a replica that had seen the claim but not the outcome
   * would hold the window that long.
   */
  private async report(op: number, epoch: number): Promise<void> {
    const reply = this.store.admits(this.peer.name) ? await this.send(op, epoch, 0, 0, 0, -1, -1) : undefined;
    // The script ignores an outcome for another window, so a late one does no harm.
    if (reply === undefined && this.unsent.length < MAX_UNSENT) this.unsent.push([op, epoch]);
  }

  close(): void {
    this.store.forget(this);
  }

  /** Sends the outcomes gathered since the last sync and reads the fleet's state back. */
  async sync(): Promise<void> {
    if (this.syncing) return;
    const { calls, failures, slow, trailing } = this;
    let judged = this.judged;
    // Outcomes are sent once: a failed sync drops them rather than replay them late.
    this.calls = this.failures = this.slow = 0;
    this.trailing = -1;
    this.judged = -1;
    if (!this.store.admits(this.peer.name)) return;
    const { quorum, quorumTtlMs } = this.store.config;
    if (quorum > 0) {
      // Send a verdict when it changes, and repeat an "open" before its flag expires.
      const now = systemClock.now();
      if (judged === -1 || (judged === this.sentJudged && !(judged === 1 && now - this.judgedSentAt >= quorumTtlMs / 2))) judged = -1;
    }
    this.syncing = true;
    try {
      for (const [op, epoch] of this.unsent.splice(0)) await this.report(op, epoch);
      const reply = await this.send(OP_SYNC, this.epoch, calls, failures, slow, trailing, judged);
      if (reply !== undefined && judged !== -1) {
        this.sentJudged = judged;
        this.judgedSentAt = systemClock.now();
      }
    } finally {
      this.syncing = false;
    }
  }

  private async send(
    op: number,
    epoch: number,
    calls: number,
    failures: number,
    slow: number,
    trailing: number,
    judged: number,
  ): Promise<readonly number[] | undefined> {
    const args = this.fixedArgs;
    // The length of the open period this call would start, from the fleet's opens in a row.
    args[5] = Math.max(1, Math.round(this.peer.openDelay(this.opens + 1)));
    const reply = await this.store.call(this.peer.name, [op, epoch, calls, failures, slow, trailing, judged, ...args]);
    if (reply === undefined) return undefined;
    // Calls for one breaker go to one node over one connection: replies arrive in order.
    const [st, remaining, opens, fleetEpoch] = reply as [number, number, number, number, number];
    this.syncedAt = systemClock.now();
    this.opens = opens;
    this.epoch = fleetEpoch;
    this.peer.apply({ state: states[st] ?? 'closed', openRemainingMs: Math.max(0, remaining), opens, epoch: fleetEpoch });
    return reply;
  }
}

/**
 * Creates a circuit breaker store in Redis, on an ioredis 5 or 6 client (`Redis`, `Redis` with
 * Sentinel, or `Cluster`), which the store does not own or close. Breakers with the same `name`
 * on every process share one state: outcomes summed fleet-wide by their strategy (or, with
 * `quorum`, instances' verdicts counted), one open period, and exactly `halfOpenMaxCalls`
 * probes per half-open window. Each process decides locally on state at most `maxStalenessMs`
 * old, and alone while Redis is unreachable.
 * @example
 * import { Redis } from 'ioredis';
 * const client = new Redis({ enableOfflineQueue: false, autoResendUnfulfilledCommands: false, maxRetriesPerRequest: 1 });
 * const store = redisBreakerStore(client, { maxStalenessMs: 1_000 });
 * const breaker = circuitBreaker({ name: 'payments', breaker: consecutive(5), store });
 */
export function redisBreakerStore(client: RedisClientLike, options?: RedisBreakerStoreOptions): RedisBreakerStore {
  return new RedisBreakerStore(client, options);
}
