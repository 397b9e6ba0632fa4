-- Settle a reservation once its request has a terminal outcome: it is no longer in flight, its pending
-- marker goes, and the user keeps their place in the set only if they hold a coupon of the policy. The
-- policy's state version moves, so a drift repair that read the database before this cannot reload over it.
-- KEYS[1] user set   KEYS[2] pending-request marker   KEYS[3] in-flight reservations   KEYS[4] policy meta hash
-- ARGV[1] user id   ARGV[2] 1 to keep the place (a coupon exists), 0 to return it
if ARGV[2] ~= '1' then redis.call('SREM', KEYS[1], ARGV[1]) end
redis.call('DEL', KEYS[2])
redis.call('ZREM', KEYS[3], ARGV[1])
-- Only on a loaded policy: a meta hash holding nothing but a version would read as loaded to load.lua.
if redis.call('EXISTS', KEYS[4]) == 1 then redis.call('HINCRBY', KEYS[4], 'version', 1) end
return 1
