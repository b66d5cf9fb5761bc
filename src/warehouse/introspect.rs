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

/// Lists the tables of a `sqlite://PATH` warehouse with sampled column values.
///
/// # Errors
/// [`WarehouseError`] for another scheme or an unreadable database.
pub async fn introspect(url: &str) -> Result<Vec<TableSample>, WarehouseError> {
    let path = url.strip_prefix("sqlite://").unwrap_or(url);
    if url.contains("://") && !url.starts_with("sqlite://") {
        return Err(WarehouseError::Unavailable(
            "policy init supports sqlite:// warehouses".into(),
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
        let quoted = table.replace('"', "\"\"");
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
            let qc = c.replace('"', "\"\"");
            let sql = format!(
                "SELECT CAST(\"{qc}\" AS TEXT) FROM \"{quoted}\" WHERE \"{qc}\" IS NOT NULL LIMIT {SAMPLES}"
            );
            let samples = sqlx::query(sqlx::AssertSqlSafe(sql))
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
