-- Advance notices of expiring points (`settle-batch notify-expiring-points`): one per user, expiry date
-- (in the business time zone) and step (60, 30 or 3 days before), so a rerun or a catch-up never tells a
-- user twice. The amount is what the user's lots of that date held when the notice went out.
CREATE TABLE point_expiry_notices (
    user_id    BIGINT      NOT NULL,
    expires_on DATE        NOT NULL,
    days_before SMALLINT   NOT NULL CHECK (days_before IN (60, 30, 3)),
    amount     BIGINT      NOT NULL CHECK (amount > 0),
    sent_at    TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (user_id, expires_on, days_before)
);
