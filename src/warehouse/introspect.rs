//! Catalogue introspection for `steward policy init`.
//!
//! This is the one place steward reads a warehouse without the guard: an
//! operator command, never reachable from the chat or the API, that lists
//! tables and columns and samples a few values so a starter policy can
//! propose column classes. The samples are used in memory and never logged.

use std::path::Path;

use sqlx::sqlite::SqliteConnectOptions;
use sqlx::{ConnectOptions, Connection, Row};

use super::WarehouseError;
use crate::policy::propose::{ColumnSample, TableSample};

/// Values sampled per column.
const SAMPLES: i64 = 30;

/// `SELECT CAST("column" AS TEXT) FROM "table" WHERE "column" IS NOT NULL LIMIT n`,
/// with both names quoted as SQL identifiers (`"` doubled), for either database.
fn sample_statement(table: &str, column: &str) -> sqlx::AssertSqlSafe<String> {
    let (t, c) = (table.replace('"', "\"\""), column.replace('"', "\"\""));
    sqlx::AssertSqlSafe(format!(
        "SELECT CAST(\"{c}\" AS TEXT) FROM \"{t}\" WHERE \"{c}\" IS NOT NULL LIMIT {SAMPLES}"
    ))
}

/// Lists the tables of a `sqlite://PATH` or `postgres://…` warehouse with
/// sampled column values.
///
/// # Errors
/// [`WarehouseError`] for another scheme or an unreadable database.
pub async fn introspect(url: &str) -> Result<Vec<TableSample>, WarehouseError> {
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        return introspect_postgres(url).await;
    }
    let path = url.strip_prefix("sqlite://").unwrap_or(url);
    if url.contains("://") && !url.starts_with("sqlite://") {
        return Err(WarehouseError::Unavailable(
            "policy init supports sqlite:// and postgres:// warehouses".into(),
        ));
    }
    if !Path::new(path).is_file() {
        return Err(WarehouseError::Unavailable(format!(
            "no SQLite database at {path}"
        )));
    }
    let options = SqliteConnectOptions::new()
        .filename(path)
        .read_only(true)
        .log_statements(log::LevelFilter::Off);
    let mut conn = options
        .connect()
        .await
        .map_err(|e| WarehouseError::Unavailable(e.to_string()))?;
    let names: Vec<String> = sqlx::query(
        "SELECT name FROM sqlite_schema WHERE type IN ('table', 'view') AND name NOT LIKE 'sqlite_%' ORDER BY name",
    )
    .fetch_all(&mut conn)
    .await
    .map_err(|e| WarehouseError::Execution(e.to_string()))?
    .iter()
    .map(|r| r.get::<String, _>(0))
    .collect();
    let mut tables = Vec::new();
    for table in names {
        let cols: Vec<String> = sqlx::query("SELECT name FROM pragma_table_info(?) ORDER BY cid")
            .bind(&table)
            .fetch_all(&mut conn)
            .await
            .map_err(|e| WarehouseError::Execution(e.to_string()))?
            .iter()
            .map(|r| r.get::<String, _>(0))
            .collect();
        let mut columns = Vec::new();
        for c in cols {
            let samples = sqlx::query(sample_statement(&table, &c))
                .fetch_all(&mut conn)
                .await
                .map(|rows| {
                    rows.iter()
                        .filter_map(|r| r.try_get::<String, _>(0).ok())
                        .collect()
                })
                .unwrap_or_default();
            columns.push(ColumnSample { name: c, samples });
        }
        tables.push(TableSample {
            name: table,
            columns,
        });
    }
    let _ = conn.close().await;
    Ok(tables)
}

/// The tables of the current schema of a PostgreSQL database, read in a
/// read-only session.
async fn introspect_postgres(url: &str) -> Result<Vec<TableSample>, WarehouseError> {
    use sqlx::postgres::PgConnectOptions;
    let options: PgConnectOptions = url
        .parse()
        .map_err(|_| WarehouseError::Unavailable("the PostgreSQL URL is not valid".into()))?;
    let mut conn = options
        .options([("default_transaction_read_only", "on")])
        .log_statements(log::LevelFilter::Off)
        .connect()
        .await
        .map_err(|_| WarehouseError::Unavailable("cannot connect to PostgreSQL".into()))?;
    let columns = sqlx::query(
        "SELECT table_name::text, column_name::text FROM information_schema.columns \
         WHERE table_schema = current_schema() ORDER BY table_name, ordinal_position",
    )
    .fetch_all(&mut conn)
    .await
    .map_err(|e| WarehouseError::Execution(e.to_string()))?;
    let mut tables: Vec<TableSample> = Vec::new();
    for row in columns {
        let (table, column): (String, String) = (row.get(0), row.get(1));
        let samples = sqlx::query(sample_statement(&table, &column))
            .fetch_all(&mut conn)
            .await
            .map(|rows| {
                rows.iter()
                    .filter_map(|r| r.try_get::<String, _>(0).ok())
                    .collect()
            })
            .unwrap_or_default();
        if tables.last().is_none_or(|t| t.name != table) {
            tables.push(TableSample {
                name: table,
                columns: Vec::new(),
            });
        }
        if let Some(t) = tables.last_mut() {
            t.columns.push(ColumnSample {
                name: column,
                samples,
            });
        }
    }
    let _ = conn.close().await;
    Ok(tables)
}
