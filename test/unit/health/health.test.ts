import { subscribe, unsubscribe } from 'node:diagnostics_channel';
import { afterEach, describe, expect, it } from 'vitest';
import { channelNames, health, ManualClock, TimeoutError, type HealthCheck } from '../../../src/index.js';
import { deferred, flush } from '../../support/helpers.js';

const ok = (name: string, extra: Partial<HealthCheck> = {}): HealthCheck => ({ name, check: () => undefined, ...extra });

describe('health checks', () => {
  it('passes readiness when every ready check passes, listing each result', async () => {
    const h = health({ checks: [ok('a'), ok('b', { check: () => true })] });
    const r = await h.readiness();
    expect(r.status).toBe('pass');
    expect(Object.keys(r.checks)).toEqual(['a', 'b']);
    expect(r.checks.a).toMatchObject({ status: 'pass', critical: true, cached: false });
  });

  it('reads void and true as pass, false, a throw, a rejection and { status: fail } as fail', async () => {
    const h = health({
      checks: [
        ok('void', { check: async () => undefined }),
        ok('false', { check: () => false }),
        ok('throws', { check: () => { throw new Error('x'); } }),
        ok('rejects', { check: () => Promise.reject(new Error('y')) }),
        ok('reported', { check: () => ({ status: 'fail', details: { depth: 3 } }) }),
        ok('warn', { check: () => ({ status: 'warn' }) }),
        ok('weird', { check: () => 42 as never }),
      ],
    });
    const r = await h.readiness();
    expect(r.status).toBe('fail');
    const summary = Object.fromEntries(Object.entries(r.checks).map(([k, v]) => [k, [v.status, v.failure]]));
    expect(summary).toEqual({
      void: ['pass', undefined],
      false: ['fail', 'returned-false'],
      throws: ['fail', 'threw'],
      rejects: ['fail', 'threw'],
      reported: ['fail', 'reported-fail'],
      warn: ['warn', undefined],
      weird: ['fail', 'threw'],
    });
    expect(r.checks.reported!.details).toEqual({ depth: 3 });
    expect(r.checks.weird!.error).toBeInstanceOf(TypeError);
  });

  it('keeps the thrown error for logs but out of JSON and drops non-primitive details', async () => {
    const secret = Object.assign(new Error('auth failed for redis://:hunter2@10.0.0.7:6379'), { address: '10.0.0.7' });
    const h = health({
      checks: [
        ok('db', { check: () => { throw secret; } }),
        ok('d', { check: () => ({ status: 'pass', details: { n: 1, err: secret as never, nested: { a: 1 } as never, s: 'x' } }) }),
      ],
    });
    const r = await h.readiness();
    expect(r.checks.db!.error).toBe(secret);
    const json = JSON.stringify(r);
    expect(json).not.toContain('hunter2');
    expect(json).not.toContain('10.0.0.7');
    expect(r.checks.d!.details).toEqual({ n: 1, s: 'x' });
  });

  it('an outcome that throws when read fails that run only: the check is not wedged (sync or async)', async () => {
    const clock = new ManualClock();
    let calls = 0;
    const hostile = (): never => ({ get status(): never { throw new Error('getter'); } }) as never;
    const h = health({
      clock,
      checks: [
        ok('sync', { check: () => (++calls === 1 ? hostile() : true) }),
        ok('async', { timeoutMs: 100, check: async () => (calls === 1 ? hostile() : true) }),
      ],
    });
    const first = await h.readiness();
    expect(first.checks.sync).toMatchObject({ status: 'fail', failure: 'threw' });
    expect(first.checks.async).toMatchObject({ status: 'fail', failure: 'threw' });
    expect(first.checks.sync!.error).toBeInstanceOf(Error);
    await clock.advance(100);
    const second = await h.readiness();
    expect(second.status).toBe('pass');
  });

  it('a failing non-critical check is reported but does not fail the probe', async () => {
    const h = health({ checks: [ok('cache', { critical: false, check: () => false })] });
    const r = await h.readiness();
    expect(r.status).toBe('pass');
    expect(r.checks.cache).toMatchObject({ status: 'fail', critical: false });
  });

  it('runs each probe with only its own checks', async () => {
    const h = health({
      checks: [ok('l', { probes: ['live'] }), ok('r'), ok('s', { probes: ['startup'] }), ok('lr', { probes: ['live', 'ready'] })],
    });
    expect(Object.keys((await h.liveness()).checks)).toEqual(['l', 'lr']);
    expect(Object.keys((await h.startup()).checks)).toEqual(['s']);
    expect(Object.keys((await h.readiness()).checks)).toEqual(['r', 'lr']);
    expect(Object.keys((await h.summary()).checks)).toEqual(['l', 'r', 's', 'lr']);
    expect(h.checkNames).toEqual(['l', 'r', 's', 'lr']);
  });
});

