-- One definition of a day: point_activity_daily is now keyed by the business day (BUSINESS_TIMEZONE, the
-- zone reconciliation closes), not the UTC day, and its column is named like the snapshots' one. The
-- projection cannot be re-bucketed from its own sums; rows written before this migration keep the UTC day
-- they were counted on.
ALTER TABLE point_activity_daily RENAME COLUMN activity_date TO business_date;
COMMENT ON COLUMN point_activity_daily.business_date IS
    'business day in BUSINESS_TIMEZONE (UTC day for rows written before migration 20261201000009)';
