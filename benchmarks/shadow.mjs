// Shadow mode's cost (issue 15 §3: ≤ 1.05× enforce on the admitted path). Shared by hot-path.mjs,
// which times these rows beside the others and judges the targets: each policy twice, in
// `'enforce'` and in `'shadow'` mode, on the path that admits (a closed breaker, a limiter with room
// to spare), and, for information, the path a shadow policy takes instead of rejecting (an open
// breaker, a used-up limit: the call runs). Names start with "shadow", so `--filter shadow` picks
// them (with the baseline).
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
  const breakers = ['enforce', 'shadow'].map((mode) => circuitBreaker({ name: `bench-${mode}`, mode, breaker: consecutive(5), halfOpenAfterMs: HOUR }));
  // Room to spare: a window no call rate can use up within the run.
  const limits = ['enforce', 'shadow'].map((mode) =>
    rateLimit(rateLimiter({ name: `bench-${mode}`, mode, algorithm: fixedWindow({ limit: 2 ** 31 - 1, windowMs: HOUR }) }), { key: 'k' }),
  );
  // What a shadow policy does instead of rejecting: an open breaker and a used-up limit run the call.
  const openShadow = circuitBreaker({ name: 'bench-open-shadow', mode: 'shadow', breaker: consecutive(1), halfOpenAfterMs: HOUR });
  await openShadow.execute(fail).catch(ignore);
  const usedUp = rateLimit(rateLimiter({ name: 'bench-used-up', mode: 'shadow', algorithm: fixedWindow({ limit: 1, windowMs: HOUR }) }), { key: 'k' });
  await usedUp.execute(work);

  const scenarios = [
    ['shadow: admitted, circuitBreaker closed, enforce', () => breakers[0].execute(work)],
    ['shadow: admitted, circuitBreaker closed, shadow', () => breakers[1].execute(work)],
    ['shadow: admitted, rateLimit (memory), enforce', () => limits[0].execute(work)],
    ['shadow: admitted, rateLimit (memory), shadow', () => limits[1].execute(work)],
    ['shadow: would reject, circuitBreaker open, call runs', () => openShadow.execute(work)],
    ['shadow: would reject, rateLimit used up, call runs', () => usedUp.execute(work)],
  ];
  const targets = [
    ['closed circuitBreaker', 'shadow: admitted, circuitBreaker closed, shadow', 'shadow: admitted, circuitBreaker closed, enforce'],
    ['rateLimit (memory store)', 'shadow: admitted, rateLimit (memory), shadow', 'shadow: admitted, rateLimit (memory), enforce'],
  ];
  return { scenarios, targets };
}
