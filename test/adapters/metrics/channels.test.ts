// The diagnostics channels' catalogue cannot drift from what the code publishes: for every
// channel, the fields listed in the catalogue table of docs/observability.md, the fields named in
// `channelNames`' JSDoc, the fields of the message's exported type (checked by the compiler) and
// the keys of the messages the real policies publish are one and the same set.
//
// Regression (issue 12): the hedge message's `trigger` field was missing from the documented
// catalogue (`channelNames.hedge` said `{ policy, attempt }`).
import { subscribe, tracingChannel, unsubscribe } from 'node:diagnostics_channel';
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
// The types come from the entry points the docs name, so the table's "type" column is checked too.
import type { FailoverEvent } from '../../../src/adapters/fetch.js';
import {
  type AdmissionDecisionEvent,
  type AdmissionLimitEvent,
  type BulkheadRejectedEvent,
  type CallbackErrorMessage,
  channelNames,
  type CircuitRejectedMessage,
  type ExecuteMessage,
  type FallbackEvent,
  type FaultInjectedEvent,
  type FetchOriginEvictedMessage,
  type GiveUpEvent,
  gracefulShutdown,
  type HealthCheckMessage,
  hedge,
  type HedgeEvent,
  constant,
  ManualClock,
  type RateLimitDecisionMessage,
  retry,
  type RetryEvent,
  type SheddingRejectedMessage,
  type ShutdownPhaseMessage,
  type StateChangeEvent,
  type ThrottleRejectedEvent,
  type TimeoutEvent,
} from '../../../src/index.js';
import type { BottleneckRejectedEvent } from '../../../src/interop/bottleneck.js';
import type { OpossumFallbackEvent, OpossumRejectedEvent, OpossumStateChangeEvent, OpossumTimeoutEvent } from '../../../src/interop/opossum.js';
import type { StoreErrorMessage } from '../../../src/ratelimit/redis/index.js';
import type { FetchPacingMessage } from '../../../src/adapters/fetch.js';

import type { CompoundDecisionMessage, SettleMessage } from '../../../src/ratelimit/index.js';
import { exerciseEverything } from './support.js';

const root = resolve(import.meta.dirname, '../../..');

/**
 * Every field of `T`, each once: the compiler refuses a list that misses a field of `T` or names
 * one it does not have.
 */
function fields<T>() {
  return <const K extends readonly (keyof T & string)[]>(
    ...keys: K & (Exclude<keyof T, K[number]> extends never ? unknown : { missing: Exclude<keyof T, K[number]> })
  ): string[] => [...keys].sort();
}

type ChannelName = (typeof channelNames)[keyof typeof channelNames];

/** The fields of each channel's message, from its exported type (every publisher's type). */
const typed: Record<ChannelName, string[][]> = {
  [channelNames.execute]: [fields<ExecuteMessage>()('kind', 'policy')],
  [channelNames.circuitState]: [
    fields<StateChangeEvent>()('policy', 'from', 'to', 'reason', 'mode'),
    fields<OpossumStateChangeEvent>()('policy', 'from', 'to', 'reason', 'mode'),
  ],
  [channelNames.circuitRejected]: [
    fields<CircuitRejectedMessage>()('policy', 'state', 'mode'),
    fields<OpossumRejectedEvent>()('policy', 'state', 'mode'),
  ],
  [channelNames.retryAttempt]: [fields<RetryEvent>()('policy', 'attempt', 'delayMs', 'error', 'result')],
  [channelNames.retryGiveUp]: [fields<GiveUpEvent>()('policy', 'attempts', 'reason', 'error', 'result')],
  [channelNames.timeout]: [fields<TimeoutEvent>()('policy', 'timeoutMs'), fields<OpossumTimeoutEvent>()('policy', 'timeoutMs')],
  [channelNames.bulkheadRejected]: [
    fields<BulkheadRejectedEvent>()('policy', 'active', 'queued', 'mode'),
    fields<BottleneckRejectedEvent>()('policy', 'active', 'queued', 'mode'),
  ],
  [channelNames.fallback]: [fields<FallbackEvent>()('policy', 'error'), fields<OpossumFallbackEvent>()('policy', 'error')],
  [channelNames.hedge]: [fields<HedgeEvent>()('policy', 'attempt', 'trigger')],
  [channelNames.rateLimitDecision]: [fields<RateLimitDecisionMessage>()('kind', 'policy', 'decision', 'mode')],
  [channelNames.storeError]: [fields<StoreErrorMessage>()('store', 'kind', 'error', 'fallback', 'operations', 'reason')],
  [channelNames.sheddingRejected]: [fields<SheddingRejectedMessage>()('reason', 'value', 'threshold', 'mode')],
  [channelNames.healthCheck]: [fields<HealthCheckMessage>()('check', 'status', 'critical', 'durationMs', 'cached')],
  [channelNames.shutdownPhase]: [fields<ShutdownPhaseMessage>()('phase', 'signal')],
  [channelNames.callbackError]: [fields<CallbackErrorMessage>()('policy', 'callback', 'error')],
  [channelNames.fetchFailover]: [fields<FailoverEvent>()('policy', 'from', 'to', 'reason')],
  [channelNames.fetchOriginEvicted]: [fields<FetchOriginEvictedMessage>()('policy', 'origin', 'policies')],
  [channelNames.admissionRejected]: [fields<AdmissionDecisionEvent>()('policy', 'mode', 'reason', 'priority', 'limit', 'inFlight', 'queued')],
  [channelNames.admissionLimit]: [fields<AdmissionLimitEvent>()('policy', 'from', 'to')],
  [channelNames.faultInjected]: [fields<FaultInjectedEvent>()('policy', 'kind', 'latencyMs')],
  [channelNames.throttleRejected]: [fields<ThrottleRejectedEvent>()('policy', 'mode', 'probability', 'requests', 'accepts')],
  [channelNames.fetchPacing]: [fields<FetchPacingMessage>()('policy', 'key', 'decision', 'waitMs', 'ratePerSec', 'shared')],
  [channelNames.rateLimitCompound]: [fields<CompoundDecisionMessage>()('policy', 'allowed', 'deniedBy', 'store')],
  [channelNames.reservationSettle]: [fields<SettleMessage>()('kind', 'policy', 'status', 'estimate', 'actual')],
};

