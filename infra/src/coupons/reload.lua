-- Replace a policy's state with a database snapshot when it drifted (sold out here, stock there), unless
-- the state moved since the snapshot's version was read (a settlement between the database read and now
-- may have kept a place the snapshot does not know) or a reservation is in flight (it is in the set but
-- not yet in the database, and must keep its place).
-- KEYS[1] policy meta hash   KEYS[2] user set   KEYS[3] in-flight reservations
-- ARGV[1] total   ARGV[2] starts (epoch ms)   ARGV[3] ends (epoch ms)   ARGV[4] oldest in-flight time that
-- still counts (epoch ms; older entries are settlements that were lost)   ARGV[5] the state version read
-- before the snapshot ('' for none)   ARGV[6..] users holding a coupon
-- Returns 1 if reloaded, 0 if the state moved or a reservation is in flight.
if (redis.call('HGET', KEYS[1], 'version') or '') ~= ARGV[5] then return 0 end
redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', '(' .. ARGV[4])
if redis.call('ZCARD', KEYS[3]) > 0 then return 0 end
redis.call('DEL', KEYS[2])
for i = 6, #ARGV, 5000 do
  redis.call('SADD', KEYS[2], unpack(ARGV, i, math.min(i + 4999, #ARGV)))
end
redis.call('HSET', KEYS[1], 'total', ARGV[1], 'starts', ARGV[2], 'ends', ARGV[3])
redis.call('HINCRBY', KEYS[1], 'version', 1)
return 1
