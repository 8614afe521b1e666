// A compound call that timed out, whose caller was told no, but that Redis then admitted: each
// limit gets its units back, as a single decision's late admission does (batch.ts). Regression:
// they stayed charged, so a quota lost units for calls its tenant was refused. The same against a
// real Redis: test/integration/redis/compound.test.ts.
import { setTimeout as sleep } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';
import { fixedWindow } from '../../../../src/ratelimit/algorithms/index.js';
import { compoundLimit } from '../../../../src/ratelimit/compound.js';
import { rateLimiter } from '../../../../src/ratelimit/rate-limiter.js';
import { redisStore } from '../../../../src/ratelimit/redis/redis-store.js';
import type { StoreErrorMode } from '../../../../src/ratelimit/store.js';
import { deferred } from '../../../support/helpers.js';
import { FakeClient } from './fake-client.js';

/** Two limits over a fake client whose compound calls stay unanswered until the test answers them. */
function setup(onStoreError: StoreErrorMode) {
  const client = new FakeClient();
  const compoundCalls: { keys: string[]; answer: (reply: unknown) => void }[] = [];
  client.bulwarkCompound1 = (...args: unknown[]) => {
    const d = deferred<unknown>();
    const n = Number(args[0]) - 1;
    compoundCalls.push({ keys: args.slice(1, 1 + n) as string[], answer: d.resolve });
    return d.promise;
  };
  const store = redisStore(client, { timeoutMs: 20, onStoreError });
  const perUser = rateLimiter({ name: 'per-user', algorithm: fixedWindow({ limit: 10, windowMs: 1_000 }), store });
  const perTenant = rateLimiter({ name: 'per-tenant', algorithm: fixedWindow({ limit: 100, windowMs: 60_000 }), store });
  return { client, compoundCalls, both: compoundLimit([perUser, perTenant]) };
}

/** The compound script's reply: every limit admitted (denied index 0, two integers each, no run-time limit) or the second denied. */
const ADMITTED = [0, 9, 1_000, 99, 60_000, -1, -1];
const DENIED = [2, 9, 1_000, -1, 60_000, 500, -1, -1];

describe('a compound call Redis admits after its caller was told no', () => {
  it('gives each limit its units back (its own script, op refund, on the compound key)', async () => {
    const { client, compoundCalls, both } = setup('fail-closed');
    const decision = await both.consume('t', 3);
    expect(decision).toMatchObject({ allowed: false, store: 'fail-closed' });
    expect(compoundCalls).toHaveLength(1);
    compoundCalls[0]!.answer(ADMITTED);
    await sleep(5);
    const refunds = client.calls.filter((c) => c.ops.every(([op]) => op === 3));
    expect(refunds.map((c) => c.keys)).toEqual(compoundCalls[0]!.keys.map((k) => [k]));
    expect(refunds.map((c) => c.ops)).toEqual([[[3, 3]], [[3, 3]]]);
    expect(refunds.every((c) => c.staleAfterUs === 0)).toBe(true);
  });

  it('gives nothing back when Redis denied it, or when fail-open had admitted the caller', async () => {
    const denied = setup('fail-closed');
    await denied.both.consume('t');
    denied.compoundCalls[0]!.answer(DENIED);
    const open = setup('fail-open');
    expect(await open.both.consume('t')).toMatchObject({ allowed: true, store: 'fail-open' });
    open.compoundCalls[0]!.answer(ADMITTED);
    await sleep(5);
    expect(denied.client.calls).toEqual([]);
    expect(open.client.calls).toEqual([]);
  });
});
