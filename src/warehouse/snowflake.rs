//! Snowflake warehouse through snowflake-connector-rs.
//!
//! URL: `snowflake://USER@ACCOUNT/DATABASE/SCHEMA?warehouse=WH&role=ROLE`. The
//! password never appears in the URL or in settings files: it is read from the
//! `STEWARD_SNOWFLAKE_PASSWORD` environment variable and kept as a secret.
//! Snowflake has no read-only session mode, so connect with a role that holds
//! only `SELECT` (and `USAGE`) grants; the guard and the execution wrapper
//! (statement timeout, row cap) do the rest.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use snowflake_connector_rs::{
    AuthConfig, CellValue, Client, ClientConfig, QueryConfig, Session, SessionConfig,
};
use tokio::sync::Mutex;

use super::{ResultSet, Warehouse, WarehouseError};
use crate::sql::{Dialect, ValidatedSql};

/// Environment variable holding the Snowflake password.
pub const PASSWORD_ENV: &str = "STEWARD_SNOWFLAKE_PASSWORD";

/// Connection settings parsed from a `snowflake://` URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnowflakeTarget {
    /// Login name.
    pub user: String,
    /// Account identifier (`orgname-account` or locator).
    pub account: String,
    /// Database.
    pub database: Option<String>,
    /// Schema.
    pub schema: Option<String>,
    /// Virtual warehouse.
    pub warehouse: Option<String>,
    /// Role (should hold only SELECT grants).
    pub role: Option<String>,
}

impl SnowflakeTarget {
    /// Parses `snowflake://USER@ACCOUNT/DATABASE/SCHEMA?warehouse=…&role=…`.
    ///
    /// # Errors
    /// [`WarehouseError::Unavailable`] naming what is missing; a password in
    /// the URL is refused (it would end up in settings and process lists).
    pub fn parse(url: &str) -> Result<Self, WarehouseError> {
        let bad = |why: &str| WarehouseError::Unavailable(format!("invalid Snowflake URL: {why}"));
        let u = url::Url::parse(url)
            .map_err(|_| bad("expected snowflake://USER@ACCOUNT/DATABASE/SCHEMA"))?;
        if u.scheme() != "snowflake" {
            return Err(bad("the scheme must be snowflake"));
        }
        if u.password().is_some() {
            return Err(bad(&format!(
                "do not put the password in the URL; set {PASSWORD_ENV}"
            )));
        }
        let user = u.username();
        let account = u.host_str().unwrap_or_default();
        if user.is_empty() || account.is_empty() {
            return Err(bad("USER@ACCOUNT is required"));
        }
        let mut path = u
            .path_segments()
            .into_iter()
            .flatten()
            .filter(|s| !s.is_empty())
            .map(str::to_owned);
        let query = |key: &str| {
            u.query_pairs()
                .find(|(k, _)| k == key)
                .map(|(_, v)| v.into_owned())
        };
        Ok(SnowflakeTarget {
            user: user.to_owned(),
            account: account.to_owned(),
            database: path.next(),
            schema: path.next(),
            warehouse: query("warehouse"),
            role: query("role"),
        })
    }
}

/// A Snowflake account reached over HTTPS.
pub struct SnowflakeWarehouse {
    session: Mutex<Session>,
    timeout_set: AtomicU64,
}

