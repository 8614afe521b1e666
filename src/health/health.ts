import { systemClock, type Clock, type TimerHandle } from '../core/clock.js';
import { healthCheckChannel } from '../core/diagnostics.js';
import { TimeoutError } from '../core/errors.js';
import { type Disposable, disposeSymbol } from '../core/events.js';
import { registerPolicy } from '../core/registry.js';
import { checkOptions, clockOption, durationOption, show } from '../core/validate.js';
import { type Entry, PROBES, toEntry } from './check-entry.js';
import type {
  CheckDetails,
  CheckFailure,
  CheckOutcome,
  CheckResult,
  CheckStatus,
  HealthCheck,
  HealthReport,
  Probe,
  ProbeState,
} from './types.js';

/**
 * Options of {@link health}.
 * @example
 * const options: HealthOptions = { checks: [], timeoutMs: 500, cacheMs: 1000, waitForStarted: true };
 */
export interface HealthOptions {
  /** The checks, each with a unique name. @default [] */
  readonly checks?: readonly HealthCheck[];
  /**
   * Timeout of a check that sets none. Half the kubelet's default probe timeout (1 s), so that a
   * hung check fails the probe with a 503 the kubelet reads, rather than the kubelet giving up on
   * the request (checks of one probe run at once, so a probe takes about its slowest check). Keep
   * every check's timeout below the `timeoutSeconds` of the probes it takes part in.
   * @default 500
   */
  readonly timeoutMs?: number;
  /** How long a check's result is reused when the check sets no `cacheMs`. @default 0 (runs on every probe) */
  readonly cacheMs?: number;
  /**
   * When true, startup (and so readiness) fails until `started()` is called; otherwise startup
   * completes the first time every critical startup check passes (at once, when there are none).
   * @default false
   */
  readonly waitForStarted?: boolean;
  /** Source of time and timers. @default systemClock */
  readonly clock?: Clock;
}

const OWNER = 'health';
const EMPTY: Readonly<Record<string, CheckResult>> = Object.freeze({});

/**
 * Default timeout of a check, in ms: half the kubelet's default probe timeout (`timeoutSeconds: 1`),
 * leaving the other half for the request, the event loop's lag and the probe's own bookkeeping.
 */
const DEFAULT_CHECK_TIMEOUT_MS = 500;

/**
 * The probe a route asks about: one of the three, or `'summary'` (`/healthz`, every check).
 * @example
 * const r = await h.runCheck('db', 'ready' satisfies ProbeOrSummary);
 */
export type ProbeOrSummary = Probe | 'summary';


/**
 * Named health checks behind liveness, readiness and startup probes, with per-check timeouts,
 * cached results and one shared run for concurrent probes. Made by {@link health}.
 * @example
 * const h = health({ checks: [{ name: 'db', check: () => db.ping() }] });
 * const { status } = await h.readiness();
 */
export class Health implements Disposable {
  readonly kind = 'health';
  /** How the checks are listed by `inspect()`. */
  readonly name = 'health';
  readonly #entries: readonly Entry[];
  readonly #byName: ReadonlyMap<string, Entry>;
  readonly #clock: Clock;
  readonly #waitForStarted: boolean;
  #started = false;
  #shuttingDown = false;
  #disposed = false;

