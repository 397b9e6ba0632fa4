-- Login throttling, atomically per call. An attempt is checked and counted in one step, counted as failed
-- until its success takes the count back, so concurrent attempts cannot all pass one check. Counters per
-- account and per client IP; from the threshold on, each attempt blocks its key for base * 2^(n - max)
-- milliseconds (capped). A counter outlives the block it set by the failure window, so waiting out a
-- block never resets the doubling: the wait grows to the cap and stays there until a success, or until
-- a whole window passes after a block without an attempt.
-- KEYS[1] account failures   KEYS[2] account block   KEYS[3] IP failures   KEYS[4] IP block
-- ARGV[1] 'attempt' | 'ok'   ARGV[2] window ms   ARGV[3] base ms   ARGV[4] cap ms
-- ARGV[5] max failures per account   ARGV[6] max failures per IP
-- Returns how many ms the caller must wait (0: go ahead, the attempt is counted). An empty key name means
-- "no such subject".
local window, base, cap = tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])

local function blocked(key)
  if key == '' then return 0 end
  local left = redis.call('PTTL', key)
  if left > 0 then return left end
  return 0
end

local function count(counter, block, max)
  if counter == '' then return end
  local n = redis.call('INCR', counter)
  local wait = 0
  if n >= max then
    wait = math.floor(math.min(base * 2 ^ (n - max), cap))
    redis.call('SET', block, '1', 'PX', wait)
  end
  redis.call('PEXPIRE', counter, wait + window)
end

if ARGV[1] == 'ok' then
  if KEYS[1] ~= '' then redis.call('DEL', KEYS[1], KEYS[2]) end
  -- The address keeps its other failures: one good password must not clear a flood from it.
  if KEYS[3] ~= '' and redis.call('EXISTS', KEYS[3]) == 1 then
    if redis.call('DECR', KEYS[3]) < tonumber(ARGV[6]) then redis.call('DEL', KEYS[4]) end
  end
  return 0
end
local wait = math.max(blocked(KEYS[2]), blocked(KEYS[4]))
if wait > 0 then return wait end
count(KEYS[1], KEYS[2], tonumber(ARGV[5]))
count(KEYS[3], KEYS[4], tonumber(ARGV[6]))
return 0
