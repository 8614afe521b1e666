// Shadow mode on the circuit breaker (issue 15 §3): a shadow breaker rejects nothing, runs its
// state machine as an enforcing one would, and publishes the rejections it would have made.
import { describe, expect, it } from 'vitest';
import {
  BrokenCircuitError,
  type BreakerStrategy,
  channelNames,
  circuitBreaker,
  type CircuitBreakerPolicy,
  type CircuitRejectedMessage,
  consecutive,
  countWindow,
  ManualClock,
  timeWindow,
} from '../../../src/index.js';
import { messagesDuring, seeded } from '../../support/shadow.js';
import { Boom, fail, succeed } from './support.js';

/** What the breakers publish on `bulwark:circuit:rejected` while `run` runs. */
const rejectionsDuring = (run: () => Promise<void>) => messagesDuring<CircuitRejectedMessage>(channelNames.circuitRejected, run);

function shadowBreaker(options: { breaker?: BreakerStrategy; halfOpenMaxCalls?: number } = {}) {
  const clock = new ManualClock(0);
  const breaker = circuitBreaker({ name: 'ledger', mode: 'shadow', breaker: consecutive(2), halfOpenAfterMs: 1_000, clock, ...options });
  return { breaker, clock };
}

describe('circuitBreaker: mode', () => {
  it('defaults to enforce, takes shadow as an option and refuses anything else, naming the option and the value', () => {
    expect(circuitBreaker().mode).toBe('enforce');
    expect(circuitBreaker({ mode: 'shadow' }).mode).toBe('shadow');
    expect(() => circuitBreaker({ mode: 'off' as never })).toThrow(
      new TypeError('circuitBreaker: option "mode" must be "enforce" or "shadow", got "off"'),
    );
    expect(() => circuitBreaker({ mode: null as never })).toThrow(/option "mode" must be "enforce" or "shadow", got null/);
  });

  it('refuses an invalid mode assigned at run time, keeping the one it had', () => {
    const breaker = circuitBreaker({ mode: 'shadow' });
    expect(() => {
      breaker.mode = 'Shadow' as never;
    }).toThrow(new TypeError('circuitBreaker: "mode" must be "enforce" or "shadow", got "Shadow"'));
    expect(() => {
      breaker.mode = undefined as never;
    }).toThrow(TypeError);
    expect(breaker.mode).toBe('shadow');
  });
});

describe('circuitBreaker: shadow mode', () => {
  it('lets calls through while open, publishing each as a rejection with mode "shadow"', async () => {
    const { breaker } = shadowBreaker();
    let ran = 0;
    const seen = await rejectionsDuring(async () => {
      await fail(breaker, 2);
      expect(breaker.state).toBe('open');
      for (let i = 0; i < 3; i++) await expect(breaker.execute(() => ++ran)).resolves.toBe(i + 1);
    });
    expect(ran).toBe(3);
    expect(seen).toEqual(Array.from({ length: 3 }, () => ({ policy: 'ledger', state: 'open', mode: 'shadow' })));
  });

  it('does not record the outcomes of calls it would have rejected: successes while open do not close it, failures do not reopen it', async () => {
    const { breaker, clock } = shadowBreaker();
    await fail(breaker, 2);
    await succeed(breaker, 5); // would have been rejected: not probes
    expect(breaker.state).toBe('open');
    await clock.advance(1_000);
    // Half-open with one probe slot: the probe is held open while a second caller fails.
    let release!: () => void;
    const probe = breaker.execute(() => new Promise<string>((resolve) => (release = () => resolve('probe'))));
    await fail(breaker, 1); // would have been rejected (no probe slot): unrecorded
    expect(breaker.state).toBe('half-open');
    release();
    await expect(probe).resolves.toBe('probe');
    expect(breaker.state).toBe('closed');
  });

  it('runs open → half-open → closed on the real outcomes, and its events say mode "shadow"', async () => {
    const { breaker, clock } = shadowBreaker();
    const events: unknown[] = [];
    breaker.onStateChange((e) => events.push(e));
    await fail(breaker, 2);
    await clock.advance(1_000);
    await fail(breaker); // the probe fails: open again
    await clock.advance(1_000);
    await succeed(breaker); // the probe succeeds: closed
    expect(events).toEqual([
      { policy: 'ledger', from: 'closed', to: 'open', reason: 'failures', mode: 'shadow' },
      { policy: 'ledger', from: 'open', to: 'half-open', reason: 'half-open-due', mode: 'shadow' },
      { policy: 'ledger', from: 'half-open', to: 'open', reason: 'probe-failed', mode: 'shadow' },
      { policy: 'ledger', from: 'open', to: 'half-open', reason: 'half-open-due', mode: 'shadow' },
      { policy: 'ledger', from: 'half-open', to: 'closed', reason: 'probes-succeeded', mode: 'shadow' },
    ]);
  });

  it('switched to enforce while open, rejects at once with the open period it has left', async () => {
    const { breaker, clock } = shadowBreaker();
    await fail(breaker, 2);
    await clock.advance(400);
    await succeed(breaker);
    breaker.mode = 'enforce';
    const error = await breaker.execute(() => 'ran').catch((e: unknown) => e);
    expect(error).toBeInstanceOf(BrokenCircuitError);
    expect((error as BrokenCircuitError).retryAfterMs).toBe(600);
    breaker.mode = 'shadow';
    await expect(breaker.execute(() => 'ran')).resolves.toBe('ran');
  });

  it('keeps the strategy counts across a switch: failures in shadow count towards opening in enforce', async () => {
    const clock = new ManualClock(0);
    const breaker = circuitBreaker({ mode: 'shadow', breaker: consecutive(3), clock });
    await fail(breaker, 2);
    breaker.mode = 'enforce';
    await fail(breaker, 1);
    expect(breaker.state).toBe('open');
    await expect(breaker.execute(() => 'ran')).rejects.toBeInstanceOf(BrokenCircuitError);
  });

  it('lets calls through while isolated by hand, publishing them with state "isolated"', async () => {
    const { breaker } = shadowBreaker();
    const hold = breaker.isolate();
    const seen = await rejectionsDuring(async () => {
      await expect(breaker.execute(() => 'ran')).resolves.toBe('ran');
    });
    hold.dispose();
    expect(seen).toEqual([{ policy: 'ledger', state: 'isolated', mode: 'shadow' }]);
  });
});

