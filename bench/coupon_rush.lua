-- wrk script for the coupon benchmark: every request is one user asking for one policy, read from the
-- "token policy" lines that `settle-bench seed-rush` writes. Each wrk thread walks its own stride of the
-- lines, so no two threads send the same user. Prints one RESULT line for scripts/bench-coupons.
-- Environment: RUSH_REQUESTS (file), RUSH_PATH (/api/v3/coupons), RUSH_THREADS (wrk -t).
local threads = {}

function setup(thread)
  thread:set("id", #threads)
  table.insert(threads, thread)
end

function init(args)
  lines = {}
  for line in io.lines(os.getenv("RUSH_REQUESTS")) do
    local token, policy = line:match("^(%S+) (%S+)$")
    if token then
      lines[#lines + 1] = { "Bearer " .. token, '{"couponPolicyId":' .. policy .. '}' }
    end
  end
  stride = tonumber(os.getenv("RUSH_THREADS"))
  cursor = id
  path = os.getenv("RUSH_PATH")
  statuses = {}
end

function request()
  local entry = lines[cursor % #lines + 1]
  cursor = cursor + stride
  return wrk.format("POST", path, { ["Authorization"] = entry[1], ["Content-Type"] = "application/json" }, entry[2])
end

function response(status, headers, body)
  statuses[status] = (statuses[status] or 0) + 1
end

function done(summary, latency, requests)
  local totals = {}
  for _, thread in ipairs(threads) do
    for status, count in pairs(thread:get("statuses")) do
      totals[status] = (totals[status] or 0) + count
    end
  end
  local parts = {}
  for status, count in pairs(totals) do
    parts[#parts + 1] = status .. ":" .. count
  end
  local errors = summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout
  io.write(string.format("RESULT requests=%d duration_us=%d p50_us=%d p99_us=%d socket_errors=%d statuses=%s\n",
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99), errors,
    table.concat(parts, ",")))
end
