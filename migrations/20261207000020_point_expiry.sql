-- Points expire: `settle-batch expire-points` closes each lot whose validity ended with something left,
-- and takes what was left off the balance with one EXPIRE entry per user and run (negative, like a
-- use, and never cancelled: a user who wants the points back gets a new earn).
ALTER TABLE points
    DROP CONSTRAINT points_kind_check,
    ADD CONSTRAINT points_kind_check CHECK (kind IN ('EARN', 'USE', 'CANCEL', 'EXPIRE')),
    DROP CONSTRAINT points_amount_sign,
    ADD CONSTRAINT points_amount_sign CHECK (
        (kind = 'EARN' AND amount > 0) OR (kind IN ('USE', 'EXPIRE') AND amount < 0)
        OR (kind = 'CANCEL' AND amount <> 0));

-- The daily close counts expired points apart from cancels (rows closed before this count none).
ALTER TABLE daily_point_snapshots ADD COLUMN expired BIGINT NOT NULL DEFAULT 0 CHECK (expired >= 0);
