import { checkOptions, nameOption, show } from '../core/validate.js';
import type { CheckOutcome, HealthCheck, Probe } from './types.js';

/**
 * The part of a Redis client {@link redisCheck} uses (ioredis 5 and 6 fit).
 * @example
 * const client: RedisPingClient = new Redis();
 */
export interface RedisPingClient {
  ping(): Promise<string>;
  /** ioredis connection status; anything but `'ready'` fails the check without sending a command. */
  readonly status?: string;
}

/**
 * Something with a health status, such as a `RedisStore` (`'ready' | 'degraded'`).
 * @example
 * const source: RedisStatusSource = redisStore(client);
 */
export interface RedisStatusSource {
  readonly status: string;
}

/**
 * Options of {@link redisCheck}.
 * @example
 * const options: RedisCheckOptions = { name: 'sessions', timeoutMs: 300, cacheMs: 2000 };
 */
export interface RedisCheckOptions {
  /** The check's name. @default 'redis' */
  readonly name?: string;
  /** A PING that takes longer fails the check. @default the health's `timeoutMs` */
  readonly timeoutMs?: number;
  /** How long a result is reused. @default the health's `cacheMs` */
  readonly cacheMs?: number;
  /** Whether a fail fails its probes. @default true */
  readonly critical?: boolean;
  /** The probes this check takes part in. @default ['ready'] */
  readonly probes?: readonly Probe[];
}

/**
 * A ready-made readiness check for Redis. Given a client, it sends `PING` (cut at the check's
 * timeout, and never sent while the client is not `'ready'`, so nothing piles up in ioredis'
 * offline queue); given a `RedisStore`, it reads the store's `status` (`'degraded'` fails).
 * Reports `latencyMs` and the status in its details — never the error, host or port.
 * @example
 * const h = health({ checks: [redisCheck(redis, { timeoutMs: 500, cacheMs: 1000 })] });
 */
export function redisCheck(target: RedisPingClient | RedisStatusSource, options?: RedisCheckOptions): HealthCheck {
  const owner = 'redisCheck';
  const o = checkOptions(owner, options, ['name', 'timeoutMs', 'cacheMs', 'critical', 'probes']);
  const name = nameOption(owner, o.name, 'redis');
  const t = target as Partial<RedisPingClient & RedisStatusSource> | null;
  if (typeof t !== 'object' || t === null || (typeof t.ping !== 'function' && typeof t.status !== 'string')) {
    throw new TypeError(`${owner}: expected a Redis client with ping() or a store with a status, got ${show(target)}`);
  }
  const check: HealthCheck['check'] =
    typeof t.ping === 'function'
      ? async (): Promise<CheckOutcome> => {
          const status = t.status;
          if (status !== undefined && status !== 'ready') return { status: 'fail', details: { clientStatus: String(status) } };
          const started = performance.now();
          const reply = await (t as RedisPingClient).ping();
          const latencyMs = Math.round((performance.now() - started) * 10) / 10;
          return { status: reply === 'PONG' ? 'pass' : 'fail', details: { latencyMs } };
        }
      : (): CheckOutcome => {
          const status = String(t.status);
          return { status: status === 'ready' ? 'pass' : 'fail', details: { storeStatus: status } };
        };
  // Health validates the remaining options (durations, probes) with the others.
  return {
    name,
    check,
    ...(o.timeoutMs === undefined ? {} : { timeoutMs: o.timeoutMs }),
    ...(o.cacheMs === undefined ? {} : { cacheMs: o.cacheMs }),
    ...(o.critical === undefined ? {} : { critical: o.critical }),
    ...(o.probes === undefined ? {} : { probes: o.probes }),
  };
}
