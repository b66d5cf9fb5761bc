//! The result cache and the statement limit: [`Bounded`] wraps the
//! warehouse steward runs statements on.
//!
//! **What a cached result is keyed by.** A SHA-256 over (length-prefixed):
//! the warehouse's identity (a digest of its URL), the data version, the
//! UTC day, the role the statement runs under, the row cap, and the exact SQL
//! the guard returned. The guard's SQL already holds the asker's masks and row
//! filters, and the role decides which database role runs it where the
//! database enforces the policy, so two principals share an entry only when
//! they would run the same statement under the same role: a cache hit can never
//! show rows the asker's own statement would not have returned. The data
//! version is the warehouse's own ([`Warehouse::data_version`]: a SQLite
//! file's size and modification time, WAL included) or, for warehouses that
//! have none (PostgreSQL, Snowflake), the number of the current freshness
//! window (`cache.freshness_secs`). The UTC day is in the key because
//! statements may read the clock (`current_date`). Every entry also expires
//! after `cache.max_age_secs`.
//!
//! **The shared tier** (`cache.shared`): results are also kept in steward's
//! database (table `result_cache`), so every instance sharing it serves what
//! one of them ran. Results of statements that read a `pii` column are never
//! written there: personal data stays in memory, for the role that read it.
//!
//! **Bounded work.** At most `limits.max_concurrent_statements` statements
//! run at once; a statement waits up to `limits.queue_timeout_ms` for its
//! turn and then fails with [`WarehouseError::Busy`] instead of piling up.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use lru::LruCache;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use tokio::sync::Semaphore;

use std::sync::atomic::{AtomicU64, Ordering};

use sqlx::Row;

use super::{ResultSet, Warehouse, WarehouseError};
use crate::policy::ColumnClass;
use crate::session::SessionStore;
use crate::sql::{Dialect, ValidatedSql};

/// The shared tier in steward's database.
struct Shared {
    db: SessionStore,
    max_age_ms: i64,
    stores: AtomicU64,
}

/// Every this many stores, expired shared entries are deleted.
const PURGE_EVERY: u64 = 256;

impl Shared {
    /// The entry under `key`, if stored within `max_age_ms`. Failures (an
    /// unreachable database, an unreadable row) are misses.
    async fn get(&self, key: &[u8; 32]) -> Option<CachedResult> {
        let oldest = Utc::now().timestamp_millis() - self.max_age_ms;
        let row = sqlx::query(self.db.sql(
            "SELECT as_of_ms, body FROM result_cache WHERE cache_key = $1 AND stored_ms >= $2",
        ))
        .bind(hex::encode(key))
        .bind(oldest)
        .fetch_optional(self.db.pool())
        .await
        .ok()??;
        let as_of = DateTime::from_timestamp_millis(row.try_get("as_of_ms").ok()?)?;
        let body: String = row.try_get("body").ok()?;
        let result = serde_json::from_str(&body).ok()?;
        Some(CachedResult { result, as_of })
    }

    /// Stores `result` under `key` (replacing an older entry); now and then
    /// deletes expired entries. Failures only lose the entry.
    async fn put(&self, key: &[u8; 32], result: &ResultSet, as_of: DateTime<Utc>) {
        let Ok(body) = serde_json::to_string(result) else {
            return;
        };
        let now = Utc::now().timestamp_millis();
        let stored = sqlx::query(self.db.sql(
            "INSERT INTO result_cache (cache_key, as_of_ms, stored_ms, body) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (cache_key) DO UPDATE SET as_of_ms = excluded.as_of_ms, \
             stored_ms = excluded.stored_ms, body = excluded.body",
        ))
        .bind(hex::encode(key))
        .bind(as_of.timestamp_millis())
        .bind(now)
        .bind(body)
        .execute(self.db.pool())
        .await;
        if stored.is_err() {
            // Not the error itself: a database message can quote a value.
            tracing::debug!("shared result cache: entry not stored");
        }
        if self.stores.fetch_add(1, Ordering::Relaxed) % PURGE_EVERY == PURGE_EVERY - 1 {
            let _ = sqlx::query(self.db.sql("DELETE FROM result_cache WHERE stored_ms < $1"))
                .bind(now - self.max_age_ms)
                .execute(self.db.pool())
                .await;
        }
    }
}

/// `cache` in settings.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CacheSettings {
    /// Whether results are cached at all.
    pub enabled: bool,
    /// Most bytes of cached results held in memory (values counted as
    /// [`ResultSet`] sizes: string lengths, 8 bytes for other values);
    /// least recently used results are dropped past it.
    pub max_bytes: usize,
    /// Largest single result cached, in bytes (larger ones always run).
    pub max_entry_bytes: usize,
    /// For warehouses without a data version of their own (PostgreSQL,
    /// Snowflake): how long, in seconds, a result stays fresh. Results are
    /// shared within one window of this length.
    pub freshness_secs: u64,
    /// Longest any entry is served, in seconds, whatever the data version says.
    pub max_age_secs: u64,
    /// Also keep results (except those of statements reading personal data)
    /// in steward's database, shared by every instance using it.
    pub shared: bool,
}

