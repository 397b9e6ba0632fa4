-- Accounts: refresh tokens live in families (one per login); a token is used up when rotated, and
-- presenting a used one revokes its whole family (RFC 9700 4.14.2). Every login attempt on an account is
-- kept with a reason. The old refresh_tokens table was never written by any code path; it is replaced.
DROP TABLE refresh_tokens;

CREATE TABLE refresh_token_families (
    id            UUID PRIMARY KEY,
    user_id       BIGINT      NOT NULL REFERENCES users (id),
    created_at    TIMESTAMPTZ NOT NULL DEFAULT now(),
    revoked_at    TIMESTAMPTZ,
    revoke_reason TEXT CHECK (revoke_reason IN ('LOGOUT', 'REUSED', 'PASSWORD_CHANGED')),
    CONSTRAINT refresh_token_families_revoked_has_reason CHECK ((revoked_at IS NULL) = (revoke_reason IS NULL))
);
CREATE INDEX refresh_token_families_live_idx ON refresh_token_families (user_id) WHERE revoked_at IS NULL;

CREATE TABLE refresh_tokens (
    -- SHA-256 of the opaque token: the token itself is never stored.
    token_hash TEXT PRIMARY KEY,
    family_id  UUID        NOT NULL REFERENCES refresh_token_families (id) ON DELETE CASCADE,
    expires_at TIMESTAMPTZ NOT NULL,
    used_at    TIMESTAMPTZ,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX refresh_tokens_family_idx ON refresh_tokens (family_id);
CREATE INDEX refresh_tokens_expires_idx ON refresh_tokens (expires_at);

ALTER TABLE login_history ADD COLUMN reason TEXT NOT NULL DEFAULT 'OK'
    CHECK (reason IN ('OK', 'WRONG_PASSWORD', 'THROTTLED'));
ALTER TABLE login_history ALTER COLUMN reason DROP DEFAULT;
ALTER TABLE login_history ADD CONSTRAINT login_history_success_is_ok CHECK (succeeded = (reason = 'OK'));
ALTER TABLE login_history ADD CONSTRAINT login_history_user_agent_bounded CHECK (length(user_agent) <= 256);
DROP INDEX login_history_user_time_idx;
CREATE INDEX login_history_user_page_idx ON login_history (user_id, id DESC);
CREATE INDEX login_history_time_idx ON login_history (logged_in_at);