impl SnowflakeWarehouse {
    /// Logs in and opens a session.
    ///
    /// # Errors
    /// [`WarehouseError::Unavailable`] for a bad URL, a missing password or a
    /// failed login (messages never include the password).
    pub async fn connect(url: &str) -> Result<Self, WarehouseError> {
        let target = SnowflakeTarget::parse(url)?;
        let password: SecretString = std::env::var(PASSWORD_ENV)
            .map(SecretString::from)
            .map_err(|_| {
                WarehouseError::Unavailable(format!("set {PASSWORD_ENV} to the Snowflake password"))
            })?;
        let mut session = SessionConfig::new();
        if let Some(d) = &target.database {
            session = session.with_database(d);
        }
        if let Some(s) = &target.schema {
            session = session.with_schema(s);
        }
        if let Some(w) = &target.warehouse {
            session = session.with_warehouse(w);
        }
        if let Some(r) = &target.role {
            session = session.with_role(r);
        }
        let config = ClientConfig::new(
            target.user.clone(),
            target.account.clone(),
            AuthConfig::password(password.expose_secret().to_owned()),
        )
        .with_session(session)
        .with_query(QueryConfig::new().with_query_response_timeout(Duration::from_secs(120)));
        let client = Client::new(config)
            .map_err(|e| WarehouseError::Unavailable(format!("Snowflake client: {e}")))?;
        let session = client
            .create_session()
            .await
            .map_err(|e| WarehouseError::Unavailable(format!("Snowflake login failed: {e}")))?;
        Ok(SnowflakeWarehouse {
            session: Mutex::new(session),
            timeout_set: AtomicU64::new(0),
        })
    }
}

#[async_trait::async_trait]
impl Warehouse for SnowflakeWarehouse {
    fn dialect(&self) -> Dialect {
        Dialect::Snowflake
    }

    #[tracing::instrument(name = "warehouse.execute", skip_all, fields(dialect = "snowflake"))]
    async fn execute(&self, sql: &ValidatedSql) -> Result<ResultSet, WarehouseError> {
        let session = self.session.lock().await;
        // The execution wrapper's own session setting, not a user statement.
        let seconds = sql.timeout_ms().div_ceil(1000).max(1);
        if self.timeout_set.load(Ordering::Relaxed) != seconds {
            let set = format!("ALTER SESSION SET STATEMENT_TIMEOUT_IN_SECONDS = {seconds}");
            session
                .query(set)
                .await
                .map_err(|e| WarehouseError::Unavailable(e.to_string()))?;
            self.timeout_set.store(seconds, Ordering::Relaxed);
        }
        let limit = Duration::from_millis(sql.timeout_ms()) + Duration::from_secs(5);
        let run = async {
            let mut cursor = session.query(sql.sql().to_owned()).await?;
            let columns: Vec<String> = cursor
                .schema()
                .columns()
                .iter()
                .map(|c| c.name().to_owned())
                .collect();
            let cap = usize::try_from(sql.max_rows()).unwrap_or(usize::MAX);
            let mut rows = Vec::new();
            let mut truncated = false;
            'tables: while let Some(table) = cursor.next_table().await? {
                for row in table.dynamic_rows()? {
                    if rows.len() == cap {
                        truncated = true;
                        break 'tables;
                    }
                    rows.push(row?.values().iter().map(cell_json).collect());
                }
            }
            Ok::<_, snowflake_connector_rs::Error>(ResultSet {
                columns,
                rows,
                truncated,
            })
        };
        match tokio::time::timeout(limit, run).await {
            Ok(Ok(result)) => Ok(result),
            Ok(Err(e)) if e.to_string().contains("timeout") => {
                Err(WarehouseError::Timeout(sql.timeout_ms()))
            }
            Ok(Err(e)) => Err(WarehouseError::Execution(e.to_string())),
            Err(_) => Err(WarehouseError::Timeout(sql.timeout_ms())),
        }
    }
}

