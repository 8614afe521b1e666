// Every bulwark handle that stops something stops with one verb, `dispose()`, and with `using`
// (issue 13 §3), and a second dispose does nothing. The verbs it replaced (`close()` on limiters,
// quotas, shedders and healths, `disable()` on the tracing handle) still work in this minor
// version, as deprecated aliases: one test each below, so removing one is a decision, not an
// accident. (BulwarkInstrumentation keeps `enable()`/`disable()`: that is OpenTelemetry's
// instrumentation interface, tested in tracing/instrumentation.test.ts.)
import { Registry } from 'prom-client';
import { afterEach, describe, expect, it } from 'vitest';
import {
  circuitBreaker,
  type Disposable,
  eventLoopDelayCheck,
  fixedWindow,
  gracefulShutdown,
  health,
  loadShedder,
  ManualClock,
  memoryStore,
  quota,
  rateLimiter,
} from '../../src/index.js';
import { registerMetrics } from '../../src/metrics/index.js';
import { enableTracing } from '../../src/tracing/index.js';

const SIG = 'SIGUSR2';

/** A handle under test, and how to tell from outside whether it still holds what it stops. */
interface Made<H extends Disposable> {
  readonly handle: H;
  active(): boolean;
}

interface Row<H extends Disposable = Disposable> {
  readonly name: string;
  make(): Made<H>;
  /** The verb this handle had before `dispose()`, kept as a deprecated alias. */
  readonly oldVerb?: 'close' | 'disable';
}

/** Whether making a rate limiter / quota under `name` on `store` throws because the name is still taken. */
function nameTaken(make: () => Disposable): boolean {
  try {
    make().dispose();
    return false;
  } catch (error) {
    if (!/already uses this store/.test((error as Error).message)) throw error;
    return true;
  }
}

const rows: readonly Row[] = [
  {
    name: 'rateLimiter(...)',
    oldVerb: 'close',
    make() {
      const store = memoryStore();
      const make = () => rateLimiter({ name: 'api', algorithm: fixedWindow({ limit: 5, windowMs: 1_000 }), store });
      return { handle: make(), active: () => nameTaken(make) };
    },
  },
  {
    name: 'quota(...)',
    oldVerb: 'close',
    make() {
      const store = memoryStore();
      const make = () => quota({ name: 'monthly', limit: 5, period: 'month', store });
      return { handle: make(), active: () => nameTaken(make) };
    },
  },
  {
    name: 'loadShedder(...)',
    oldVerb: 'close',
    make() {
      const shedder = loadShedder({ maxRssBytes: 1, sampler: () => ({ rssBytes: 2 }) });
      // A live shedder samples when asked and reports the pressure; a disposed one answers null.
      return { handle: shedder, active: () => shedder.update() !== null };
    },
  },
  {
    name: 'health(...) with an eventLoopDelayCheck',
    oldVerb: 'close',
    make() {
      const clock = new ManualClock();
      const h = health({ clock, checks: [eventLoopDelayCheck({ clock })] });
      // The check's sampler timer is what the health holds.
      return { handle: h, active: () => clock.pendingTimers > 0 };
    },
  },
  {
    name: 'enableTracing(...)',
    oldVerb: 'disable',
    make() {
      const tracing = enableTracing();
      // Only one recorder per process: while this one records, another cannot start.
      const active = (): boolean => {
        try {
          enableTracing().dispose();
          return false;
        } catch (error) {
          if (!/already enabled/.test((error as Error).message)) throw error;
          return true;
        }
      };
      return { handle: tracing, active };
    },
  },
  {
    name: 'registerMetrics(...)',
    make() {
      const registry = new Registry();
      const registration = registerMetrics(registry);
      return { handle: registration, active: () => registry.getSingleMetric(registration.metricNames[0]!) !== undefined };
    },
  },
  {
    name: 'gracefulShutdown(...)',
    make() {
      const before = process.listenerCount(SIG);
      const stopper = gracefulShutdown(null, { signals: [SIG], exit: false });
      return { handle: stopper, active: () => process.listenerCount(SIG) > before };
    },
  },
  {
    name: 'circuitBreaker(...).isolate()',
    make() {
      const breaker = circuitBreaker({ name: 'held' });
      return { handle: breaker.isolate(), active: () => breaker.state === 'isolated' };
    },
  },
];

/** Everything a test made, disposed after it whatever happened. */
const made: Disposable[] = [];
afterEach(() => {
  for (const d of made.splice(0)) d.dispose();
});

function track(row: Row): Made<Disposable> {
  const m = row.make();
  made.push(m.handle);
  return m;
}

describe.each(rows)('$name', (row) => {
  it('holds what it stops until dispose(); a second dispose() does nothing', () => {
    const { handle, active } = track(row);
    expect(active()).toBe(true);
    handle.dispose();
    expect(active()).toBe(false);
    expect(() => handle.dispose()).not.toThrow();
    expect(active()).toBe(false);
  });

  it('stops at the end of a using block ([Symbol.dispose])', () => {
    let probe: (() => boolean) | undefined;
    {
      const m = track(row);
      using handle = m.handle;
      probe = m.active;
      expect(typeof handle[Symbol.dispose]).toBe('function');
      expect(probe()).toBe(true);
    }
    expect(probe()).toBe(false);
  });
});

describe.each(rows.filter((r) => r.oldVerb !== undefined))('$name, deprecated alias', (row) => {
  it(`${row.oldVerb}() still stops it, and dispose() after it does nothing`, () => {
    const { handle, active } = track(row);
    (handle as unknown as Record<string, () => void>)[row.oldVerb!]!();
    expect(active()).toBe(false);
    expect(() => handle.dispose()).not.toThrow();
    expect(active()).toBe(false);
  });
});

describe('health(...).dispose()', () => {
  it('calls each check\'s dispose once, however often the health is disposed', () => {
    let released = 0;
    const h = health({ checks: [{ name: 'pool', check: () => true, dispose: () => void released++ }] });
    h.dispose();
    h.dispose();
    h[Symbol.dispose]();
    h.close();
    expect(released).toBe(1);
  });

  it('still calls a check\'s deprecated close hook when it has no dispose, and only dispose when it has both', () => {
    const calls: string[] = [];
    const h = health({
      checks: [
        { name: 'old', check: () => true, close: () => void calls.push('old.close') },
        { name: 'both', check: () => true, dispose: () => void calls.push('both.dispose'), close: () => void calls.push('both.close') },
      ],
    });
    h.dispose();
    expect(calls).toEqual(['old.close', 'both.dispose']);
  });

  it('releases every check even when one throws, then throws the first error', () => {
    const calls: string[] = [];
    const h = health({
      checks: [
        { name: 'a', check: () => true, dispose: () => { calls.push('a'); throw new Error('a failed'); } },
        { name: 'b', check: () => true, dispose: () => void calls.push('b') },
      ],
    });
    expect(() => h.dispose()).toThrow('a failed');
    expect(calls).toEqual(['a', 'b']);
    expect(() => h.dispose()).not.toThrow();
  });

  it('refuses a check whose dispose is not a function, naming the option', () => {
    expect(() => health({ checks: [{ name: 'x', check: () => true, dispose: 5 as unknown as () => void }] })).toThrow(
      'health: option "checks[0].dispose" must be a function, got 5',
    );
  });
});
