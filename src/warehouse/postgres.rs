//! PostgreSQL warehouse through sqlx.

use std::str::FromStr;
use std::time::Duration;

use rust_decimal::prelude::ToPrimitive;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions, PgRow};
use sqlx::{ConnectOptions, Row, TypeInfo, ValueRef};

use super::{ResultSet, Warehouse, WarehouseError};
use crate::sql::{Dialect, ValidatedSql};

/// Most connections steward opens to one PostgreSQL warehouse.
pub const MAX_CONNECTIONS: u32 = 8;

/// A PostgreSQL database, read-only three times over: connect with a role that
/// only has `SELECT` grants; every session starts with
/// `default_transaction_read_only = on`; and every statement runs in its own
/// `READ ONLY` transaction with `SET LOCAL statement_timeout`, rolled back after.
pub struct PostgresWarehouse {
    pool: PgPool,
    database_roles: bool,
}

impl PostgresWarehouse {
    /// Connects to a `postgres://` URL.
    ///
    /// # Errors
    /// [`WarehouseError::Unavailable`] if the URL is invalid or the server unreachable.
    /// Messages never include the URL (it may hold a password).
    pub async fn connect(url: &str) -> Result<Self, WarehouseError> {
        let options = PgConnectOptions::from_str(url)
            .map_err(|_| WarehouseError::Unavailable("the PostgreSQL URL is not valid".into()))?
            .options([("default_transaction_read_only", "on")])
            .application_name("steward")
            .log_statements(log::LevelFilter::Off)
            .log_slow_statements(log::LevelFilter::Off, Duration::from_secs(3600));
        let pool = PgPoolOptions::new()
            .max_connections(MAX_CONNECTIONS)
            .acquire_timeout(Duration::from_secs(10))
            .idle_timeout(Duration::from_secs(300))
            .connect_with(options)
            .await
            .map_err(|e| {
                WarehouseError::Unavailable(format!(
                    "cannot connect to PostgreSQL: {}",
                    safe_error(&e)
                ))
            })?;
        Ok(PostgresWarehouse {
            pool,
            database_roles: false,
        })
    }

    /// Runs every statement as the database role of the steward role it was
    /// validated under, with that role's views first on the search path
    /// ([`crate::policy::enforce`]); `steward policy apply` must have created them.
    pub fn with_database_roles(mut self) -> Self {
        self.database_roles = true;
        self
    }
}

/// An error message without connection details.
fn safe_error(e: &sqlx::Error) -> String {
    match e {
        sqlx::Error::Database(db) => db.message().to_owned(),
        sqlx::Error::Io(_) => "network error".into(),
        sqlx::Error::PoolTimedOut => "timed out waiting for a connection".into(),
        sqlx::Error::Tls(_) => "TLS error".into(),
        other => other.to_string().chars().take(200).collect(),
    }
}

#[async_trait::async_trait]
impl Warehouse for PostgresWarehouse {
    fn dialect(&self) -> Dialect {
        Dialect::Postgres
    }

    async fn catalog(&self) -> super::catalog::Catalog {
        super::catalog::postgres(&self.pool).await.unwrap_or_else(|e| {
            tracing::warn!(error = %e, "the catalogue could not be read; prompts show no declared types or keys");
            super::catalog::Catalog::new()
        })
    }

    async fn ping(&self) -> Result<(), WarehouseError> {
        use sqlx::Connection;
        let mut conn = self
            .pool
            .acquire()
            .await
            .map_err(|e| WarehouseError::Unavailable(safe_error(&e)))?;
        conn.ping()
            .await
            .map_err(|e| WarehouseError::Unavailable(safe_error(&e)))
    }

