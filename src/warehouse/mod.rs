//! Warehouses: where validated statements run.
//!
//! [`Warehouse::execute`] accepts only [`ValidatedSql`], so nothing reaches a
//! warehouse without passing the guard. Implementations open read-only
//! connections, enforce the statement timeout and stop at the row cap.

pub mod cache;
pub mod catalog;
pub mod introspect;
mod postgres;
pub mod snowflake;
mod sqlite;
mod sqlite_policy;

use std::sync::Arc;

use serde::{Deserialize, Serialize};

pub use postgres::PostgresWarehouse;
pub use snowflake::SnowflakeWarehouse;
pub use sqlite::SqliteWarehouse;

use crate::sql::{Dialect, ValidatedSql};

/// Rows returned by a statement. Values are JSON scalars (numbers, strings,
/// null); they are data for the answer, never written to logs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ResultSet {
    /// Column names in order.
    pub columns: Vec<String>,
    /// Rows, each as long as `columns`.
    pub rows: Vec<Vec<serde_json::Value>>,
    /// Whether rows stopped at the row cap.
    pub truncated: bool,
}

impl ResultSet {
    /// The value at `(row, column name)`, if both exist.
    pub fn get(&self, row: usize, column: &str) -> Option<&serde_json::Value> {
        let i = self.columns.iter().position(|c| c == column)?;
        self.rows.get(row)?.get(i)
    }
}

/// A failure while running a validated statement.
#[derive(Debug, thiserror::Error)]
pub enum WarehouseError {
    /// The warehouse cannot be reached or opened.
    #[error("the warehouse is unavailable: {0}")]
    Unavailable(String),
    /// The statement ran past its timeout and was interrupted.
    #[error("the query took longer than {0} ms and was stopped")]
    Timeout(u64),
    /// The warehouse rejected or failed the statement.
    #[error("the warehouse could not run the query: {0}")]
    Execution(String),
    /// Every statement slot stayed taken for this many milliseconds; the
    /// statement did not run (see [`cache::Bounded`]).
    #[error("steward is busy: no statement slot freed up within {0} ms")]
    Busy(u64),
}

impl WarehouseError {
    /// A short, value-free name of the failure for logs: warehouse messages
    /// can quote data ("invalid input syntax for type integer: …"), so they
    /// are never logged.
    pub fn kind(&self) -> &'static str {
        match self {
            WarehouseError::Unavailable(_) => "unavailable",
            WarehouseError::Timeout(_) => "timeout",
            WarehouseError::Execution(_) => "execution",
            WarehouseError::Busy(_) => "busy",
        }
    }
}

/// A SQL warehouse that runs validated statements read-only.
#[async_trait::async_trait]
pub trait Warehouse: Send + Sync {
    /// The dialect statements must be validated for.
    fn dialect(&self) -> Dialect;

    /// Runs one validated statement within its timeout, returning at most its row cap.
    ///
    /// # Errors
    /// [`WarehouseError`] when the warehouse is unavailable, the statement
    /// times out, or the warehouse rejects it.
    async fn execute(&self, sql: &ValidatedSql) -> Result<ResultSet, WarehouseError>;

    /// A string that changes whenever the data may have changed, for the
    /// result cache; `None` when the warehouse cannot tell (the cache then
    /// uses its freshness window).
    fn data_version(&self) -> Option<String> {
        None
    }

    /// The cached result of `sql` at the current data version, if any
    /// (only [`cache::Bounded`] caches).
    async fn cached(&self, _sql: &ValidatedSql) -> Option<cache::CachedResult> {
        None
    }

    /// Whether the warehouse is reachable now (a connection can be opened);
    /// runs no statement of anyone's.
    ///
    /// # Errors
    /// [`WarehouseError::Unavailable`].
    async fn ping(&self) -> Result<(), WarehouseError> {
        Ok(())
    }

    /// The engine's own description of its tables (declared types, primary
    /// and foreign keys; [`catalog`]): metadata, not data, and read without
    /// the guard. Empty when the engine's catalogue cannot be read, which
    /// only makes prompts plainer.
    async fn catalog(&self) -> catalog::Catalog {
        catalog::Catalog::new()
    }
}

/// Most bytes of values one result may hold (strings by length, other values
/// 8 bytes each); past it the result is truncated like one past the row cap.
pub const MAX_RESULT_BYTES: usize = 16 << 20;

