import type { IncomingMessage, ServerResponse } from 'node:http';
import { systemClock, type Clock, type TimerHandle } from '../core/clock.js';
import { shutdownPhaseChannel } from '../core/diagnostics.js';
import { TimeoutError } from '../core/errors.js';
import { type Disposable, disposeSymbol } from '../core/events.js';
import { checkOptions, clockOption, durationOption, enumOption, functionOption, show } from '../core/validate.js';
import type { Health } from './health.js';
import { servedHealths } from './served-health.js';

/**
 * The parts of a node:http `Server` graceful shutdown uses (an Express app's `app.listen()` result is one).
 * @example
 * const target: HttpServerLike = http.createServer(app);
 */
export interface HttpServerLike {
  close(callback?: (error?: Error) => void): unknown;
  closeIdleConnections?(): void;
  closeAllConnections?(): void;
  prependListener(event: 'request', listener: (req: IncomingMessage, res: ServerResponse) => void): unknown;
  removeListener(event: 'request', listener: (req: IncomingMessage, res: ServerResponse) => void): unknown;
}

/**
 * Something closed with a promise that owns a node:http server: a Fastify instance.
 * @example
 * const target: ClosableApp = Fastify();
 */
export interface ClosableApp {
  close(): PromiseLike<unknown>;
  readonly server: HttpServerLike;
}

/**
 * What {@link gracefulShutdown} stops: a node:http server, a Fastify instance, or nothing (hooks only).
 * @example
 * gracefulShutdown(null, { hooks: [() => worker.stop()] });
 */
export type ShutdownTarget = HttpServerLike | ClosableApp | null;

/**
 * What a shutdown hook receives.
 * @example
 * const hook: ShutdownHook = ({ signal, trigger }: ShutdownHookContext) => queue.drain({ signal, reason: trigger });
 */
export interface ShutdownHookContext {
  /** Aborts when the hook's `hookTimeoutMs` expires. */
  readonly signal: AbortSignal;
  /** What started the shutdown: the OS signal's name, or `'shutdown'` for a call to `shutdown()`. */
  readonly trigger: string;
}

/**
 * A cleanup step run after the server has closed (flush queues, close pools). Hooks run one after
 * another, in order, each bounded by `hookTimeoutMs`.
 * @example
 * const closePool: ShutdownHook = ({ signal }) => pool.end({ signal });
 */
export type ShutdownHook = (context: ShutdownHookContext) => unknown;

/**
 * The phases published on `bulwark:health:shutdown`, in order.
 * @example
 * subscribe(channelNames.shutdownPhase, ({ phase }: { phase: ShutdownPhase }) => log.info(phase));
 */
export type ShutdownPhase = 'draining' | 'closing' | 'hooks' | 'exiting';

/**
 * How a shutdown went.
 * @example
 * const { exitCode, failedHooks }: ShutdownResult = await stopper.shutdown();
 */
export interface ShutdownResult {
  readonly trigger: string;
  /** True when open connections had to be cut (close timeout, or a second signal). */
  readonly forced: boolean;
  /** Names of hooks that threw or timed out. */
  readonly failedHooks: readonly string[];
  /** 0 when everything closed in time and every hook succeeded, else 1. */
  readonly exitCode: 0 | 1;
}

/**
 * Options of {@link gracefulShutdown}.
 * @example
 * const options: GracefulShutdownOptions = { health: h, drainDelayMs: 10_000, closeTimeoutMs: 10_000 };
 */
