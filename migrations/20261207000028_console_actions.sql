-- What admins did from the operations console, done or refused: who, what, on which target, and when.
CREATE TABLE console_actions (
    id         BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    user_id    BIGINT      NOT NULL REFERENCES users (id),
    action     TEXT        NOT NULL CHECK (action IN ('STOP_EXECUTION', 'REDRIVE_OUTBOX_ROW')),
    target     TEXT        NOT NULL,
    outcome    TEXT        NOT NULL CHECK (outcome IN ('DONE', 'REFUSED')),
    detail     TEXT,
    trace_id   TEXT,
    at         TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX console_actions_at_idx ON console_actions (at DESC);
