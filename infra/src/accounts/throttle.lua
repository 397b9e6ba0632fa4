-- Login throttling, atomically per call. Counters of failed attempts per account and per client IP live
-- for the failure window; past a threshold each further failure blocks that key for base * 2^(n - max)
-- milliseconds (capped), so a guesser slows down exponentially while the owner is never locked out for good.
-- KEYS[1] account failures   KEYS[2] account block   KEYS[3] IP failures   KEYS[4] IP block
-- ARGV[1] 'check' | 'fail' | 'ok'   ARGV[2] window ms   ARGV[3] base ms   ARGV[4] cap ms
-- ARGV[5] max failures per account   ARGV[6] max failures per IP
-- Returns how many ms the caller must wait (0: go ahead). An empty key name means "no such subject".
local function blocked(key)
  if key == '' then return 0 end
  local left = redis.call('PTTL', key)
  if left > 0 then return left end
  return 0
end

local function fail(counter, block, max)
  if counter == '' then return end
  local n = redis.call('INCR', counter)
  if n == 1 then redis.call('PEXPIRE', counter, ARGV[2]) end
  if n >= tonumber(max) then
    local wait = math.min(tonumber(ARGV[3]) * 2 ^ (n - tonumber(max)), tonumber(ARGV[4]))
    redis.call('SET', block, '1', 'PX', math.floor(wait))
  end
end

if ARGV[1] == 'fail' then
  fail(KEYS[1], KEYS[2], ARGV[5])
  fail(KEYS[3], KEYS[4], ARGV[6])
  return 0
elseif ARGV[1] == 'ok' then
  if KEYS[1] ~= '' then redis.call('DEL', KEYS[1], KEYS[2]) end
  return 0
end
return math.max(blocked(KEYS[2]), blocked(KEYS[4]))
