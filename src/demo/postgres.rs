//! Copying a generated demo warehouse into PostgreSQL, with PostgreSQL types
//! (`TIMESTAMP`, `DATE`, `NUMERIC`), using `COPY … FROM STDIN` (CSV).

use std::path::Path;

use sqlx::postgres::PgConnectOptions;
use sqlx::sqlite::SqliteConnectOptions;
use sqlx::{ConnectOptions, Connection, Row};

use super::DemoError;

/// Table DDL for PostgreSQL, column order as in the SQLite demo.
const TABLES: &[(&str, &str)] = &[
    (
        "customers",
        "customer_id BIGINT PRIMARY KEY, company_name TEXT NOT NULL, contact_name TEXT NOT NULL, contact_email TEXT NOT NULL, contact_phone TEXT NOT NULL, region TEXT NOT NULL, plan TEXT NOT NULL, industry TEXT NOT NULL, created_at TIMESTAMP NOT NULL, churned_at TIMESTAMP",
    ),
    (
        "user_profiles",
        "user_id BIGINT PRIMARY KEY, customer_id BIGINT NOT NULL, full_name TEXT NOT NULL, email TEXT NOT NULL, country TEXT NOT NULL, platform TEXT NOT NULL, signup_channel TEXT NOT NULL, signed_up_at TIMESTAMP NOT NULL",
    ),
    (
        "sessions",
        "session_id BIGINT PRIMARY KEY, user_id BIGINT NOT NULL, started_at TIMESTAMP NOT NULL, ended_at TIMESTAMP NOT NULL, platform TEXT NOT NULL, country TEXT NOT NULL",
    ),
    (
        "events",
        "event_id BIGINT PRIMARY KEY, user_id BIGINT NOT NULL, session_id BIGINT NOT NULL, event_name TEXT NOT NULL, occurred_at TIMESTAMP NOT NULL",
    ),
    (
        "customer_contracts",
        "contract_id BIGINT PRIMARY KEY, customer_id BIGINT NOT NULL, plan TEXT NOT NULL, mrr_usd NUMERIC(12,2) NOT NULL, started_at TIMESTAMP NOT NULL, ends_at TIMESTAMP NOT NULL, status TEXT NOT NULL",
    ),
    (
        "customer_mrr_daily",
        "snapshot_date DATE NOT NULL, customer_id BIGINT NOT NULL, plan TEXT NOT NULL, mrr_usd NUMERIC(12,2) NOT NULL, PRIMARY KEY (snapshot_date, customer_id)",
    ),
    (
        "billing_history",
        "invoice_id BIGINT PRIMARY KEY, customer_id BIGINT NOT NULL, amount_usd NUMERIC(12,2) NOT NULL, billed_at TIMESTAMP NOT NULL, paid_at TIMESTAMP, status TEXT NOT NULL",
    ),
    (
        "support_tickets",
        "ticket_id BIGINT PRIMARY KEY, customer_id BIGINT NOT NULL, user_id BIGINT NOT NULL, opened_at TIMESTAMP NOT NULL, resolved_at TIMESTAMP, priority TEXT NOT NULL, category TEXT NOT NULL, subject TEXT NOT NULL, body TEXT NOT NULL",
    ),
];

/// SQLite's `julianday()` (days since noon, 24 November 4714 BC, as a float)
/// for timestamps, so the demo's one SQLite-written measure expression (ticket
/// resolution hours) runs unchanged on the PostgreSQL copy.
const JULIANDAY: &str = "CREATE OR REPLACE FUNCTION julianday(timestamp) RETURNS double precision \
    LANGUAGE sql IMMUTABLE STRICT AS $$ SELECT extract(epoch FROM $1)::double precision / 86400.0 + 2440587.5 $$";

const INDEXES: &str = "CREATE INDEX ON events (occurred_at, user_id); \
    CREATE INDEX ON events (occurred_at, event_name, session_id); CREATE INDEX ON user_profiles (signed_up_at); \
    CREATE INDEX ON customers (churned_at); CREATE INDEX ON billing_history (billed_at); ANALYZE;";

/// Creates the demo tables in the (existing, empty) database at `pg_url` and
/// copies every row from the SQLite demo at `sqlite`. Returns rows copied.
///
/// # Errors
/// [`DemoError::Database`] if either database fails (e.g. the tables exist).
pub async fn load(sqlite: &Path, pg_url: &str) -> Result<u64, DemoError> {
    let mut lite = SqliteConnectOptions::new()
        .filename(sqlite)
        .read_only(true)
        .connect()
        .await?;
    let options: PgConnectOptions = pg_url.parse()?;
    let mut pg = options
        .log_statements(log::LevelFilter::Off)
        .connect()
        .await?;
    let mut copied = 0;
    for (table, ddl) in TABLES {
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE TABLE {table} ({ddl})")))
            .execute(&mut pg)
            .await?;
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!("SELECT * FROM {table}")))
            .fetch_all(&mut lite)
            .await?;
        let mut csv = Vec::new();
        for row in &rows {
            let fields: Vec<String> = (0..row.len()).map(|i| csv_field(row, i)).collect();
            csv.extend_from_slice(fields.join(",").as_bytes());
            csv.push(b'\n');
        }
        let mut copy = pg
            .copy_in_raw(&format!("COPY {table} FROM STDIN WITH (FORMAT csv)"))
            .await?;
        copy.send(csv).await?;
        copied += copy.finish().await?;
    }
    sqlx::raw_sql(JULIANDAY).execute(&mut pg).await?;
    sqlx::raw_sql(INDEXES).execute(&mut pg).await?;
    let _ = pg.close().await;
    Ok(copied)
}

/// One SQLite value as a CSV field (empty for NULL, quoted text).
fn csv_field(row: &sqlx::sqlite::SqliteRow, i: usize) -> String {
    if let Ok(Some(v)) = row.try_get::<Option<i64>, _>(i) {
        return v.to_string();
    }
    if let Ok(Some(v)) = row.try_get::<Option<f64>, _>(i) {
        return v.to_string();
    }
    match row.try_get::<Option<String>, _>(i) {
        Ok(Some(s)) => format!("\"{}\"", s.replace('"', "\"\"")),
        _ => String::new(),
    }
}
