//! SQLite warehouse (the embedded default) through sqlx.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use sqlx::sqlite::{SqliteConnectOptions, SqlitePool, SqlitePoolOptions, SqliteRow};
use sqlx::{ConnectOptions, Row, TypeInfo, ValueRef};

use super::sqlite_policy::{self, Authorizer, Enforcement, Installed};
use super::{ResultSet, Warehouse, WarehouseError};
use crate::policy::Policy;
use crate::sql::{Dialect, ValidatedSql};

/// SQLite's process-wide allocation ceiling while a warehouse is open.
pub const HARD_HEAP_LIMIT_BYTES: u64 = 512 << 20;

/// The largest string or blob a statement may make on a warehouse that
/// enforces the policy: the result's byte cap.
const MAX_VALUE_BYTES: i32 = 16 << 20;

/// A read-only SQLite database file.
///
/// Connections are opened with `SQLITE_OPEN_READONLY` and `PRAGMA
/// query_only`, so even a statement that slipped past the guard could not
/// write. The statement timeout is enforced with SQLite's progress handler,
/// which interrupts the running statement (<https://sqlite.org/c3ref/progress_handler.html>).
/// With a policy ([`SqliteWarehouse::enforcing`]), each statement runs on a
/// connection holding its role's views, under an authorizer that refuses
/// every read not through them and every function off the guard's
/// allow-list (`sqlite_policy.rs`).
pub struct SqliteWarehouse {
    pool: SqlitePool,
    path: std::path::PathBuf,
    enforcement: Option<Enforcement>,
}

impl SqliteWarehouse {
    /// Opens `path` read-only; the file must exist.
    ///
    /// # Errors
    /// [`WarehouseError::Unavailable`] if the file is missing or not a database.
    pub async fn open(path: &Path) -> Result<Self, WarehouseError> {
        if !path.is_file() {
            return Err(WarehouseError::Unavailable(format!(
                "no SQLite database at {}",
                path.display()
            )));
        }
        let options = SqliteConnectOptions::new()
            .filename(path)
            .read_only(true)
            .pragma("query_only", "ON")
            // A ceiling on what SQLite may allocate in this process, so one
            // statement building a huge value (a recursive CTE doubling a
            // string) fails with "out of memory" instead of taking the server
            // down (SQLite C API, sqlite3_hard_heap_limit64; process-wide).
            .pragma("hard_heap_limit", HARD_HEAP_LIMIT_BYTES.to_string())
            // sqlx would log statement text (with literals) on slow queries;
            // steward logs its own redacted facts instead (LOGGING.md).
            .log_statements(log::LevelFilter::Off)
            .log_slow_statements(log::LevelFilter::Off, Duration::from_secs(3600));
        // SQLite runs statements in this process, on the CPU: connections
        // beyond the cores add memory (each has its own page cache and
        // temporary B-trees), not throughput (docs/benchmarks.md).
        let connections = std::thread::available_parallelism().map_or(2, |n| n.get().clamp(2, 8));
        let pool = SqlitePoolOptions::new()
            .max_connections(connections as u32)
            .acquire_timeout(Duration::from_secs(10))
            .connect_with(options)
            .await
            .map_err(|e| WarehouseError::Unavailable(e.to_string()))?;
        // Touch the schema so a file that is not a database fails now.
        sqlx::query("SELECT count(*) FROM sqlite_schema")
            .fetch_one(&pool)
            .await
            .map_err(|e| WarehouseError::Unavailable(format!("{}: {e}", path.display())))?;
        Ok(SqliteWarehouse {
            pool,
            path: path.to_owned(),
            enforcement: None,
        })
    }

    /// This warehouse, with SQLite enforcing `policy` too: a statement runs
    /// only as a role the policy defines, reading only that role's views.
    #[must_use]
    pub fn enforcing(self, policy: &Policy) -> SqliteWarehouse {
        SqliteWarehouse {
            enforcement: Some(Enforcement::new(policy)),
            ..self
        }
    }
}

#[async_trait::async_trait]
impl Warehouse for SqliteWarehouse {
    fn dialect(&self) -> Dialect {
        Dialect::Sqlite
    }

    /// The size and modification time (nanoseconds) of the database file and
    /// of its write-ahead log: any committed write changes one of them.
    fn data_version(&self) -> Option<String> {
        let stamp = |p: &Path| {
            std::fs::metadata(p).ok().map(|m| {
                let modified = m
                    .modified()
                    .ok()
                    .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                    .map_or(0, |d| d.as_nanos());
                format!("{}:{modified}", m.len())
            })
        };
        let mut wal = self.path.clone().into_os_string();
        wal.push("-wal");
        Some(format!(
            "{}/{}",
            stamp(&self.path)?,
            stamp(Path::new(&wal)).unwrap_or_default()
        ))
    }

    async fn catalog(&self) -> super::catalog::Catalog {
        super::catalog::sqlite(&self.pool).await.unwrap_or_else(|e| {
            tracing::warn!(error = %e, "the catalogue could not be read; prompts show no declared types or keys");
            super::catalog::Catalog::new()
        })
    }

    async fn ping(&self) -> Result<(), WarehouseError> {
        if !self.path.is_file() {
            return Err(WarehouseError::Unavailable(format!(
                "no SQLite database at {}",
                self.path.display()
            )));
        }
        self.pool
            .acquire()
            .await
            .map(drop)
            .map_err(|e| WarehouseError::Unavailable(e.to_string()))
    }

