-- Cache each balance only if it is newer than what the cache holds (versions grow with every change).
-- KEYS[i] a balance key   ARGV[1] TTL in seconds   ARGV[2i] and ARGV[2i+1] that key's version and balance
-- Returns how many were stored (a key whose cache already held that version or a newer one is left).
local stored = 0
for i, key in ipairs(KEYS) do
  local version, balance = ARGV[2 * i], ARGV[2 * i + 1]
  local current = redis.call('GET', key)
  local held = current and tonumber(string.match(current, '^(%d+):'))
  if not (held and held >= tonumber(version)) then
    redis.call('SET', key, version .. ':' .. balance, 'EX', ARGV[1])
    stored = stored + 1
  end
end
return stored