/** The field list of a documented message: `{ a, b, c }` → ['a', 'b', 'c'], sorted. */
function fieldList(text: string): string[] {
  return text
    .split(',')
    .map((f) => f.trim().replace(/\?$/, '')) // `result?`: a field only some messages carry
    .filter((f) => f !== '')
    .sort();
}

/** The page that holds the channel catalogue, and the heading of its section. */
const CATALOGUE_PAGE = 'docs/observability.md';
const CATALOGUE_HEADING = '## Diagnostics channels\n';

/**
 * The catalogue table of docs/observability.md ("Diagnostics channels"): channel → fields. A row
 * is `| channel (key) | published when | { fields } | type |`.
 */
function docsCatalogue(): Map<string, string[]> {
  const page = readFileSync(resolve(root, CATALOGUE_PAGE), 'utf8');
  const start = page.indexOf(CATALOGUE_HEADING);
  // A renamed or moved section must fail here, not leave an empty table that "matches" nothing.
  if (start < 0) throw new Error(`${CATALOGUE_PAGE} has no "${CATALOGUE_HEADING.trim()}" section`);
  const end = page.indexOf('\n## ', start + CATALOGUE_HEADING.length);
  const section = page.slice(start, end < 0 ? undefined : end);
  const rows = new Map<string, string[]>();
  for (const m of section.matchAll(/^\| `(bulwark:[^`]+)`[^|]*\|[^|]*\| `\{([^}]*)\}`/gm)) rows.set(m[1]!, fieldList(m[2]!));
  return rows;
}

/** The fields named in the JSDoc line above each entry of `channelNames`: channel → fields. */
function jsdocCatalogue(): Map<string, string[]> {
  const source = readFileSync(resolve(root, 'src/core/diagnostics.ts'), 'utf8');
  const body = source.slice(source.indexOf('export const channelNames = {'), source.indexOf('} as const;'));
  const entries = new Map<string, string[]>();
  for (const m of body.matchAll(/\/\*\*((?:(?!\*\/)[\s\S])*)\*\/\s*\w+: '(bulwark:[^']+)'/g)) {
    const braces = /`\{([^}]*)\}`/.exec(m[1]!);
    entries.set(m[2]!, braces === null ? [] : fieldList(braces[1]!));
  }
  return entries;
}

/** The keys of every message published while the real policies run, per channel. */
async function published(): Promise<Map<string, string[]>> {
  const seen = new Map<string, Set<string>>();
  const note = (channel: string, message: object): void => {
    const keys = seen.get(channel) ?? new Set<string>();
    seen.set(channel, keys);
    for (const key of Object.keys(message)) keys.add(key);
  };
  const listeners = Object.values(channelNames)
    .filter((name) => name !== channelNames.execute)
    .map((name) => [name, (message: unknown) => note(name, message as object)] as const);
  for (const [name, listener] of listeners) subscribe(name, listener);
  const execute = tracingChannel(channelNames.execute);
  // The keys at `start`: the tracing channel itself adds `result` or `error` to the same object later.
  const executeHandlers = { start: (message: object) => note(channelNames.execute, message) };
  execute.subscribe(executeHandlers as never);
  try {
    await exerciseEverything();
    // A hedge started by a failure, not a delay.
    const clock = new ManualClock();
    let n = 0;
    await hedge({ name: 'failover-hedge', delayMs: 1_000, clock }).execute(() => (++n === 1 ? Promise.reject(new Error('x')) : 'ok'));
    // A retry of a returned value (handleResult): its messages carry `result`.
    await retry({ name: 'result-retry', maxAttempts: 2, handleResult: (v) => v === 'busy', backoff: constant(0), clock }).execute(() => 'busy');
    const done = gracefulShutdown(null, { signals: [], exit: false, drainDelayMs: 10, clock, log: () => {} }).shutdown('test');
    await clock.advance(10);
    await done;
  } finally {
    for (const [name, listener] of listeners) unsubscribe(name, listener);
    execute.unsubscribe(executeHandlers as never);
  }
  return new Map([...seen].map(([channel, keys]) => [channel, [...keys].sort()]));
}

describe('the diagnostics channel catalogue', () => {
  it('lists every channel, in docs/observability.md and in channelNames', () => {
    const names = Object.values(channelNames).sort();
    expect([...docsCatalogue().keys()].sort()).toEqual(names);
    expect([...jsdocCatalogue().keys()].sort()).toEqual(names);
  });

  it('documents, types and publishes the same fields on every channel', async () => {
    const docs = docsCatalogue();
    const jsdoc = jsdocCatalogue();
    const actual = await published();
    for (const name of Object.values(channelNames)) {
      expect(actual.get(name), `${name}: published by the policies`).toBeDefined();
      expect(docs.get(name), `${name}: ${CATALOGUE_PAGE} table vs published`).toEqual(actual.get(name));
      expect(jsdoc.get(name), `${name}: channelNames JSDoc vs published`).toEqual(actual.get(name));
      for (const list of typed[name]) expect(list, `${name}: exported type vs published`).toEqual(actual.get(name));
    }
  });
});
