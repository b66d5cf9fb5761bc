//! Batched writes of generated rows into a fresh SQLite file.

use std::path::Path;

use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqliteSynchronous};
use sqlx::{ConnectOptions, Connection, QueryBuilder, Sqlite, SqliteConnection};

use super::DemoError;

/// One generated cell.
#[derive(Debug, Clone)]
pub enum Value {
    Int(i64),
    Real(f64),
    Text(String),
    Null,
}

impl From<i64> for Value {
    fn from(v: i64) -> Self {
        Value::Int(v)
    }
}
impl From<f64> for Value {
    fn from(v: f64) -> Self {
        Value::Real(v)
    }
}
impl From<String> for Value {
    fn from(v: String) -> Self {
        Value::Text(v)
    }
}
impl From<&str> for Value {
    fn from(v: &str) -> Self {
        Value::Text(v.to_owned())
    }
}
impl From<Option<String>> for Value {
    fn from(v: Option<String>) -> Self {
        v.map_or(Value::Null, Value::Text)
    }
}

/// Rows for one table, written in batches.
pub struct Table {
    name: &'static str,
    columns: &'static [&'static str],
    rows: Vec<Vec<Value>>,
}

impl Table {
    pub fn new(name: &'static str, columns: &'static [&'static str]) -> Self {
        Table {
            name,
            columns,
            rows: Vec::new(),
        }
    }

    pub fn empty_like(&self) -> Self {
        Table::new(self.name, self.columns)
    }

    pub fn row(&mut self, row: Vec<Value>) {
        debug_assert_eq!(row.len(), self.columns.len(), "{}", self.name);
        self.rows.push(row);
    }

    pub fn len(&self) -> usize {
        self.rows.len()
    }
}

/// DDL of the demo warehouse; timestamps are ISO-8601 text in UTC.
const SCHEMA: &str = r"
CREATE TABLE customers (customer_id INTEGER PRIMARY KEY, company_name TEXT NOT NULL, contact_name TEXT NOT NULL,
  contact_email TEXT NOT NULL, contact_phone TEXT NOT NULL, region TEXT NOT NULL, plan TEXT NOT NULL,
  industry TEXT NOT NULL, created_at TEXT NOT NULL, churned_at TEXT);
CREATE TABLE user_profiles (user_id INTEGER PRIMARY KEY, customer_id INTEGER NOT NULL REFERENCES customers,
  full_name TEXT NOT NULL, email TEXT NOT NULL, country TEXT NOT NULL, platform TEXT NOT NULL,
  signup_channel TEXT NOT NULL, signed_up_at TEXT NOT NULL);
CREATE TABLE sessions (session_id INTEGER PRIMARY KEY, user_id INTEGER NOT NULL REFERENCES user_profiles,
  started_at TEXT NOT NULL, ended_at TEXT NOT NULL, platform TEXT NOT NULL, country TEXT NOT NULL);
CREATE TABLE events (event_id INTEGER PRIMARY KEY, user_id INTEGER NOT NULL, session_id INTEGER NOT NULL,
  event_name TEXT NOT NULL, occurred_at TEXT NOT NULL);
CREATE TABLE customer_contracts (contract_id INTEGER PRIMARY KEY, customer_id INTEGER NOT NULL REFERENCES customers,
  plan TEXT NOT NULL, mrr_usd REAL NOT NULL, started_at TEXT NOT NULL, ends_at TEXT NOT NULL, status TEXT NOT NULL);
CREATE TABLE customer_mrr_daily (snapshot_date TEXT NOT NULL, customer_id INTEGER NOT NULL, plan TEXT NOT NULL,
  mrr_usd REAL NOT NULL, PRIMARY KEY (snapshot_date, customer_id));
CREATE TABLE billing_history (invoice_id INTEGER PRIMARY KEY, customer_id INTEGER NOT NULL REFERENCES customers,
  amount_usd REAL NOT NULL, billed_at TEXT NOT NULL, paid_at TEXT, status TEXT NOT NULL);
CREATE TABLE support_tickets (ticket_id INTEGER PRIMARY KEY, customer_id INTEGER NOT NULL, user_id INTEGER NOT NULL,
  opened_at TEXT NOT NULL, resolved_at TEXT, priority TEXT NOT NULL, category TEXT NOT NULL, subject TEXT NOT NULL,
  body TEXT NOT NULL);
";

// Covering indexes for the metrics' time-bounded scans of events (daily
// active users, checkout funnel): the scans read the index alone.
const INDEXES: &str = r"
CREATE INDEX events_time_user ON events (occurred_at, user_id);
CREATE INDEX events_time_name_session ON events (occurred_at, event_name, session_id);
CREATE INDEX events_user ON events (user_id);
CREATE INDEX sessions_started_at ON sessions (started_at);
CREATE INDEX user_profiles_signed_up_at ON user_profiles (signed_up_at);
CREATE INDEX user_profiles_customer ON user_profiles (customer_id);
CREATE INDEX customers_churned_at ON customers (churned_at);
CREATE INDEX billing_billed_at ON billing_history (billed_at);
CREATE INDEX tickets_opened_at ON support_tickets (opened_at);
ANALYZE;
";

/// Most bound parameters per statement (SQLite's default limit is 32766).
const MAX_PARAMS: usize = 30_000;

pub struct Writer {
    conn: SqliteConnection,
    counts: Vec<(String, u64)>,
}

impl Writer {
    pub async fn create(path: &Path) -> Result<Self, DemoError> {
        let options = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Off)
            .synchronous(SqliteSynchronous::Off)
            // Rows are written in batches across tables; keys are consistent by construction.
            .foreign_keys(false)
            .log_statements(log::LevelFilter::Off)
            .log_slow_statements(log::LevelFilter::Off, std::time::Duration::from_secs(3600));
        let mut conn = SqliteConnection::connect_with(&options).await?;
        sqlx::raw_sql(SCHEMA).execute(&mut conn).await?;
        sqlx::raw_sql("BEGIN").execute(&mut conn).await?;
        Ok(Writer {
            conn,
            counts: Vec::new(),
        })
    }

    pub async fn write(&mut self, table: Table) -> Result<(), DemoError> {
        let per_batch = (MAX_PARAMS / table.columns.len()).max(1);
        for chunk in table.rows.chunks(per_batch) {
            let mut q: QueryBuilder<Sqlite> = QueryBuilder::new(format!(
                "INSERT INTO {} ({}) ",
                table.name,
                table.columns.join(", ")
            ));
            q.push_values(chunk, |mut b, row| {
                for v in row {
                    match v {
                        Value::Int(i) => b.push_bind(*i),
                        Value::Real(f) => b.push_bind(*f),
                        Value::Text(s) => b.push_bind(s.clone()),
                        Value::Null => b.push_bind(None::<String>),
                    };
                }
            });
            q.build().execute(&mut self.conn).await?;
        }
        match self.counts.iter_mut().find(|(n, _)| n == table.name) {
            Some((_, c)) => *c += table.rows.len() as u64,
            None => self
                .counts
                .push((table.name.to_owned(), table.rows.len() as u64)),
        }
        Ok(())
    }

    pub async fn finish(mut self) -> Result<Vec<(String, u64)>, DemoError> {
        sqlx::raw_sql("COMMIT").execute(&mut self.conn).await?;
        sqlx::raw_sql(INDEXES).execute(&mut self.conn).await?;
        self.conn.close().await?;
        Ok(self.counts)
    }
}
