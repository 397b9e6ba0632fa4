-- Reserve one coupon of a policy for a user, atomically.
-- KEYS[1] policy meta hash (total, starts, ends: epoch ms)   KEYS[2] set of users holding a reservation
-- KEYS[3] pending-request marker (V3) or any key when ARGV[3] is 0
-- KEYS[4] in-flight reservations (sorted set: user -> reserve time, epoch ms)   KEYS[5] drift-check token
-- ARGV[1] user id   ARGV[2] now (epoch ms)   ARGV[3] marker TTL in s (0: none)   ARGV[4] marker value
-- ARGV[5] how long a drift-check token lasts (ms)
-- Returns remaining stock (>= 0) or: -1 sold out, -2 already issued, -3 outside window, -4 state missing,
-- -5 sold out and this caller holds the drift-check token (it should compare with the database),
-- -6 the user holds a place whose request is still in flight (not settled: decided, or its outcome unknown).
-- Stock is the size of the user set, never a counter that a reject could push below zero.
-- The order of the checks is domain::coupon::decide_issue's; a table of cases runs against both.
local meta = redis.call('HMGET', KEYS[1], 'total', 'starts', 'ends')
if not meta[1] then return -4 end
local now = tonumber(ARGV[2])
if now < tonumber(meta[2]) or now >= tonumber(meta[3]) then return -3 end
if redis.call('SISMEMBER', KEYS[2], ARGV[1]) == 1 then
  if redis.call('ZSCORE', KEYS[4], ARGV[1]) then return -6 end
  return -2
end
local total = tonumber(meta[1])
local taken = redis.call('SCARD', KEYS[2])
if taken >= total then
  if redis.call('SET', KEYS[5], '1', 'NX', 'PX', ARGV[5]) then return -5 end
  return -1
end
redis.call('SADD', KEYS[2], ARGV[1])
redis.call('ZADD', KEYS[4], now, ARGV[1])
if tonumber(ARGV[3]) > 0 then redis.call('SET', KEYS[3], ARGV[4], 'EX', ARGV[3]) end
return total - taken - 1