    #[tracing::instrument(name = "warehouse.execute", skip_all, fields(dialect = "postgres"))]
    async fn execute(&self, sql: &ValidatedSql) -> Result<ResultSet, WarehouseError> {
        let unavailable = |e: sqlx::Error| WarehouseError::Unavailable(safe_error(&e));
        let mut tx = self.pool.begin().await.map_err(unavailable)?;
        sqlx::query("SET TRANSACTION READ ONLY")
            .execute(&mut *tx)
            .await
            .map_err(unavailable)?;
        let timeout = format!("SET LOCAL statement_timeout = {}", sql.timeout_ms());
        sqlx::query(sqlx::AssertSqlSafe(timeout))
            .execute(&mut *tx)
            .await
            .map_err(unavailable)?;
        if self.database_roles {
            let role = crate::sql::Dialect::Postgres
                .quote_ident(&crate::policy::enforce::database_role(sql.role()));
            for setting in [
                format!("SET LOCAL ROLE {role}"),
                format!("SET LOCAL search_path = {role}"),
            ] {
                sqlx::query(sqlx::AssertSqlSafe(setting))
                    .execute(&mut *tx)
                    .await
                    .map_err(|e| {
                        WarehouseError::Unavailable(format!(
                            "cannot switch to the database role of {} (run `steward policy apply`): {}",
                            sql.role(),
                            safe_error(&e)
                        ))
                    })?;
            }
        }
        let cap = usize::try_from(sql.max_rows()).unwrap_or(usize::MAX);
        let stream = sqlx::query(sqlx::AssertSqlSafe(sql.sql().to_owned())).fetch(&mut *tx);
        let result = super::drain(stream, cap, row_values).await;
        let _ = tx.rollback().await;
        match result {
            Ok(set) => Ok(set),
            Err(sqlx::Error::Database(db)) if db.code().as_deref() == Some("57014") => {
                Err(WarehouseError::Timeout(sql.timeout_ms()))
            }
            Err(e) => Err(WarehouseError::Execution(safe_error(&e))),
        }
    }
}

fn row_values(row: &PgRow) -> Vec<serde_json::Value> {
    use serde_json::Value;
    (0..row.columns().len())
        .map(|i| {
            let Ok(raw) = row.try_get_raw(i) else {
                return Value::Null;
            };
            if raw.is_null() {
                return Value::Null;
            }
            let type_name = raw.type_info().name().to_owned();
            match type_name.as_str() {
                "INT2" => row
                    .try_get::<i16, _>(i)
                    .map(Value::from)
                    .unwrap_or_default(),
                "INT4" => row
                    .try_get::<i32, _>(i)
                    .map(Value::from)
                    .unwrap_or_default(),
                "INT8" => row
                    .try_get::<i64, _>(i)
                    .map(Value::from)
                    .unwrap_or_default(),
                "FLOAT4" => row
                    .try_get::<f32, _>(i)
                    .map(|v| Value::from(f64::from(v)))
                    .unwrap_or_default(),
                "FLOAT8" => row
                    .try_get::<f64, _>(i)
                    .map(Value::from)
                    .unwrap_or_default(),
                "NUMERIC" => row
                    .try_get::<rust_decimal::Decimal, _>(i)
                    .ok()
                    .and_then(|d| d.to_f64())
                    .map(Value::from)
                    .unwrap_or_default(),
                "BOOL" => row
                    .try_get::<bool, _>(i)
                    .map(Value::from)
                    .unwrap_or_default(),
                "DATE" => row
                    .try_get::<chrono::NaiveDate, _>(i)
                    .map(|d| Value::from(d.format("%Y-%m-%d").to_string()))
                    .unwrap_or_default(),
                "TIMESTAMP" => row
                    .try_get::<chrono::NaiveDateTime, _>(i)
                    .map(|d| Value::from(d.format("%Y-%m-%d %H:%M:%S").to_string()))
                    .unwrap_or_default(),
                "TIMESTAMPTZ" => row
                    .try_get::<chrono::DateTime<chrono::Utc>, _>(i)
                    .map(|d| Value::from(d.format("%Y-%m-%d %H:%M:%S").to_string()))
                    .unwrap_or_default(),
                _ => row
                    .try_get::<String, _>(i)
                    .map(Value::from)
                    .unwrap_or_else(|_| Value::from(format!("<{type_name}>"))),
            }
        })
        .collect()
}
