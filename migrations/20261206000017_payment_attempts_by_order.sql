-- An order's attempts are read by order id on every read of the order, by the deposit callback and in the
-- bulk expiry's anti-join; the partial unique indexes on order_id cover only open or approved attempts, so
-- those reads scanned the whole table (24 ms at 200,000 attempts). The table is young: a plain build is
-- brief here; on a large table build it CONCURRENTLY by hand before deploying.
CREATE INDEX payment_attempts_order_idx ON payment_attempts (order_id);