describe('timeouts, caching and sharing', () => {
  it('cuts a hanging check at its timeout, aborting its signal, and does not start a second copy while it hangs', async () => {
    const clock = new ManualClock();
    let calls = 0;
    let seen: AbortSignal | undefined;
    const hang = deferred();
    const h = health({ clock, checks: [ok('slow', { timeoutMs: 200, check: (signal) => { calls++; seen = signal; return hang.promise; } })] });
    const p = h.readiness();
    await clock.advance(199);
    let settled = false;
    void p.then(() => (settled = true));
    await flush();
    expect(settled).toBe(false);
    await clock.advance(1);
    const r = await p;
    expect(r.status).toBe('fail');
    expect(r.checks.slow).toMatchObject({ status: 'fail', failure: 'timed-out', durationMs: 200 });
    expect(r.checks.slow!.error).toBeInstanceOf(TimeoutError);
    expect(seen!.aborted).toBe(true);
    // Still hanging: the next probe reports it without piling another call on top.
    const again = await h.readiness();
    expect(again.checks.slow!.failure).toBe('still-running');
    expect(calls).toBe(1);
    hang.resolve();
    await flush();
    const after = h.readiness();
    await clock.advance(0);
    expect((await after).status).toBe('pass');
    expect(calls).toBe(2);
  });

  it('shares one in-flight run between concurrent probes (no thundering herd)', async () => {
    let calls = 0;
    const gate = deferred();
    const h = health({ checks: [ok('db', { probes: ['live', 'ready'], check: async () => { calls++; await gate.promise; } })] });
    const probes = [h.readiness(), h.readiness(), h.liveness(), h.summary(), ...Array.from({ length: 20 }, () => h.readiness())];
    await flush();
    expect(calls).toBe(1);
    gate.resolve();
    const reports = await Promise.all(probes);
    expect(reports.every((r) => r.status === 'pass')).toBe(true);
    expect(calls).toBe(1);
  });

  it('reuses a result for cacheMs, then runs the check again', async () => {
    const clock = new ManualClock();
    let calls = 0;
    const h = health({ clock, cacheMs: 1000, checks: [ok('db', { check: () => { calls++; } })] });
    expect((await h.readiness()).checks.db!.cached).toBe(false);
    await clock.advance(999);
    const second = await h.readiness();
    expect(second.checks.db!.cached).toBe(true);
    expect(calls).toBe(1);
    await clock.advance(1);
    expect((await h.readiness()).checks.db!.cached).toBe(false);
    expect(calls).toBe(2);
  });

  it('a per-check cacheMs overrides the default, and failures are cached too', async () => {
    const clock = new ManualClock();
    let calls = 0;
    const h = health({ clock, cacheMs: 1000, checks: [ok('db', { cacheMs: 0, check: () => { calls++; return false; } })] });
    await h.readiness();
    await h.readiness();
    expect(calls).toBe(2);
    const cached = health({ clock, cacheMs: 500, checks: [ok('x', { check: () => { calls++; throw new Error('no'); } })] });
    await cached.readiness();
    const r = await cached.readiness();
    expect(r.checks.x).toMatchObject({ status: 'fail', failure: 'threw', cached: true });
    expect(r.checks.x!.error).toBeInstanceOf(Error);
  });
});

