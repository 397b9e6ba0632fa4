-- Takes an order's units from the stock gate: every line or none, atomically.
-- KEYS: one gate per option of the order. ARGV[1]: how long (ms) a sold-out answer's database check
-- token lasts; ARGV[i + 1]: units of KEYS[i].
-- Returns {0} when taken; {1, i} when gate i is not loaded; {2, i, left, check} when gate i has fewer
-- units than asked (check = 1 for at most one caller per option per token period, who compares with the
-- database so that a leaked unit is not lost for good).
for i, key in ipairs(KEYS) do
    local left = redis.call('GET', key)
    if not left then
        return {1, i}
    end
    left = tonumber(left)
    if left < tonumber(ARGV[i + 1]) then
        local check = redis.call('SET', key .. ':check', '1', 'NX', 'PX', ARGV[1])
        return {2, i, left, check and 1 or 0}
    end
end
for i, key in ipairs(KEYS) do
    redis.call('DECRBY', key, ARGV[i + 1])
end
return {0}
