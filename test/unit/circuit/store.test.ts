// The breaker-store interface (issue 16 §4): the memory store changes nothing, and a shared store
// drives the breaker through `apply` and `claimProbe` while the breaker keeps deciding locally.
import { describe, expect, it } from 'vitest';
import {
  type BreakerPeer,
  type BreakerStore,
  BrokenCircuitError,
  circuitBreaker,
  consecutive,
  countWindow,
  ManualClock,
  memoryBreakerStore,
  type SharedBreaker,
  type StateChangeEvent,
  timeWindow,
} from '../../../src/index.js';
import { Boom, fail, succeed } from './support.js';

/** A shared store under the test's control: what the breaker reported, and what the "fleet" answers. */
function fakeStore(options: { active?: boolean; grant?: boolean | undefined } = {}) {
  const log = {
    peer: undefined as BreakerPeer | undefined,
    records: [] as [boolean, boolean, boolean][],
    claims: 0,
    done: [] as string[],
    active: options.active ?? true,
    grant: 'grant' in options ? options.grant : true,
  };
  const store: BreakerStore = {
    kind: 'fake',
    connect(peer) {
      log.peer = peer;
      const shared: SharedBreaker = {
        get active() {
          return log.active;
        },
        record: (failed, slow, judged) => void log.records.push([failed, slow, judged]),
        claimProbe: async () => {
          log.claims++;
          return log.grant;
        },
        probeDone: (outcome) => void log.done.push(outcome),
        close: () => {},
      };
      return shared;
    },
  };
  return { store, log };
}

describe('breaker stores', () => {
  it('memoryBreakerStore() is the default and keeps the breaker local', async () => {
    const breaker = circuitBreaker({ store: memoryBreakerStore(), breaker: consecutive(2) });
    await fail(breaker, 2);
    expect(breaker.state).toBe('open');
  });

  it('refuses a store that is not one, naming the option', () => {
    expect(() => circuitBreaker({ store: {} as BreakerStore })).toThrow(/option "store"/);
  });

  it('hands the store the strategy as a fleet rule', () => {
    const rules = [consecutive(3), countWindow({ size: 10, minimumCalls: 5 }), timeWindow({ windowMs: 1000 })].map((strategy) => {
      const { store, log } = fakeStore();
      circuitBreaker({ store, breaker: strategy, name: 'x' });
      return log.peer!.rule;
    });
    expect(rules).toEqual([
      { kind: 'consecutive', threshold: 3 },
      { kind: 'count-window', size: 10, failureRate: 0.5, minimumCalls: 5, slowRate: 1 },
      { kind: 'time-window', size: 1000, failureRate: 0.5, minimumCalls: 20, slowRate: 1 },
    ]);
  });

  it('reports outcomes and leaves opening to the fleet while the store is active', async () => {
    const { store, log } = fakeStore();
    const breaker = circuitBreaker({ store, breaker: consecutive(2) });
    await succeed(breaker);
    await fail(breaker, 3);
    expect(breaker.state).toBe('closed');
    expect(log.records).toEqual([
      [false, false, false],
      [true, false, false],
      [true, false, true],
      [true, false, true],
    ]);
  });

  it('opens on its own strategy when the store is not active (Redis down)', async () => {
    const { store } = fakeStore({ active: false });
    const breaker = circuitBreaker({ store, breaker: consecutive(2) });
    await fail(breaker, 2);
    expect(breaker.state).toBe('open');
  });

  it('follows the fleet: opened by it (reason fleet-opened), half-open when it says, closed by it', async () => {
    const clock = new ManualClock(0);
    const { store, log } = fakeStore();
    const breaker = circuitBreaker({ store, clock, halfOpenAfterMs: 5_000 });
    const events: StateChangeEvent[] = [];
    breaker.onStateChange((e) => events.push(e));
    log.peer!.apply({ state: 'open', openRemainingMs: 300, opens: 1, epoch: 1 });
    expect(breaker.state).toBe('open');
    await expect(breaker.execute(() => 'x')).rejects.toBeInstanceOf(BrokenCircuitError);
    await clock.advance(300);
    expect(breaker.state).toBe('half-open');
    log.peer!.apply({ state: 'closed', openRemainingMs: 0, opens: 0, epoch: 1 });
    expect(breaker.state).toBe('closed');
    expect(events.map((e) => `${e.to}:${e.reason}`)).toEqual(['open:fleet-opened', 'half-open:half-open-due', 'closed:fleet-closed']);
  });

  it('runs a probe only with a slot the fleet granted, and reports how it ended', async () => {
    const { store, log } = fakeStore();
    const breaker = circuitBreaker({ store, halfOpenMaxCalls: 2 });
    log.peer!.apply({ state: 'half-open', openRemainingMs: 0, opens: 1, epoch: 1 });
    await expect(breaker.execute(() => 'a')).resolves.toBe('a');
    expect(log.claims).toBe(1);
    expect(log.done).toEqual(['succeeded']);
    log.grant = false;
    await expect(breaker.execute(() => 'b')).rejects.toBeInstanceOf(BrokenCircuitError);
    // The fleet said its slots are taken: no more asking until its state changes.
    await expect(breaker.execute(() => 'c')).rejects.toBeInstanceOf(BrokenCircuitError);
    expect(log.claims).toBe(2);
    log.peer!.apply({ state: 'open', openRemainingMs: 0, opens: 2, epoch: 2 });
    log.grant = true;
    await expect(breaker.execute(() => Promise.reject(new Boom('x')))).rejects.toBeInstanceOf(Boom);
    expect(log.done).toEqual(['succeeded', 'failed']);
    expect(breaker.state).toBe('open');
  });

  it('probes locally when the store cannot tell', async () => {
    const { store, log } = fakeStore({ grant: undefined });
    const breaker = circuitBreaker({ store });
    log.peer!.apply({ state: 'half-open', openRemainingMs: 0, opens: 1, epoch: 1 });
    await expect(breaker.execute(() => 'a')).resolves.toBe('a');
    expect(log.done).toEqual([]);
    expect(breaker.state).toBe('closed');
  });
});
