import { subscribe, unsubscribe } from 'node:diagnostics_channel';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { channelNames, gracefulShutdown, health, ManualClock, type HttpServerLike } from '../../../src/index.js';
import { deferred, flush } from '../../support/helpers.js';

/** A stand-in for a node:http server that records what shutdown does to it. */
function fakeServer(opts: { closesAfterForce?: boolean } = {}) {
  const log: string[] = [];
  let onClosed: (() => void) | undefined;
  const listeners = new Set<unknown>();
  const server: HttpServerLike & { log: string[]; steps(): string[]; finishClose(): void; listeners: Set<unknown> } = {
    log,
    /** The log with repeated idle sweeps folded into one entry. */
    steps: () => log.filter((step, i) => step !== 'closeIdle' || log[i - 1] !== 'closeIdle'),
    listeners,
    close(cb) {
      log.push('close');
      onClosed = () => cb?.();
    },
    closeIdleConnections() {
      log.push('closeIdle');
    },
    closeAllConnections() {
      log.push('closeAll');
      if (opts.closesAfterForce !== false) onClosed?.();
    },
    prependListener(_event, l) {
      listeners.add(l);
      return server;
    },
    removeListener(_event, l) {
      listeners.delete(l);
      return server;
    },
    finishClose() {
      onClosed?.();
    },
  };
  return server;
}

