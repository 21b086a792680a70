-- wrk script: POST an Alertmanager webhook body with `n` alerts, every alert a new fingerprint.
-- args: <template file> <fingerprint prefix> <alerts per POST> <bearer token or "-">
-- The template has the envelope with @ALERTS@ and one alert with @FP@ (see bench/load.py).
local prefix, n, counter = "x", 1, 0
local head, tail, a_head, a_tail

function init(args)
  local f = assert(io.open(args[1], "r"))
  local envelope = f:read("*l")
  local alert = f:read("*l")
  f:close()
  prefix, n = args[2], tonumber(args[3])
  head, tail = envelope:match("^(.*)@ALERTS@(.*)$")
  a_head, a_tail = alert:match("^(.*)@FP@(.*)$")
  wrk.method = "POST"
  wrk.headers["Content-Type"] = "application/json"
  if args[4] ~= "-" then
    wrk.headers["Authorization"] = "Bearer " .. args[4]
  end
end

function request()
  counter = counter + 1
  local parts = {}
  for i = 1, n do
    parts[i] = a_head .. prefix .. counter .. "-" .. i .. a_tail
  end
  return wrk.format(nil, nil, nil, head .. table.concat(parts, ",") .. tail)
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'BENCH {"requests": %d, "duration_us": %d, "non2xx": %d, "socket_errors": %d, ' ..
    '"p50_us": %d, "p99_us": %d}\n',
    summary.requests, summary.duration, e.status, e.connect + e.read + e.write + e.timeout,
    latency:percentile(50), latency:percentile(99)))
end
