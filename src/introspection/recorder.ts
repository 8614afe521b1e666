// What inspect() cannot read from the policies themselves: rates and the last events. Recorded
// from the diagnostics channels only while someone holds a recording (a dashboard viewer, a
// test); with nobody holding one, no channel has a subscriber from here and nothing is kept.
import diagnosticsChannel from 'node:diagnostics_channel';
import { channelNames, executeChannel, type ExecuteMessage } from '../core/diagnostics.js';
import { type Disposable, toDisposable } from '../core/events.js';
import { TimeBuckets } from '../core/time-buckets.js';

/** Events kept per policy. */
export const EVENTS_KEPT = 20;
/** The window rates are measured over, in ms (10 buckets of a second). */
export const RATE_WINDOW_MS = 10_000;

/** One recorded event: when, what, and a few numbers or fixed words (never keys, addresses or errors). */
export interface PolicyEvent {
  /** Wall-clock time, ms since the epoch. */
  readonly at: number;
  /** What happened: `'state'`, `'rejected'`, `'retry'`, `'give-up'`, `'denied'`, `'limit'`, `'check'`, `'shed'`. */
  readonly type: string;
  /** The event's details, copied field by field from the channel message. */
  readonly detail: Readonly<Record<string, string | number | boolean>>;
}

// Counters of a policy's window: breakers count calls, failures, slow calls and rejections;
// limiters and quotas count decisions and denials.
export const [CALLS, FAILURES, SLOW, REJECTED, DECISIONS, DENIALS] = [0, 1, 2, 3, 4, 5] as const;
const COUNTERS = 6;

/** What is recorded for one policy name (policies sharing a name share it). */
export interface Track {
  readonly events: PolicyEvent[];
  readonly window: TimeBuckets;
  /** Who made the last rate-limit decision (`'memory'`, `'redis'`, `'local'`, `'fail-open'`, `'fail-closed'`). */
  store?: string;
}

const tracks = new Map<string, Track>();
let holders = 0;
let since = 0;
/** `slowCallMs` per breaker name, as the inspector last read it (for the slow share). */
export const slowThresholds = new Map<string, number>();

const keyOf = (kind: string, name: string): string => `${kind}\u0000${name}`;

function track(kind: string, name: string): Track {
  const key = keyOf(kind, name);
  let t = tracks.get(key);
  if (t === undefined) {
    t = { events: [], window: new TimeBuckets(RATE_WINDOW_MS, COUNTERS, 10) };
    tracks.set(key, t);
  }
  return t;
}

/** The recorded track of a policy, if anything was recorded for it. */
export function trackOf(kind: string, name: string): Track | undefined {
  return tracks.get(keyOf(kind, name));
}

/** Whether a recording is held, and since when (wall-clock ms). */
export function recordingSince(): number | undefined {
  return holders > 0 ? since : undefined;
}

function count(kind: string, name: string, counter: number): void {
  const w = track(kind, name).window;
  w.add(w.slotAt(Date.now()), counter);
}

function pick(message: object, fields: readonly string[]): Record<string, string | number | boolean> {
  const out: Record<string, string | number | boolean> = {};
  for (const f of fields) {
    const v = (message as Record<string, unknown>)[f];
    if (typeof v === 'number' || typeof v === 'boolean') out[f] = v;
    else if (typeof v === 'string' && v.length <= 40) out[f] = v;
  }
  return out;
}

function push(kind: string, name: string, type: string, detail: Record<string, string | number | boolean>): void {
  const events = track(kind, name).events;
  if (events.length === EVENTS_KEPT) events.shift();
  events.push({ at: Date.now(), type, detail });
}

/** A channel's message handler: the event and the fields it keeps, for the policy it names. */
function eventOf(kind: string, type: string, fields: readonly string[], nameField = 'policy') {
  return (message: unknown): void => {
    const m = message as Record<string, unknown>;
    const name = m[nameField];
    if (typeof name === 'string') push(kind, name, type, pick(m, fields));
  };
}

