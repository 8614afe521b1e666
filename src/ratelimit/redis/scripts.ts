import type { CalendarAlgorithm, RateLimitAlgorithm } from '../algorithm.js';
import type { GcraAlgorithm } from '../algorithms/gcra.js';
import calendarLua from './lua/calendar.lua';
import fixedWindowLua from './lua/fixed-window.lua';
import frozenClockLua from './lua/frozen-clock.lua';
import gcraLua from './lua/gcra.lua';
import compoundLua from './lua/compound.lua';
import leaseLua from './lua/lease.lua';
import markerLua from './lua/marker.lua';
import slidingWindowLua from './lua/sliding-window.lua';

/**
 * One Lua script per algorithm, and the state marker's (marker.ts), each registered on the client under a versioned command name
 * (the trailing digit changes whenever a script's arguments, reply or stored value change, so
 * two versions of bulwark sharing a Redis never run each other's scripts).
 */
export const scripts = {
  gcra: { command: 'bulwarkGcra4', lua: gcraLua },
  'sliding-window': { command: 'bulwarkSlidingWindow4', lua: slidingWindowLua },
  'fixed-window': { command: 'bulwarkFixedWindow4', lua: fixedWindowLua },
  calendar: { command: 'bulwarkCalendar3', lua: calendarLua },
  marker: { command: 'bulwarkMarker1', lua: markerLua },
} as const;

/** An algorithm's script inside lease.lua: the algorithm's kind, where its operations are in ARGV. */
function leased(kind: string, opsAt: number, lua: string): string {
  return `local KIND, OPS_AT = '${kind}', ${opsAt}\nlocal function body(KEYS, ARGV, redis)\n${lua}\nend\n${frozenClockLua}\n${leaseLua}`;
}

/**
 * The scripts of calls that carry reservations (see lua/lease.lua): each algorithm's script,
 * unchanged, inside the lease handling. Registered on a client by its first reservation, under
 * names of their own, so that stores that never reserve define nothing more.
 */
export const leaseScripts = {
  gcra: { command: 'bulwarkGcraLease1', lua: leased('gcra', 4, gcraLua) },
  'sliding-window': { command: 'bulwarkSlidingWindowLease1', lua: leased('sliding-window', 4, slidingWindowLua) },
  'fixed-window': { command: 'bulwarkFixedWindowLease1', lua: leased('fixed-window', 4, fixedWindowLua) },
  calendar: { command: 'bulwarkCalendarLease1', lua: leased('calendar', 5, calendarLua) },
} as const;

/** The name a script is registered under on the client (one per script). */
export type ScriptCommandName =
  | (typeof scripts)[keyof typeof scripts]['command']
  | (typeof leaseScripts)[keyof typeof leaseScripts]['command']
  | 'bulwarkCompound1';

/** Operation codes the scripts understand. */
export const OP_CONSUME = 1;
export const OP_PEEK = 2;
export const OP_REFUND = 3;
/** A reservation: a consume and a lease (lease.lua); never a code of the algorithms' scripts. */
export const OP_RESERVE = 5;
/** The end of a lease, its cost the actual cost (lease.lua). */
export const OP_SETTLE = 6;

/**
 * Reply status codes. A decided call answers with a table (its first element the server time × 4
 * when asked for); one that decided nothing, with the integer time × 4 + status (reply.ts).
 */
export const STATUS_DECIDED = 0;
export const STATUS_WRONG_PERIOD = 1;
export const STATUS_STALE = 2;

/** The scripts' flags argument: write the previous release's text formats (`legacyValues`). */
export const FLAG_TEXT = 1;
/** The scripts' flags argument: put the server time first in the reply. */
export const FLAG_TIME = 2;

/** An operation as a script call carries it. */
export interface CallOperation {
  readonly redisKey: string;
  /** OP_CONSUME, OP_PEEK, OP_REFUND, OP_RESERVE or OP_SETTLE. */
  readonly op: number;
  readonly cost: number;
  /** A reserve's "id leaseMs", a settle's "id units leaseMs"; undefined for the others. */
  readonly lease?: string | undefined;
}

/**
 * The arguments of a script call after its command name, as the scripts' headers describe them:
 * the key count and keys, the plan's fixed arguments, a calendar's period bounds (ignored for other
 * plans), `staleAfterUs`, then the operations, the costs and the flags, each left out from the end
 * while it holds the script's default (every operation a consume, every cost 1, no flag). Three
 * arguments at most for all the operations, not two per decision, and none that a default
 * covers: every argument costs the client (ioredis measures and frames each one) and Redis (a Lua
 * string each) on every call.
 */
