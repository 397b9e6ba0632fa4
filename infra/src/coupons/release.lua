-- Give a reservation back (the insert or the produce behind it failed, or the database said sold out).
-- KEYS[1] user set   KEYS[2] pending-request marker   ARGV[1] user id
redis.call('SREM', KEYS[1], ARGV[1])
redis.call('DEL', KEYS[2])
return 1
