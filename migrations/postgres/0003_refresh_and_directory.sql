-- Re-validation of sessions with the identity provider (src/auth/revalidate.rs).
-- `refresh_token` is sealed (AES-256-GCM) under a key derived from the session's
-- cookie token, which only the client holds: the database alone cannot use it.
ALTER TABLE sessions ADD COLUMN validated_at INTEGER;
ALTER TABLE sessions ADD COLUMN refresh_token TEXT;
ALTER TABLE sessions ADD COLUMN email TEXT;
-- When the user last authenticated at the provider (ID token `auth_time`; sign-in
-- time otherwise): admin re-runs need a recent one.
ALTER TABLE sessions ADD COLUMN auth_time INTEGER;

-- What the identity provider last said about a user (at sign-in or refresh):
-- how a Slack user with the same verified email becomes a principal.
CREATE TABLE idp_users (
    sub           TEXT PRIMARY KEY,
    email         TEXT NOT NULL,           -- lower-cased, verified by the provider
    user_id       TEXT NOT NULL,
    roles         TEXT NOT NULL,           -- JSON array
    groups        TEXT NOT NULL,           -- JSON array
    updated_at    INTEGER NOT NULL
);
CREATE INDEX idp_users_email ON idp_users (email);

-- Ids seen recently (Slack event ids, request signatures), shared by every
-- instance so a retry landing elsewhere is still recognised.
CREATE TABLE seen_ids (
    id            TEXT PRIMARY KEY,        -- hex SHA-256 of kind:id
    seen_at       INTEGER NOT NULL
);
