--[[
bulwark · calendar quota · a batch of decisions in one call
Mirrors the calendar algorithm in src/ratelimit/quota/quota.ts; keep the two in step
(test/integration/redis/parity.test.ts replays every reply through the TypeScript function and
compares). Registered as the command `bulwarkCalendar3`: bump the digit whenever the arguments, the
reply or the stored value change.

Calendar arithmetic (time zones, DST) stays in TypeScript: the client computes the bounds of the
period holding the server's time and passes them in; the script checks them against TIME.

KEYS[i]       the key of decision i (a key may repeat: decisions apply in order, each seeing the last)
              stored value: "periodStart used periodEnd", epoch ms on the server clock and units
ARGV[1]       limit, units per period
ARGV[2]       periodStart, epoch ms: start of the period the client believes holds the server time
ARGV[3]       periodEnd, epoch ms (exclusive)
ARGV[4]       staleAfterUs: when the server clock is past it, the call is stale and changes nothing
              (0 = never)
ARGV[5]       the operations, one character per decision: 1 consume, 2 peek, 3 refund, 4 charge (from lease.lua only); absent or
              '' when every operation is a consume
ARGV[6]       the costs, whole units from 1 to limit separated by spaces, one per decision; absent
              or '' when every cost is 1; a count of operations or costs other than #KEYS is an error
ARGV[7]       flags, absent = 0: 2 puts the server time first in the reply (the client asks now
              and then, to keep its estimate of the server clock)
Returns       decided: a table, { [time * 4 when asked], then two or three integers per decision },
              time the server's whole ms; per decision, admitted: remaining, resetMs; denied:
              -1 - remaining, resetMs, retryAfterMs; a refund: 0 0
              not decided, nothing changed: the integer time * 4 + status, not a table; status 1:
              the server time lies outside [periodStart, periodEnd) (the client recomputes the
              bounds at that time and calls again); 2: stale
(Version 2 stored the same values: the two can share keys.)
Every written key gets a TTL (PX): the time until its period ends (at least 1 ms).
]]
local time = redis.call('TIME')
local sec, usec = tonumber(time[1]), tonumber(time[2])
local limit, pStart, pEnd, staleAfter = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
local now = sec * 1000 + math.floor(usec / 1000)
if staleAfter > 0 and sec * 1000000 + usec > staleAfter then return now * 4 + 2 end
if now < pStart or now >= pEnd then return now * 4 + 1 end
-- Operations: one character each ('1' consume, '2' peek, '3' refund), nil when all consume;
-- costs: nil when all are 1.
local ops, costs = ARGV[5], nil
if ops == '' then ops = nil end
if ARGV[6] and ARGV[6] ~= '' then
  costs = {}
  for c in string.gmatch(ARGV[6], '%d+') do costs[#costs + 1] = tonumber(c) end
end
if (ops and #ops ~= #KEYS) or (costs and #costs ~= #KEYS) then
  return redis.error_reply('bulwark: ' .. (ops and #ops or #KEYS) .. ' operations and ' .. (costs and #costs or #KEYS) .. ' costs for ' .. #KEYS .. ' keys')
end

-- key -> { start, used, end, held }: the period in force and its usage; held = the key existed
local states = {}
local touched = {}
local reply = {}
if ARGV[7] == '2' then reply[1] = now * 4 end

-- Every key is read by one MGET (one command for the batch, not one per key).
local stored = redis.call('MGET', unpack(KEYS))

local function current(value)
  local st, used, en = string.match(value or '', '^(%-?%d+) (%d+) (%-?%d+)$')
  st, used, en = tonumber(st), tonumber(used), tonumber(en)
  if st == nil then return { pStart, 0, pEnd, false } end
  if st < pStart then return { pStart, 0, pEnd, true } end
  if st == pStart then return { pStart, used, pEnd, true } end
  -- A usage recorded in a later period (the server clock stepped back) is kept with its end, so
  -- a clock step can never hand out a period's units twice.
  return { st, used, en, true }
end

for i = 1, #KEYS do
  local key = KEYS[i]
  local state = states[key]
  if state == nil then
    state = current(stored[i])
    states[key] = state
  end
  local used = state[2]
  local op, cost = 1, 1
  if ops then op = string.byte(ops, i) - 48 end
  if costs then cost = costs[i] end
  local resetMs = state[3] - now
  if resetMs < 0 then resetMs = 0 end
  local n = #reply
  if op == 4 then
    -- A charge whatever the limit (a settle's excess, sent only by lease.lua).
    state[2] = used + cost
    state[4] = true
    touched[#touched + 1] = key
    reply[n + 1], reply[n + 2] = 0, 0
  elseif op == 3 then
    -- Like the memory store, a refund to a key that holds nothing changes nothing.
    if state[4] then
      if used > cost then state[2] = used - cost else state[2] = 0 end
      touched[#touched + 1] = key
    end
    reply[n + 1], reply[n + 2] = 0, 0
  elseif used + cost <= limit then
    reply[n + 1], reply[n + 2] = limit - used - cost, resetMs
    if op == 1 then
      state[2] = used + cost
      state[4] = true
      touched[#touched + 1] = key
    end
  else
    -- A usage above the limit (the limit was lowered) leaves 0, never a negative count.
    local remaining = 0
    if used < limit then remaining = limit - used end
    reply[n + 1], reply[n + 2], reply[n + 3] = -1 - remaining, resetMs, resetMs
  end
end

local written = {}
for _, key in ipairs(touched) do
  if not written[key] then
    written[key] = true
    local state = states[key]
    local ttl = state[3] - now
    if ttl < 1 then ttl = 1 end
    redis.call('SET', key, string.format('%.0f %.0f %.0f', state[1], state[2], state[3]), 'PX', string.format('%.0f', ttl))
  end
end
return reply