/// One Snowflake cell as a JSON scalar, in the same shapes the other
/// warehouses use (dates `YYYY-MM-DD`, timestamps `YYYY-MM-DD HH:MM:SS`).
pub fn cell_json(cell: &CellValue) -> serde_json::Value {
    use serde_json::Value;
    match cell {
        CellValue::Null => Value::Null,
        CellValue::Boolean(b) => Value::from(*b),
        CellValue::Integer(i) => i64::try_from(*i)
            .map(Value::from)
            .unwrap_or_else(|_| Value::from(*i as f64)),
        CellValue::Float(f) => Value::from(*f),
        CellValue::Decimal(d) => d
            .raw()
            .parse::<f64>()
            .map(Value::from)
            .unwrap_or_else(|_| Value::from(d.raw())),
        CellValue::String(s) => Value::from(s.as_str()),
        CellValue::Date(d) => Value::from(d.format("%Y-%m-%d").to_string()),
        CellValue::Time(t) => Value::from(t.format("%H:%M:%S").to_string()),
        CellValue::TimestampNtz(t) => Value::from(t.format("%Y-%m-%d %H:%M:%S").to_string()),
        CellValue::TimestampLtz(t) => Value::from(t.format("%Y-%m-%d %H:%M:%S").to_string()),
        CellValue::TimestampTz(t) => Value::from(t.format("%Y-%m-%d %H:%M:%S").to_string()),
        CellValue::Json(j) => j.clone(),
        _ => Value::from("<binary>"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_parse_without_passwords() {
        let t = SnowflakeTarget::parse(
            "snowflake://steward_ro@myorg-acct/ANALYTICS/PUBLIC?warehouse=WH&role=READER",
        )
        .unwrap();
        assert_eq!(t.user, "steward_ro");
        assert_eq!(t.account, "myorg-acct");
        assert_eq!(t.database.as_deref(), Some("ANALYTICS"));
        assert_eq!(t.schema.as_deref(), Some("PUBLIC"));
        assert_eq!(t.warehouse.as_deref(), Some("WH"));
        assert_eq!(t.role.as_deref(), Some("READER"));
    }

    #[test]
    fn bad_urls_are_refused_without_echoing_secrets() {
        for url in [
            "snowflake://u:hunter2@acct/db",
            "postgres://u@h/db",
            "snowflake://acct/db",
            "not a url",
        ] {
            let err = SnowflakeTarget::parse(url).unwrap_err().to_string();
            assert!(err.contains("invalid Snowflake URL"), "{url}: {err}");
            assert!(!err.contains("hunter2"), "{err}");
        }
    }

    #[test]
    fn cells_become_the_shared_json_shapes() {
        use chrono::NaiveDate;
        let d = NaiveDate::from_ymd_opt(2026, 11, 9).unwrap();
        assert_eq!(
            cell_json(&CellValue::Date(d)),
            serde_json::json!("2026-11-09")
        );
        assert_eq!(
            cell_json(&CellValue::TimestampNtz(d.and_hms_opt(8, 5, 0).unwrap())),
            serde_json::json!("2026-11-09 08:05:00")
        );
        assert_eq!(cell_json(&CellValue::Integer(42)), serde_json::json!(42));
        assert_eq!(cell_json(&CellValue::Null), serde_json::Value::Null);
    }

    /// Runs against a real Snowflake account: set `STEWARD_TEST_SNOWFLAKE_URL`
    /// and `STEWARD_SNOWFLAKE_PASSWORD`, then `cargo test -- --ignored snowflake`.
    #[tokio::test]
    #[ignore = "needs a Snowflake account (STEWARD_TEST_SNOWFLAKE_URL, STEWARD_SNOWFLAKE_PASSWORD)"]
    async fn snowflake_runs_a_validated_statement() {
        let url = std::env::var("STEWARD_TEST_SNOWFLAKE_URL").expect("STEWARD_TEST_SNOWFLAKE_URL");
        let wh = SnowflakeWarehouse::connect(&url).await.unwrap();
        let mut schema = crate::policy::Schema {
            tables: Default::default(),
        };
        schema.tables.insert(
            "t".into(),
            serde_yaml_ng::from_str("columns:\n  a: {class: public}\n").unwrap(),
        );
        let policy = crate::policy::Policy::from_parts(schema, Default::default(), 10, 30_000);
        let grants = crate::policy::Grants::catalog();
        let v = crate::sql::validate(
            "SELECT 1 AS a",
            Dialect::Snowflake,
            &policy,
            &grants,
            crate::sql::Origin::Metric,
        )
        .unwrap();
        let r = wh.execute(&v).await.unwrap();
        assert_eq!(r.rows, vec![vec![serde_json::json!(1)]]);
    }
}
