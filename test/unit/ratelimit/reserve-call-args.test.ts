// The arguments of a script call that carries reservations (see src/ratelimit/redis/lua/lease.lua):
// every argument spelled out, then the leases' in the order of the operations; a call without
// reservations is built as before.
import { describe, expect, it } from 'vitest';
import { gcra } from '../../../src/index.js';
import { callArgs, leaseScripts, OP_CONSUME, OP_RESERVE, OP_SETTLE, planFor, scripts } from '../../../src/ratelimit/redis/scripts.js';

describe('reservation calls', () => {
  const plan = planFor(gcra({ limit: 10, periodMs: 1_000 }));

  it('go to the lease command with codes, costs, flags and the leases', () => {
    expect(plan.leaseCommand).toBe(leaseScripts.gcra.command);
    const ops = [
      { redisKey: 'a', op: OP_RESERVE, cost: 4, lease: 'x1 500' },
      { redisKey: 'b', op: OP_CONSUME, cost: 1 },
      { redisKey: 'a', op: OP_SETTLE, cost: 0, lease: 'x0 3 500' },
    ];
    expect(callArgs(plan, ops, 0, 0, 77, 0)).toEqual([3, 'a', 'b', 'a', 100_000, 1_000_000, 77, '516', '4 1 0', 0, 'x1 500 x0 3 500']);
  });

  it('leave calls without reservations as they were', () => {
    expect(callArgs(plan, [{ redisKey: 'a', op: OP_CONSUME, cost: 1 }], 0, 0, 77, 0)).toEqual([1, 'a', 100_000, 1_000_000, 77]);
  });

  it('wrap each algorithm script, its operations where the script reads them', () => {
    expect(leaseScripts.gcra.lua).toContain("local KIND, OPS_AT = 'gcra', 4");
    expect(leaseScripts.gcra.lua).toContain(scripts.gcra.lua);
    expect(leaseScripts.calendar.lua).toContain("local KIND, OPS_AT = 'calendar', 5");
  });
});
