-- wrk soak script: rotate single predictions, 10-row batches and health checks.
local function slurp(name)
  local f = assert(io.open(os.getenv("SOAK_DIR") .. "/" .. name, "rb"))
  local body = f:read("*a")
  f:close()
  return body
end

local headers = {
  ["Content-Type"] = "application/json",
  ["Authorization"] = "Bearer " .. os.getenv("BENCH_AUTH"),
}
local requests_cycle = {}

init = function(args)
  requests_cycle = {
    wrk.format("POST", "/predict", headers, slurp("single.json")),
    wrk.format("POST", "/predict", headers, slurp("single.json")),
    wrk.format("POST", "/predict/batch", headers, slurp("batch.json")),
    wrk.format("GET", "/health", nil, nil),
  }
end

local i = 0
request = function()
  i = i % #requests_cycle + 1
  return requests_cycle[i]
end

done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'WRK_JSON {"requests": %d, "duration_us": %d, "connect_errors": %d, "read_errors": %d, ' ..
    '"write_errors": %d, "status_errors": %d, "timeouts": %d, "p50_us": %d, "p90_us": %d, ' ..
    '"p99_us": %d, "max_us": %d}\n',
    summary.requests, summary.duration, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max))
end
