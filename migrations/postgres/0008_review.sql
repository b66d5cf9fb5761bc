-- The review loop (src/review): feedback on answers, verified-query candidates
-- a data steward reviews, and the approved verified queries, versioned.
-- Comments are redacted before they are stored; rows and answers never are.
CREATE TABLE feedback (
    id             TEXT PRIMARY KEY,
    event_id       TEXT NOT NULL,      -- the question's audit event
    user_id        TEXT NOT NULL,
    rating         TEXT NOT NULL,      -- 'up' or 'down'
    comment        TEXT,               -- redacted
    corrected_sql  TEXT,
    created_at     BIGINT NOT NULL
);
CREATE INDEX feedback_event ON feedback (event_id);

CREATE TABLE review_candidates (
    id            TEXT PRIMARY KEY,
    question      TEXT NOT NULL,       -- as recorded (redacted)
    sql           TEXT NOT NULL,
    proposed_by   TEXT NOT NULL,
    feedback_id   TEXT NOT NULL,
    event_id      TEXT NOT NULL,
    seen          TEXT NOT NULL,       -- JSON: what the asker saw (kind, SQL, rows, reason)
    status        TEXT NOT NULL,       -- 'pending', 'approved', 'rejected'
    reviewed_by   TEXT,
    reviewed_at   BIGINT,
    review_note   TEXT,
    created_at    BIGINT NOT NULL
);
CREATE INDEX review_candidates_status ON review_candidates (status, created_at);

CREATE TABLE verified_queries (
    version       BIGINT PRIMARY KEY,  -- 1, 2, … one per approval
    question      TEXT NOT NULL,
    question_key  TEXT NOT NULL,       -- the question normalised (text::question_key)
    sql           TEXT NOT NULL,
    role          TEXT NOT NULL,       -- the role it was checked under
    owner         TEXT NOT NULL,       -- who approved it
    approved_at   BIGINT NOT NULL,
    candidate_id  TEXT NOT NULL,
    superseded_by BIGINT               -- a later version for the same question
);
CREATE INDEX verified_queries_key ON verified_queries (question_key);
