-- Replays a request file written by bench/loadgen.py: one "METHOD<TAB>PATH<TAB>BODY" a line.
-- wrk -s replay.lua URL -- FILE THREADS: thread i of n sends lines i, i+n, i+2n, ... in order,
-- so every request (and every id in it) is fixed by the file; the file is seeded.
-- done() prints one JSON line (prefix BENCH_JSON) with the counts and latency percentiles.

local threads = 0

function setup(thread)
  thread:set("index", threads)
  threads = threads + 1
end

local queue = {}
local sent = 0

function init(args)
  local path, stride = args[1], tonumber(args[2])
  local headers = { ["Content-Type"] = "application/json" }
  local n = 0
  for line in io.lines(path) do
    if n % stride == index then
      local method, target, body = line:match("^(%u+)\t([^\t]+)\t(.*)$")
      if body == "" then body = nil end
      queue[#queue + 1] = wrk.format(method, target, headers, body)
    end
    n = n + 1
  end
end

function request()
  sent = sent % #queue + 1
  return queue[sent]
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'BENCH_JSON {"requests": %d, "duration_us": %d, "bytes": %d, "errors_status": %d, ' ..
    '"errors_connect": %d, "errors_read": %d, "errors_write": %d, "errors_timeout": %d, ' ..
    '"p50_us": %d, "p95_us": %d, "p99_us": %d, "max_us": %d, "mean_us": %.1f}\n',
    summary.requests, summary.duration, summary.bytes, e.status, e.connect, e.read, e.write,
    e.timeout, latency:percentile(50), latency:percentile(95), latency:percentile(99),
    latency.max, latency.mean))
end
