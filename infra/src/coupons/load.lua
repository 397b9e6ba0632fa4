-- Rebuild a policy's state from a database snapshot, unless another process already did.
-- KEYS[1] policy meta hash   KEYS[2] user set   KEYS[3] in-flight reservations (they keep their place)
-- ARGV[1] total   ARGV[2] starts (epoch ms)   ARGV[3] ends (epoch ms)   ARGV[4..] users holding a coupon
-- Returns 1 if loaded, 0 if the state was already there.
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
redis.call('DEL', KEYS[2])
for i = 4, #ARGV, 5000 do
  redis.call('SADD', KEYS[2], unpack(ARGV, i, math.min(i + 4999, #ARGV)))
end
local in_flight = redis.call('ZRANGE', KEYS[3], 0, -1)
for i = 1, #in_flight, 5000 do
  redis.call('SADD', KEYS[2], unpack(in_flight, i, math.min(i + 4999, #in_flight)))
end
redis.call('HSET', KEYS[1], 'total', ARGV[1], 'starts', ARGV[2], 'ends', ARGV[3])
return 1
