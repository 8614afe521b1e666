// A stand-in for an ioredis client, for the Redis store's unit tests: it records every script
// call and lets the test answer, fail or ignore each one. Real Redis is in test/integration/.
import { deferred } from '../../../support/helpers.js';

/** One script call the store made. */
export interface Call {
  readonly command: string;
  readonly args: readonly (string | number)[];
  /** The keys of the batch (after the key count). */
  readonly keys: readonly string[];
  /** The (operation, cost) pairs of the batch. */
  readonly ops: readonly [number, number][];
  /** The staleAfterUs argument. */
  readonly staleAfterUs: number;
  /** The flags argument (0 when absent): FLAG_TEXT 1, FLAG_TIME 2. */
  readonly flags: number;
  /** How many arguments followed staleAfterUs (0 to 3: the script's defaults are left out). */
  readonly optionalArgs: number;
  /** The calendar period bounds, for calendar calls. */
  readonly period: readonly [number, number] | undefined;
  /**
   * Answers the call. A reply built by {@link reply} or {@link admitAll} (time, status, answers)
   * is sent as the script sends it: an integer when nothing was decided; else the answers, after
   * the time when the call asked for it. Anything else goes as it is.
   */
  resolve(reply: unknown): void;
  /** Answers the call with `reply` exactly as given. */
  resolveAsIs(reply: unknown): void;
  reject(error: unknown): void;
}

/** Arguments each command takes before staleAfterUs, after the keys. */
const fixedArgCount: Record<string, number> = {
  bulwarkGcra4: 2,
  bulwarkSlidingWindow4: 2,
  bulwarkFixedWindow4: 2,
  bulwarkCalendar3: 3,
};

export class FakeClient {
  status = 'ready';
  isCluster = false;
  /** A Cluster's slot table as ioredis keeps it (slot → node keys, the master first); see {@link masters}. */
  slots: string[][] | undefined = undefined;
  readonly defined: string[] = [];
  readonly calls: Call[] = [];
  readonly deleted: string[] = [];
  /** The state marker keys and their tokens, as `bulwarkMarker1` keeps them (answered at once, not in `calls`). */
  readonly markers = new Map<string, string>();
  /** How many marker checks the store made. */
  markerChecks = 0;
  /** How `del` answers. */
  delBehaviour: 'ok' | 'fail' | 'hang' = 'ok';
  [command: string]: unknown;

  defineCommand(name: string, definition: { lua: string }): void {
    if (typeof definition.lua !== 'string' || definition.lua.length === 0) throw new Error('no lua');
    this.defined.push(name);
    if (name === 'bulwarkMarker1') {
      this[name] = (count: number, key: string, token: string) => {
        if (count !== 1) throw new Error(`${name}: ${count} keys, want 1`);
        this.markerChecks++;
        if (!this.markers.has(key)) this.markers.set(key, token);
        return Promise.resolve(this.markers.get(key));
      };
      return;
    }
    this[name] = (...args: (string | number)[]) => {
      const d = deferred<unknown>();
      const n = Number(args[0]);
      const keys = args.slice(1, 1 + n) as string[];
      const fixed = fixedArgCount[name]!;
      const afterKeys = args.slice(1 + n);
      const staleAt = fixed;
      // After staleAfterUs, up to three arguments, each left out when it and those after it hold
      // the script's default: one character per operation ('' when all consume); the costs,
      // space-separated ('' when all are 1); the flags.
      const optional = afterKeys.slice(staleAt + 1).map(String);
      if (optional.length > 3) throw new Error(`${name}: ${optional.length} arguments after staleAfterUs, want at most 3`);
      if (optional.length > 0 && optional.at(-1) === '') throw new Error(`${name}: a trailing default argument sent for nothing`);
      const codes = optional[0] || '1'.repeat(n);
      const costs = optional[1] ?? '';
      const flags = optional[2] ?? '0';
      if (codes.length !== n) throw new Error(`${name}: ${codes.length} operation codes for ${n} keys`);
      // As strict as the scripts: digits only (they read the costs with %d+).
      if (!/^[123]*$/.test(codes) || !/^(\d+( \d+)*)?$/.test(costs)) throw new Error(`${name}: malformed operations ${JSON.stringify(codes)} or costs ${JSON.stringify(costs)}`);
      if (!/^[123]$/.test(flags) && optional.length === 3) throw new Error(`${name}: flags ${JSON.stringify(flags)}`);
      const costList = costs === '' ? codes.split('').map(() => 1) : costs.split(' ').map(Number);
      if (costList.length !== n) throw new Error(`${name}: ${costList.length} costs for ${n} keys`);
      const ops: [number, number][] = codes.split('').map((c, i) => [Number(c), costList[i]!]);
      const timed = (Number(flags) & 2) !== 0;
      this.calls.push({
        command: name,
        args,
        keys,
        ops,
        staleAfterUs: Number(afterKeys[staleAt]),
        flags: Number(flags),
        optionalArgs: optional.length,
        period: name === 'bulwarkCalendar3' ? [Number(afterKeys[1]), Number(afterKeys[2])] : undefined,
        resolve: (r: unknown) => d.resolve(asSent(r, timed)),
        resolveAsIs: d.resolve,
        reject: d.reject,
      });
      return d.promise;
    };
  }

