-- Returns units taken by an order that did not commit. A gate that was lost (and will be loaded again
-- from the database) is not recreated: the database already holds those units.
-- KEYS: gates; ARGV[i]: units of KEYS[i].
for i, key in ipairs(KEYS) do
    if redis.call('EXISTS', key) == 1 then
        redis.call('INCRBY', key, ARGV[i])
    end
end
return 0
