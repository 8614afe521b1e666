-- A circuit breaker shared by a fleet (breaker-store.ts). Every process keeps its own breaker as
-- the hot path and calls this script now and then: to add a batch of closed-state outcomes and
-- read the fleet's state back (op 1), to claim one of the half-open window's probe slots (op 2),
-- or to report how a probe it claimed ended (ops 3, 4, 5). Times are the server's clock (TIME).
--
-- KEYS[1] state hash: st (0 closed, 1 open, 2 half-open), til (when the open period ends), ep (open
--         periods so far: a half-open window is named by it), op (opens in a row), pr (probe
--         slots claimed), ps (probes succeeded), pd (when the latest claimed probe is given up)
-- KEYS[2] the closed period's outcome window (deleted on every open and close)
-- KEYS[3] quorum: instance id -> until when (ms) that instance's own strategy says "open"
-- ARGV: op, epoch, calls, failures, slow, trailing (failures after the batch's last success, -1
--       when it had none), judged (the instance's own verdict: 1 open, 0 not, -1 none), instance,
--       quorum (0: off), quorumTtlMs, halfOpenMaxCalls, probeTimeoutMs, delayMs (the next open
--       period), ttlMs (of every key), rule (1 consecutive, 2 count window, 3 time window), size
--       (threshold, calls or ms), failureRate, minimumCalls, slowRate
-- Reply: { st, ms until half-open (0 unless open), opens, epoch, granted (op 2: 1 or 0) }
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
local key, wkey, qkey = KEYS[1], KEYS[2], KEYS[3]
local op = tonumber(ARGV[1])
local argEpoch = tonumber(ARGV[2])
local quorum = tonumber(ARGV[9])
local maxCalls = tonumber(ARGV[11])
local ttl = tonumber(ARGV[14])

local h = redis.call('HMGET', key, 'st', 'til', 'ep', 'op', 'pr', 'ps', 'pd')
local st = tonumber(h[1]) or 0
local til = tonumber(h[2]) or 0
local ep = tonumber(h[3]) or 0
local opens = tonumber(h[4]) or 0
local pr = tonumber(h[5]) or 0
local ps = tonumber(h[6]) or 0
local pd = tonumber(h[7]) or 0

local function open()
  st = 1
  ep = ep + 1
  opens = opens + 1
  til = now + tonumber(ARGV[13])
  pr, ps, pd = 0, 0, 0
  redis.call('DEL', wkey, qkey)
end

local function close()
  st, til, opens, pr, ps, pd = 0, 0, 0, 0, 0, 0
  redis.call('DEL', wkey, qkey)
end

-- The transitions a timer would have made: a probe given up re-opens, an open period ends.
if st == 2 and pr > ps and now >= pd then open() end
if st == 1 and now >= til then
  st = 2
  pr, ps, pd = 0, 0, 0
end

-- Whether rates over `calls` outcomes reach the thresholds.
local function rates(calls, failures, slow)
  return calls > 0 and calls >= tonumber(ARGV[18]) and
    (failures / calls >= tonumber(ARGV[17]) or slow / calls >= tonumber(ARGV[19]))
end

local granted = 0
if op == 1 then
  local judged = tonumber(ARGV[7])
  if quorum > 0 then
    if judged == 1 then
      redis.call('HSET', qkey, ARGV[8], now + tonumber(ARGV[10]))
    elseif judged == 0 then
      redis.call('HDEL', qkey, ARGV[8])
    end
    if st == 0 then
      local flags = redis.call('HGETALL', qkey)
      local live = 0
      for i = 1, #flags, 2 do
        if tonumber(flags[i + 1]) > now then live = live + 1 else redis.call('HDEL', qkey, flags[i]) end
      end
      if live >= quorum then open() end
    end
    if st == 0 then redis.call('PEXPIRE', qkey, ttl) end
  elseif st == 0 then
    local calls, failures, slow = tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5])
    local rule, size = tonumber(ARGV[15]), tonumber(ARGV[16])
    local trip = false
    if rule == 1 then
      -- Consecutive: failures since the fleet's latest success (batches interleave as they arrive).
      local trailing = tonumber(ARGV[6])
      local streak
      if trailing >= 0 then
        streak = trailing
        redis.call('HSET', wkey, 's', streak)
      else
        streak = redis.call('HINCRBY', wkey, 's', failures)
      end
      trip = streak >= size
    elseif rule == 2 then
      -- Count window: the current run of up to `size` calls, and the previous one weighted by the
      -- share of the window it still covers (the sliding-window estimate).
      local w = redis.call('HMGET', wkey, 'c', 'f', 's', 'pc', 'pf', 'ps')
      local c = (tonumber(w[1]) or 0) + calls
      local f = (tonumber(w[2]) or 0) + failures
      local s = (tonumber(w[3]) or 0) + slow
      local pc, pf, psl = tonumber(w[4]) or 0, tonumber(w[5]) or 0, tonumber(w[6]) or 0
      if c >= size then
        pc, pf, psl = c, f, s
        c, f, s = 0, 0, 0
      end
      redis.call('HSET', wkey, 'c', c, 'f', f, 's', s, 'pc', pc, 'pf', pf, 'ps', psl)
      local weight = 0
      if pc > 0 then weight = (size - c) / pc end
      trip = rates(c + pc * weight, f + pf * weight, s + psl * weight)
    else
      -- Time window: 10 buckets of size / 10 ms each, counted per bucket, older ones dropped.
      local bucketMs = size / 10
      local b = math.floor(now / bucketMs)
      if calls > 0 then
        redis.call('HINCRBY', wkey, 'c' .. b, calls)
        if failures > 0 then redis.call('HINCRBY', wkey, 'f' .. b, failures) end
        if slow > 0 then redis.call('HINCRBY', wkey, 's' .. b, slow) end
      end
      local all = redis.call('HGETALL', wkey)
      local sum = { c = 0, f = 0, s = 0 }
      for i = 1, #all, 2 do
        local field = all[i]
        if tonumber(string.sub(field, 2)) > b - 10 then
          local kind = string.sub(field, 1, 1)
          sum[kind] = sum[kind] + tonumber(all[i + 1])
        else
          redis.call('HDEL', wkey, field)
        end
      end
      trip = rates(sum.c, sum.f, sum.s)
    end
    if trip then open() else redis.call('PEXPIRE', wkey, ttl) end
  end
elseif op == 2 then
  if st == 2 and pr < maxCalls then
    pr = pr + 1
    pd = now + tonumber(ARGV[12])
    granted = 1
  end
elseif st == 2 and argEpoch == ep then
  if op == 3 then
    ps = ps + 1
    if ps >= maxCalls then close() end
  elseif op == 4 then
    open()
  elseif op == 5 and pr > 0 then
    pr = pr - 1
  end
end

redis.call('HSET', key, 'st', st, 'til', til, 'ep', ep, 'op', opens, 'pr', pr, 'ps', ps, 'pd', pd)
redis.call('PEXPIRE', key, ttl)
local remaining = 0
if st == 1 then remaining = til - now end
return { st, remaining, opens, ep, granted }
