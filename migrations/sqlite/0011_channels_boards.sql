-- Slack channel subscriptions and alert state (src/subscriptions), and boards
-- of saved answers (src/boards).
ALTER TABLE subscriptions ADD COLUMN slack_channel TEXT;      -- the channel id for 'channel'
ALTER TABLE subscriptions ADD COLUMN alert_firing BIGINT NOT NULL DEFAULT 0; -- 1 after an alert fired, until it clears
CREATE INDEX deliveries_age ON deliveries (scheduled_for);

CREATE TABLE boards (
    id          TEXT PRIMARY KEY,
    owner       TEXT NOT NULL,         -- steward user id
    name        TEXT NOT NULL,
    shared      BIGINT NOT NULL,       -- 1: every signed-in user may open it
    created_at  BIGINT NOT NULL
);
CREATE INDEX boards_owner ON boards (owner);

CREATE TABLE pins (
    id          TEXT PRIMARY KEY,
    board_id    TEXT NOT NULL,
    question    TEXT NOT NULL,         -- re-asked on open under the viewer's grants
    pinned_by   TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    position    BIGINT NOT NULL        -- order on the board: 1 + the highest before it
);
CREATE INDEX pins_board ON pins (board_id, position);