// Replay equality: the same deterministic traffic through an enforcing and a shadow breaker.
// The rule that makes the counts equal: the outcome of call i is fixed by the traffic, whether or
// not earlier calls ran; an enforcing breaker never sees the outcome of a call it rejects, and a
// shadow breaker records exactly the outcomes an enforcing one would (the calls it would have
// rejected run, unrecorded). Its states are then the same at every step, so it would reject
// exactly the calls the enforcing breaker rejects.

interface Call {
  readonly atMs: number;
  readonly durationMs: number;
  readonly fails: boolean;
}

/** Overlapping calls, every 0–40 ms, failing rarely except in three incidents of 2 s. */
function traffic(seed: number, count: number): Call[] {
  const next = seeded(seed);
  const calls: Call[] = [];
  let at = 0;
  for (let i = 0; i < count; i++) {
    at += Math.floor(next() * 40);
    const incident = [2_000, 9_000, 16_000].some((start) => at >= start && at < start + 2_000);
    calls.push({ atMs: at, durationMs: 1 + Math.floor(next() * 60), fails: next() < (incident ? 0.9 : 0.05) });
  }
  return calls;
}

interface Replay {
  readonly rejected: number;
  readonly wouldReject: number;
  readonly ran: number;
  readonly transitions: readonly string[];
}

async function replay(mode: 'enforce' | 'shadow', strategy: () => BreakerStrategy, calls: readonly Call[]): Promise<Replay> {
  const clock = new ManualClock(0);
  const breaker: CircuitBreakerPolicy = circuitBreaker({ mode, breaker: strategy(), halfOpenAfterMs: 300, halfOpenMaxCalls: 2, clock });
  const transitions: string[] = [];
  breaker.onStateChange(({ from, to }) => transitions.push(`${clock.now()} ${from}→${to}`));
  let rejected = 0;
  let ran = 0;
  const seen = await rejectionsDuring(async () => {
    const pending: Promise<unknown>[] = [];
    for (const call of calls) {
      await clock.advance(call.atMs - clock.now());
      const work = () =>
        new Promise<string>((resolve, reject) => {
          ran++;
          clock.setTimeout(() => (call.fails ? reject(new Boom('down')) : resolve('ok')), call.durationMs);
        });
      pending.push(
        breaker.execute(work).catch((error: unknown) => {
          if (error instanceof BrokenCircuitError) rejected++;
        }),
      );
    }
    await clock.advance(1_000);
    await Promise.all(pending);
  });
  const wouldReject = seen.filter((m) => m.mode === 'shadow').length;
  return { rejected, wouldReject, ran, transitions };
}

describe('circuitBreaker: replaying traffic in both modes', () => {
  const calls = traffic(15, 1_500);

  it.each([
    ['consecutive(5)', () => consecutive(5)],
    ['countWindow', () => countWindow({ size: 20, minimumCalls: 10, failureRateThreshold: 0.5 })],
    ['timeWindow with slow calls', () => timeWindow({ windowMs: 1_000, minimumCalls: 10, failureRateThreshold: 0.5, slowCallMs: 50, slowCallRateThreshold: 0.5 })],
  ])('%s: the shadow breaker would reject exactly the calls the enforcing one rejects, through the same states', async (_name, strategy) => {
    const enforce = await replay('enforce', strategy, calls);
    const shadow = await replay('shadow', strategy, calls);
    expect(enforce.rejected).toBeGreaterThan(100); // the traffic does trip the breaker, many times
    expect(enforce.wouldReject).toBe(0);
    expect(shadow.rejected).toBe(0);
    expect(shadow.ran).toBe(calls.length);
    expect(shadow.wouldReject).toBe(enforce.rejected);
    expect(shadow.transitions).toEqual(enforce.transitions);
    expect(enforce.transitions.length).toBeGreaterThan(6);
  });
});