describe('the default timeout and the kubelet', () => {
  it('cuts a check that sets no timeout at 500 ms, half the kubelet default probe timeout (regression: 1000 ms made a hung check time the probe out)', async () => {
    const clock = new ManualClock();
    const h = health({ clock, checks: [ok('hang', { check: () => new Promise(() => {}) })] });
    const p = h.readiness();
    let settled = false;
    void p.then(() => (settled = true));
    await clock.advance(499);
    expect(settled).toBe(false);
    await clock.advance(1);
    expect((await p).checks.hang).toMatchObject({ failure: 'timed-out', durationMs: 500 });
  });

  it('before startup completes, runs the startup and readiness checks side by side, so a probe waits one timeout, not two', async () => {
    const clock = new ManualClock();
    const slowStart = deferred();
    const h = health({
      clock,
      checks: [ok('warm', { probes: ['startup'], check: () => slowStart.promise }), ok('db', { check: () => new Promise(() => {}) })],
    });
    const p = h.readiness();
    await clock.advance(400);
    slowStart.resolve(); // startup passes just before its timeout...
    await flush();
    await clock.advance(100); // ...and the hung readiness check was cut at 500 ms from the start, not 900
    const r = await p;
    expect(r).toMatchObject({ status: 'fail', checks: { db: { failure: 'timed-out', durationMs: 500 } } });
    expect(h.isStarted).toBe(true);
  });
});

describe('one check by name', () => {
  const h = health({
    checks: [ok('db'), ok('cache', { critical: false, check: () => false }), ok('loop', { probes: ['live'] }), ok('warm', { probes: ['startup'] })],
  });

  it('knows which probe has which check', () => {
    expect(h.hasCheck('db', 'ready')).toBe(true);
    expect(h.hasCheck('db', 'live')).toBe(false);
    expect(h.hasCheck('loop', 'live')).toBe(true);
    expect(h.hasCheck('warm')).toBe(true); // 'summary': any check
    expect(h.hasCheck('nope')).toBe(false);
  });

  it('answers as the probe with only that check, failing when it fails, critical or not', async () => {
    expect(await h.runCheck('db', 'ready')).toMatchObject({ status: 'pass', checks: { db: { status: 'pass' } } });
    expect(Object.keys((await h.runCheck('db', 'ready')).checks)).toEqual(['db']);
    expect(await h.runCheck('cache', 'ready')).toMatchObject({ status: 'fail', checks: { cache: { critical: false } } });
    expect((await h.readiness()).status).toBe('pass');
    expect((await h.runCheck('loop', 'live')).status).toBe('pass');
    expect((await h.runCheck('cache')).status).toBe('fail');
  });

  it('refuses a name the probe does not have, or a probe that is not one', async () => {
    await expect(h.runCheck('loop', 'ready')).rejects.toThrow(new RangeError('health: runCheck(name, probe): no check named "loop" on the ready probe'));
    await expect(h.runCheck(7 as never)).rejects.toThrow(/no check named 7/);
    await expect(h.runCheck('db', 'later' as never)).rejects.toThrow(/probe must be 'live', 'ready', 'startup' or 'summary', got "later"/);
  });

  it('keeps the probe states: a readiness check fails while starting and while shutting down', async () => {
    const g = health({ waitForStarted: true, checks: [ok('db')] });
    expect(await g.runCheck('db', 'ready')).toMatchObject({ status: 'fail', state: 'starting' });
    expect(await g.runCheck('db', 'startup').catch((e: Error) => e.message)).toMatch(/no check named "db" on the startup probe/);
    g.started();
    expect((await g.runCheck('db', 'ready')).status).toBe('pass');
    g.beginShutdown();
    expect(await g.runCheck('db', 'ready')).toMatchObject({ status: 'fail', state: 'shutting-down' });
    expect(await g.runCheck('db')).toMatchObject({ status: 'fail', state: 'shutting-down' });
  });
});

