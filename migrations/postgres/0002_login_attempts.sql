-- Sign-ins in progress (authorization code flow): one row per redirect to the
-- provider, taken once by the callback. The state is stored hashed; the nonce and
-- PKCE verifier are needed in clear to finish the flow and live at most ten minutes.
CREATE TABLE login_attempts (
    state_hash    TEXT PRIMARY KEY,
    nonce         TEXT NOT NULL,
    pkce_verifier TEXT NOT NULL,
    return_to     TEXT NOT NULL,
    created_at    BIGINT NOT NULL
);
