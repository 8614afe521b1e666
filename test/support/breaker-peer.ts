// A circuit breaker's side of a shared breaker store, for tests that connect to a store directly
// (the store reads the name and the rule; the fleet's state applied to it goes nowhere).
import type { BreakerPeer } from '../../src/circuit/store.js';
import { systemClock } from '../../src/core/clock.js';

/** A peer named `name` with a `consecutive(5)` rule, one probe per window and a 1 s open period. */
export function breakerPeer(name: string): BreakerPeer {
  return {
    name,
    halfOpenMaxCalls: 1,
    probeTimeoutMs: 30_000,
    maxOpenMs: 1_000,
    rule: { kind: 'consecutive', threshold: 5 },
    clock: systemClock,
    openDelay: () => 1_000,
    apply: () => {},
  };
}
