--[[
bulwark · reservations (reserve-then-settle) around an algorithm's script
Not a script of its own: scripts.ts builds each `bulwark…Lease1` command as
  local KIND, OPS_AT = '<algorithm kind>', <where the operations are in ARGV>
  local function body(KEYS, ARGV, redis) <the algorithm's script> end
  <frozen-clock.lua> <this file>
so a call runs the algorithm's script unchanged, on operations this file derives from its own.
Mirrors the memory store's reserve and settle (src/ratelimit/memory-store.ts, reservation.ts).

Besides the algorithm's operations (1 consume, 2 peek, 3 refund), a call may carry
  5 reserve   a consume of the estimate (its cost) and, when admitted, a lease on it
  6 settle    ends a lease; its cost is the actual cost (0 for a cancel)
and then one more argument after the flags (flags must then be present, '0' for none): for each
reserve, "id leaseMs", for each settle, "id units leaseMs", in the order of the operations,
separated by spaces.
A key's leases are the sorted set KEYS[i] .. ':lease' (the same hash tag, so the same slot):
member "id:units:leaseMs", score the lease's end in whole ms on the server clock. Before the
first reserve or settle on a key in a call, its leases that have ended are removed and their
units given back (a refund) if the window that lent them is still the key's (always for GCRA).
A settle whose lease is there removes it and gives back units − actual (same window rule), or
charges actual − units (4, whatever the limit, at most one maxCost); one whose lease has gone
(swept: its units went back) charges actual (at most one maxCost).
Reply: the algorithm's, one answer per operation; a reserve answers as a consume; a settle
answers 1 0 (settled) or 2 0 (the lease had ended). Calls without 5 or 6 go to the body as they
came, untouched.
]]
local ops = ARGV[OPS_AT]
if not ops or not string.find(ops, '[56]') then return body(KEYS, ARGV, redis) end

