//! The guard corpora: bypass attempts that must be rejected and analyst
//! queries that must be accepted with unchanged meaning.
//!
//! `tests/corpus/bypass.txt` and `tests/corpus/legit.sql` hold hand-written
//! entries; generated families add every PII column in every clause position
//! (bypass) and per-column profiles of every readable column (legitimate).

use std::collections::BTreeSet;

use sqlx::{Connection, Row};
use steward::policy::{Access, Grants, Policy, Principal};
use steward::sql::{Dialect, Origin, validate};
use steward::warehouse::{ResultSet, Warehouse};

use crate::helpers::{demo_db, root};

pub const DIALECTS: [Dialect; 3] = [Dialect::Sqlite, Dialect::Postgres, Dialect::Snowflake];

pub fn policy() -> Policy {
    Policy::load(&root().join("policies")).unwrap()
}

pub fn analyst(p: &Policy) -> Grants {
    p.grants(&Principal {
        user: "corpus".into(),
        roles: vec!["analyst".into()],
        groups: Vec::new(),
    })
}

fn dialects(tag: &str) -> Vec<Dialect> {
    match tag.trim() {
        "all" => DIALECTS.to_vec(),
        other => other
            .split(',')
            .map(|d| Dialect::parse(d.trim()).unwrap_or_else(|| panic!("unknown dialect tag {d}")))
            .collect(),
    }
}

/// `(dialect, expected rejection text or "*", sql)`.
pub fn bypass_corpus(p: &Policy) -> Vec<(Dialect, String, String)> {
    let text = std::fs::read_to_string(root().join("tests/corpus/bypass.txt")).unwrap();
    let mut out = Vec::new();
    for line in text
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
    {
        let parts: Vec<&str> = line.splitn(3, "|||").collect();
        assert_eq!(parts.len(), 3, "bad corpus line: {line}");
        for d in dialects(parts[0]) {
            out.push((d, parts[1].trim().to_owned(), parts[2].trim().to_owned()));
        }
    }
    // Every PII column in every position a value can leak from.
    let positions = [
        "SELECT {c} FROM {t}",
        "SELECT COUNT(*) FROM {t} WHERE {c} = 'x'",
        "SELECT COUNT(*) FROM {t} WHERE {c} IS NOT NULL",
        "SELECT 1 FROM {t} ORDER BY {c}",
        "SELECT COUNT(*) FROM {t} GROUP BY {c}",
        "SELECT COUNT(*) FROM {t} HAVING MAX({c}) > 'a'",
        "SELECT COUNT(*) FROM {t} AS a JOIN {t} AS b ON a.{c} = b.{c}",
        "SELECT ROW_NUMBER() OVER (PARTITION BY {c}) FROM {t}",
        "SELECT lower({c}) FROM {t}",
        "WITH x AS (SELECT {c} AS v FROM {t}) SELECT v FROM x",
        "SELECT 1 FROM {t} WHERE 1 IN (SELECT 1 FROM {t} WHERE {c} LIKE '%')",
        "SELECT d.v FROM (SELECT {c} AS v FROM {t}) AS d",
        "SELECT 'a' FROM {t} UNION SELECT {c} FROM {t}",
        "SELECT (SELECT MAX({c}) FROM {t})",
        "SELECT CASE WHEN {c} IS NULL THEN 0 ELSE 1 END FROM {t}",
        "SELECT q.{c} FROM {t} AS q",
    ];
    for (t, def) in &p.schema.tables {
        for (c, col) in &def.columns {
            if col.class != steward::policy::ColumnClass::Pii {
                continue;
            }
            for pos in positions {
                let sql = pos.replace("{t}", t).replace("{c}", c);
                for d in DIALECTS {
                    out.push((d, "PII; role analyst may not read it".into(), sql.clone()));
                }
            }
        }
    }
    out
}

/// `(dialect, sql)`.
pub fn legit_corpus(p: &Policy) -> Vec<(Dialect, String)> {
    let text = std::fs::read_to_string(root().join("tests/corpus/legit.sql")).unwrap();
    let mut out = Vec::new();
    for line in text
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with("--"))
    {
        let (tag, sql) = line
            .split_once("|||")
            .unwrap_or_else(|| panic!("bad corpus line: {line}"));
        for d in dialects(tag) {
            out.push((d, sql.trim().to_owned()));
        }
    }
    // A profile of every column an analyst may read.
    let g = analyst(p);
    for (t, def) in &p.schema.tables {
        for (c, col) in &def.columns {
            if g.access(col.class) != Access::Allow {
                continue;
            }
            for sql in [
                format!(
                    "SELECT {c}, COUNT(*) AS n FROM {t} GROUP BY {c} ORDER BY n DESC, {c} LIMIT 10"
                ),
                format!(
                    "SELECT COUNT(DISTINCT {c}) AS distinct_values, COUNT({c}) AS non_null FROM {t}"
                ),
            ] {
                for d in DIALECTS {
                    out.push((d, sql.clone()));
                }
            }
        }
    }
    out
}

