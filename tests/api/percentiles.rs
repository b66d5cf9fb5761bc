//! SQLite has no percentile function, so steward computes percentiles there
//! with row numbers (`Dialect::percentile_select`). PostgreSQL's
//! `percentile_cont` and `percentile_disc` are the oracle: random groups of
//! values (with NULLs, ties and single rows), random percentiles, both kinds,
//! grouped and not; the answers must be equal.

use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::{Config, TestRunner};
use sqlx::{Connection, Row};
use steward::sql::{Dialect, Percentile, PercentileKind};

use crate::helpers::with_postgres_database;

/// `(group, value)` rows; values may be NULL.
fn rows() -> impl Strategy<Value = Vec<(u8, Option<i32>)>> {
    prop::collection::vec((0u8..3, prop::option::weighted(0.9, -50i32..50)), 1..40)
}

fn values_sql(rows: &[(u8, Option<i32>)]) -> String {
    rows.iter()
        .map(|(g, v)| {
            let v = v.map_or("NULL".to_owned(), |v| v.to_string());
            format!("({g}, CAST({v} AS DOUBLE PRECISION))")
        })
        .collect::<Vec<_>>()
        .join(", ")
}

async fn sorted(mut rows: Vec<(i64, Option<f64>)>) -> Vec<(i64, Option<f64>)> {
    rows.sort_by_key(|r| r.0);
    rows
}

#[tokio::test]
async fn sqlite_percentiles_equal_postgres() {
    with_postgres_database("steward_pct", |pg_url| async move {
        let mut pg = sqlx::PgConnection::connect(&pg_url).await.unwrap();
        let mut lite = sqlx::SqliteConnection::connect("sqlite::memory:").await.unwrap();
        let mut runner = TestRunner::new(Config {
            rng_seed: proptest::test_runner::RngSeed::Fixed(17),
            ..Config::default()
        });
        let strategy = (rows(), 0.0f64..=1.0, any::<bool>(), any::<bool>());
        let cases: Vec<_> = (0..150)
            .map(|_| strategy.new_tree(&mut runner).unwrap().current())
            .collect();
        let mut compared = 0;
        for (rows, fraction, discrete, grouped) in cases {
            // A few exact fractions, where rounding matters most.
            let fraction = if compared % 5 == 0 { [0.0, 0.25, 0.5, 1.0][compared % 4] } else { fraction };
            let p = Percentile {
                fraction,
                kind: if discrete { PercentileKind::Discrete } else { PercentileKind::Continuous },
            };
            let keys: Vec<String> = if grouped { vec!["g".into()] } else { vec![] };
            let from = format!("(SELECT column1 AS g, column2 AS v FROM (VALUES {})) AS t", values_sql(&rows));
            let key_sql = if grouped { "g" } else { "0" };
            let lite_sql = format!(
                "SELECT {key_sql} AS k, value FROM ({}) AS r",
                Dialect::Sqlite.percentile_select(&keys, "v", &from, "value", p).unwrap()
            );
            let pg_from = format!(
                "(SELECT * FROM (VALUES {}) AS x (g, v)) AS t",
                values_sql(&rows)
            );
            let pg_sql = format!(
                "SELECT CAST({key_sql} AS BIGINT) AS k, CAST(value AS DOUBLE PRECISION) AS value FROM ({}) AS r",
                Dialect::Postgres.percentile_select(&keys, "v", &pg_from, "value", p).unwrap()
            );
            let got: Vec<(i64, Option<f64>)> = sqlx::raw_sql(sqlx::AssertSqlSafe(lite_sql.clone()))
                .fetch_all(&mut lite)
                .await
                .unwrap_or_else(|e| panic!("{e}: {lite_sql}"))
                .iter()
                .map(|r| (r.get::<i64, _>(0), r.get::<Option<f64>, _>(1)))
                .collect();
            let want: Vec<(i64, Option<f64>)> = sqlx::raw_sql(sqlx::AssertSqlSafe(pg_sql.clone()))
                .fetch_all(&mut pg)
                .await
                .unwrap_or_else(|e| panic!("{e}: {pg_sql}"))
                .iter()
                .map(|r| (r.get::<i64, _>(0), r.get::<Option<f64>, _>(1)))
                .collect();
            let (got, want) = (sorted(got).await, sorted(want).await);
            // SQLite returns no row for a group of only NULLs; PostgreSQL a NULL.
            let want: Vec<_> = want.into_iter().filter(|(k, v)| v.is_some() || !grouped || got.iter().any(|g| g.0 == *k)).collect();
            assert_eq!(got.len(), want.len(), "{p:?} {rows:?}\n{got:?}\n{want:?}");
            for ((gk, gv), (wk, wv)) in got.iter().zip(&want) {
                assert_eq!(gk, wk);
                let same = match (gv, wv) {
                    (Some(a), Some(b)) => (a - b).abs() < 1e-9,
                    (None, None) => true,
                    _ => false,
                };
                assert!(same, "{p:?} group {gk}: SQLite {gv:?}, PostgreSQL {wv:?}; rows {rows:?}");
            }
            compared += 1;
        }
        let report = format!("percentiles: {compared} random (data, percentile, kind, grouping) cases equal on SQLite and PostgreSQL\n");
        let _ = std::io::Write::write_all(&mut std::io::stderr(), report.as_bytes());
    })
    .await;
}
