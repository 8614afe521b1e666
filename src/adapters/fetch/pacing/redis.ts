// The pacing state one Redis shares between processes: per origin (and key) a small hash,
// `{prefix}{key}` (hash-tagged, so it works unchanged on a Cluster), holding the GCRA's
// theoretical arrival time `tat`, the advertised `rate` and the block `until`, all on the
// server's clock (TIME), so clocks of the processes never matter. Every slot is one script call:
// a block one process learned is seen by the others at their next slot (one round trip, well
// under 100 ms), and calls already queued read it again before they go. Redis slow or down: the
// pacer decides alone (never a failed call because of Redis) and Redis is left alone for a
// second before it is tried again.
import { redisKeyOf } from '../../../ratelimit/redis/slot.js';
import type { RedisClientLike } from '../../../ratelimit/redis/types.js';
import { ADVISED_SHARE, type SharedPaceStore } from './pacer.js';

const serverNow = `local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
`;

/** KEYS[1]; ARGV: local rate/s, maxWaitMs, ttlMs, share of an advertised rate. Returns { wait or -(ms to a slot), rate as text }. */
const acquireLua = `${serverNow}local h = redis.call('HMGET', KEYS[1], 'tat', 'rate', 'until')
local tat = tonumber(h[1]) or 0
local advised = tonumber(h[2]) or 0
local blocked = tonumber(h[3]) or 0
local rate = tonumber(ARGV[1])
if advised > 0 then rate = advised * tonumber(ARGV[4]) end
local start = math.max(now, blocked)
if rate > 0 then start = math.max(start, tat) end
local wait = start - now
if wait > tonumber(ARGV[2]) then return { -math.max(1, math.ceil(wait)), string.format('%.6f', rate) } end
if rate > 0 then
  redis.call('HSET', KEYS[1], 'tat', string.format('%.3f', start + 1000 / rate))
  redis.call('PEXPIRE', KEYS[1], ARGV[3])
end
return { math.ceil(wait), string.format('%.6f', rate) }
`;

/** KEYS[1]; ARGV: advertised rate/s (0: none), blockMs (0: none), ttlMs. */
const learnLua = `${serverNow}if tonumber(ARGV[1]) > 0 then redis.call('HSET', KEYS[1], 'rate', ARGV[1]) end
local b = tonumber(ARGV[2])
if b > 0 then
  local u = tonumber(redis.call('HGET', KEYS[1], 'until')) or 0
  if now + b > u then redis.call('HSET', KEYS[1], 'until', string.format('%d', now + b)) end
end
redis.call('PEXPIRE', KEYS[1], math.max(tonumber(ARGV[3]), b + 1000))
return 1
`;

/** KEYS[1]. Returns the ms its block has left (0 for none). */
const blockedLua = `${serverNow}local u = tonumber(redis.call('HGET', KEYS[1], 'until')) or 0
return math.max(0, u - now)
`;

type Command = (...args: (string | number)[]) => Promise<unknown>;
type PaceClient = RedisClientLike & {
  bulwarkPaceAcquire1?: Command;
  bulwarkPaceLearn1?: Command;
  bulwarkPaceBlocked1?: Command;
};

/** State is kept this long after its last use (at least; a block keeps it to its end). */
const TTL_MS = 60_000;
/** After a failure, Redis is left alone this long. */
const REST_MS = 1_000;

/** Internal: the Redis-shared pacing state of one `createFetch`. */
export class RedisPaceStore implements SharedPaceStore {
  private readonly client: PaceClient;
  private restUntil = 0;

  constructor(
    client: RedisClientLike,
    private readonly prefix: string,
    private readonly timeoutMs: number,
  ) {
    this.client = client;
    const defs: [keyof PaceClient & string, string][] = [
      ['bulwarkPaceAcquire1', acquireLua],
      ['bulwarkPaceLearn1', learnLua],
      ['bulwarkPaceBlocked1', blockedLua],
    ];
    for (const [name, lua] of defs) {
      if (typeof this.client[name] !== 'function') client.defineCommand(name, { lua, numberOfKeys: 1 });
    }
  }

  private usable(): boolean {
    return this.client.status === 'ready' && Date.now() >= this.restUntil;
  }

  /** Runs one command within `timeoutMs`; undefined (and a rest) on failure or timeout. */
  private run(command: Command | undefined, args: (string | number)[]): Promise<unknown> {
    if (command === undefined || !this.usable()) return Promise.resolve(undefined);
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<undefined>((resolve) => {
      timer = setTimeout(() => {
        this.restUntil = Date.now() + REST_MS;
        resolve(undefined);
      }, this.timeoutMs);
    });
    const done = command.apply(this.client, args).catch(() => {
      this.restUntil = Date.now() + REST_MS;
      return undefined;
    });
    return Promise.race([done, late]).finally(() => clearTimeout(timer));
  }

  private keyOf(key: string): string {
    return redisKeyOf(this.prefix, key);
  }

  async acquire(key: string, ratePerSec: number, maxWaitMs: number): Promise<{ wait: number; rate: number } | undefined> {
    const reply = await this.run(this.client.bulwarkPaceAcquire1, [this.keyOf(key), ratePerSec.toFixed(6), Math.floor(maxWaitMs), TTL_MS, ADVISED_SHARE]);
    if (!Array.isArray(reply) || reply.length !== 2) return undefined;
    const wait = Number(reply[0]);
    const rate = Number(reply[1]);
    return Number.isFinite(wait) && Number.isFinite(rate) ? { wait, rate } : undefined;
  }

  learn(key: string, ratePerSec: number, blockMs: number): void {
    void this.run(this.client.bulwarkPaceLearn1, [this.keyOf(key), ratePerSec.toFixed(6), Math.ceil(blockMs), TTL_MS]);
  }

  async blockedFor(key: string): Promise<number | undefined> {
    const reply = await this.run(this.client.bulwarkPaceBlocked1, [this.keyOf(key)]);
    return typeof reply === 'number' ? reply : undefined;
  }
}
