// The client as the store calls it: the public `RedisClientLike` (types.ts), plus what the store
// calls beyond it, typed by shape. The script commands exist only once the store has registered
// them with `defineCommand`, and `del` is not part of the public type: both are optional members
// here, so any `RedisClientLike` is a `RedisClient` without a cast. A call to a member that is
// missing throws as today: inside the store's own try, where it counts as a failed call to Redis.
import { leaseScripts, scripts, type ScriptCommandName } from './scripts.js';
import type { RedisClientLike } from './types.js';

/** A script command as ioredis defines it: the number of keys, the keys, then the arguments. */
export type ScriptCommand = (...args: (string | number)[]) => Promise<unknown>;

/** Internal: a `RedisClientLike` with the script commands and the DEL the store calls on it. */
export type RedisClient = RedisClientLike & {
  readonly [name in ScriptCommandName]?: ScriptCommand;
} & {
  /** ioredis `del`: `reset` deletes a key's state with it. */
  del?(key: string): Promise<number>;
};

/**
 * Registers every script (and the state marker's) on `client` under its versioned name, unless
 * a command of that name is there already (another store on the same client registered it).
 */
export function registerScripts(client: RedisClient): void {
  for (const { command, lua } of Object.values(scripts)) {
    if (typeof client[command] !== 'function') client.defineCommand(command, { lua });
  }
}

/** Registers the scripts of calls with reservations (see `leaseScripts`), as `registerScripts` does. */
export function registerLeaseScripts(client: RedisClient): void {
  for (const { command, lua } of Object.values(leaseScripts)) {
    if (typeof client[command] !== 'function') client.defineCommand(command, { lua });
  }
}
