// Shadow mode's cost (issue 15 §3: ≤ 1.05× enforce on the admitted path). Shared by hot-path.mjs,
// which times these rows beside the others and judges the targets: each policy twice, in
// `'enforce'` and in `'shadow'` mode, on the path that admits (a closed breaker, a limiter with room
// to spare), and, for information, the path a shadow policy takes instead of rejecting (an open
// breaker, a used-up limit: the call runs). Names start with "shadow", so `--filter shadow` picks
// them (with the baseline). Each admitted row has an A/A control beside it, a second enforcing
// instance made after the shadow one: its ratio to the first is the noise of the measurement
// (row position, which instance the JIT met first), against which the shadow ratio is read.
import { circuitBreaker, consecutive, fixedWindow, rateLimit, rateLimiter } from '../dist/index.js';

const HOUR = 3_600_000;

async function work() {
  return 1;
}

async function fail() {
  throw new Error('down');
}

const ignore = () => {};

/**
 * The scenarios as [name, fn] pairs, and the pairs of rows (shadow, enforce) whose ns/op ratio is
 * the target.
 */
export async function shadowScenarios() {
  // A throwaway instance of each, run first: the first instance V8 optimises a policy's code for
  // ran up to 15 % faster, and allocated 48 B less, than every later one in either mode (the A/A
  // control showed it as much as the shadow row did), so none of the measured rows may be it.
  const first = [
    circuitBreaker({ name: 'bench-first', breaker: consecutive(5) }),
    rateLimit(rateLimiter({ name: 'bench-first', algorithm: fixedWindow({ limit: 2 ** 31 - 1, windowMs: HOUR }) }), { key: 'k' }),
  ];
  for (const policy of first) for (let i = 0; i < 50_000; i++) await policy.execute(work);
  const modes = ['enforce', 'shadow', 'enforce'];
  const breakers = modes.map((mode, i) => circuitBreaker({ name: `bench-${i}`, mode, breaker: consecutive(5), halfOpenAfterMs: HOUR }));
  // Room to spare: a window no call rate can use up within the run.
  const limits = modes.map((mode, i) =>
    rateLimit(rateLimiter({ name: `bench-${i}`, mode, algorithm: fixedWindow({ limit: 2 ** 31 - 1, windowMs: HOUR }) }), { key: 'k' }),
  );
  // What a shadow policy does instead of rejecting: an open breaker and a used-up limit run the call.
  const openShadow = circuitBreaker({ name: 'bench-open-shadow', mode: 'shadow', breaker: consecutive(1), halfOpenAfterMs: HOUR });
  await openShadow.execute(fail).catch(ignore);
  const usedUp = rateLimit(rateLimiter({ name: 'bench-used-up', mode: 'shadow', algorithm: fixedWindow({ limit: 1, windowMs: HOUR }) }), { key: 'k' });
  await usedUp.execute(work);

  const scenarios = [
    ['shadow: admitted, circuitBreaker closed, enforce', () => breakers[0].execute(work)],
    ['shadow: admitted, circuitBreaker closed, shadow', () => breakers[1].execute(work)],
    ['shadow: admitted, circuitBreaker closed, enforce (A/A control)', () => breakers[2].execute(work)],
    ['shadow: admitted, rateLimit (memory), enforce', () => limits[0].execute(work)],
    ['shadow: admitted, rateLimit (memory), shadow', () => limits[1].execute(work)],
    ['shadow: admitted, rateLimit (memory), enforce (A/A control)', () => limits[2].execute(work)],
    ['shadow: would reject, circuitBreaker open, call runs', () => openShadow.execute(work)],
    ['shadow: would reject, rateLimit used up, call runs', () => usedUp.execute(work)],
  ];
  const row = (what, mode) => `shadow: admitted, ${what}, ${mode}`;
  const targets = [
    ['closed circuitBreaker: shadow ÷ enforce', row('circuitBreaker closed', 'shadow'), row('circuitBreaker closed', 'enforce')],
    ['A/A control, closed circuitBreaker: enforce ÷ enforce', row('circuitBreaker closed', 'enforce (A/A control)'), row('circuitBreaker closed', 'enforce')],
    ['rateLimit (memory store): shadow ÷ enforce', row('rateLimit (memory)', 'shadow'), row('rateLimit (memory)', 'enforce')],
    ['A/A control, rateLimit (memory store): enforce ÷ enforce', row('rateLimit (memory)', 'enforce (A/A control)'), row('rateLimit (memory)', 'enforce')],
  ];
  return { scenarios, targets };
}
