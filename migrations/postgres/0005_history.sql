-- Conversation history for the web chat (src/session/history.rs): the questions a
-- user asked, redacted, never answers or rows (an answer is computed again, under
-- the asker's grants of the moment, when a question is asked again). Cleared by
-- the user, and when an administrator revokes the user.
CREATE TABLE history (
    id              TEXT PRIMARY KEY,
    user_id         TEXT NOT NULL,
    conversation_id TEXT NOT NULL,
    question        TEXT NOT NULL,
    kind            TEXT NOT NULL,       -- the answer kind (metric, sql, docs, overview, refusal)
    asked_at        BIGINT NOT NULL
);
CREATE INDEX history_user ON history (user_id, asked_at);
