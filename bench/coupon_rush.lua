-- wrk script for the coupon benchmark: every request is one user asking for one policy, read from the
-- "token policy" lines that `settle-bench seed-rush` writes. Each wrk thread takes its own stride of the
-- lines, so no two threads send the same user. Requests are formatted once in init() and responses are
-- not handed to Lua: per-request Lua would cost the load tool CPU that the API shares with it. Statuses
-- come from the API's own counters instead. Prints one RESULT line for scripts/bench-coupons.
-- Environment: RUSH_REQUESTS (file), RUSH_PATH (/api/v3/coupons), RUSH_THREADS (wrk -t).
local threads = {}

function setup(thread)
  thread:set("id", #threads)
  table.insert(threads, thread)
end

function init(args)
  local stride = tonumber(os.getenv("RUSH_THREADS"))
  local path = os.getenv("RUSH_PATH")
  prepared = {}
  local line_number = 0
  for line in io.lines(os.getenv("RUSH_REQUESTS")) do
    local token, policy = line:match("^(%S+) (%S+)$")
    if token then
      if line_number % stride == id then
        prepared[#prepared + 1] = wrk.format("POST", path,
          { ["Authorization"] = "Bearer " .. token, ["Content-Type"] = "application/json" },
          '{"couponPolicyId":' .. policy .. '}')
      end
      line_number = line_number + 1
    end
  end
  cursor = 0
end

function request()
  cursor = cursor % #prepared + 1
  return prepared[cursor]
end

function done(summary, latency, requests)
  local errors = summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout
  io.write(string.format("RESULT requests=%d duration_us=%d p50_us=%d p99_us=%d socket_errors=%d\n",
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99), errors))
end