const onDecision = (message: unknown): void => {
  const m = message as { kind?: unknown; policy?: unknown; mode?: unknown; decision?: { allowed?: unknown; store?: unknown; retryAfterMs?: unknown } };
  if (typeof m.policy !== 'string' || (m.kind !== 'rate-limiter' && m.kind !== 'quota')) return;
  const t = track(m.kind, m.policy);
  const slot = t.window.slotAt(Date.now());
  t.window.add(slot, DECISIONS);
  const d = m.decision ?? {};
  const store = typeof d.store === 'string' ? d.store : undefined;
  if (store !== undefined && store !== t.store) {
    if (t.store !== undefined) push(m.kind, m.policy, 'store', { from: t.store, to: store });
    t.store = store;
  }
  if (d.allowed === false) {
    t.window.add(slot, DENIALS);
    push(m.kind, m.policy, 'denied', pick({ retryAfterMs: d.retryAfterMs, store, mode: m.mode }, ['retryAfterMs', 'store', 'mode']));
  }
};

const onShed = (message: unknown): void => push('load-shedder', 'load-shedder', 'shed', pick(message as object, ['reason', 'value', 'threshold', 'mode']));
const onCheck = (message: unknown): void => push('health', 'health', 'check', pick(message as object, ['check', 'status', 'durationMs', 'cached']));

const handlers: readonly (readonly [string, (message: unknown) => void])[] = [
  [channelNames.circuitState, eventOf('circuit-breaker', 'state', ['from', 'to', 'reason', 'mode'])],
  [channelNames.circuitRejected, (m) => count('circuit-breaker', (m as { policy: string }).policy, REJECTED)],
  [channelNames.retryAttempt, eventOf('retry', 'retry', ['attempt', 'delayMs'])],
  [channelNames.retryGiveUp, eventOf('retry', 'give-up', ['attempts', 'reason'])],
  [channelNames.bulkheadRejected, eventOf('bulkhead', 'rejected', ['active', 'queued', 'mode'])],
  [channelNames.admissionRejected, eventOf('admission-controller', 'rejected', ['reason', 'priority', 'limit', 'inFlight', 'queued', 'mode'])],
  [channelNames.admissionLimit, eventOf('admission-controller', 'limit', ['from', 'to'])],
  [channelNames.rateLimitDecision, onDecision],
  [channelNames.sheddingRejected, onShed],
  [channelNames.healthCheck, onCheck],
];

// Breakers' calls, failures and slow calls, from the execute tracing channel. The start time
// rides on the message object, which the channel hands to every phase of one execution.
const started = new WeakMap<object, number>();
const isRejection = (error: unknown): boolean => {
  const code = (error as { code?: unknown } | null)?.code;
  return code === 'ERR_BULWARK_BROKEN_CIRCUIT' || code === 'ERR_BULWARK_ISOLATED_CIRCUIT';
};
const executeHandlers = {
  start(message: ExecuteMessage): void {
    if (message.kind === 'circuit-breaker') started.set(message, performance.now());
  },
  end(): void {},
  asyncStart(): void {},
  error(): void {},
  asyncEnd(message: ExecuteMessage & { error?: unknown }): void {
    const start = started.get(message);
    if (start === undefined) return;
    started.delete(message);
    if ('error' in message && isRejection(message.error)) return;
    const t = track('circuit-breaker', message.policy);
    const slot = t.window.slotAt(Date.now());
    t.window.add(slot, CALLS);
    if ('error' in message) t.window.add(slot, FAILURES);
    if (performance.now() - start >= (slowThresholds.get(message.policy) ?? Infinity)) t.window.add(slot, SLOW);
  },
};

/**
 * Starts recording rates and the last {@link EVENTS_KEPT} events of every policy, from the
 * diagnostics channels, until the returned handle is disposed. Recordings are shared: the
 * channels are subscribed once, while at least one is held, and everything recorded is dropped
 * when the last one is disposed. `inspect()` shows the rates and events while one is held; the
 * dashboard holds one per open page.
 * @example
 * const recording = recordPolicies();
 * // ... later
 * recording.dispose();
 */
export function recordPolicies(): Disposable {
  if (holders++ === 0) {
    since = Date.now();
    for (const [name, handler] of handlers) diagnosticsChannel.subscribe(name, handler);
    executeChannel.subscribe(executeHandlers as never);
  }
  return toDisposable(() => {
    if (--holders === 0) {
      for (const [name, handler] of handlers) diagnosticsChannel.unsubscribe(name, handler);
      executeChannel.unsubscribe(executeHandlers as never);
      tracks.clear();
      slowThresholds.clear();
    }
  });
}
