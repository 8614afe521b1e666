// Rejected calls: what a policy costs when it refuses a call at once, the path that runs at full
// request rate during an outage (issue 14 §2). Shared by hot-path.mjs (times) and
// rejection-instructions.mjs (instruction counts), so both measure the same scenarios.
//
// Each breaker is opened the way an outage opens it, by failed calls (opossum's by its own
// `open()`: it opens on its first failure anyway), and stays open for an hour, longer than any
// run. Each bulkhead holds its one slot with a call that never settles, and has no queue. The rate
// limiter allows one call an hour and has had it. Every scenario swallows its rejection with the
// same `.catch`, which the baseline pays too, on an error made once.
import { createRequire } from 'node:module';
import { bulkhead, circuitBreaker, consecutive, fixedWindow, rateLimit, rateLimiter } from '../dist/index.js';

const require = createRequire(import.meta.url);
const cockatiel = require('cockatiel');
const CircuitBreaker = require('opossum');

const HOUR = 3_600_000;
const ignore = () => {};
const never = new Promise(ignore);
const made = new Error('made once');

async function work() {
  return 1;
}

async function fail() {
  throw made;
}

/**
 * The rejection scenarios as [name, fn] pairs, every policy already refusing, and `close()` to
 * stop the timers opossum keeps. Names start with what refuses, so `--filter 'rejected'` picks them.
 */
export async function rejectionScenarios() {
  const bBreaker = circuitBreaker({ breaker: consecutive(5), halfOpenAfterMs: HOUR });
  const cBreaker = cockatiel.circuitBreaker(cockatiel.handleAll, {
    halfOpenAfter: HOUR,
    breaker: new cockatiel.ConsecutiveBreaker(5),
  });
  const oBreaker = new CircuitBreaker(work, { resetTimeout: HOUR });
  for (let i = 0; i < 5; i++) {
    await bBreaker.execute(fail).catch(ignore);
    await cBreaker.execute(fail).catch(ignore);
  }
  oBreaker.open();

  const bBulkhead = bulkhead({ maxConcurrent: 1, maxQueue: 0 });
  const cBulkhead = cockatiel.bulkhead(1, 0);
  bBulkhead.execute(() => never);
  cBulkhead.execute(() => never);

  const limiter = rateLimiter({ algorithm: fixedWindow({ limit: 1, windowMs: HOUR }) });
  const bRateLimit = rateLimit(limiter, { key: 'k' });
  await bRateLimit.execute(work);

  const refusing = [
    ['open breaker: rejected call, bulwark', () => bBreaker.execute(work)],
    ['open breaker: rejected call, cockatiel', () => cBreaker.execute(work)],
    ['open breaker: rejected call, opossum', () => oBreaker.fire()],
    ['full bulkhead: rejected call, bulwark', () => bBulkhead.execute(work)],
    ['full bulkhead: rejected call, cockatiel', () => cBulkhead.execute(work)],
    ['rate limit: rejected call, bulwark', () => bRateLimit.execute(work)],
  ];
  // Each must really refuse: a call that went through would time the wrong path.
  for (const [name, call] of refusing) {
    if (await call().then(() => true, () => false)) throw new Error(`${name}: the call was not rejected`);
  }
  const scenarios = [
    ['baseline: rejected await (error made once)', () => fail().catch(ignore)],
    ...refusing.map(([name, call]) => [name, () => call().catch(ignore)]),
  ];
  return { scenarios, close: () => oBreaker.shutdown() };
}
