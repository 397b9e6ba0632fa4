-- Rebuild a policy's state from a database snapshot, unless another process already did.
-- KEYS[1] policy meta hash   KEYS[2] user set
-- ARGV[1] total   ARGV[2] starts (epoch ms)   ARGV[3] ends (epoch ms)   ARGV[4..] users holding a coupon
-- Returns 1 if loaded, 0 if the state was already there.
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
redis.call('DEL', KEYS[2])
for i = 4, #ARGV, 5000 do
  redis.call('SADD', KEYS[2], unpack(ARGV, i, math.min(i + 4999, #ARGV)))
end
redis.call('HSET', KEYS[1], 'total', ARGV[1], 'starts', ARGV[2], 'ends', ARGV[3])
return 1