  constructor(options?: HealthOptions) {
    const o = checkOptions(OWNER, options, ['checks', 'timeoutMs', 'cacheMs', 'waitForStarted', 'clock']);
    this.#clock = clockOption(OWNER, o.clock, systemClock);
    const timeoutMs = durationOption(OWNER, 'timeoutMs', o.timeoutMs, DEFAULT_CHECK_TIMEOUT_MS, { exclusiveMin: true });
    const cacheMs = durationOption(OWNER, 'cacheMs', o.cacheMs, 0);
    if (o.waitForStarted !== undefined && typeof o.waitForStarted !== 'boolean') {
      throw new TypeError(`${OWNER}: option "waitForStarted" must be a boolean, got ${show(o.waitForStarted)}`);
    }
    this.#waitForStarted = o.waitForStarted ?? false;
    const checks = o.checks ?? [];
    if (!Array.isArray(checks)) {
      throw new TypeError(`${OWNER}: option "checks" must be an array, got ${show(checks)}`);
    }
    const seen = new Set<string>();
    this.#entries = checks.map((c: unknown, i) => {
      const entry = toEntry(c, i, timeoutMs, cacheMs);
      if (seen.has(entry.name)) {
        throw new TypeError(`${OWNER}: option "checks[${i}].name" must be unique, got ${show(entry.name)} twice`);
      }
      seen.add(entry.name);
      return entry;
    });
    this.#byName = new Map(this.#entries.map((e) => [e.name, e]));
    registerPolicy(this);
  }

  /** True once startup has completed (it never un-completes). */
  get isStarted(): boolean {
    return this.#started;
  }

  /** True once {@link Health.beginShutdown} has been called: readiness fails from then on. */
  get isShuttingDown(): boolean {
    return this.#shuttingDown;
  }

  /** The names of the checks, in the order given. */
  get checkNames(): readonly string[] {
    return this.#entries.map((e) => e.name);
  }

  /**
   * Each check's last result without running anything: status, duration and age (never the
   * error). What `inspect()` shows.
   * @example
   * for (const c of h.lastResults()) console.log(c.name, c.status ?? 'not run yet');
   */
  lastResults(): { name: string; critical: boolean; probes: readonly Probe[]; status?: CheckStatus; durationMs?: number; ageMs?: number }[] {
    const now = this.#clock.now();
    return this.#entries.map((e) => ({
      name: e.name,
      critical: e.critical,
      probes: e.probes,
      ...(e.last === undefined ? {} : { status: e.last.result.status, durationMs: e.last.result.durationMs, ageMs: Math.max(0, now - e.last.at) }),
    }));
  }

  /**
   * Marks startup as complete, whatever the startup checks say.
   * @example
   * await loadCaches();
   * h.started();
   */
  started(): void {
    this.#started = true;
  }

  /**
   * Makes readiness (and the summary) fail from now on; liveness is unaffected, so the
   * orchestrator does not restart a process that is draining. Called by `gracefulShutdown`.
   * @example
   * h.beginShutdown();
   */
  beginShutdown(): void {
    this.#shuttingDown = true;
  }

  /**
   * Runs the liveness checks. Never fails because of startup or shutdown.
   * @example
   * const { status } = await h.liveness();
   */
  liveness(): Promise<HealthReport> {
    return this.#run('live');
  }

  /**
   * Runs the readiness checks. Fails while shutting down, and until startup has completed (it
   * runs the startup checks first when needed).
   * @example
   * if ((await h.readiness()).status === 'fail') console.log('not ready');
   */
  async readiness(): Promise<HealthReport> {
    return this.#readiness(undefined);
  }

  /**
   * Runs the startup checks until they pass once; after that, answers pass without running them.
   * @example
   * const { status } = await h.startup();
   */
  async startup(): Promise<HealthReport> {
    if (this.#started) return { status: 'pass', checks: EMPTY };
    const report = await this.#run('startup');
    if (report.status === 'pass' && !this.#waitForStarted) this.#started = true;
    if (!this.#started) return { status: 'fail', state: 'starting', checks: report.checks };
    return { status: 'pass', checks: report.checks };
  }

  /**
   * Runs every check once: the `/healthz` summary. Fails when a critical check fails, while
   * starting, or while shutting down.
   * @example
   * const report = await h.summary();
   */
  async summary(): Promise<HealthReport> {
    return this.#summary(undefined);
  }

  /**
   * Whether `probe` has a check named `name` (`'summary'`: whether there is such a check at all).
   * @example
   * if (h.hasCheck('db', 'ready')) console.log(await h.runCheck('db', 'ready'));
   */
  hasCheck(name: string, probe: ProbeOrSummary = 'summary'): boolean {
    const entry = this.#byName.get(name);
    return entry !== undefined && (probe === 'summary' || entry.probes.includes(probe));
  }

  /**
   * Answers `probe` (default `'summary'`) as if `name` were its only check, and a critical one:
   * the report fails when that check fails, or when the probe fails anyway (starting, shutting
   * down). What `/readyz/<name>` serves. Rejects with a `RangeError` when the probe has no such check.
   * @example
   * const { status, checks } = await h.runCheck('db', 'ready');
   */
  async runCheck(name: string, probe: ProbeOrSummary = 'summary'): Promise<HealthReport> {
    if (probe !== 'summary' && !PROBES.includes(probe)) {
      throw new TypeError(`${OWNER}: runCheck(name, probe): probe must be 'live', 'ready', 'startup' or 'summary', got ${show(probe)}`);
    }
    if (typeof name !== 'string' || !this.hasCheck(name, probe)) {
      throw new RangeError(`${OWNER}: runCheck(name, probe): no check named ${show(name)} on the ${probe} probe`);
    }
    const only = this.#byName.get(name)!;
    if (probe === 'live') return this.#run('live', only);
    if (probe === 'ready') return this.#readiness(only);
    if (probe === 'startup') {
      if (this.#started) return { status: 'pass', checks: EMPTY };
      const report = await this.#run('startup', only);
      return report.status === 'pass' ? report : { status: 'fail', state: 'starting', checks: report.checks };
    }
    return this.#summary(only);
  }

  /**
   * Releases what the checks hold (such as the event-loop sampler's timer) by calling each
   * check's `dispose`. Idempotent: a second call releases nothing again. Every check is released
   * even if one throws; the first error is then rethrown.
   * @example
   * h.dispose();
   */
  dispose(): void {
    if (this.#disposed) return;
    this.#disposed = true;
    let failed: { readonly error: unknown } | undefined;
    for (const e of this.#entries) {
      try {
        e.release?.();
      } catch (error) {
        failed ??= { error };
      }
    }
    if (failed !== undefined) throw failed.error;
  }

  /** Same as {@link Health.dispose}, for `using`. */
  [disposeSymbol](): void {
    this.dispose();
  }

  /** @deprecated use {@link Health.dispose} (the one verb of every bulwark handle that stops something). */
  close(): void {
    this.dispose();
  }

  async #readiness(only: Entry | undefined): Promise<HealthReport> {
    if (this.#shuttingDown) return { status: 'fail', state: 'shutting-down', checks: EMPTY };
    // Before startup has completed, the startup and readiness checks run side by side, not one
    // after the other: a probe then takes one check timeout at most, not two.
    const [startup, report] = await Promise.all([this.#started ? undefined : this.startup(), this.#run('ready', only)]);
    if (startup !== undefined && startup.status === 'fail') return { status: 'fail', state: 'starting', checks: startup.checks };
    // Shutdown may have begun while the checks ran: the answer must not say ready.
    if (this.#shuttingDown) return { status: 'fail', state: 'shutting-down', checks: report.checks };
    return report;
  }

  async #summary(only: Entry | undefined): Promise<HealthReport> {
    const report = await this.#run(undefined, only);
    if (only === undefined && !this.#started && !this.#waitForStarted) {
      // Every check ran once: the startup ones decide startup, without a second run.
      const startupPassed = this.#entries.every(
        (e) => !e.probes.includes('startup') || !e.critical || report.checks[e.name]!.status !== 'fail',
      );
      if (startupPassed) this.#started = true;
    }
    const state: ProbeState | undefined = this.#shuttingDown ? 'shutting-down' : this.#started ? undefined : 'starting';
    if (state === undefined) return report;
    return { status: 'fail', state, checks: report.checks };
  }

  async #run(probe: Probe | undefined, only?: Entry): Promise<HealthReport> {
    const entries = only !== undefined ? [only] : probe === undefined ? this.#entries : this.#entries.filter((e) => e.probes.includes(probe));
    if (entries.length === 0) return { status: 'pass', checks: EMPTY };
    const results = await Promise.all(entries.map((e) => this.#result(e)));
    const checks: Record<string, CheckResult> = {};
    let status: 'pass' | 'fail' = 'pass';
    for (let i = 0; i < entries.length; i++) {
      const r = results[i]!;
      checks[entries[i]!.name] = r;
      // A check asked for by name decides its answer, critical or not.
      if (r.status === 'fail' && (r.critical || only !== undefined)) status = 'fail';
    }
    return { status, checks };
  }

  #result(entry: Entry): Promise<CheckResult> {
    const last = entry.last;
    if (last !== undefined && entry.cacheMs > 0 && this.#clock.now() - last.at < entry.cacheMs) {
      const cached = makeResult(last.result.status, entry.critical, last.result.durationMs, true, last.result);
      publish(entry.name, cached);
      return Promise.resolve(cached);
    }
    if (entry.inflight !== undefined) return entry.inflight;
    const run = this.#execute(entry).then((result) => {
      entry.inflight = undefined;
      entry.last = { result, at: this.#clock.now() };
      publish(entry.name, result);
      return result;
    });
    entry.inflight = run;
    return run;
  }

  #execute(entry: Entry): Promise<CheckResult> {
    if (entry.abandoned) {
      return Promise.resolve(makeResult('fail', entry.critical, 0, false, { failure: 'still-running' }));
    }
    const clock = this.#clock;
    const start = clock.now();
    const controller = new AbortController();
    return new Promise<CheckResult>((resolve) => {
      let settled = false;
      let timer: TimerHandle | undefined;
      const finish = (status: CheckStatus, extra: Extra): void => {
        if (settled) return;
        settled = true;
        if (timer !== undefined) clock.clearTimeout(timer);
        resolve(makeResult(status, entry.critical, clock.now() - start, false, extra));
      };
      let pending: PromiseLike<CheckOutcome> | CheckOutcome;
      try {
        pending = entry.run(controller.signal);
      } catch (error) {
        finish('fail', { failure: 'threw', error });
        return;
      }
      if (!isThenable(pending)) {
        const [status, extra] = interpret(entry.name, pending);
        finish(status, extra);
        return;
      }
      timer = clock.setTimeout(() => {
        if (settled) return;
        entry.abandoned = true;
        const error = new TimeoutError(entry.timeoutMs);
        controller.abort(error);
        finish('fail', { failure: 'timed-out', error });
      }, entry.timeoutMs);
      Promise.resolve(pending).then(
        (outcome) => {
          entry.abandoned = false;
          const [status, extra] = interpret(entry.name, outcome);
          finish(status, extra);
        },
        (error: unknown) => {
          entry.abandoned = false;
          finish('fail', { failure: 'threw', error });
        },
      );
    });
  }
}

/**
 * Makes a {@link Health}: named checks behind liveness, readiness and startup probes.
 * @example
 * const h = health({
 *   checks: [
 *     { name: 'db', check: (signal) => db.ping({ signal }), timeoutMs: 500, cacheMs: 2000 },
 *     eventLoopDelayCheck({ maxDelayMs: 1000 }),
 *   ],
 * });
 * console.log(await h.readiness()); // { status: 'pass', checks: { ... } }
 */
export function health(options?: HealthOptions): Health {
  return new Health(options);
}

interface Extra {
  readonly failure?: CheckFailure;
  readonly details?: CheckDetails;
  readonly error?: unknown;
}

function makeResult(status: CheckStatus, critical: boolean, durationMs: number, cached: boolean, extra: Extra): CheckResult {
  const result: { -readonly [K in keyof CheckResult]: CheckResult[K] } = { status, critical, durationMs, cached };
  if (status === 'fail' && extra.failure !== undefined) result.failure = extra.failure;
  if (extra.details !== undefined) result.details = extra.details;
  if (extra.error !== undefined) {
    // Kept for the caller's logs, but out of JSON.stringify and object spreads.
    Object.defineProperty(result, 'error', { value: extra.error, enumerable: false });
  }
  return Object.freeze(result);
}

function publish(check: string, result: CheckResult): void {
  if (healthCheckChannel.hasSubscribers) {
    healthCheckChannel.publish({
      check,
      status: result.status,
      critical: result.critical,
      durationMs: result.durationMs,
      cached: result.cached,
    });
  }
}

function isThenable(value: unknown): value is PromiseLike<CheckOutcome> {
  try {
    return typeof value === 'object' && value !== null && typeof (value as { then?: unknown }).then === 'function';
  } catch {
    return false; // a `then` getter that throws: read it as a plain outcome (interpret copes)
  }
}

function interpret(name: string, outcome: unknown): [CheckStatus, Extra] {
  // Reading the outcome runs user code (getters, proxies): a throw there fails this run, and must
  // not escape, or the run would never settle and the check would stay stuck.
  try {
    return read(name, outcome);
  } catch (error) {
    return ['fail', { failure: 'threw', error }];
  }
}

function read(name: string, outcome: unknown): [CheckStatus, Extra] {
  if (outcome === undefined || outcome === true) return ['pass', {}];
  if (outcome === false) return ['fail', { failure: 'returned-false' }];
  if (typeof outcome === 'object' && outcome !== null) {
    const { status, details } = outcome as { status?: unknown; details?: unknown };
    if (status === 'pass' || status === 'warn' || status === 'fail') {
      const clean = sanitizeDetails(details);
      const extra: Extra = status === 'fail' ? { failure: 'reported-fail' } : {};
      return [status, clean === undefined ? extra : { ...extra, details: clean }];
    }
  }
  return [
    'fail',
    {
      failure: 'threw',
      error: new TypeError(
        `health check "${name}" must return nothing, a boolean or { status: 'pass' | 'warn' | 'fail' }, got ${show(outcome)}`,
      ),
    },
  ];
}

/** Keeps only flat primitive values: objects (errors above all) could carry stacks or addresses. */
function sanitizeDetails(details: unknown): CheckDetails | undefined {
  if (typeof details !== 'object' || details === null || Array.isArray(details)) return undefined;
  const clean: Record<string, string | number | boolean | null> = {};
  let any = false;
  for (const [key, value] of Object.entries(details)) {
    if (
      value === null ||
      typeof value === 'string' ||
      typeof value === 'boolean' ||
      (typeof value === 'number' && Number.isFinite(value))
    ) {
      clean[key] = value;
      any = true;
    }
  }
  return any ? Object.freeze(clean) : undefined;
}