/// Reads rows from a sqlx stream into a [`ResultSet`], stopping at `cap`
/// rows or [`MAX_RESULT_BYTES`] (then `truncated` is set and the rest is
/// never fetched).
pub(crate) async fn drain<R, S>(
    mut stream: S,
    cap: usize,
    decode: impl Fn(&R) -> Vec<serde_json::Value>,
) -> Result<ResultSet, sqlx::Error>
where
    R: sqlx::Row,
    S: futures_util::Stream<Item = Result<R, sqlx::Error>> + Unpin,
{
    use futures_util::TryStreamExt;
    use sqlx::Column;
    let mut set = ResultSet {
        columns: Vec::new(),
        rows: Vec::new(),
        truncated: false,
    };
    let mut bytes = 0usize;
    while let Some(row) = stream.try_next().await? {
        if set.columns.is_empty() {
            set.columns = row.columns().iter().map(|c| c.name().to_owned()).collect();
        }
        if set.rows.len() == cap {
            set.truncated = true;
            break;
        }
        let values = decode(&row);
        bytes += values
            .iter()
            .map(|v| v.as_str().map_or(8, str::len))
            .sum::<usize>();
        if bytes > MAX_RESULT_BYTES {
            set.truncated = true;
            break;
        }
        set.rows.push(values);
    }
    Ok(set)
}

/// Opens the warehouse named by a URL: `sqlite://PATH` (or a bare path) or
/// `postgres://USER@HOST:PORT/DB` or
/// `snowflake://USER@ACCOUNT/DATABASE/SCHEMA?warehouse=WH&role=ROLE`.
///
/// # Errors
/// [`WarehouseError::Unavailable`] for an unsupported scheme or a database
/// that cannot be opened.
pub async fn connect(url: &str) -> Result<Arc<dyn Warehouse>, WarehouseError> {
    connect_with(url, false).await
}

/// The warehouse steward answers from: [`connect_with`], and on SQLite the
/// engine enforcing `policy` as well (per-role views and an authorizer,
/// [`SqliteWarehouse::enforcing`]; always, since it needs nothing of the
/// database). PostgreSQL enforces it with `database_roles` (the roles
/// `steward policy apply` made), Snowflake with the secure views an
/// operator applies.
///
/// # Errors
/// As [`connect_with`].
pub async fn connect_governed(
    url: &str,
    database_roles: bool,
    policy: &crate::policy::Policy,
) -> Result<Arc<dyn Warehouse>, WarehouseError> {
    if !database_roles && let Some(path) = sqlite_path(url) {
        return Ok(Arc::new(
            SqliteWarehouse::open(path).await?.enforcing(policy),
        ));
    }
    connect_with(url, database_roles).await
}

/// The file a `sqlite://PATH` (or plain path) URL names.
fn sqlite_path(url: &str) -> Option<&std::path::Path> {
    url.strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))
        .or_else(|| (!url.contains("://")).then_some(url))
        .map(std::path::Path::new)
}

/// [`connect`], with `database_roles` set: statements run as the database
/// role of the steward role they were validated under (PostgreSQL only; see
/// [`crate::policy::enforce`]).
///
/// # Errors
/// As [`connect`], and [`WarehouseError::Unavailable`] when `database_roles`
/// is asked of a warehouse other than PostgreSQL.
pub async fn connect_with(
    url: &str,
    database_roles: bool,
) -> Result<Arc<dyn Warehouse>, WarehouseError> {
    if database_roles {
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            return Ok(Arc::new(
                PostgresWarehouse::connect(url).await?.with_database_roles(),
            ));
        }
        return Err(WarehouseError::Unavailable(
            "enforce_in_database needs a postgres:// warehouse".into(),
        ));
    }
    if let Some(path) = sqlite_path(url) {
        return Ok(Arc::new(SqliteWarehouse::open(path).await?));
    }
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        return Ok(Arc::new(PostgresWarehouse::connect(url).await?));
    }
    if url.starts_with("snowflake://") {
        return Ok(Arc::new(SnowflakeWarehouse::connect(url).await?));
    }
    Err(WarehouseError::Unavailable(format!(
        "unsupported warehouse URL scheme in {:?}; use sqlite://, postgres:// or snowflake://",
        url.split("://").next().unwrap_or_default()
    )))
}