local costsAt, flagsAt, leaseAt = OPS_AT + 1, OPS_AT + 2, OPS_AT + 3
-- The body reads the clock through `frozen` (frozen-clock.lua): the same TIME as here, so a lease
-- and the decision that made it are in one window even when the call runs across a window's end.
local time, frozen = frozenClock(redis)
local nowUs = time[1] * 1000000 + time[2]
local nowMs = (nowUs - nowUs % 1000) / 1000
-- A call the body would turn down (stale, or a calendar period that is not the server's) goes
-- to it as it came, before anything changes here; the body then answers with the status.
local staleAfter = ARGV[OPS_AT - 1] + 0
if staleAfter > 0 and nowUs > staleAfter then return body(KEYS, ARGV, redis) end
if KIND == 'calendar' and (nowMs < ARGV[2] + 0 or nowMs >= ARGV[3] + 0) then return body(KEYS, ARGV, redis) end

-- The window holding ms (false for GCRA: its units can go back at any time); the most one charge
-- may take; how long a key's leases are kept past the last one's end.
local windowOf, maxCharge, keepMs
if KIND == 'gcra' then
  windowOf = function() return false end
  maxCharge = (ARGV[2] + 0) / (ARGV[1] + 0)
  keepMs = math.ceil((ARGV[2] + 0) / 1000)
elseif KIND == 'calendar' then
  local pStart = ARGV[2] + 0
  windowOf = function(ms) if ms >= pStart then return pStart end return -1 end
  maxCharge = ARGV[1] + 0
  keepMs = ARGV[3] - nowMs
else
  local W = ARGV[2] + 0
  windowOf = function(ms) return ms - ms % W end
  maxCharge = ARGV[1] + 0
  keepMs = 2 * W
end
local windowNow = windowOf(nowMs)
local function sameWindow(ms) return windowNow == false or windowOf(ms) == windowNow end

local costs = nil
if ARGV[costsAt] and ARGV[costsAt] ~= '' then
  costs = {}
  for c in string.gmatch(ARGV[costsAt], '%d+') do costs[#costs + 1] = tonumber(c) end
end
local leaseArgs, nextArg = {}, 1
for token in string.gmatch(ARGV[leaseAt] or '', '%S+') do leaseArgs[#leaseArgs + 1] = token end

-- The operations the body runs: keys, codes, costs.
local xKeys, xOps, xCosts = {}, {}, {}
local function push(key, op, cost)
  local n = #xKeys + 1
  xKeys[n], xOps[n], xCosts[n] = key, op, string.format('%d', cost)
  return n
end
-- Per operation of the call: { the body's operation answering for it (false: none), code, then
-- for a reserve the lease key, end and member; for a settle its status }.
local plan = {}
local swept = {}
for i = 1, #KEYS do
  local key = KEYS[i]
  local op = string.byte(ops, i) - 48
  local cost = 1
  if costs then cost = costs[i] end
  if op == 5 or op == 6 then
    local leases = key .. ':lease'
    if not swept[key] then
      swept[key] = true
      local ended = redis.call('ZRANGEBYSCORE', leases, '-inf', nowMs, 'WITHSCORES')
      if #ended > 0 then
        redis.call('ZREMRANGEBYSCORE', leases, '-inf', nowMs)
        local back = 0
        for j = 1, #ended, 2 do
          local units, leaseMs = string.match(ended[j], ':(%d+):(%d+)$')
          if units and sameWindow(ended[j + 1] - leaseMs) then back = back + units end
        end
        if back > 0 then push(key, 3, back) end
      end
    end
    if op == 5 then
      local id, leaseMs = leaseArgs[nextArg], leaseArgs[nextArg + 1]
      nextArg = nextArg + 2
      plan[i] = { push(key, 1, cost), 5, leases, nowMs + leaseMs, id .. ':' .. cost .. ':' .. leaseMs, leaseMs + 0 }
    else
      local id, units, leaseMs = leaseArgs[nextArg], leaseArgs[nextArg + 1], leaseArgs[nextArg + 2]
      nextArg = nextArg + 3
      local member = id .. ':' .. units .. ':' .. leaseMs
      local ends = redis.call('ZSCORE', leases, member)
      local status, delta = 2, cost
      if ends then
        redis.call('ZREM', leases, member)
        status, delta = 1, cost - units
        if delta < 0 and not sameWindow(ends - leaseMs) then delta = 0 end
      end
      local at = false
      if delta < 0 then
        at = push(key, 3, -delta)
      elseif delta > 0 then
        if delta > maxCharge then delta = maxCharge end
        at = push(key, 4, delta)
      end
      plan[i] = { at, 6, status }
    end
  else
    plan[i] = { push(key, op, cost), op }
  end
end

local flags = ARGV[flagsAt]
local withTime = flags == '2' or flags == '3'
local reply
if #xKeys == 0 then
  reply = {}
  if withTime then reply[1] = nowMs * 4 end
else
  local args = {}
  for j = 1, #ARGV do args[j] = ARGV[j] end
  args[OPS_AT - 1] = '0' -- checked above: the body must not turn the call down after the changes here
  args[OPS_AT] = table.concat(xOps)
  args[costsAt] = table.concat(xCosts, ' ')
  reply = body(xKeys, args, frozen)
  if type(reply) ~= 'table' or reply.err then return reply end
end

-- Where each of the body's answers starts (two integers, three for a denial).
local at, starts = 1, {}
if withTime then at = 2 end
for j = 1, #xKeys do
  starts[j] = at
  if reply[at] >= 0 then at = at + 2 else at = at + 3 end
end

local out = {}
if withTime then out[1] = reply[1] end
for i = 1, #KEYS do
  local p = plan[i]
  local n = #out
  if p[2] == 6 then
    out[n + 1], out[n + 2] = p[3], 0
  else
    local s = starts[p[1]]
    local first = reply[s]
    out[n + 1], out[n + 2] = first, reply[s + 1]
    if first < 0 then
      out[n + 3] = reply[s + 2]
    elseif p[2] == 5 then
      local leases = p[3]
      redis.call('ZADD', leases, p[4], p[5])
      local keep = p[6] + keepMs + 1000
      if redis.call('PTTL', leases) < keep then redis.call('PEXPIRE', leases, keep) end
    end
  end
end
return out