  del(key: string): Promise<number> {
    this.deleted.push(key);
    if (this.delBehaviour === 'ok') return Promise.resolve(1);
    if (this.delBehaviour === 'fail') return Promise.reject(new Error('Connection is closed.'));
    return new Promise(() => {});
  }

  /** The latest call, which must exist. */
  last(): Call {
    const call = this.calls.at(-1);
    if (call === undefined) throw new Error('no call was made');
    return call;
  }
}

/** `r` as the script sends it (see `Call.resolve`). */
function asSent(r: unknown, timed: boolean): unknown {
  if (!Array.isArray(r) || r.length < 3 || !r.every((x) => typeof x === 'number')) return r;
  const [sec, usec, status] = r as number[];
  const word = Math.floor(sec! * 1000 + usec! / 1000) * 4;
  if (status !== 0) return word + status!;
  return timed ? [word, ...r.slice(3)] : r.slice(3);
}

/**
 * A reply at server time `ms` with `decisions` as [allowed, remaining, resetMs, retryAfterMs] each,
 * encoded as the scripts answer: remaining, resetMs when admitted; -1 - remaining, resetMs,
 * retryAfterMs when denied.
 */
export function reply(ms: number, decisions: readonly (readonly [0 | 1, number, number, number])[], status = 0): number[] {
  const out = [Math.floor(ms / 1000), Math.round((ms % 1000) * 1000), status];
  for (const [allowed, remaining, resetMs, retryAfterMs] of decisions) {
    if (allowed === 1) out.push(remaining, resetMs);
    else out.push(-1 - remaining, resetMs, retryAfterMs);
  }
  return out;
}

/** A reply admitting every operation of `call` with the given remaining count. */
export function admitAll(call: Call, ms = Date.now(), remaining = 5): number[] {
  return reply(
    ms,
    // A refund is answered `0 0`, as an admission with nothing remaining.
    call.ops.map(([op]): [0 | 1, number, number, number] => (op === 3 ? [1, 0, 0, 0] : [1, remaining, 1000, 0])),
  );
}

/**
 * A slot table of three masters, 'n1:7000', 'n2:7001' and 'n3:7002', splitting the slots as
 * `redis-cli --cluster create` does; `failover` names a master whose slots another node now serves.
 */
export function masters(failover?: { from: string; to: string }): string[][] {
  const table: string[][] = [];
  for (let slot = 0; slot < 16384; slot++) {
    const master = slot < 5461 ? 'n1:7000' : slot < 10923 ? 'n2:7001' : 'n3:7002';
    table.push([master === failover?.from ? failover.to : master]);
  }
  return table;
}
