-- bulwark · a frozen clock for scripts that run algorithms' scripts inside them (lease.lua,
-- compound.lua; scripts.ts puts this before each). frozenClock(redis) reads TIME once and returns
-- it with a stand-in for `redis` whose TIME answers that same time: TIME moves on while a script
-- runs, and the algorithms' scripts must all decide on one time (a lease and the decision that
-- made it in one window; a compound call's peeks and consumes on one state).
local function frozenClock(redis)
  local time = redis.call('TIME')
  return time, setmetatable({
    call = function(command, ...)
      if command == 'TIME' then return time end
      return redis.call(command, ...)
    end,
  }, { __index = redis })
end
