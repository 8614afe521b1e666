// The store's state markers: one small key per Redis server that holds the store's keys, written
// once and found again on every check. A marker that is gone means the keys around it are gone
// too (FLUSHALL, FLUSHDB, an eviction, a Cluster node that came back empty): every limit and quota
// starts again from zero. Each marker holds a token, so a store notices the loss even when
// another store (another process) found the key missing first and wrote a new one.
import { randomUUID } from 'node:crypto';
import { systemClock } from '../../core/clock.js';
import { scripts } from './scripts.js';
import { crc16 } from './slot.js';
import type { RedisClient } from './client.js';
import type { RedisClientLike } from './types.js';

/**
 * How long a marker lives without a check (renewed by every check). A store that has not
 * looked for longer cannot tell an expired marker from a lost one, and reports neither.
 */
export const MARKER_TTL_MS = 7 * 24 * 60 * 60 * 1000;

/** The marker's key: it ends after the hash tag, where every limiter key ends with the tag's `}`. */
export function markerKey(prefix: string, tag: string): string {
  return `${prefix}{${tag}}:state-marker`;
}

const encoder = new TextEncoder();
/** Slot → a hash tag in that slot, found once per slot. */
const tagsBySlot = new Map<number, string>();

/** A short hash tag whose slot is `slot` (`marker-<n>`, the first such n). */
export function markerTagForSlot(slot: number): string {
  let tag = tagsBySlot.get(slot);
  if (tag !== undefined) return tag;
  // Every slot has such an n well below the bound (about 16 384 tries on average).
  for (let n = 0; n < 2_000_000; n++) {
    const candidate = `marker-${n}`;
    if ((crc16(encoder.encode(candidate)) & 16383) === slot) {
      tag = candidate;
      break;
    }
  }
  if (tag === undefined) throw new RangeError(`no marker tag found for slot ${slot}`);
  tagsBySlot.set(slot, tag);
  return tag;
}

/**
 * The marker keys to check: one on a single node or Sentinel; on a Cluster, one per master, in
 * the lowest slot it serves (as the client's slot map says now). A slot that moves takes its
 * marker along; a master that newly serves the lowest slot of its set starts a new marker,
 * known from its first check on.
 */
export function markerKeys(prefix: string, client: RedisClientLike): string[] {
  if (client.isCluster !== true) return [markerKey(prefix, 'marker')];
  const slots = client.slots;
  if (slots === undefined) return [];
  const masters = new Set<string>();
  const keys: string[] = [];
  for (let slot = 0; slot < slots.length && slot < 16384; slot++) {
    const master = slots[slot]?.[0];
    if (master === undefined || masters.has(master)) continue;
    masters.add(master);
    keys.push(markerKey(prefix, markerTagForSlot(slot)));
  }
  return keys;
}

interface Seen {
  readonly token: string;
  /** When the store last found it (ms, system clock). */
  readonly atMs: number;
}

/** Internal: the tokens one store found in its markers, and the checks that compare them. */
export class StateMarkers {
  private readonly seen = new Map<string, Seen>();
  /** Numbers the checks: the answers of a check that a newer one overtook are dropped. */
  private round = 0;

  constructor(
    private readonly client: RedisClient,
    private readonly prefix: string,
  ) {}

  /**
   * Reads (and renews, or writes when missing) every marker. Resolves with how many markers were
   * lost since this store last found them, out of how many were checked. With `baseline`, what
   * it finds is only remembered: a loss already reported another way (a new `run_id`) is not
   * reported twice. Never rejects: a failed call (Redis down, an ACL without EVAL) finds nothing.
   */
  async check(baseline: boolean): Promise<{ lost: number; checked: number }> {
    const round = ++this.round;
    const keys = markerKeys(this.prefix, this.client);
    const call = this.client[scripts.marker.command];
    const replies = await Promise.all(
      keys.map((key) => {
        try {
          return Promise.resolve(call!.call(this.client, 1, key, randomUUID(), MARKER_TTL_MS)).catch(() => undefined);
        } catch {
          return undefined;
        }
      }),
    );
    if (round !== this.round) return { lost: 0, checked: 0 };
    const now = systemClock.now();
    let lost = 0;
    let checked = 0;
    keys.forEach((key, i) => {
      const reply = replies[i];
      if (reply === undefined || reply === null) return;
      const token = String(reply);
      checked++;
      const before = this.seen.get(key);
      if (!baseline && before !== undefined && before.token !== token && now - before.atMs < MARKER_TTL_MS) lost++;
      this.seen.set(key, { token, atMs: now });
    });
    return { lost, checked };
  }
}
