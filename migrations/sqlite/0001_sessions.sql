-- Server-side sessions (see src/session). Times are Unix seconds (UTC).
-- The cookie carries a random token; only its SHA-256 is stored here.
CREATE TABLE sessions (
    id            TEXT PRIMARY KEY,        -- public handle for admins (random, not the token)
    token_hash    TEXT NOT NULL UNIQUE,    -- hex SHA-256 of the cookie token
    csrf_hash     TEXT NOT NULL,           -- hex SHA-256 of the session's CSRF token
    user_id       TEXT NOT NULL,
    roles         TEXT NOT NULL,           -- JSON array of role names
    groups        TEXT NOT NULL,           -- JSON array of other group names
    idp_sub       TEXT,                    -- OpenID Connect `sub`, when signed in through SSO
    idp_sid       TEXT,                    -- OpenID Connect session id (`sid`), for back-channel logout
    created_at    INTEGER NOT NULL,
    last_seen_at  INTEGER NOT NULL,
    expires_at    INTEGER NOT NULL,        -- absolute lifetime
    revoked_at    INTEGER,
    revoked_reason TEXT
);
CREATE INDEX sessions_user ON sessions (user_id);
CREATE INDEX sessions_sub ON sessions (idp_sub);
CREATE INDEX sessions_sid ON sessions (idp_sid);
