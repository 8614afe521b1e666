--[[
bulwark · fixed window · a batch of decisions in one call
Mirrors src/ratelimit/algorithms/fixed-window.ts; keep the two in step (test/integration/redis/
parity.test.ts replays every reply through the TypeScript function and compares). Registered as
the command `bulwarkFixedWindow4`: bump the digit whenever the arguments, the reply or the stored
value change.

KEYS[i]       the key of decision i (a key may repeat: decisions apply in order, each seeing the last)
              stored value: one integer, count * 8 + (windowStart / W) mod 8: the count and a tag
              of its window. An integer is the smallest value Redis stores (below 10,000, a shared
              object: no memory of its own), and reading it takes one tonumber. The tag tells the
              window in force (tag of now) from any other; for another tag (at most once per key
              and window: the first decision after a window ends while its key lives on, or after
              the clock stepped back) the key's TTL, which ends with its window, tells which one.
              A value "windowStart count" (version 2, and earlier) is read too, and rewritten as an
              integer by the first change, unless the flags ask for text. (Version 3 stored the
              same values as this one: the two can share keys.)
ARGV[1]       limit, units per window
ARGV[2]       W, the window, whole ms
ARGV[3]       staleAfterUs: when the server clock is past it, the call is stale and changes nothing
              (0 = never)
ARGV[4]       the operations, one character per decision: 1 consume, 2 peek, 3 refund, 4 charge (from lease.lua only); absent or
              '' when every operation is a consume
ARGV[5]       the costs, whole units from 1 to limit separated by spaces, one per decision; absent
              or '' when every cost is 1 (refunds are clamped by the client); a count of operations
              or costs other than #KEYS is an error
ARGV[6]       flags, absent = 0: + 1 writes "windowStart count", which version 2 reads too (the
              store's legacyValues, for a rolling upgrade); + 2 puts the server time first in the
              reply (the client asks now and then, to keep its estimate of the server clock)
Returns       decided: a table, { [time * 4 when asked], then two or three integers per decision },
              time the server's whole ms; per decision, admitted: remaining, resetMs; denied:
              -1 - remaining, resetMs, retryAfterMs; a refund: 0 0
              stale: the integer time * 4 + 2, not a table (nothing changed)
              (Every argument and every integer of the reply costs Redis and the client work on
              every call: a call at concurrency 1 carries 3 arguments and gets 2 integers back.)
Every written key gets a TTL: PX, the time until its window ends, when the key is new to its
window. A key that already holds a count of that window keeps its TTL, which ends with it: INCRBY
of the change (times 8, so the tag stays) when it holds an integer, the cheapest write; else
SET ... KEEPTTL (Redis >= 6.0).
]]
local time = redis.call('TIME')
-- Numbers from strings by arithmetic (s + 0), not tonumber: the same conversion without a call
-- (about 1k Redis instructions less each); these strings are always numbers.
local sec, usec = time[1] + 0, time[2] + 0
local t = sec * 1000 + (usec - usec % 1000) / 1000 -- whole ms (exact: no math.floor call)
local limit, W, staleAfter = ARGV[1] + 0, ARGV[2] + 0, ARGV[3] + 0
if staleAfter > 0 and sec * 1000000 + usec > staleAfter then return t * 4 + 2 end
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
local asText, withTime = flags == '1' or flags == '3', flags == '2' or flags == '3'
local s = t - (t % W)

local tagNow = (s / W) % 8 -- s is a multiple of W: the quotient is exact

-- The window start and count a stored value holds (nil when it holds nothing readable), and
-- whether it is an integer (false: version 2's text).
local function read(key, value)
  if not value then return nil end
  local v = tonumber(value)
  if v then
    local tag = v % 8
    local c = (v - tag) / 8
    if tag == tagNow then return s, c, true end
    -- Another window. The key expires when its window ends (PX: st + W - t, counted from the
    -- server's clock a ms later at most): its TTL places that window to within a ms or two, and
    -- the tag, which repeats every 8 windows, makes the answer exact.
    local pttl = redis.call('PTTL', key)
    local d = (tag - tagNow) % 8
    local guess = (t + pttl - W - s) / W
    d = d + 8 * math.floor((guess - d) / 8 + 0.5)
    return s + d * W, c, true
  end
  -- Version 2: "windowStart count". (Not a string: GET's error for a key of another type.)
  if type(value) ~= 'string' then return nil end
  local st, c = string.match(value, '^(%-?%d+) (%d+)$')
  return tonumber(st), tonumber(c), false
end

-- One decision on a key holding count units of the window that starts at start: the count
-- after it, whether the key changed (a refund, or an admitted consume), and the answer.
local function decide(start, count, op, cost)
  local untilEnd = start + W - t
  if op == 4 then return count + cost, true, 0, 0 end -- a charge whatever the limit (lease.lua)
  if op == 3 then
    if count <= cost then return 0, true, 0, 0 end
    return count - cost, true, 0, 0
  elseif count + cost <= limit then
    if op == 1 then return count + cost, true, limit - count - cost, untilEnd end
    return count, false, limit - count - cost, untilEnd
  end
  local remaining = 0
  if count < limit then remaining = limit - count end
  return count, false, -1 - remaining, untilEnd, untilEnd
end

-- The write for a key that changed. before: the count it held, if that count is of the window in
-- force (the key's TTL ends with it); -1 when that count was text; nil otherwise. A key that holds
-- an integer of its window gets INCRBY of the difference (times 8: the tag stays), cheaper than a
-- SET, and its TTL stays as it is.
local function write(key, st, count, before)
  if count == 0 then
    redis.call('DEL', key)
  elseif asText then
    local value = string.format('%.0f %.0f', st, count)
    if before then redis.call('SET', key, value, 'KEEPTTL') else redis.call('SET', key, value, 'PX', st + W - t) end
  elseif before == nil then
    -- Below 2^34 (count <= limit < 2^31): Redis writes the number out in full.
    redis.call('SET', key, count * 8 + (st / W) % 8, 'PX', st + W - t)
  elseif before < 0 then
    redis.call('SET', key, count * 8 + (st / W) % 8, 'KEEPTTL')
  elseif count ~= before then
    -- %d: Redis 7.0 spells a number argument out with %.17g, dearer (the same digits for an integer).
    redis.call('INCRBY', key, string.format('%d', (count - before) * 8))
  end
end

-- One decision (the common call at low concurrency): the same steps on plain locals, no tables
-- but the reply, and GET rather than MGET. pcall: GET of a key of another type is an error, where
-- MGET (the batch's read) gives nil; read() takes the error table for nothing held, as MGET's nil.
if #KEYS == 1 then
  local key, cost = KEYS[1], 1
  if costs then cost = costs[1] end
  local st, count, integer = read(key, redis.pcall('GET', key))
  local before
  if st and st >= s then
    if integer then before = count else before = -1 end
  else
    st, count = s, 0
  end
  local op = 1
  if ops then op = string.byte(ops) - 48 end
  local after, changed, a, b, c = decide(st, count, op, cost)
  if changed then write(key, st, after, before) end
  if withTime then return { t * 4, a, b, c } end
  return { a, b, c }
end

-- Every key is read by one MGET (one command for the batch, not one per key).
local stored = redis.call('MGET', unpack(KEYS))
local starts, counts = {}, {} -- key -> window start and count, rolled to t (count 0: nothing held)
-- key -> the count it held when read, if that count is of the window in force (the key's TTL
-- ends with it); -1 when that count was text
local held = {}
local touched = {}
local reply = {}
if withTime then reply[1] = t * 4 end

for i = 1, #KEYS do
  local key = KEYS[i]
  if starts[key] == nil then
    local st, c, integer = read(key, stored[i])
    -- A stored start later than now (the clock stepped back) is kept with its count.
    if st and st >= s then
      starts[key], counts[key] = st, c
      if integer then held[key] = c else held[key] = -1 end
    else
      starts[key], counts[key] = s, 0
    end
  end
  local cost = 1
  if costs then cost = costs[i] end
  local op = 1
  if ops then op = string.byte(ops, i) - 48 end
  local after, changed, a, b, c = decide(starts[key], counts[key], op, cost)
  if changed then
    counts[key] = after
    touched[#touched + 1] = key
  end
  local n = #reply
  reply[n + 1], reply[n + 2], reply[n + 3] = a, b, c
end

-- One write per key that changed.
for _, key in ipairs(touched) do
  local st = starts[key]
  if st then
    starts[key] = false -- written
    write(key, st, counts[key], held[key])
  end
end
return reply
