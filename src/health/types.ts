/**
 * The three probes an orchestrator asks about: is the process alive, may it take traffic, and has
 * it finished starting.
 * @example
 * const probes: Probe[] = ['live', 'ready'];
 */
export type Probe = 'live' | 'ready' | 'startup';

/**
 * The status of one check: `'warn'` is a pass with a concern (it never fails a probe).
 * @example
 * const check: HealthCheck = { name: 'queue', check: () => ({ status: 'warn' satisfies CheckStatus }) };
 */
export type CheckStatus = 'pass' | 'warn' | 'fail';

/**
 * Extra facts a check may report: flat, primitive values only (anything else is dropped), so that
 * an error object, with its stack or socket address, can never reach a probe body by accident.
 * @example
 * const details: CheckDetails = { latencyMs: 3, clientStatus: 'ready' };
 */
export type CheckDetails = Readonly<Record<string, string | number | boolean | null>>;

/**
 * What a check function may return: nothing or `true` (pass), `false` (fail), or a status with
 * details. Throwing (or rejecting) is a fail.
 * @example
 * const outcome: CheckOutcome = { status: 'warn', details: { queueDepth: 900 } };
 */
export type CheckOutcome = void | undefined | boolean | { readonly status: CheckStatus; readonly details?: CheckDetails };

/**
 * One named health check.
 * @example
 * const db: HealthCheck = { name: 'db', check: (signal) => pool.query('select 1', { signal }), timeoutMs: 500 };
 */
export interface HealthCheck {
  /** Unique name, shown in verbose reports and on the `bulwark:health:check` channel. */
  readonly name: string;
  /** The check itself; `signal` aborts when the check's timeout expires. */
  readonly check: (signal: AbortSignal) => CheckOutcome | PromiseLike<CheckOutcome>;
  /** A run that takes longer is cut and reported as a fail. @default the health's `timeoutMs` (500) */
  readonly timeoutMs?: number;
  /** A result is reused for this long before the check runs again. @default the health's `cacheMs` (0) */
  readonly cacheMs?: number;
  /** A failing non-critical check is reported but does not fail its probes. @default true */
  readonly critical?: boolean;
  /** The probes this check takes part in. @default ['ready'] */
  readonly probes?: readonly Probe[];
  /** Called once by `health.dispose()`: release timers or other resources the check holds. */
  readonly dispose?: () => void;
  /** @deprecated name it `dispose` (the one verb bulwark uses for stopping); ignored when `dispose` is given. */
  readonly close?: () => void;
}

/**
 * Why a check failed, in words safe to show to anyone (never the error's message).
 * @example
 * if (report.checks.db?.failure === 'timed-out') raiseTimeoutAlert();
 */
export type CheckFailure = 'returned-false' | 'reported-fail' | 'threw' | 'timed-out' | 'still-running';

/**
 * The result of one check, as it appears in a {@link HealthReport}.
 * @example
 * const r: CheckResult = (await h.readiness()).checks.db!;
 * if (r.status === 'fail') log.warn({ check: 'db', failure: r.failure, error: r.error });
 */
export interface CheckResult {
  readonly status: CheckStatus;
  readonly critical: boolean;
  /** How long the run took (for a cached result, the run it came from). */
  readonly durationMs: number;
  /** True when the result was reused from the cache rather than run for this report. */
  readonly cached: boolean;
  /** Set when `status` is `'fail'`. */
  readonly failure?: CheckFailure;
  readonly details?: CheckDetails;
  /**
   * What the check threw, for your logs. Never written into an HTTP probe body and not
   * serialised by `JSON.stringify` (non-enumerable).
   */
  readonly error?: unknown;
}

/**
 * Why a probe fails regardless of its checks.
 * @example
 * if ((await h.readiness()).state === 'shutting-down') console.log('draining');
 */
export type ProbeState = 'starting' | 'shutting-down';

/**
 * A probe's answer as plain data.
 * @example
 * const report: HealthReport = await h.readiness();
 * if (report.status === 'fail') console.log(report.state, Object.keys(report.checks));
 */
export interface HealthReport {
  /** `'pass'` when every critical check of the probe passed (or warned) and no state fails it. */
  readonly status: 'pass' | 'fail';
  /** Set when the probe fails because the process is starting or shutting down. */
  readonly state?: ProbeState;
  readonly checks: Readonly<Record<string, CheckResult>>;
}
