--[[
bulwark · compound limits: one request charged against several limits, all or nothing
Not a script of its own: scripts.ts builds the `bulwarkCompound1` command as
  local BODIES = { gcra = function(KEYS, ARGV, redis) <gcra.lua> end, ... one per algorithm }
  <frozen-clock.lua> <this file>
so each limit is decided by its algorithm's script, unchanged (as lease.lua does).

KEYS[1..n]    the state key of each limit (all with one hash tag: one slot on Cluster)
KEYS[n + 1]   the limits hash of the tag: field = policy name, value = "limit args...", set at
              run time (setLimit): the limit decisions report, then fixed arguments replacing
              the first ones the call carries
ARGV[1]       n, the number of limits; -n to peek only (nothing is charged)
then per limit: kind, policy name, argc, the argc arguments the algorithm's script takes before
              staleAfterUs (its fixed arguments, a calendar's period bounds), the cost, the flags
Every limit is first peeked (op 2) on one frozen server time; only when every peek admits is
every limit consumed (op 1), on the same time, so the consumes admit too (a consume that would
not, which cannot happen while the keys are distinct, gives back what this call took).
Returns       decided: { index of the first limit that denied (0: all admitted), then one answer
              per limit as the algorithms' scripts give it (2 integers admitted, 3 denied), then
              per limit the limit in force (the run-time one when set, else -1) }
              a limit's script that decided nothing (a calendar period that is not the server's):
              its integer reply, time * 4 + status, with nothing changed
]]
local n = ARGV[1] + 0
local peekOnly = n < 0
if peekOnly then n = -n end
local limitsKey = KEYS[n + 1]
local _, frozen = frozenClock(redis) -- every limit decides on one server time

local limits = {}
local at = 2
for i = 1, n do
  local kind, name, argc = ARGV[at], ARGV[at + 1], ARGV[at + 2] + 0
  local args = {}
  for j = 1, argc do args[j] = ARGV[at + 2 + j] end
  at = at + 3 + argc
  local cost, flags = ARGV[at], ARGV[at + 1]
  at = at + 2
  local inForce = -1
  local set = redis.call('HGET', limitsKey, name)
  if set then
    local j = 1
    for v in string.gmatch(set, '%S+') do
      if j == 1 then inForce = v + 0 else args[j - 1] = v end
      j = j + 1
    end
  end
  limits[i] = { BODIES[kind], args, cost, flags, inForce }
end

-- One operation of one limit: its answer (a table of 2 or 3 integers) or the script's non-table reply.
local function run(i, op, cost)
  local l = limits[i]
  local args = {}
  for j = 1, #l[2] do args[j] = l[2][j] end
  args[#args + 1] = '0'
  args[#args + 1] = op
  args[#args + 1] = cost
  args[#args + 1] = l[4]
  return l[1]({ KEYS[i] }, args, frozen)
end

local answers, denied = {}, 0
for i = 1, n do
  local reply = run(i, '2', limits[i][3])
  if type(reply) ~= 'table' or reply.err then return reply end
  answers[i] = reply
  if reply[1] < 0 and denied == 0 then denied = i end
end
if denied == 0 and not peekOnly then
  for i = 1, n do
    local reply = run(i, '1', limits[i][3])
    if type(reply) ~= 'table' or reply.err or reply[1] < 0 then
      for j = 1, i - 1 do run(j, '3', limits[j][3]) end
      if type(reply) ~= 'table' or reply.err then return reply end
      answers[i] = reply
      denied = i
      break
    end
    answers[i] = reply
  end
end

local out = { denied }
for i = 1, n do
  for _, v in ipairs(answers[i]) do out[#out + 1] = v end
end
for i = 1, n do out[#out + 1] = limits[i][5] end
return out
