-- Reserve one coupon of a policy for a user, atomically.
-- KEYS[1] policy meta hash (total, starts, ends: epoch ms)   KEYS[2] set of users holding a reservation
-- KEYS[3] pending-request marker (V3) or any key when ARGV[3] is 0
-- ARGV[1] user id   ARGV[2] now (epoch ms)   ARGV[3] marker TTL in s (0: none)   ARGV[4] marker value
-- Returns remaining stock (>= 0) or: -1 sold out, -2 already issued, -3 outside window, -4 state missing.
-- Stock is the size of the user set, never a counter that a reject could push below zero.
local meta = redis.call('HMGET', KEYS[1], 'total', 'starts', 'ends')
if not meta[1] then return -4 end
local now = tonumber(ARGV[2])
if now < tonumber(meta[2]) or now >= tonumber(meta[3]) then return -3 end
if redis.call('SISMEMBER', KEYS[2], ARGV[1]) == 1 then return -2 end
local total = tonumber(meta[1])
local taken = redis.call('SCARD', KEYS[2])
if taken >= total then return -1 end
redis.call('SADD', KEYS[2], ARGV[1])
if tonumber(ARGV[3]) > 0 then redis.call('SET', KEYS[3], ARGV[4], 'EX', ARGV[3]) end
return total - taken - 1
