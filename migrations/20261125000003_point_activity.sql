-- The point-activity consumer's projection of points.events: one row per user and UTC day. It is written
-- in the same transaction as the processed_events rows of the events it applies, so each event counts once.
CREATE TABLE point_activity_daily (
    activity_date DATE        NOT NULL,
    user_id       BIGINT      NOT NULL,
    earned        BIGINT      NOT NULL DEFAULT 0 CHECK (earned >= 0),
    spent         BIGINT      NOT NULL DEFAULT 0 CHECK (spent >= 0),
    net_change    BIGINT      NOT NULL DEFAULT 0,
    events        INTEGER     NOT NULL DEFAULT 0 CHECK (events >= 0),
    updated_at    TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (activity_date, user_id)
);

-- Retention deletes the oldest dedupe rows first.
CREATE INDEX processed_events_processed_at_idx ON processed_events (processed_at);
