-- The audit trail (src/audit): append-only, hash-chained. `body` is the event as
-- JSON; `hash` = HMAC-SHA256(audit key, prev_hash || seq || body), so editing,
-- deleting or reordering rows is detected by `steward audit verify`. The other
-- columns repeat fields of `body` for filtering (verify checks they agree).
CREATE TABLE audit_events (
    seq           INTEGER PRIMARY KEY,
    id            TEXT NOT NULL UNIQUE,
    at_ms         INTEGER NOT NULL,
    kind          TEXT NOT NULL,
    parent_id     TEXT,
    principal     TEXT NOT NULL,
    channel       TEXT NOT NULL,
    outcome       TEXT NOT NULL,
    tables        TEXT NOT NULL,           -- ",a,b," (for LIKE '%,a,%')
    body          TEXT NOT NULL,
    prev_hash     TEXT NOT NULL,
    hash          TEXT NOT NULL
);
CREATE INDEX audit_events_at ON audit_events (at_ms);
CREATE INDEX audit_events_principal ON audit_events (principal);
CREATE INDEX audit_events_parent ON audit_events (parent_id);
