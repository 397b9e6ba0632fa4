-- A confirm the provider approves after the look-up already settled its attempt as not approved (the
-- request reached it later than settle waited) would leave money at the provider with no order to show
-- for it. Every attempt a look-up failed is looked up once more, later; `rechecked_at` says it was.
ALTER TABLE payment_attempts ADD COLUMN rechecked_at TIMESTAMPTZ;
CREATE INDEX payment_attempts_recheck_idx ON payment_attempts (updated_at)
    WHERE status = 'FAILED' AND failure_code = 'NOT_APPROVED' AND rechecked_at IS NULL;
