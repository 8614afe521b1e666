// gracefulShutdown given no `health`: readiness still fails before the drain, for the healths that
// bulwark's probe routes serve, and the log says only what is true. Regression: it logged
// "readiness failing" while /readyz kept answering 200.
import { describe, expect, it } from 'vitest';
import { gracefulShutdown, health, healthHandler, ManualClock } from '../../../src/index.js';
import { healthMiddleware } from '../../../src/adapters/express.js';
import { servedHealths } from '../../../src/health/served-health.js';
import { flush } from '../../support/helpers.js';

// The tests run in order in one process: the first sees no probe route made yet.
describe('gracefulShutdown without health', () => {
  it('with no probe routes served, says there is no readiness to fail, rather than that it is failing', async () => {
    expect(servedHealths()).toEqual([]);
    const clock = new ManualClock();
    const lines: string[] = [];
    const done = gracefulShutdown(null, { signals: [], exit: false, drainDelayMs: 100, clock, log: (l) => lines.push(l) }).shutdown();
    await flush();
    expect(lines).toEqual(['shutdown: no readiness to fail (no health given, and none served by bulwark probe routes); draining for 100 ms']);
    await clock.advance(100);
    await done;
  });

  it('fails the readiness of the health a probe route serves, even one made after the controller', async () => {
    const clock = new ManualClock();
    const lines: string[] = [];
    const stopper = gracefulShutdown(null, { signals: [], exit: false, drainDelayMs: 100, clock, log: (l) => lines.push(l) });
    const h = health();
    healthHandler(h);
    expect((await h.readiness()).status).toBe('pass');
    const done = stopper.shutdown();
    await flush();
    expect(await h.readiness()).toMatchObject({ status: 'fail', state: 'shutting-down' });
    expect((await h.liveness()).status).toBe('pass');
    expect(lines[0]).toMatch(/^shutdown: readiness failing \((the health|\d+ healths) served by bulwark probe routes\); draining for 100 ms$/);
    await clock.advance(100);
    await done;
  });

  it('given a health, fails only that one', async () => {
    const clock = new ManualClock();
    const served = health();
    healthMiddleware(served);
    const given = health();
    const lines: string[] = [];
    const done = gracefulShutdown(null, { health: given, signals: [], exit: false, drainDelayMs: 100, clock, log: (l) => lines.push(l) }).shutdown();
    await flush();
    expect(given.isShuttingDown).toBe(true);
    expect(served.isShuttingDown).toBe(false);
    expect(lines[0]).toBe('shutdown: readiness failing; draining for 100 ms');
    await clock.advance(100);
    await done;
  });

  it('lists each served health once, however many routes serve it', () => {
    const h = health();
    healthHandler(h);
    healthHandler(h, { prefix: '/again' });
    healthMiddleware(h);
    expect(servedHealths().filter((x) => x === h)).toHaveLength(1);
  });
});