#[test]
fn every_bypass_attempt_is_rejected() {
    let p = policy();
    let g = analyst(&p);
    let corpus = bypass_corpus(&p);
    let distinct: BTreeSet<&String> = corpus.iter().map(|(_, _, s)| s).collect();
    assert!(
        distinct.len() >= 150,
        "only {} distinct bypass attempts",
        distinct.len()
    );
    let mut failures = Vec::new();
    for (d, expect, sql) in &corpus {
        match validate(sql, *d, &p, &g, Origin::AdHoc) {
            Ok(v) => failures.push(format!("[{d}] ACCEPTED {sql}\n    -> {}", v.sql())),
            Err(r) if expect != "*" && !r.to_string().contains(expect.as_str()) => {
                failures.push(format!("[{d}] {sql}\n    expected {expect:?}, got {r}"));
            }
            Err(_) => {}
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} failed:\n{}",
        failures.len(),
        corpus.len(),
        failures.join("\n")
    );
}

#[test]
fn every_legitimate_query_is_accepted() {
    let p = policy();
    let g = analyst(&p);
    let corpus = legit_corpus(&p);
    assert!(
        corpus.len() >= 300,
        "only {} legitimate (query, dialect) pairs",
        corpus.len()
    );
    let failures: Vec<String> = corpus
        .iter()
        .filter_map(|(d, sql)| {
            validate(sql, *d, &p, &g, Origin::AdHoc)
                .err()
                .map(|e| format!("[{d}] {sql}\n    {e}"))
        })
        .collect();
    assert!(
        failures.is_empty(),
        "{} of {} rejected:\n{}",
        failures.len(),
        corpus.len(),
        failures.join("\n")
    );
}

/// Sorted rows with floats at 6 decimals, for order-insensitive comparison.
pub fn normalized(rows: &[Vec<serde_json::Value>]) -> Vec<String> {
    let mut out: Vec<String> = rows
        .iter()
        .map(|row| {
            row.iter()
                .map(|v| match v.as_f64() {
                    Some(f) => format!("{f:.6}"),
                    None => v.to_string(),
                })
                .collect::<Vec<_>>()
                .join("|")
        })
        .collect();
    out.sort();
    out
}

/// Runs raw SQL on the demo SQLite file (the oracle), as JSON values.
async fn raw_sqlite(sql: &str) -> Vec<Vec<serde_json::Value>> {
    let mut conn =
        sqlx::SqliteConnection::connect(&format!("sqlite://{}?mode=ro", demo_db().display()))
            .await
            .unwrap();
    let rows = sqlx::query(sqlx::AssertSqlSafe(sql.to_owned()))
        .fetch_all(&mut conn)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
    rows.iter()
        .map(|r| {
            (0..r.columns().len())
                .map(|i| {
                    if let Ok(Some(v)) = r.try_get::<Option<i64>, _>(i) {
                        serde_json::Value::from(v)
                    } else if let Ok(Some(v)) = r.try_get::<Option<f64>, _>(i) {
                        serde_json::Value::from(v)
                    } else {
                        r.try_get::<Option<String>, _>(i)
                            .ok()
                            .flatten()
                            .map(serde_json::Value::from)
                            .unwrap_or_default()
                    }
                })
                .collect()
        })
        .collect()
}

/// Through the guard, on the warehouse that enforces the policy too (the
/// embedded default: per-role views and an authorizer), every legitimate
/// query returns the rows it returns unguarded.
#[tokio::test]
async fn legitimate_queries_return_the_same_rows_through_the_guard_on_sqlite() {
    let p = policy();
    let g = analyst(&p);
    let wh = steward::warehouse::SqliteWarehouse::open(demo_db())
        .await
        .unwrap()
        .enforcing(&p);
    let mut compared = 0;
    for (d, sql) in legit_corpus(&p)
        .into_iter()
        .filter(|(d, _)| *d == Dialect::Sqlite)
    {
        let v = validate(&sql, d, &p, &g, Origin::AdHoc).unwrap();
        let guarded: ResultSet = wh
            .execute(&v)
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"));
        let raw = raw_sqlite(&sql).await;
        assert!(
            raw.len() as u64 <= p.max_rows,
            "corpus query returns more than the row cap: {sql}"
        );
        assert_eq!(normalized(&raw), normalized(&guarded.rows), "{sql}");
        compared += 1;
    }
    assert!(compared >= 100, "{compared}");
}
