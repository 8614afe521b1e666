// The breaker-state gauge: read from the breakers given at each scrape, or the last state seen on
// the channels for the others.
import { afterEach, describe, expect, it } from 'vitest';
import { circuitBreaker, consecutive, ManualClock, type CircuitBreakerPolicy } from '../../../src/index.js';
import { fromOpossum, opossumAction } from '../../../src/interop/opossum.js';
import { newBreaker, shutDownEngines } from '../interop/support.js';
import { Boom, ignore, series, setup } from './support.js';

afterEach(shutDownEngines);

const GAUGE = 'bulwark_circuit_state';

/** The gauge's series for `policy` as { state: value }. */
async function statesOf(registry: Parameters<typeof series>[0], policy: string): Promise<Record<string, number>> {
  const out: Record<string, number> = {};
  for (const s of await series(registry, GAUGE)) if (s.labels.policy === policy) out[String(s.labels.state)] = s.value;
  return out;
}

async function trip(breaker: CircuitBreakerPolicy): Promise<void> {
  await breaker.execute(() => Promise.reject(new Boom('down'))).catch(ignore);
}

describe('the circuit_state gauge', () => {
  it('reads the breakers it was given at scrape time: 1 for the current state, 0 for the others', async () => {
    const clock = new ManualClock();
    const b = circuitBreaker({ name: 'payments', breaker: consecutive(1), halfOpenAfterMs: 1_000, clock });
    const { registry } = setup({ circuitBreakers: [b] });
    expect(await statesOf(registry, 'payments')).toEqual({ closed: 1, open: 0, 'half-open': 0, isolated: 0 });
    await trip(b);
    expect(await statesOf(registry, 'payments')).toEqual({ closed: 0, open: 1, 'half-open': 0, isolated: 0 });
    const hold = b.isolate();
    expect(await statesOf(registry, 'payments')).toEqual({ closed: 0, open: 0, 'half-open': 0, isolated: 1 });
    hold.dispose();
    expect(await statesOf(registry, 'payments')).toEqual({ closed: 1, open: 0, 'half-open': 0, isolated: 0 });
  });

  it('shows an open breaker whose period has ended as half-open without any call, and counts that move', async () => {
    const clock = new ManualClock();
    const b = circuitBreaker({ name: 'search', breaker: consecutive(1), halfOpenAfterMs: 1_000, clock });
    const { registry } = setup({ circuitBreakers: [b] });
    await trip(b);
    await clock.advance(1_000);
    // No call since: only the scrape's read of `state` moves it, lazily, as a call would.
    expect(await statesOf(registry, 'search')).toEqual({ closed: 0, open: 0, 'half-open': 1, isolated: 0 });
    const moves = (await series(registry, 'bulwark_circuit_transitions_total')).filter((s) => s.labels.to === 'half-open');
    expect(moves.map((s) => s.value)).toEqual([1]);
  });

  it('follows a Set of breakers that grows after registration', async () => {
    const breakers = new Set<CircuitBreakerPolicy>();
    const { registry } = setup({ circuitBreakers: breakers });
    expect(await series(registry, GAUGE)).toEqual([]);
    breakers.add(circuitBreaker({ name: 'late' }));
    expect(await statesOf(registry, 'late')).toEqual({ closed: 1, open: 0, 'half-open': 0, isolated: 0 });
  });

  it('keeps what a one-shot iterator yielded, for every scrape', async () => {
    const b = circuitBreaker({ name: 'once' });
    const { registry } = setup({ circuitBreakers: [b].values() });
    expect(await statesOf(registry, 'once')).toEqual({ closed: 1, open: 0, 'half-open': 0, isolated: 0 });
    expect(await statesOf(registry, 'once')).toEqual({ closed: 1, open: 0, 'half-open': 0, isolated: 0 });
  });

  it('shows breakers it was not given in the last state seen on the channels', async () => {
    const { registry } = setup();
    const b = circuitBreaker({ name: 'unlisted', breaker: consecutive(1) });
    expect(await statesOf(registry, 'unlisted')).toEqual({}); // nothing seen yet
    await trip(b);
    expect(await statesOf(registry, 'unlisted')).toEqual({ closed: 0, open: 1, 'half-open': 0, isolated: 0 });
  });

  it('learns the state of a breaker that opened before registration from its first rejection', async () => {
    const b = circuitBreaker({ name: 'early', breaker: consecutive(1) });
    await trip(b);
    const { registry } = setup();
    expect(await statesOf(registry, 'early')).toEqual({});
    await b.execute(() => 1).catch(ignore);
    expect(await statesOf(registry, 'early')).toEqual({ closed: 0, open: 1, 'half-open': 0, isolated: 0 });
  });

  it('prefers the state read from a given breaker over one seen on the channels', async () => {
    const clock = new ManualClock();
    const b = circuitBreaker({ name: 'both', breaker: consecutive(1), halfOpenAfterMs: 1_000, clock });
    const { registry } = setup({ circuitBreakers: [b] });
    await trip(b); // the channel says open
    await clock.advance(1_000); // the breaker itself now says half-open
    expect(await statesOf(registry, 'both')).toEqual({ closed: 0, open: 0, 'half-open': 1, isolated: 0 });
  });

  it('reads an opossum breaker wrapped by fromOpossum, and keeps its last state once it is shut down', async () => {
    const engine = newBreaker(opossumAction, { name: 'legacy' });
    const wrapped = fromOpossum(engine);
    // Typed as a breaker the gauge can read, 'shutdown' state and all.
    const { registry } = setup({ circuitBreakers: [wrapped] });
    expect(await statesOf(registry, 'legacy')).toEqual({ closed: 1, open: 0, 'half-open': 0, isolated: 0 });
    engine.open();
    expect(await statesOf(registry, 'legacy')).toEqual({ closed: 0, open: 1, 'half-open': 0, isolated: 0 });
    engine.shutdown();
    expect(wrapped.state).toBe('shutdown');
    expect(await statesOf(registry, 'legacy')).toEqual({ closed: 0, open: 1, 'half-open': 0, isolated: 0 });
  });

  it('keeps the last state read from a given breaker when it later reads as something else', async () => {
    let state = 'closed';
    const odd = {
      name: 'odd',
      get state(): string {
        return state;
      },
    };
    const { registry } = setup({ circuitBreakers: [odd] });
    expect(await statesOf(registry, 'odd')).toEqual({ closed: 1, open: 0, 'half-open': 0, isolated: 0 });
    state = 'shutdown';
    expect(await statesOf(registry, 'odd')).toEqual({ closed: 1, open: 0, 'half-open': 0, isolated: 0 });
  });

  it('does not fail the scrape when a breaker cannot be read', async () => {
    const bad = {
      name: 'broken',
      get state(): 'closed' {
        throw new Error('cannot read');
      },
    };
    const good = circuitBreaker({ name: 'fine' });
    const breakers = new Set<{ name: string; state: 'closed' }>([good as never]);
    const { registry } = setup({ circuitBreakers: breakers });
    breakers.add(bad);
    expect(await statesOf(registry, 'fine')).toEqual({ closed: 1, open: 0, 'half-open': 0, isolated: 0 });
    expect(await statesOf(registry, 'broken')).toEqual({});
  });
});