impl Default for CacheSettings {
    fn default() -> Self {
        CacheSettings {
            enabled: true,
            max_bytes: 64 << 20,
            max_entry_bytes: 4 << 20,
            freshness_secs: 300,
            max_age_secs: 3600,
            shared: false,
        }
    }
}

/// A result served from the cache.
#[derive(Debug, Clone)]
pub struct CachedResult {
    /// The rows, as the warehouse returned them.
    pub result: ResultSet,
    /// When the warehouse returned them.
    pub as_of: DateTime<Utc>,
}

struct Entry {
    result: Arc<ResultSet>,
    as_of: DateTime<Utc>,
    stored: Instant,
    bytes: usize,
}

struct Lru {
    entries: LruCache<[u8; 32], Entry>,
    bytes: usize,
}

/// An in-memory LRU of results within a byte budget.
struct ResultCache {
    settings: CacheSettings,
    inner: Mutex<Lru>,
}

/// Bytes a result is counted as.
fn result_bytes(r: &ResultSet) -> usize {
    let values: usize = r
        .rows
        .iter()
        .flatten()
        .map(|v| v.as_str().map_or(8, str::len))
        .sum();
    values + r.columns.iter().map(String::len).sum::<usize>() + 64
}

impl ResultCache {
    /// An empty cache with `settings`' budget.
    fn new(settings: &CacheSettings) -> ResultCache {
        ResultCache {
            settings: settings.clone(),
            inner: Mutex::new(Lru {
                entries: LruCache::unbounded(),
                bytes: 0,
            }),
        }
    }

    /// The entry under `key`, unless it is older than `max_age_secs`.
    fn get(&self, key: &[u8; 32]) -> Option<CachedResult> {
        let mut lru = self.inner.lock().ok()?;
        let max_age = Duration::from_secs(self.settings.max_age_secs);
        let expired = lru.entries.peek(key)?.stored.elapsed() > max_age;
        if expired {
            if let Some(e) = lru.entries.pop(key) {
                lru.bytes -= e.bytes;
            }
            return None;
        }
        let e = lru.entries.get(key)?;
        Some(CachedResult {
            result: (*e.result).clone(),
            as_of: e.as_of,
        })
    }

    /// Stores `result` under `key`, dropping the least recently used entries
    /// past the byte budget; whether it was stored (results over
    /// `max_entry_bytes` are not).
    fn put(&self, key: [u8; 32], result: &ResultSet, as_of: DateTime<Utc>) -> bool {
        let bytes = result_bytes(result);
        if bytes > self.settings.max_entry_bytes || bytes > self.settings.max_bytes {
            return false;
        }
        let Ok(mut lru) = self.inner.lock() else {
            return false;
        };
        let entry = Entry {
            result: Arc::new(result.clone()),
            as_of,
            stored: Instant::now(),
            bytes,
        };
        if let Some(old) = lru.entries.put(key, entry) {
            lru.bytes -= old.bytes;
        }
        lru.bytes += bytes;
        while lru.bytes > self.settings.max_bytes {
            match lru.entries.pop_lru() {
                Some((_, e)) => lru.bytes -= e.bytes,
                None => break,
            }
        }
        true
    }
}

/// The warehouse as orchestration sees it: the real one behind the
/// statement limit and, when enabled, the result cache.
pub struct Bounded {
    inner: Arc<dyn Warehouse>,
    identity: [u8; 32],
    cache: Option<ResultCache>,
    shared: Option<Shared>,
    freshness_secs: u64,
    permits: Semaphore,
    queue_timeout: Duration,
}

impl Bounded {
    /// Wraps `inner`, which was opened from `url` (only its digest is kept).
    /// `max_concurrent` statements run at once; others wait up to
    /// `queue_timeout`.
    pub fn new(
        inner: Arc<dyn Warehouse>,
        url: &str,
        cache: &CacheSettings,
        max_concurrent: usize,
        queue_timeout: Duration,
    ) -> Bounded {
        Bounded {
            inner,
            identity: Sha256::digest(url.as_bytes()).into(),
            cache: cache.enabled.then(|| ResultCache::new(cache)),
            shared: None,
            freshness_secs: cache.freshness_secs.max(1),
            permits: Semaphore::new(max_concurrent.max(1)),
            queue_timeout,
        }
    }

    /// This warehouse with the cache's shared tier in `db` (when the cache
    /// is enabled), entries served for at most `max_age_secs`.
    #[must_use]
    pub fn with_shared_tier(mut self, db: SessionStore, max_age_secs: u64) -> Bounded {
        if self.cache.is_some() {
            self.shared = Some(Shared {
                db,
                max_age_ms: i64::try_from(max_age_secs.saturating_mul(1000)).unwrap_or(i64::MAX),
                stores: AtomicU64::new(0),
            });
        }
        self
    }