export function callArgs(
  plan: ScriptPlan,
  ops: readonly CallOperation[],
  periodStart: number,
  periodEnd: number,
  staleAfterUs: number,
  flags: number,
): (string | number)[] {
  const n = ops.length;
  const args: (string | number)[] = [n];
  for (let i = 0; i < n; i++) args.push(ops[i]!.redisKey);
  for (const value of plan.fixedArgs) args.push(value);
  if (plan.calendar !== undefined) args.push(periodStart, periodEnd);
  args.push(staleAfterUs);
  let consumes = true;
  let unit = true;
  let leases: string | undefined;
  for (let i = 0; i < n; i++) {
    const op = ops[i]!;
    if (op.op !== OP_CONSUME) consumes = false;
    if (op.cost !== 1) unit = false;
    if (op.lease !== undefined) leases = leases === undefined ? op.lease : `${leases} ${op.lease}`;
  }
  if (leases !== undefined) {
    // A call with reservations (sent to a lease command): every argument, then the leases'.
    let codes = '';
    let costs = '';
    for (let i = 0; i < n; i++) {
      codes += ops[i]!.op;
      costs += i === 0 ? String(ops[i]!.cost) : ` ${ops[i]!.cost}`;
    }
    args.push(codes, costs, flags, leases);
    return args;
  }
  if (!consumes || !unit || flags !== 0) {
    let codes = '';
    if (!consumes) for (let i = 0; i < n; i++) codes += ops[i]!.op; // the codes are single digits
    args.push(codes);
  }
  if (!unit || flags !== 0) {
    let costs = '';
    if (!unit) for (let i = 0; i < n; i++) costs += i === 0 ? String(ops[i]!.cost) : ` ${ops[i]!.cost}`;
    args.push(costs);
  }
  if (flags !== 0) args.push(flags);
  return args;
}

/** What the store needs to know of an algorithm to run its script. */
export interface ScriptPlan {
  readonly command: ScriptCommandName;
  /** The command of a call that carries reservations (see `leaseScripts`). */
  readonly leaseCommand: ScriptCommandName;
  /** Arguments before `staleAfterUs` that never change (a calendar's period bounds follow them). */
  readonly fixedArgs: readonly number[];
  /** The flags every call carries (FLAG_TEXT or 0); FLAG_TIME is added per call. */
  readonly flags: number;
  /** The most one decision may cost (the bucket or the limit): refunds are clamped to it. */
  readonly maxCost: number;
  /** `limit` as decisions report it (`burst` for GCRA). */
  readonly decisionLimit: number;
  /** Set for calendar quotas: their period bounds are computed per call. */
  readonly calendar: CalendarAlgorithm | undefined;
}

/**
 * How the Redis store runs `algorithm`; throws for an algorithm it has no script for. With
 * `legacyValues`, the scripts write their counters in the formats the previous release's scripts
 * (`bulwarkFixedWindow2`, `bulwarkSlidingWindow2`, `bulwarkGcra2`) read: the windows' text, GCRA's
 * whole tat (see the store's option).
 */
export function planFor(algorithm: RateLimitAlgorithm, legacyValues = false): ScriptPlan {
  switch (algorithm.kind) {
    case 'gcra': {
      const g = algorithm as GcraAlgorithm;
      const T = g.emissionIntervalUs;
      return {
        command: scripts.gcra.command,
        leaseCommand: leaseScripts.gcra.command,
        fixedArgs: [T, g.burst * T],
        flags: legacyValues ? FLAG_TEXT : 0,
        maxCost: g.burst,
        decisionLimit: g.burst,
        calendar: undefined,
      };
    }
    case 'sliding-window':
    case 'fixed-window':
      return {
        command: scripts[algorithm.kind].command,
        leaseCommand: leaseScripts[algorithm.kind].command,
        fixedArgs: [algorithm.limit, algorithm.windowMs],
        flags: legacyValues ? FLAG_TEXT : 0,
        maxCost: algorithm.limit,
        decisionLimit: algorithm.limit,
        calendar: undefined,
      };
    case 'calendar':
      return {
        command: scripts.calendar.command,
        leaseCommand: leaseScripts.calendar.command,
        fixedArgs: [algorithm.limit],
        flags: 0,
        maxCost: algorithm.limit,
        decisionLimit: algorithm.limit,
        calendar: algorithm as CalendarAlgorithm,
      };
    default:
      throw new TypeError(
        `redisStore: no Redis script for algorithm kind ${JSON.stringify((algorithm as { kind?: unknown }).kind)}; ` +
          'use gcra(...), slidingWindow(...), fixedWindow(...) or quota(...)',
      );
  }
}

/**
 * The compound-limit command (see lua/compound.lua): every algorithm's script, unchanged, as a
 * function, and the all-or-nothing logic around them. Registered by a store's first compound call.
 */
export const compoundScript = {
  command: 'bulwarkCompound1',
  lua:
    'local BODIES = {\n' +
    [
      ['gcra', gcraLua],
      ['sliding-window', slidingWindowLua],
      ['fixed-window', fixedWindowLua],
      ['calendar', calendarLua],
    ]
      .map(([kind, lua]) => `  ['${kind}'] = function(KEYS, ARGV, redis)\n${lua}\nend,\n`)
      .join('') +
    '}\n' +
    frozenClockLua +
    '\n' +
    compoundLua,
} as const;