export interface GracefulShutdownOptions {
  /**
   * Its readiness starts failing the moment shutdown begins. Without it, every health() that
   * bulwark's probe routes (`healthHandler`, `healthMiddleware`, `healthPlugin`) serve in this
   * process fails its readiness instead, as with lightship or terminus; give it to fail only that
   * one. A `/readyz` you serve by other means is yours to fail (from a hook on the `draining`
   * phase, say). @default the healths bulwark's probe routes serve
   */
  readonly health?: Health;
  /** The signals that start a shutdown; `[]` for `shutdown()` only. @default ['SIGTERM', 'SIGINT'] */
  readonly signals?: readonly NodeJS.Signals[];
  /**
   * How long to keep serving (with readiness failing, and `Connection: close` on every response)
   * before the server stops accepting, so load balancers can take the instance out. It must cover
   * the time they take to see readiness fail or the endpoint go (probe period × failures, plus
   * endpoint propagation): a client that connects once the listener has closed gets a reset from
   * the kernel, which no library can answer. Keep it below Kubernetes'
   * `terminationGracePeriodSeconds` minus the other timeouts.
   * @default 5000
   */
  readonly drainDelayMs?: number;
  /**
   * How long in-flight requests get to finish once the server stops accepting; then their
   * connections are cut (a Fastify instance then gets up to `hookTimeoutMs` more to finish its
   * `close()`, onClose hooks included). @default 10000
   */
  readonly closeTimeoutMs?: number;
  /** Cleanup steps, run in order after the server has closed. @default [] */
  readonly hooks?: readonly ShutdownHook[];
  /** The bound on each hook. @default 5000 */
  readonly hookTimeoutMs?: number;
  /**
   * A signal that arrives while shutting down never starts a second run. `'hurry'` skips what is
   * left of the drain delay and cuts open connections at once (hooks still run, bounded);
   * `'ignore'` changes nothing.
   * @default 'hurry'
   */
  readonly onSecondSignal?: 'hurry' | 'ignore';
  /** Whether to end the process once done. @default true */
  readonly exit?: boolean;
  /** Called once with the exit code when `exit` is true. @default process.exit */
  readonly processExit?: (code: number) => void;
  /** Receives one line per step, for your logger. @default no logging */
  readonly log?: (message: string) => void;
  /** Source of time and timers. @default systemClock */
  readonly clock?: Clock;
}

/**
 * A running graceful-shutdown controller. Made by {@link gracefulShutdown}.
 * @example
 * const stopper = gracefulShutdown(server, { signals: [] });
 * await stopper.shutdown();
 */
export interface GracefulShutdown extends Disposable {
  /** Starts the shutdown (or returns the one already running): the same promise however often it is called. */
  shutdown(trigger?: string): Promise<ShutdownResult>;
  /** Where the shutdown is: `'running'` (not started), a phase, or `'done'`. */
  readonly phase: 'running' | ShutdownPhase | 'done';
  /** Removes the signal handlers and the request listener without shutting down; later calls do nothing. */
  dispose(): void;
}

const OWNER = 'gracefulShutdown';
const KEYS = [
  'health',
  'signals',
  'drainDelayMs',
  'closeTimeoutMs',
  'hooks',
  'hookTimeoutMs',
  'onSecondSignal',
  'exit',
  'processExit',
  'log',
  'clock',
] as const;
const UNCATCHABLE = new Set(['SIGKILL', 'SIGSTOP']);
/** How often idle keep-alive connections are closed while waiting for in-flight requests. */
const IDLE_SWEEP_MS = 100;

/**
 * Graceful shutdown for a node:http server (also an Express app's server) or a Fastify instance.
 * On the first signal (or `shutdown()`): readiness fails (of `health`, or else of every health
 * bulwark's probe routes serve); for `drainDelayMs` the server keeps
 * serving but answers every request with `Connection: close`; then it stops accepting, idle
 * keep-alive connections close and in-flight requests get `closeTimeoutMs` to finish (then their
 * connections are cut); then the hooks run, each bounded by `hookTimeoutMs`; then the process
 * exits, once. A second signal never runs it twice (see `onSecondSignal`).
 * @example
 * const server = app.listen(8080);
 * gracefulShutdown(server, { health: h, drainDelayMs: 5000, hooks: [() => pool.end()] });
 */
