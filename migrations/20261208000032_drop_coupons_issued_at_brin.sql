-- The console's coupons-per-minute now comes from the policies' issued counters between its readings, so
-- nothing reads coupons_issued_at_brin any more (migration 31); dropped so the issuance worker's inserts
-- do not keep it up to date for nothing. orders_created_at_brin stays: the Now page counts the last
-- minute's orders with it.
DROP INDEX IF EXISTS coupons_issued_at_brin;
