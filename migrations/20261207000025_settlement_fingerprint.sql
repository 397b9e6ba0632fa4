-- settle-sales' "settled once" gate compares the day's lines with the day's recognised items by count and
-- by the sum of this hash over each side's (order, option, event): equal counts and equal sums mean the
-- same set but for a 64-bit coincidence, in one pass over each side instead of joining them. Only when
-- they differ does the gate join them to say which lines are missing or stray. One definition, so both
-- sides hash alike; a plain SQL function, so the planner inlines it.
CREATE FUNCTION settlement_item_fingerprint(order_id BIGINT, option_id BIGINT, event TEXT) RETURNS BIGINT
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    RETURN hashint8extended(order_id, option_id * 2 + CASE event WHEN 'SALE' THEN 0 ELSE 1 END);