export function gracefulShutdown(target: ShutdownTarget, options?: GracefulShutdownOptions): GracefulShutdown {
  const o = checkOptions(OWNER, options, KEYS);
  const { server, closeApp } = resolveTarget(target);
  const health = o.health;
  if (health !== undefined && (typeof health !== 'object' || health === null || typeof health.beginShutdown !== 'function')) {
    throw new TypeError(`${OWNER}: option "health" must be a health() instance, got ${show(health)}`);
  }
  const signals = resolveSignals(o.signals);
  const drainDelayMs = durationOption(OWNER, 'drainDelayMs', o.drainDelayMs, 5000);
  const closeTimeoutMs = durationOption(OWNER, 'closeTimeoutMs', o.closeTimeoutMs, 10_000);
  const hookTimeoutMs = durationOption(OWNER, 'hookTimeoutMs', o.hookTimeoutMs, 5000, { exclusiveMin: true });
  const hooks = o.hooks ?? [];
  if (!Array.isArray(hooks) || !hooks.every((h) => typeof h === 'function')) {
    throw new TypeError(`${OWNER}: option "hooks" must be an array of functions, got ${show(hooks)}`);
  }
  const onSecondSignal = enumOption(OWNER, 'onSecondSignal', o.onSecondSignal, ['hurry', 'ignore'] as const, 'hurry');
  if (o.exit !== undefined && typeof o.exit !== 'boolean') {
    throw new TypeError(`${OWNER}: option "exit" must be a boolean, got ${show(o.exit)}`);
  }
  const exit = o.exit ?? true;
  const processExit = functionOption<(code: number) => void>(OWNER, 'processExit', o.processExit, (code: number) => process.exit(code));
  const userLog = functionOption<(message: string) => void>(OWNER, 'log', o.log, () => {});
  // A logger that throws (an unbound `logger.info`, say) must not stop the shutdown half-way.
  const log = (message: string): void => {
    try {
      userLog(message);
    } catch {
      // ignored
    }
  };
  const clock = clockOption(OWNER, o.clock, systemClock);

  let phase: GracefulShutdown['phase'] = 'running';
  let running: Promise<ShutdownResult> | undefined;
  let hurried = false;
  let wakeDrain: (() => void) | undefined;
  let forceClose: (() => void) | undefined;
  const active = new Set<ServerResponse>();

  const closeIdle = (): void => {
    server?.closeIdleConnections?.();
  };
  const onRequest = (_req: IncomingMessage, res: ServerResponse): void => {
    if (phase !== 'running') {
      // The client must not reuse this connection: it is about to go away.
      if (!res.headersSent) res.setHeader('connection', 'close');
      if (phase !== 'draining') res.once('finish', () => setImmediate(closeIdle));
      return;
    }
    active.add(res);
    res.once('close', () => active.delete(res));
  };
  server?.prependListener('request', onRequest);

  const onSignal = (signal: NodeJS.Signals): void => {
    if (running === undefined) {
      log(`shutdown: ${signal} received`);
      shutdown(signal).catch((error: unknown) => log(`shutdown: failed: ${messageOf(error)}`));
      return;
    }
    log(`shutdown: ${signal} received again; ${onSecondSignal === 'hurry' ? 'hurrying' : 'ignored'}`);
    if (onSecondSignal === 'hurry') hurry();
  };
  for (const s of signals) process.on(s, onSignal);

  let disposed = false;
  const dispose = (): void => {
    if (disposed) return;
    disposed = true;
    for (const s of signals) process.removeListener(s, onSignal);
    server?.removeListener('request', onRequest);
  };

  const hurry = (): void => {
    if (hurried) return;
    hurried = true;
    wakeDrain?.();
    forceClose?.();
  };

  const enter = (next: ShutdownPhase, trigger: string): void => {
    phase = next;
    if (shutdownPhaseChannel.hasSubscribers) shutdownPhaseChannel.publish({ phase: next, signal: trigger });
  };

  /** Waits `ms`, or less when `wake` is called; returns whether it was woken early. */
  const wait = (ms: number, setWake: (wake: (() => void) | undefined) => void): Promise<boolean> =>
    new Promise<boolean>((resolve) => {
      let timer: TimerHandle | undefined;
      const done = (early: boolean): void => {
        if (timer !== undefined) clock.clearTimeout(timer);
        timer = undefined;
        setWake(undefined);
        resolve(early);
      };
      setWake(() => done(true));
      timer = clock.setTimeout(() => done(false), ms);
    });

  const closeServer = async (): Promise<boolean> => {
    if (server === undefined && closeApp === undefined) return false;
    const closed: Promise<void> =
      closeApp !== undefined
        ? Promise.resolve(closeApp()).then(
            () => undefined,
            (error: unknown) => log(`shutdown: closing failed: ${messageOf(error)}`),
          )
        : new Promise<void>((resolve) => {
            // ERR_SERVER_NOT_RUNNING (never listened, or already closed) counts as closed.
            server!.close(() => resolve());
          });
    closeIdle();
    let forced = false;
    let cut = false;
    if (hurried) {
      // A second signal came during the drain: cut what is open, but still let the close finish
      // (a Fastify instance runs its onClose hooks), bounded as usual.
      forced = true;
      cut = true;
      server?.closeAllConnections?.();
    }
    let timer: TimerHandle | undefined;
    // Responses that began before this controller was made (or ones it could not mark) end on
    // keep-alive connections: sweep the idle ones until the server has closed.
    let sweeper: TimerHandle | undefined;
    const sweep = (): void => {
      closeIdle();
      sweeper = clock.setTimeout(sweep, IDLE_SWEEP_MS);
    };
    if (server?.closeIdleConnections !== undefined) sweeper = clock.setTimeout(sweep, IDLE_SWEEP_MS);
    await Promise.race([
      closed,
      new Promise<void>((resolve) => {
        forceClose = () => {
          forced = true;
          resolve();
        };
        timer = clock.setTimeout(() => {
          log(`shutdown: in-flight requests still open after ${closeTimeoutMs} ms; closing their connections`);
          forceClose?.();
        }, closeTimeoutMs);
      }),
    ]);
    forceClose = undefined;
    if (timer !== undefined) clock.clearTimeout(timer);
    if (sweeper !== undefined) clock.clearTimeout(sweeper);
    if (forced && !cut) server?.closeAllConnections?.();
    if (forced && closeApp !== undefined) {
      // The connections are cut, but the app's own close is not over: a Fastify instance runs its
      // onClose hooks once its server has closed. Let them finish, bounded like any hook.
      let stop: (() => void) | undefined;
      const bound = wait(hookTimeoutMs, (w) => (stop = w));
      const inTime = await Promise.race([closed.then(() => true), bound.then(() => false)]);
      stop?.();
      if (!inTime) log(`shutdown: the app's close still running after ${hookTimeoutMs} ms; going on`);
    }
    return forced;
  };

  const runHook = (hook: ShutdownHook, trigger: string): Promise<boolean> =>
    new Promise<boolean>((resolve) => {
      const name = hook.name || 'anonymous';
      const controller = new AbortController();
      let settled = false;
      const finish = (ok: boolean, message?: string): void => {
        if (settled) return;
        settled = true;
        clock.clearTimeout(timer);
        if (message !== undefined) log(message);
        resolve(ok);
      };
      const timer = clock.setTimeout(() => {
        controller.abort(new TimeoutError(hookTimeoutMs));
        finish(false, `shutdown: hook "${name}" timed out after ${hookTimeoutMs} ms`);
      }, hookTimeoutMs);
      try {
        Promise.resolve(hook({ signal: controller.signal, trigger })).then(
          () => finish(true),
          (error: unknown) => finish(false, `shutdown: hook "${name}" failed: ${messageOf(error)}`),
        );
      } catch (error) {
        finish(false, `shutdown: hook "${name}" failed: ${messageOf(error)}`);
      }
    });

  const run = async (trigger: string): Promise<ShutdownResult> => {
    enter('draining', trigger);
    // Looked up now, not at construction: the routes may be made after the shutdown controller.
    const failing = health !== undefined ? [health] : servedHealths();
    for (const h of failing) h.beginShutdown();
    for (const res of active) if (!res.headersSent) res.setHeader('connection', 'close');
    if (drainDelayMs > 0 && !hurried) {
      log(`shutdown: ${readinessNote(health !== undefined, failing.length)}; draining for ${drainDelayMs} ms`);
      await wait(drainDelayMs, (w) => (wakeDrain = w));
    }
    enter('closing', trigger);
    log('shutdown: closing the server');
    // Responses already under way when the drain began finish on keep-alive connections: close
    // each one as it goes idle.
    for (const res of active) res.once('finish', () => setImmediate(closeIdle));
    const forced = await closeServer();
    active.clear();
    enter('hooks', trigger);
    const failedHooks: string[] = [];
    for (const hook of hooks) {
      if (!(await runHook(hook, trigger))) failedHooks.push(hook.name || 'anonymous');
    }
    const exitCode: 0 | 1 = forced || failedHooks.length > 0 ? 1 : 0;
    enter('exiting', trigger);
    dispose();
    log(`shutdown: done (${trigger}); ${exit ? `exiting with code ${exitCode}` : `exit code would be ${exitCode}`}`);
    phase = 'done';
    if (exit) processExit(exitCode);
    return { trigger, forced, failedHooks, exitCode };
  };

  const shutdown = (trigger = 'shutdown'): Promise<ShutdownResult> => {
    if (typeof trigger !== 'string' || trigger.length === 0) {
      throw new TypeError(`${OWNER}: shutdown(trigger) must be a non-empty string, got ${show(trigger)}`);
    }
    running ??= run(trigger);
    return running;
  };

  return {
    shutdown,
    get phase() {
      return phase;
    },
    dispose,
    [disposeSymbol]: dispose,
  };
}

