-- Cache a balance only if it is newer than what the cache holds (versions grow with every change).
-- KEYS[1] balance key   ARGV[1] version   ARGV[2] balance   ARGV[3] TTL in seconds
-- Returns 1 if stored, 0 if the cache already held this version or a newer one.
local current = redis.call('GET', KEYS[1])
if current then
  local version = tonumber(string.match(current, '^(%d+):'))
  if version and version >= tonumber(ARGV[1]) then return 0 end
end
redis.call('SET', KEYS[1], ARGV[1] .. ':' .. ARGV[2], 'EX', ARGV[3])
return 1
