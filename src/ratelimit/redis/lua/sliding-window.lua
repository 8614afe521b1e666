--[[
bulwark · sliding window (weighted two-window counter) · a batch of decisions in one call
Mirrors src/ratelimit/algorithms/sliding-window.ts; keep the two in step (test/integration/redis/
parity.test.ts replays every reply through the TypeScript function and compares). Registered as
the command `bulwarkSlidingWindow4`: bump the digit whenever the arguments, the reply or the
stored value change.

KEYS[i]       the key of decision i (a key may repeat: decisions apply in order, each seeing the last)
              stored value: one integer, pair(current, previous) * 8 + (windowStart / W) mod 8,
              where pair(a, b) = a * a + a + b when a >= b, else b * b + a (a one-to-one map of
              two counts to one integer that stays small while both are small: below 10,000,
              Redis shares the object and the value takes no memory of its own). The tag tells the
              window in force (tag of now) from any other; for another tag (once per key and
              window, or after the clock stepped back) the key's TTL, which ends W or 2W after its
              window starts, tells which one. Counts of 2^24 or more (pair * 8 would pass 2^53)
              are stored as "windowStart current previous", the format of version 2 and
              earlier, which is read too (and rewritten as an integer by the first change, unless
              the flags ask for text). (Version 3 stored the same values: the two can share keys.)
ARGV[1]       limit, units per sliding window
ARGV[2]       W, the window, whole ms
ARGV[3]       staleAfterUs: when the server clock is past it, the call is stale and changes nothing
              (0 = never)
ARGV[4]       the operations, one character per decision: 1 consume, 2 peek, 3 refund, 4 charge (from lease.lua only); absent or
              '' when every operation is a consume
ARGV[5]       the costs, whole units from 1 to limit separated by spaces, one per decision; absent
              or '' when every cost is 1 (refunds are clamped by the client); a count of operations
              or costs other than #KEYS is an error
ARGV[6]       flags, absent = 0: + 1 writes "windowStart current previous", which version 2 reads too
              (the store's legacyValues, for a rolling upgrade); + 2 puts the server time first in the
              reply (the client asks now and then, to keep its estimate of the server clock)
Returns       decided: a table, { [time * 4 when asked], then two or three integers per decision },
              time the server's whole ms; per decision, admitted: remaining, resetMs; denied:
              -1 - remaining, resetMs, retryAfterMs; a refund: 0 0
              stale: the integer time * 4 + 2, not a table (nothing changed); see fixed-window.lua
Every written key gets a TTL: PX, the time until nothing it holds is counted any more; or
the TTL it has when that time has not changed since the key was last written (same window, units
in the current window before and after, no refund in this call): INCRBY of the change when the key
holds an integer and so will, the cheapest write; else SET ... KEEPTTL (Redis >= 6.0).
Every product below is a whole number under 2^53 (limit * W <= 2^52 is checked by the client).
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
local capacity = limit * W

local tagNow = (s / W) % 8 -- s is a multiple of W: the quotient is exact
local BIG = 2 ^ 24 -- counts from here on are stored as text

-- The value to store for a state (an integer, or text for counts of 2^24 and more).
local function encode(st, cur, prev)
  if asText or cur >= BIG or prev >= BIG then return string.format('%.0f %.0f %.0f', st, cur, prev) end
  local z = prev * prev + cur
  if cur >= prev then z = cur * cur + cur + prev end
  local v = z * 8 + (st / W) % 8
  -- Below 2^51; from 10^15 on, spelled out here (Redis might write a number in exponent form).
  if v >= 1e15 then return string.format('%.0f', v) end
  return v
end

-- A key's state, read from its stored value and rolled to t: start, current, previous; whether
-- its TTL is still the one these counts ask for (same window, current units held); the integer
-- stored (nil for text). (One function, not a read and a roll: each closure costs every call.)
local function roll(key, value)
  if not value then return s, 0, 0 end
  local v = tonumber(value)
  local st, cur, prev
  if not v then
    -- Text: "windowStart current previous". (Not a string: GET's error for a key of another type.)
    if type(value) ~= 'string' then return s, 0, 0 end
    local a, b, c = string.match(value, '^(%-?%d+) (%d+) (%d+)$')
    st, cur, prev = tonumber(a), tonumber(b), tonumber(c)
    if st == nil then return s, 0, 0 end
  else
    local tag = v % 8
    local z = (v - tag) / 8
    -- Undo the pairing: r = floor(sqrt(z)), corrected by one where the square root rounded over.
    local r = math.floor(math.sqrt(z))
    if r * r > z then r = r - 1 elseif (r + 1) * (r + 1) <= z then r = r + 1 end
    cur, prev = r, z - r * r - r
    if z - r * r < r then cur, prev = z - r * r, r end
    if tag == tagNow then return s, cur, prev, cur > 0, v end
    -- Another window: the key expires 2W after its window starts when it holds current units,
    -- else W after (PX, counted from the server's clock a ms later at most). Its TTL places that
    -- window to within a ms or two; the tag, which repeats every 8 windows, makes it exact.
    local pttl = redis.call('PTTL', key)
    local lives = W
    if cur > 0 then lives = 2 * W end
    local d = (tag - tagNow) % 8
    local guess = (t + pttl - lives - s) / W
    d = d + 8 * math.floor((guess - d) / 8 + 0.5)
    st = s + d * W
  end
  -- Same window, or the clock stepped back: kept.
  if st >= s then return st, cur, prev, cur > 0, v end
  if st == s - W then return s, 0, cur end
  return s, 0, 0
end

-- Ms from t until nothing is counted any more.
local function resetAfter(start, cur, prev)
  if cur > 0 then return start + 2 * W - t end
  if prev > 0 then return start + W - t end
  return 0
end

-- The first whole ms at which cost units fit.
local function firstFit(start, cur, prev, cost)
  local room = limit - cur - cost
  if room >= 0 and prev > 0 then
    local k = math.floor((room * W) / prev)
    if k >= 1 then return start + W - k end
  end
  local k = W
  if cur > 0 then k = math.floor(((limit - cost) * W) / cur) end
  if k >= 1 then
    if k < W then return start + W + (W - k) end
    return start + W
  end
  return start + 2 * W
end

-- One decision on a state: its counts after it, op when it changed the key (1 an admitted
-- consume, 3 a refund) or false, and the answer.
local function decide(start, cur, prev, op, cost)
  if op == 4 then return cur + cost, prev, 1, 0, 0 end -- a charge whatever the limit (lease.lua)
  if op == 3 then
    -- Give back from the current window first, then from the previous one; never below zero.
    local fromCurrent = cost
    if cur < cost then fromCurrent = cur end
    local rest = cost - fromCurrent
    if rest < prev then prev = prev - rest else prev = 0 end
    return cur - fromCurrent, prev, 3, 0, 0
  end
  local elapsed = 0
  if t > start then elapsed = t - start end
  local used = prev * (W - elapsed) + cur * W
  local after = used + cost * W
  if after <= capacity then
    local remaining = math.floor((capacity - after) / W)
    if op == 1 then return cur + cost, prev, 1, remaining, resetAfter(start, cur + cost, prev) end
    return cur, prev, false, remaining, resetAfter(start, cur + cost, prev)
  end
  local remaining = 0
  if used < capacity then remaining = math.floor((capacity - used) / W) end
  return cur, prev, false, -1 - remaining, resetAfter(start, cur, prev), firstFit(start, cur, prev, cost) - t
end

-- The write for a key that changed. sameTtl: it expires at windowStart + 2W, as it did when last
-- written (see the header); before: the integer it held (nil for text). When its TTL stays, a key
-- that holds an integer gets INCRBY of the difference, cheaper than a SET.
local function write(key, start, cur, prev, sameTtl, before)
  local ttl = resetAfter(start, cur, prev)
  if ttl > 0 and sameTtl and cur > 0 then
    local value = encode(start, cur, prev)
    if before and type(value) == 'number' then
      -- %d: Redis 7.0 spells a number argument out with %.17g, dearer (the same digits for an integer).
      if value ~= before then redis.call('INCRBY', key, string.format('%d', value - before)) end
    else
      redis.call('SET', key, value, 'KEEPTTL')
    end
  elseif ttl > 0 then
    redis.call('SET', key, encode(start, cur, prev), 'PX', ttl)
  else
    redis.call('DEL', key)
  end
end

-- A call of one decision, the usual call at low concurrency (see fixed-window.lua): the state on
-- locals rather than in tables, GET by pcall rather than MGET, the reply built in one go.
if #KEYS == 1 then
  local key = KEYS[1]
  local cost = costs and costs[1] or 1
  local start, cur, prev, sameTtl, before = roll(key, redis.pcall('GET', key))
  local op = 1
  if ops then op = string.byte(ops) - 48 end
  local cur2, prev2, changed, a, b, c = decide(start, cur, prev, op, cost)
  if changed then write(key, start, cur2, prev2, sameTtl and changed ~= 3, before) end
  if withTime then return { t * 4, a, b, c } end
  return { a, b, c }
end

-- key -> { start, current, previous, sameTtl, integer stored, written }, rolled to t once
-- (rolling again would change nothing)
local states = {}
local touched = {}
local reply = {}
if withTime then reply[1] = t * 4 end

-- Every key is read by one MGET (one command for the batch, not one per key).
local stored = redis.call('MGET', unpack(KEYS))

for i = 1, #KEYS do
  local key = KEYS[i]
  local state = states[key]
  if state == nil then
    state = { roll(key, stored[i]) }
    states[key] = state
  end
  local cost = 1
  if costs then cost = costs[i] end
  local op = 1
  if ops then op = string.byte(ops, i) - 48 end
  local cur, prev, changed, a, b, c = decide(state[1], state[2], state[3], op, cost)
  if changed then
    state[2], state[3] = cur, prev
    -- After a refund, the time until nothing is counted may have shrunk.
    if changed == 3 then state[4] = false end
    touched[#touched + 1] = key
  end
  local n = #reply
  reply[n + 1], reply[n + 2], reply[n + 3] = a, b, c
end

-- One write per key that changed.
for _, key in ipairs(touched) do
  local state = states[key]
  if not state[6] then
    state[6] = true -- written
    write(key, state[1], state[2], state[3], state[4], state[5])
  end
end
return reply