function resolveTarget(target: ShutdownTarget): { server?: HttpServerLike; closeApp?: () => PromiseLike<unknown> } {
  if (target === null) return {};
  const t = target as Partial<ClosableApp & HttpServerLike> | undefined;
  if (typeof t === 'object' && t !== null && typeof t.close === 'function') {
    if (isServer(t.server)) {
      const app = t as ClosableApp;
      return { server: app.server, closeApp: () => app.close() };
    }
    if (isServer(t)) return { server: t };
  }
  const hint = typeof target === 'function' ? ' (for Express, pass the server that app.listen() returns)' : '';
  throw new TypeError(`${OWNER}: the first argument must be a node:http server, a Fastify instance or null, got ${show(target)}${hint}`);
}

function isServer(value: unknown): value is HttpServerLike {
  const s = value as Partial<HttpServerLike> | null | undefined;
  return (
    typeof s === 'object' &&
    s !== null &&
    typeof s.close === 'function' &&
    typeof s.prependListener === 'function' &&
    typeof s.removeListener === 'function'
  );
}

function resolveSignals(value: unknown): readonly NodeJS.Signals[] {
  if (value === undefined) return ['SIGTERM', 'SIGINT'];
  if (
    !Array.isArray(value) ||
    !value.every((s) => typeof s === 'string' && /^SIG[A-Z0-9]+$/.test(s) && !UNCATCHABLE.has(s))
  ) {
    throw new TypeError(
      `${OWNER}: option "signals" must be an array of catchable signal names such as 'SIGTERM', got ${
        Array.isArray(value) ? JSON.stringify(value) : show(value)
      }`,
    );
  }
  return [...new Set(value as NodeJS.Signals[])];
}

/** What the drain's log line says about readiness: only what is true. */
function readinessNote(given: boolean, count: number): string {
  if (given) return 'readiness failing';
  if (count === 0) return 'no readiness to fail (no health given, and none served by bulwark probe routes)';
  return `readiness failing (${count === 1 ? 'the health' : `${count} healths`} served by bulwark probe routes)`;
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
