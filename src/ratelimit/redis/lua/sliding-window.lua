--[[
bulwark · sliding window (weighted two-window counter) · a batch of decisions in one call
Mirrors src/ratelimit/algorithms/sliding-window.ts; keep the two in step (test/integration/redis/
parity.test.ts replays every reply through the TypeScript function and compares). Registered as
the command `bulwarkSlidingWindow2`: bump the digit whenever the arguments, the reply or the
stored value change.

KEYS[i]       the key of decision i (a key may repeat: decisions apply in order, each seeing the last)
              stored value: "windowStart current previous", whole ms on the server clock and units
ARGV[1]       limit, units per sliding window
ARGV[2]       W, the window, whole ms
ARGV[3]       staleAfterUs: when the server clock is past it, the call is stale and changes nothing
              (0 = never)
ARGV[4]       the operations, one character per decision: 1 consume, 2 peek, 3 refund
ARGV[5]       the costs, whole units from 1 to limit separated by spaces, one per decision; or ''
              when every cost is 1 (refunds are clamped by the client); a count of operations or
              costs other than #KEYS is an error
Returns       { sec, usec, status, then two or three integers per decision }
              status 0: decided; 2: stale, nothing changed and nothing follows
              per decision, admitted: remaining, resetMs; denied: -1 - remaining, resetMs,
              retryAfterMs; a refund: 0 0
Every written key gets a TTL: PX, the time until nothing it holds is counted any more; or
KEEPTTL (Redis >= 6.0) when that time has not changed since the key was last written: same window,
units in the current window before and after, no refund in this call (cheaper: no expiry to reset).
Every product below is a whole number under 2^53 (limit * W <= 2^52 is checked by the client).
]]
local time = redis.call('TIME')
local sec, usec = tonumber(time[1]), tonumber(time[2])
local limit, W, staleAfter = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
if staleAfter > 0 and sec * 1000000 + usec > staleAfter then return { sec, usec, 2 } end
-- Operations: one character each ('1' consume, '2' peek, '3' refund); costs: '' when all are 1.
local ops, costs = ARGV[4], nil
if ARGV[5] ~= '' then
  costs = {}
  for c in string.gmatch(ARGV[5], '%d+') do costs[#costs + 1] = tonumber(c) end
end
if #ops ~= #KEYS or (costs and #costs ~= #KEYS) then
  return redis.error_reply('bulwark: ' .. #ops .. ' operations and ' .. (costs and #costs or #KEYS) .. ' costs for ' .. #KEYS .. ' keys')
end
local t = sec * 1000 + math.floor(usec / 1000)
local s = t - (t % W)
local capacity = limit * W

-- key -> { start, current, previous }, rolled to t once (rolling again would change nothing)
local states = {}
local touched = {}
local reply = { sec, usec, 0 }

-- Every key is read by one MGET (one command for the batch, not one per key).
local stored = redis.call('MGET', unpack(KEYS))

local function roll(value)
  local st, cur, prev = string.match(value or '', '^(%-?%d+) (%d+) (%d+)$')
  st, cur, prev = tonumber(st), tonumber(cur), tonumber(prev)
  if st == nil then return { s, 0, 0 } end
  if st >= s then return { st, cur, prev, cur > 0 } end -- same window, or the clock stepped back: kept
  if st == s - W then return { s, 0, cur } end
  return { s, 0, 0 }
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

for i = 1, #KEYS do
  local key = KEYS[i]
  local state = states[key]
  if state == nil then
    state = roll(stored[i])
    states[key] = state
  end
  local start, cur, prev = state[1], state[2], state[3]
  local op, cost = string.byte(ops, i) - 48, 1
  if costs then cost = costs[i] end
  local n = #reply
  if op == 3 then
    -- Give back from the current window first, then from the previous one; never below zero.
    local fromCurrent = cost
    if cur < cost then fromCurrent = cur end
    local rest = cost - fromCurrent
    state[2] = cur - fromCurrent
    if rest < prev then state[3] = prev - rest else state[3] = 0 end
    state[4] = false -- the time until nothing is counted may have shrunk
    touched[#touched + 1] = key
    reply[n + 1], reply[n + 2] = 0, 0
  else
    local elapsed = 0
    if t > start then elapsed = t - start end
    local used = prev * (W - elapsed) + cur * W
    local after = used + cost * W
    if after <= capacity then
      reply[n + 1] = math.floor((capacity - after) / W)
      reply[n + 2] = resetAfter(start, cur + cost, prev)
      if op == 1 then
        state[2] = cur + cost
        touched[#touched + 1] = key
      end
    else
      local remaining = 0
      if used < capacity then remaining = math.floor((capacity - used) / W) end
      reply[n + 1] = -1 - remaining
      reply[n + 2] = resetAfter(start, cur, prev)
      reply[n + 3] = firstFit(start, cur, prev, cost) - t
    end
  end
end

local written = {}
for _, key in ipairs(touched) do
  if not written[key] then
    written[key] = true
    local state = states[key]
    local ttl = resetAfter(state[1], state[2], state[3])
    if ttl > 0 and state[4] and state[2] > 0 then
      -- It expires at windowStart + 2W, as it did when last written.
      redis.call('SET', key, string.format('%.0f %.0f %.0f', state[1], state[2], state[3]), 'KEEPTTL')
    elseif ttl > 0 then
      redis.call('SET', key, string.format('%.0f %.0f %.0f', state[1], state[2], state[3]), 'PX', string.format('%.0f', ttl))
    else
      redis.call('DEL', key)
    end
  end
end
return reply