    fn key(&self, sql: &ValidatedSql) -> [u8; 32] {
        let now = Utc::now();
        let version = self
            .inner
            .data_version()
            .unwrap_or_else(|| format!("window {}", now.timestamp() as u64 / self.freshness_secs));
        let mut h = Sha256::new();
        let day = now.date_naive().to_string();
        let max_rows = sql.max_rows().to_string();
        for part in [
            &self.identity[..],
            version.as_bytes(),
            day.as_bytes(),
            sql.role().as_bytes(),
            max_rows.as_bytes(),
            sql.sql().as_bytes(),
        ] {
            h.update((part.len() as u64).to_le_bytes());
            h.update(part);
        }
        h.finalize().into()
    }
}

#[async_trait::async_trait]
impl Warehouse for Bounded {
    fn dialect(&self) -> Dialect {
        self.inner.dialect()
    }

    /// Waits for a statement slot (up to the queue timeout), runs the
    /// statement and caches its result.
    ///
    /// # Errors
    /// [`WarehouseError::Busy`] when no slot freed up in time; the inner
    /// warehouse's errors.
    async fn execute(&self, sql: &ValidatedSql) -> Result<ResultSet, WarehouseError> {
        let _permit = tokio::time::timeout(self.queue_timeout, self.permits.acquire())
            .await
            .map_err(|_| WarehouseError::Busy(self.queue_timeout.as_millis() as u64))?
            .map_err(|_| WarehouseError::Busy(0))?;
        let key = self.cache.as_ref().map(|_| self.key(sql));
        let as_of = Utc::now();
        let result = self.inner.execute(sql).await?;
        if let (Some(cache), Some(key)) = (&self.cache, key)
            && cache.put(key, &result, as_of)
            && let Some(shared) = &self.shared
            && !sql.classes().contains(&ColumnClass::Pii)
        {
            shared.put(&key, &result, as_of).await;
        }
        Ok(result)
    }

    fn data_version(&self) -> Option<String> {
        self.inner.data_version()
    }

    async fn cached(&self, sql: &ValidatedSql) -> Option<CachedResult> {
        let cache = self.cache.as_ref()?;
        let key = self.key(sql);
        if let Some(hit) = cache.get(&key) {
            return Some(hit);
        }
        let hit = self.shared.as_ref()?.get(&key).await?;
        cache.put(key, &hit.result, hit.as_of);
        Some(hit)
    }

    async fn ping(&self) -> Result<(), WarehouseError> {
        self.inner.ping().await
    }

    async fn catalog(&self) -> super::catalog::Catalog {
        self.inner.catalog().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rows(n: usize, text: &str) -> ResultSet {
        ResultSet {
            columns: vec!["v".into()],
            rows: (0..n).map(|_| vec![serde_json::json!(text)]).collect(),
            truncated: false,
        }
    }

    fn cache(max_bytes: usize, max_entry_bytes: usize, max_age_secs: u64) -> ResultCache {
        ResultCache::new(&CacheSettings {
            max_bytes,
            max_entry_bytes,
            max_age_secs,
            ..CacheSettings::default()
        })
    }

    #[test]
    fn the_least_recently_used_results_leave_past_the_byte_budget() {
        let one = rows(10, "0123456789");
        let size = result_bytes(&one);
        let c = cache(2 * size, size, 3600);
        let now = Utc::now();
        assert!(c.put([1; 32], &one, now));
        assert!(c.put([2; 32], &one, now));
        assert!(c.get(&[1; 32]).is_some(), "1 is now the most recent");
        assert!(c.put([3; 32], &one, now));
        assert!(c.get(&[2; 32]).is_none(), "2 was least recently used");
        assert!(c.get(&[1; 32]).is_some() && c.get(&[3; 32]).is_some());
        let lru = c.inner.lock().unwrap();
        assert_eq!((lru.entries.len(), lru.bytes), (2, 2 * size));
    }

    #[test]
    fn results_over_the_entry_limit_are_not_stored_and_old_ones_are_not_served() {
        let big = rows(100, "0123456789");
        let c = cache(1 << 20, result_bytes(&big) - 1, 3600);
        assert!(!c.put([1; 32], &big, Utc::now()));
        assert!(c.get(&[1; 32]).is_none());
        let expired = cache(1 << 20, 1 << 20, 0);
        assert!(expired.put([1; 32], &big, Utc::now()));
        std::thread::sleep(Duration::from_millis(5));
        assert!(expired.get(&[1; 32]).is_none());
        assert_eq!(
            expired.inner.lock().unwrap().bytes,
            0,
            "an expired entry is dropped"
        );
    }
}
