-- The schedule as the leading scheduler publishes it, so the console can show each entry's next firing
-- (the schedule file lives with the scheduler), and the run-now requests the leader takes from there.
CREATE TABLE scheduler_entries (
    name         TEXT        PRIMARY KEY,
    cron         TEXT        NOT NULL,
    timezone     TEXT        NOT NULL,
    runs         TEXT        NOT NULL,
    next_at      TIMESTAMPTZ,
    published_by TEXT        NOT NULL,
    published_at TIMESTAMPTZ NOT NULL DEFAULT now()
);

CREATE TABLE scheduler_run_requests (
    id           BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    entry_name   TEXT        NOT NULL,
    -- Who asked (e.g. "console:ana@example.com").
    requested_by TEXT        NOT NULL,
    requested_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    -- The leader that took it, when, and the firing it made (or why it made none).
    taken_by     TEXT,
    taken_at     TIMESTAMPTZ,
    firing_id    BIGINT REFERENCES scheduler_firings (id),
    detail       TEXT
);
CREATE INDEX scheduler_run_requests_open_idx ON scheduler_run_requests (id) WHERE taken_at IS NULL;

ALTER TABLE console_actions DROP CONSTRAINT console_actions_action_check,
    ADD CONSTRAINT console_actions_action_check CHECK (action IN ('STOP_EXECUTION', 'REDRIVE_OUTBOX_ROW', 'RUN_ENTRY_NOW'));
