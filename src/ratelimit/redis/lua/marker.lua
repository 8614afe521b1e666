--[[
bulwark · state marker · tells a Redis that kept the store's keys from one that lost them
Registered as the command `bulwarkMarker1`: bump the digit whenever the arguments, the reply or
the stored value change. The marker belongs to no limiter: its key ends after the hash tag
(`prefix{tag}:state-marker`), where every limiter key ends with the tag's `}`.

KEYS[1]       the marker key; stored value: a token, written by whichever store found it missing
ARGV[1]       a new token, written when the key is missing
ARGV[2]       the key's TTL, whole ms (set on a write, renewed when the key is there)
Returns       the token the key holds after the call: ARGV[1] when it was missing. A store that
              remembers another token knows that the key was lost since it last looked (by a
              FLUSHALL or FLUSHDB, an eviction, a DEL, or a server that came back empty), even
              when another store wrote the new token first.
]]
local token = redis.call('GET', KEYS[1])
if token then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return token
end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return ARGV[1]
