-- Subscriptions (src/subscriptions): a question answered again on a schedule
-- under the recipient's grants of that moment, and each run's delivery. The
-- delivery row is the lease that makes a run exactly-once across instances.
CREATE TABLE subscriptions (
    id           TEXT PRIMARY KEY,
    user_id      TEXT NOT NULL,        -- the recipient, who created it
    question     TEXT NOT NULL,
    cron         TEXT NOT NULL,        -- five fields
    timezone     TEXT NOT NULL,        -- IANA name
    target       TEXT NOT NULL,        -- 'inbox' or 'slack' (a direct message)
    slack_user   TEXT,                 -- the Slack user id for 'slack'
    paused       BIGINT NOT NULL,      -- 0 or 1
    next_run_at  BIGINT NOT NULL,      -- Unix seconds
    created_at   BIGINT NOT NULL
);
CREATE INDEX subscriptions_due ON subscriptions (paused, next_run_at);
CREATE INDEX subscriptions_user ON subscriptions (user_id);

CREATE TABLE deliveries (
    subscription_id TEXT NOT NULL,
    scheduled_for   BIGINT NOT NULL,   -- the run's scheduled time (Unix seconds)
    instance        TEXT NOT NULL,     -- who claimed it
    claimed_at      BIGINT NOT NULL,
    late            BIGINT NOT NULL,   -- 1 when run after downtime
    outcome         TEXT,              -- 'sent', 'notice', 'refused'; NULL while claimed
    event_id        TEXT,              -- the question's audit event
    body            TEXT,              -- the inbox copy of the answer (JSON)
    delivered_at    BIGINT,
    PRIMARY KEY (subscription_id, scheduled_for)
);
