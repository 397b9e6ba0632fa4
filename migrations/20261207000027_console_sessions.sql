-- Operations-console sign-ins. Each session is a refresh-token family of its own (a password change or a
-- sign-out revokes it like any other session) with an opaque cookie token, stored as its SHA-256.
CREATE TABLE console_sessions (
    token_hash TEXT        PRIMARY KEY,
    family_id  UUID        NOT NULL REFERENCES refresh_token_families (id) ON DELETE CASCADE,
    expires_at TIMESTAMPTZ NOT NULL,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX console_sessions_family_idx ON console_sessions (family_id);
