-- The shared tier of the result cache (src/warehouse/cache.rs, cache.shared):
-- results of statements that read no personal data, keyed by a digest of the
-- warehouse, data version, day, role, row cap and the guard's SQL, so every
-- instance serves what one of them ran. Entries older than cache.max_age_secs
-- are never served and are purged with the audit retention pass.
CREATE TABLE result_cache (
    cache_key   TEXT PRIMARY KEY,
    as_of_ms    BIGINT NOT NULL,          -- when the warehouse produced the rows
    stored_ms   BIGINT NOT NULL,
    body        TEXT NOT NULL         -- the ResultSet as JSON
);
CREATE INDEX result_cache_stored ON result_cache (stored_ms);
