-- bench/lib/wrk-post.lua - wrk script of bench/run.sh: POSTs the JSON body in $BENCH_BODY; with
-- $BENCH_KEYS_FILE set (one API key a line) each request carries the next key in turn (S4: many
-- accounts). At the end prints one JSON line: requests, RPS, errors, latency percentiles in ms.
local f = assert(io.open(os.getenv("BENCH_BODY"), "rb"))
wrk.method = "POST"
wrk.body = f:read("*a")
f:close()
wrk.headers["Content-Type"] = "application/json"

local keys_file = os.getenv("BENCH_KEYS_FILE")
if keys_file and keys_file ~= "" then
  local keys, n, i = {}, 0, 0
  for line in io.lines(keys_file) do
    n = n + 1
    keys[n] = line
  end
  i = math.random(n) -- threads start at different places
  request = function()
    i = i % n + 1
    wrk.headers["Authorization"] = "Bearer " .. keys[i]
    return wrk.format()
  end
end

function done(summary, latency, requests)
  local e = summary.errors
  local secs = summary.duration / 1e6
  io.write(string.format(
    '{"requests":%d,"duration_s":%.3f,"rps":%.1f,"bytes":%d,' ..
    '"errors":{"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d},' ..
    '"latency_ms":{"mean":%.4f,"p50":%.4f,"p90":%.4f,"p99":%.4f,"p999":%.4f,"max":%.4f}}\n',
    summary.requests, secs, summary.requests / secs, summary.bytes,
    e.connect, e.read, e.write, e.status, e.timeout,
    latency.mean / 1e3, latency:percentile(50) / 1e3, latency:percentile(90) / 1e3,
    latency:percentile(99) / 1e3, latency:percentile(99.9) / 1e3, latency.max / 1e3))
end