describe('gracefulShutdown sequencing', () => {
  let clock: ManualClock;
  beforeEach(() => {
    clock = new ManualClock();
  });

  it('fails readiness first, drains, then closes, runs hooks and exits once with 0', async () => {
    const server = fakeServer();
    const h = health();
    const order: string[] = [];
    const exit = vi.fn();
    const stopper = gracefulShutdown(server, {
      health: h,
      signals: [],
      drainDelayMs: 1000,
      closeTimeoutMs: 5000,
      clock,
      processExit: exit,
      hooks: [async function first() { order.push('first'); }, function second() { order.push('second'); }],
    });
    expect(server.listeners.size).toBe(1);
    expect(stopper.phase).toBe('running');
    const done = stopper.shutdown();
    expect(stopper.shutdown()).toBe(done);
    await flush();
    expect(stopper.phase).toBe('draining');
    expect((await h.readiness()).status).toBe('fail');
    expect(server.log).toEqual([]);
    await clock.advance(999);
    expect(server.log).toEqual([]);
    await clock.advance(1);
    expect(stopper.phase).toBe('closing');
    expect(server.log).toEqual(['close', 'closeIdle']);
    expect(order).toEqual([]);
    server.finishClose();
    const result = await done;
    expect(order).toEqual(['first', 'second']);
    expect(result).toEqual({ trigger: 'shutdown', forced: false, failedHooks: [], exitCode: 0 });
    expect(exit).toHaveBeenCalledTimes(1);
    expect(exit).toHaveBeenCalledWith(0);
    expect(stopper.phase).toBe('done');
    expect(server.listeners.size).toBe(0);
    expect(clock.pendingTimers).toBe(0);
  });

  it('cuts connections still open after closeTimeoutMs and exits with 1', async () => {
    const server = fakeServer();
    const exit = vi.fn();
    const stopper = gracefulShutdown(server, { signals: [], drainDelayMs: 0, closeTimeoutMs: 300, clock, processExit: exit });
    const done = stopper.shutdown('deploy');
    await clock.advance(299);
    expect(server.steps()).toEqual(['close', 'closeIdle']);
    await clock.advance(1);
    const result = await done;
    expect(server.steps()).toEqual(['close', 'closeIdle', 'closeAll']);
    expect(result).toMatchObject({ trigger: 'deploy', forced: true, exitCode: 1 });
    expect(exit).toHaveBeenCalledWith(1);
  });

  it('bounds each hook by hookTimeoutMs, aborting its signal, and still runs the next', async () => {
    const lines: string[] = [];
    let seen: AbortSignal | undefined;
    const ran: string[] = [];
    const stopper = gracefulShutdown(null, {
      signals: [],
      drainDelayMs: 0,
      hookTimeoutMs: 500,
      clock,
      exit: false,
      log: (m) => lines.push(m),
      hooks: [
        function hangs({ signal }) { seen = signal; return new Promise(() => {}); },
        function throws() { throw new Error('flush failed'); },
        function rejects() { return Promise.reject(new Error('nope')); },
        function fine({ trigger }) { ran.push(trigger); },
      ],
    });
    const done = stopper.shutdown();
    await clock.advance(500);
    const result = await done;
    expect(seen!.aborted).toBe(true);
    expect(ran).toEqual(['shutdown']);
    expect(result.failedHooks).toEqual(['hangs', 'throws', 'rejects']);
    expect(result.exitCode).toBe(1);
    expect(lines).toContain('shutdown: hook "hangs" timed out after 500 ms');
    expect(lines).toContain('shutdown: hook "throws" failed: flush failed');
  });

  it('sweeps idle keep-alive connections every 100 ms while in-flight requests finish', async () => {
    const server = fakeServer();
    const done = gracefulShutdown(server, { signals: [], drainDelayMs: 0, clock, exit: false }).shutdown();
    await clock.advance(350);
    expect(server.log).toEqual(['close', 'closeIdle', 'closeIdle', 'closeIdle', 'closeIdle']);
    server.finishClose();
    expect((await done).forced).toBe(false);
    expect(clock.pendingTimers).toBe(0);
  });

  it('with exit: false, never calls processExit', async () => {
    const exit = vi.fn();
    const result = await gracefulShutdown(null, { signals: [], drainDelayMs: 0, exit: false, processExit: exit }).shutdown();
    expect(result.exitCode).toBe(0);
    expect(exit).not.toHaveBeenCalled();
  });

  it('closes a Fastify-like app through its close() promise', async () => {
    const server = fakeServer();
    const closing = deferred();
    const app = { server, close: vi.fn(() => closing.promise) };
    const stopper = gracefulShutdown(app, { signals: [], drainDelayMs: 0, clock, exit: false });
    const done = stopper.shutdown();
    await flush();
    expect(app.close).toHaveBeenCalledTimes(1);
    expect(server.log).toEqual(['closeIdle']);
    closing.resolve();
    expect((await done).forced).toBe(false);
  });

  it('a Fastify-like app cut at closeTimeoutMs still finishes its close (onClose) before the hooks, bounded by hookTimeoutMs', async () => {
    const order: string[] = [];
    const makeApp = (onClose: Promise<void>) => {
      const server = fakeServer();
      // Like Fastify: close() resolves after the server has closed and its onClose hooks have run.
      const close = () => new Promise<void>((resolve) => server.close(() => void onClose.then(() => { order.push('onClose'); resolve(); })));
      return { server, close };
    };
    const hooks = [function hook() { order.push('hook'); }];
    const onClose = deferred();
    const app = makeApp(onClose.promise);
    const done = gracefulShutdown(app, { signals: [], drainDelayMs: 0, closeTimeoutMs: 300, hookTimeoutMs: 1000, clock, exit: false, hooks }).shutdown();
    await clock.advance(300);
    expect(app.server.steps()).toEqual(['close', 'closeIdle', 'closeAll']);
    expect(order).toEqual([]);
    onClose.resolve();
    expect(await done).toMatchObject({ forced: true, exitCode: 1 });
    expect(order).toEqual(['onClose', 'hook']);

    // An onClose that never settles is not waited for beyond hookTimeoutMs.
    order.length = 0;
    const stuck = makeApp(new Promise<void>(() => {}));
    const done2 = gracefulShutdown(stuck, { signals: [], drainDelayMs: 0, closeTimeoutMs: 300, hookTimeoutMs: 1000, clock, exit: false, hooks }).shutdown();
    await clock.advance(300);
    expect(order).toEqual([]);
    await clock.advance(1000);
    expect(await done2).toMatchObject({ forced: true, exitCode: 1 });
    expect(order).toEqual(['hook']);
    expect(clock.pendingTimers).toBe(0);
  });

  it('a log function that throws (an unbound logger method) does not stop the shutdown', async () => {
    const server = fakeServer();
    const exit = vi.fn();
    const ran: string[] = [];
    const log = (): void => {
      throw new TypeError("Cannot read properties of undefined (reading 'level')");
    };
    const stopper = gracefulShutdown(server, {
      signals: [],
      drainDelayMs: 100,
      clock,
      processExit: exit,
      log,
      hooks: [function hook() { ran.push('hook'); }],
    });
    const done = stopper.shutdown();
    await clock.advance(100);
    server.finishClose();
    expect(await done).toMatchObject({ forced: false, exitCode: 0 });
    expect(ran).toEqual(['hook']);
    expect(exit).toHaveBeenCalledTimes(1);
    expect(server.listeners.size).toBe(0);
  });

  it('publishes each phase on bulwark:health:shutdown', async () => {
    const phases: unknown[] = [];
    const listener = (m: unknown): void => void phases.push(m);
    subscribe(channelNames.shutdownPhase, listener);
    try {
      await gracefulShutdown(null, { signals: [], drainDelayMs: 0, exit: false }).shutdown('SIGTERM');
    } finally {
      unsubscribe(channelNames.shutdownPhase, listener);
    }
    expect(phases).toEqual(['draining', 'closing', 'hooks', 'exiting'].map((phase) => ({ phase, signal: 'SIGTERM' })));
  });
});

