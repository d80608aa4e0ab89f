-- Portal sessions (issue 19): a browser signs in with an API token and gets a session cookie.
-- Only the SHA-256 of the cookie's secret is stored. A session acts as its token: revoking the
-- token ends its sessions at once (the lookup joins api_tokens), and scopes are the token's
-- as they are now, not as they were at sign-in.
CREATE TABLE ui_sessions (
    id_hash     bytea       PRIMARY KEY,
    token_id    bigint      NOT NULL REFERENCES api_tokens (id) ON DELETE CASCADE,
    -- The CSRF token every form that writes carries (compared in constant time).
    csrf        text        NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    expires_at  timestamptz NOT NULL
);
CREATE INDEX ui_sessions_expiry ON ui_sessions (expires_at);

DO $$
BEGIN
    IF EXISTS (SELECT FROM pg_roles WHERE rolname = 'zeroscale_app') THEN
        GRANT SELECT, INSERT, DELETE ON ui_sessions TO zeroscale_app;
    END IF;
END;
$$;