    #[tracing::instrument(name = "warehouse.execute", skip_all, fields(dialect = "sqlite"))]
    async fn execute(&self, sql: &ValidatedSql) -> Result<ResultSet, WarehouseError> {
        let mut conn = self
            .pool
            .acquire()
            .await
            .map_err(|e| WarehouseError::Unavailable(e.to_string()))?;
        let authorizer = match &self.enforcement {
            None => None,
            Some(e) => {
                // An earlier statement on this connection whose future was
                // dropped may have left its callback installed.
                let mut handle = conn
                    .lock_handle()
                    .await
                    .map_err(|e| WarehouseError::Unavailable(e.to_string()))?;
                sqlite_policy::remove_authorizer(&mut handle);
                drop(handle);
                let rules = e.rules(sql.role()).ok_or_else(|| {
                    WarehouseError::Execution(format!(
                        "role {} has no views on this warehouse",
                        sql.role()
                    ))
                })?;
                if let Err(err) = e.install(&mut conn, &rules).await {
                    tracing::error!(role = sql.role(), error = %err, "installing a role's views failed");
                    conn.close_on_drop();
                    return Err(WarehouseError::Unavailable(format!(
                        "installing the views of role {}: {err}",
                        sql.role()
                    )));
                }
                Some(Installed::new(Authorizer::new(rules)))
            }
        };
        let deadline = Instant::now() + Duration::from_millis(sql.timeout_ms());
        let timed_out = Arc::new(AtomicBool::new(false));
        let mut refused = None;
        {
            let flag = Arc::clone(&timed_out);
            let mut handle = conn
                .lock_handle()
                .await
                .map_err(|e| WarehouseError::Unavailable(e.to_string()))?;
            handle.set_progress_handler(10_000, move || {
                let over = Instant::now() >= deadline;
                if over {
                    flag.store(true, Ordering::Relaxed);
                }
                !over
            });
            if let Some(a) = &authorizer {
                sqlite_policy::set_authorizer(&mut handle, a.get());
                sqlite_policy::limit_length(&mut handle, MAX_VALUE_BYTES);
                if let Err(why) = sqlite_policy::one_read_only_statement(&mut handle, sql.sql()) {
                    handle.remove_progress_handler();
                    sqlite_policy::remove_authorizer(&mut handle);
                    refused = Some(why);
                }
            }
        }
        if let Some(why) = refused {
            drop(authorizer.map(Installed::removed));
            tracing::warn!(role = sql.role(), refused = %why, "SQLite refused a statement the guard allowed");
            return Err(WarehouseError::Execution(format!(
                "not authorized by the policy: {why}"
            )));
        }
        let cap = usize::try_from(sql.max_rows()).unwrap_or(usize::MAX);
        // Not kept prepared: the authorizer runs while a statement is
        // prepared, so a statement prepared under one role is never reused
        // under another.
        let stream = sqlx::query(sqlx::AssertSqlSafe(sql.sql().to_owned()))
            .persistent(authorizer.is_none())
            .fetch(&mut *conn);
        let result = super::drain(stream, cap, row_values).await;
        let removed = match conn.lock_handle().await {
            Ok(mut handle) => {
                handle.remove_progress_handler();
                if authorizer.is_some() {
                    sqlite_policy::remove_authorizer(&mut handle);
                }
                true
            }
            Err(_) => false,
        };
        let authorizer = if removed {
            authorizer.map(Installed::removed)
        } else {
            // The callback may still be installed: never reuse the
            // connection (and `Installed` never frees what it points to).
            conn.close_on_drop();
            None
        };
        if let Some(why) = authorizer.as_ref().and_then(|a| a.denied()) {
            // Names only (an action, a function, a table and column), no values.
            tracing::warn!(role = sql.role(), denied = %why, "SQLite refused a statement the guard allowed");
            return Err(WarehouseError::Execution(format!(
                "not authorized by the policy: {why}"
            )));
        }
        match result {
            // With no rows SQLite reports no column names; callers that know
            // the shape (compiled metrics) supply it themselves.
            Ok(set) => Ok(set),
            Err(_) if timed_out.load(Ordering::Relaxed) => {
                Err(WarehouseError::Timeout(sql.timeout_ms()))
            }
            Err(e) => Err(WarehouseError::Execution(e.to_string())),
        }
    }
}

fn row_values(row: &SqliteRow) -> Vec<serde_json::Value> {
    (0..row.columns().len())
        .map(|i| {
            let Ok(raw) = row.try_get_raw(i) else {
                return serde_json::Value::Null;
            };
            if raw.is_null() {
                return serde_json::Value::Null;
            }
            match raw.type_info().name() {
                "INTEGER" => row
                    .try_get::<i64, _>(i)
                    .map(serde_json::Value::from)
                    .unwrap_or_default(),
                "REAL" => row
                    .try_get::<f64, _>(i)
                    .map(serde_json::Value::from)
                    .unwrap_or_default(),
                "BLOB" => serde_json::Value::String("<binary>".into()),
                _ => row
                    .try_get::<String, _>(i)
                    .map(serde_json::Value::from)
                    .unwrap_or_default(),
            }
        })
        .collect()
}