describe('gracefulShutdown signals', () => {
  // A signal nothing else in the test worker listens to; emitting it only calls our handlers.
  const SIG = 'SIGUSR2';
  let clock: ManualClock;
  beforeEach(() => {
    clock = new ManualClock();
    expect(process.listenerCount(SIG)).toBe(0);
  });
  afterEach(() => {
    expect(process.listenerCount(SIG)).toBe(0);
  });

  it('starts on the signal; a second signal does not run it twice but hurries: no drain wait, connections cut', async () => {
    const server = fakeServer({ closesAfterForce: true });
    const exit = vi.fn();
    const lines: string[] = [];
    const hook = vi.fn();
    gracefulShutdown(server, { signals: [SIG], drainDelayMs: 10_000, clock, processExit: exit, hooks: [hook], log: (m) => lines.push(m) });
    expect(process.listenerCount(SIG)).toBe(1);
    process.emit(SIG, SIG);
    await flush();
    expect(server.log).toEqual([]);
    process.emit(SIG, SIG);
    await flush();
    expect(server.log).toEqual(['close', 'closeIdle', 'closeAll']);
    await flush();
    expect(hook).toHaveBeenCalledTimes(1);
    expect(exit).toHaveBeenCalledTimes(1);
    expect(exit).toHaveBeenCalledWith(1);
    expect(lines.filter((l) => l.startsWith('shutdown: done'))).toHaveLength(1);
    expect(lines).toContain(`shutdown: ${SIG} received again; hurrying`);
    expect(clock.pendingTimers).toBe(0);
  });

  it("with onSecondSignal: 'ignore', a second signal changes nothing", async () => {
    const server = fakeServer();
    const exit = vi.fn();
    gracefulShutdown(server, { signals: [SIG], drainDelayMs: 1000, clock, processExit: exit, onSecondSignal: 'ignore' });
    process.emit(SIG, SIG);
    process.emit(SIG, SIG);
    process.emit(SIG, SIG);
    await clock.advance(999);
    expect(server.log).toEqual([]);
    await clock.advance(1);
    server.finishClose();
    await flush();
    expect(exit).toHaveBeenCalledTimes(1);
    expect(exit).toHaveBeenCalledWith(0);
  });

  it('dispose() removes the signal handlers and the request listener', () => {
    const server = fakeServer();
    const stopper = gracefulShutdown(server, { signals: [SIG, SIG] });
    expect(process.listenerCount(SIG)).toBe(1);
    stopper.dispose();
    stopper.dispose();
    expect(server.listeners.size).toBe(0);
  });
});
