--[[
bulwark · GCRA (token bucket) · a batch of decisions in one call
Mirrors src/ratelimit/algorithms/gcra.ts; keep the two in step (test/integration/redis/parity.test.ts
replays every reply through the TypeScript function and compares). Registered as the command
`bulwarkGcra4`: bump the digit whenever the arguments, the reply or the stored value change.

KEYS[i]       the key of decision i (a key may repeat: decisions apply in order, each seeing the last)
              stored value, on Redis >= 7.0: how many µs before the key's expiry (a whole ms, set by
              PXAT 1 to 2 ms after it) the theoretical arrival time (tat) lies, a number from 1,001
              to 2,000: Redis shares such small integers, so the value takes no memory of its own;
              PEXPIRETIME gives the tat back exactly. On older servers, and with flag 1: the
              tat itself, whole µs on the server clock (the only format of version 2, which reads
              nothing else). Both are read: a value of 10^6 or more is a tat. (Version 3 stored
              the same values as this one: the two can share keys.)
ARGV[1]       T, the emission interval, whole µs
ARGV[2]       tau = burst * T, whole µs
ARGV[3]       staleAfterUs: when the server clock is past it, the call is stale and changes nothing
              (0 = never); the client sets it to its own deadline, so a command replayed after a
              reconnect cannot take units in a window its caller no longer waits for
ARGV[4]       the operations, one character per decision: 1 consume, 2 peek, 3 refund, 4 charge (from lease.lua only); absent or
              '' when every operation is a consume
ARGV[5]       the costs, whole units from 1 to burst separated by spaces, one per decision; absent
              or '' when every cost is 1 (refunds are clamped by the client); a count of operations
              or costs other than #KEYS is an error
ARGV[6]       flags, absent = 0: + 1 writes the tat itself, which version 2 reads too (the store's
              legacyValues, for a rolling upgrade), where it would write the remainder; + 2 puts
              the server time first in the reply (the client asks now and then, to keep its
              estimate of the server clock)
Returns       decided: a table, { [time * 4 when asked], then two or three integers per decision },
              time the server's whole ms; per decision, admitted: remaining, resetMs; denied:
              -1 - remaining, resetMs, retryAfterMs; a refund: 0 0
              stale: the integer time * 4 + 2, not a table (nothing changed); see fixed-window.lua
Every written key gets a TTL: the time until it is back to full capacity (PXAT: 1 to 2 ms more).
]]
local time = redis.call('TIME')
-- Numbers from strings by arithmetic (s + 0), not tonumber: the same conversion without a call
-- (about 1k Redis instructions less each); these strings are always numbers.
local sec, usec = time[1] + 0, time[2] + 0
local now = sec * 1000000 + usec
local T, tau, staleAfter = ARGV[1] + 0, ARGV[2] + 0, ARGV[3] + 0
local ms = (now - now % 1000) / 1000 -- whole ms, for the reply's time
if staleAfter > 0 and now > staleAfter then return ms * 4 + 2 end
-- Operations: one character each ('1' consume, '2' peek, '3' refund), nil when all consume;
-- costs: nil when all are 1.
local ops, costs = ARGV[4], nil
if ops == '' then ops = nil end
if ARGV[5] and ARGV[5] ~= '' then
  costs = {}
  for c in string.gmatch(ARGV[5], '%d+') do costs[#costs + 1] = tonumber(c) end
end
if (ops and #ops ~= #KEYS) or (costs and #costs ~= #KEYS) then
  return redis.error_reply('bulwark: ' .. (ops and #ops or #KEYS) .. ' operations and ' .. (costs and #costs or #KEYS) .. ' costs for ' .. #KEYS .. ' keys')
end
local flags = ARGV[6]
local legacy, withTime = flags == '1' or flags == '3', flags == '2' or flags == '3'

-- PEXPIRETIME (and so the remainder format) came with Redis 7.0.
local expireTimes = (redis.REDIS_VERSION_NUM or 0) >= 0x070000
local remainders = expireTimes and not legacy

-- The tat a stored value stands for; false when there is none.
local function read(key, value)
  local v = tonumber(value or '')
  if not v then return false end
  if v >= 1000000 then return v end
  if not expireTimes then return false end
  local at = redis.call('PEXPIRETIME', key)
  if at < 0 then return false end
  return at * 1000 - v
end

-- One decision on a key whose tat is tat (false: nothing held): the tat after it (false: none),
-- whether the key changed (a refund to a key that holds a tat, or an admitted consume), and the
-- answer.
local function decide(tat, op, cost)
  local backlog = 0
  if tat and tat > now then backlog = tat - now end
  if op == 4 then return now + backlog + cost * T, true, 0, 0 end
  if op == 3 then
    if not tat then return tat, false, 0, 0 end
    local left = backlog - cost * T
    if left > 0 then return now + left, true, 0, 0 end
    return false, true, 0, 0
  end
  local after = backlog + cost * T
  if after <= tau then
    local remaining, resetMs = math.floor((tau - after) / T), math.ceil(after / 1000)
    if op == 1 then return now + after, true, remaining, resetMs end
    return tat, false, remaining, resetMs
  end
  local remaining = 0
  if backlog < tau then remaining = math.floor((tau - backlog) / T) end
  return tat, false, -1 - remaining, math.ceil(backlog / 1000), math.ceil((after - tau) / 1000)
end

-- The write for a key whose tat changed.
local function write(key, tat)
  if tat and tat > now and remainders then
    local at = math.floor(tat / 1000) + 2
    -- %d: Redis 7.0 spells a number argument out with %.17g, dearer (the same digits for an integer).
    redis.call('SET', key, string.format('%d', at * 1000 - tat), 'PXAT', string.format('%d', at))
  elseif tat and tat > now then
    -- %.0f, not tostring: a tat near 1.7e15 would otherwise be written in exponent form.
    redis.call('SET', key, string.format('%.0f', tat), 'PX', string.format('%.0f', math.ceil((tat - now) / 1000)))
  else
    redis.call('DEL', key)
  end
end

-- Straight through for a call that carries one decision (most calls at low concurrency; see
-- fixed-window.lua): one table (the reply), GET by pcall (an error for a key of another type
-- reads as no tat, as MGET's nil does).
if #KEYS == 1 then
  local key, cost = KEYS[1], costs and costs[1] or 1
  local op = 1
  if ops then op = string.byte(ops) - 48 end
  local tat, changed, a, b, c = decide(read(key, redis.pcall('GET', key)), op, cost)
  if changed then write(key, tat) end
  if withTime then return { ms * 4, a, b, c } end
  return { a, b, c }
end

-- Every key is read by one MGET (one command for the batch, not one per key).
local stored = redis.call('MGET', unpack(KEYS))
local tats = {}    -- key -> tat as of this batch; false when the key holds nothing
local touched = {} -- keys whose tat changed, in first-change order
local reply = {}
if withTime then reply[1] = ms * 4 end

for i = 1, #KEYS do
  local key = KEYS[i]
  local tat = tats[key]
  if tat == nil then
    tat = read(key, stored[i])
    tats[key] = tat
  end
  local cost = 1
  if costs then cost = costs[i] end
  local op = 1
  if ops then op = string.byte(ops, i) - 48 end
  local after, changed, a, b, c = decide(tat, op, cost)
  if changed then
    tats[key] = after
    touched[#touched + 1] = key
  end
  local n = #reply
  reply[n + 1], reply[n + 2], reply[n + 3] = a, b, c
end

local written = {}
for _, key in ipairs(touched) do
  if not written[key] then
    written[key] = true
    write(key, tats[key])
  end
end
return reply
