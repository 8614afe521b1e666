-- wrk script for benchmarks/http.mjs (not meant to be run on its own).
--
-- * With BULWARK_HTTP_KEYS > 1, each request carries the header named by BULWARK_HTTP_KEY_HEADER
--   ("x-client-id" unless set) with one of that many values, taken in turn, so that the rate
--   limiters (keyed by that header in this mode) see many keys. With 1 key (the default) no
--   `request` function is defined: wrk then sends one pre-built request, its fastest path.
-- * When wrk is done, one line starting with "BULWARK_WRK " and followed by a JSON object is
--   written: counts, errors (wrk counts any status >= 400 as a "status" error) and latency
--   percentiles in microseconds.

local keys = tonumber(os.getenv("BULWARK_HTTP_KEYS") or "1") or 1
local header = os.getenv("BULWARK_HTTP_KEY_HEADER") or "x-client-id"

if keys > 1 then
  local built = {}
  local next_key = 0

  request = function()
    next_key = next_key + 1
    if next_key > keys then next_key = 1 end
    local raw = built[next_key]
    if raw == nil then
      -- Built on first use (wrk.headers.Host is only known once the thread is set up), then kept.
      raw = wrk.format(nil, nil, { [header] = "client-" .. next_key })
      built[next_key] = raw
    end
    return raw
  end
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'BULWARK_WRK {"requests":%d,"durationUs":%d,"bytes":%d,' ..
      '"errors":{"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d},' ..
      '"latencyUs":{"p50":%.0f,"p90":%.0f,"p99":%.0f,"p999":%.0f,"max":%.0f,"mean":%.1f}}\n',
    summary.requests, summary.duration, summary.bytes,
    e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency:percentile(99.9),
    latency.max, latency.mean))
end