describe('startup and shutdown states', () => {
  it('startup completes once when its checks pass, and is not re-run afterwards', async () => {
    let ready = false;
    let calls = 0;
    const h = health({ checks: [ok('warm', { probes: ['startup'], check: () => { calls++; return ready; } })] });
    expect(await h.startup()).toMatchObject({ status: 'fail', state: 'starting' });
    expect(await h.readiness()).toMatchObject({ status: 'fail', state: 'starting' });
    expect(h.isStarted).toBe(false);
    ready = true;
    expect((await h.startup()).status).toBe('pass');
    expect(h.isStarted).toBe(true);
    ready = false;
    const n = calls;
    expect((await h.startup()).status).toBe('pass');
    expect((await h.readiness()).status).toBe('pass');
    expect(calls).toBe(n);
  });

  it('the summary runs each check once and completes startup when the startup checks pass', async () => {
    let calls = 0;
    let warm = false;
    const h = health({ checks: [{ name: 's', probes: ['startup'], check: () => { calls++; return warm; } }, ok('r')] });
    expect(await h.summary()).toMatchObject({ status: 'fail', state: 'starting' });
    expect(calls).toBe(1);
    warm = true;
    expect((await h.summary()).status).toBe('pass');
    expect(calls).toBe(2);
    expect(h.isStarted).toBe(true);
  });

  it('with waitForStarted, startup and readiness fail until started() is called', async () => {
    const h = health({ waitForStarted: true, checks: [ok('r')] });
    expect(await h.readiness()).toMatchObject({ status: 'fail', state: 'starting' });
    expect((await h.summary()).status).toBe('fail');
    expect((await h.liveness()).status).toBe('pass');
    h.started();
    expect((await h.startup()).status).toBe('pass');
    expect((await h.readiness()).status).toBe('pass');
  });

  it('readiness and the summary fail once shutdown begins; liveness does not', async () => {
    const h = health({ checks: [ok('r', { probes: ['live', 'ready'] })] });
    expect((await h.readiness()).status).toBe('pass');
    h.beginShutdown();
    expect(h.isShuttingDown).toBe(true);
    expect(await h.readiness()).toMatchObject({ status: 'fail', state: 'shutting-down' });
    expect(await h.summary()).toMatchObject({ status: 'fail', state: 'shutting-down' });
    expect((await h.liveness()).status).toBe('pass');
  });

  it('a readiness run in flight when shutdown begins answers fail', async () => {
    const gate = deferred();
    const h = health({ checks: [ok('r', { check: () => gate.promise })] });
    const p = h.readiness();
    await flush();
    h.beginShutdown();
    gate.resolve();
    expect(await p).toMatchObject({ status: 'fail', state: 'shutting-down' });
  });
});

describe('diagnostics', () => {
  const messages: unknown[] = [];
  const listener = (m: unknown): void => void messages.push(m);
  afterEach(() => {
    unsubscribe(channelNames.healthCheck, listener);
    messages.length = 0;
  });

  it('publishes { check, status, critical, durationMs, cached } and never the error', async () => {
    subscribe(channelNames.healthCheck, listener);
    const clock = new ManualClock();
    const h = health({ clock, cacheMs: 100, checks: [ok('db', { check: () => { throw new Error('secret'); } })] });
    await h.readiness();
    await h.readiness();
    expect(messages).toEqual([
      { check: 'db', status: 'fail', critical: true, durationMs: 0, cached: false },
      { check: 'db', status: 'fail', critical: true, durationMs: 0, cached: true },
    ]);
  });
});
