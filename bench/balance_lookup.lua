-- wrk script for the points benchmark: GET one path per request for the users that `settle-bench
-- seed-points` wrote as "token user-id" lines, each thread walking its own stride of the lines.
-- Environment: LOOKUP_REQUESTS (file), LOOKUP_PATH (with {user}), LOOKUP_NO_CACHE (1: Cache-Control:
-- no-cache), LOOKUP_THREADS (wrk -t), LOOKUP_BODY (if set: POST it as JSON instead of a GET). Prints one
-- RESULT line for scripts/bench-points.
local threads = {}

function setup(thread)
  thread:set("id", #threads)
  table.insert(threads, thread)
end

function init(args)
  lines = {}
  local template = os.getenv("LOOKUP_PATH")
  for line in io.lines(os.getenv("LOOKUP_REQUESTS")) do
    local token, user = line:match("^(%S+) (%S+)$")
    if token then
      lines[#lines + 1] = { "Bearer " .. token, (template:gsub("{user}", user)) }
    end
  end
  no_cache = os.getenv("LOOKUP_NO_CACHE") == "1"
  body = os.getenv("LOOKUP_BODY")
  if body == "" then
    body = nil
  end
  stride = tonumber(os.getenv("LOOKUP_THREADS"))
  cursor = id
  non2xx = 0
end

function request()
  local entry = lines[cursor % #lines + 1]
  cursor = cursor + stride
  local headers = { ["Authorization"] = entry[1] }
  if no_cache then
    headers["Cache-Control"] = "no-cache"
  end
  if body then
    headers["Content-Type"] = "application/json"
    return wrk.format("POST", entry[2], headers, body)
  end
  return wrk.format("GET", entry[2], headers)
end

function response(status, headers, body)
  if status < 200 or status > 299 then
    non2xx = non2xx + 1
  end
end

function done(summary, latency, requests)
  local failed = 0
  for _, thread in ipairs(threads) do
    failed = failed + thread:get("non2xx")
  end
  local errors = summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout
  io.write(string.format("RESULT requests=%d duration_us=%d p50_us=%d p99_us=%d socket_errors=%d non2xx=%d\n",
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99), errors, failed))
end
