-- Cache each value of a balance only if it is of a newer balance version than what the cache holds for
-- it (versions grow with every change).
-- KEYS[i] a key   ARGV[1] TTL in milliseconds   ARGV[2i] and ARGV[2i+1] that key's version and value
-- Returns how many were stored (a key whose cache already held that version or a newer one is left).
local stored = 0
for i, key in ipairs(KEYS) do
  local version, value = ARGV[2 * i], ARGV[2 * i + 1]
  local current = redis.call('GET', key)
  local held = current and tonumber(string.match(current, '^(%d+):'))
  if not (held and held >= tonumber(version)) then
    redis.call('SET', key, version .. ':' .. value, 'PX', ARGV[1])
    stored = stored + 1
  end
end
return stored
