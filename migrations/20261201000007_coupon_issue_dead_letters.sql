-- V3 requests the issuance worker sent to the dead-letter topic: they can never be decided (an unknown user
-- or policy, or a record that failed on every attempt), so their reservation is returned and their status
-- reads REJECTED with this reason. No foreign keys: the user or policy may not exist.
CREATE TABLE coupon_issue_dead_letters (
    request_id       UUID PRIMARY KEY,
    policy_id        BIGINT      NOT NULL,
    user_id          BIGINT      NOT NULL,
    requested_at     TIMESTAMPTZ NOT NULL,
    reason           TEXT        NOT NULL CHECK (reason IN ('USER_NOT_FOUND', 'POLICY_NOT_FOUND', 'UNPROCESSABLE')),
    dead_lettered_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
