//! The PostgreSQL warehouse against the machine's real server. The test
//! creates its own database and read-only role, loads the demo warehouse into
//! it, and drops both at the end (also when a check fails).
//!
//! Server: `STEWARD_TEST_PG_URL` (an admin URL), default
//! `postgres://postgres@127.0.0.1:5432/postgres`; `.ci/run` starts it.

use std::panic::AssertUnwindSafe;

use futures_util::FutureExt;
use sqlx::{Connection, PgConnection};
use steward::policy::{Policy, Principal};
use steward::semantic::{Grain, MetricQuery, SemanticLayer, TimeRange};
use steward::sql::{Dialect, Origin, validate};
use steward::warehouse::{ResultSet, WarehouseError};

use crate::helpers::{as_of, demo_db, demo_settings, root, spawn, with_postgres_database};

fn admin_url() -> String {
    std::env::var("STEWARD_TEST_PG_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

fn with_database(url: &str, db: &str, user: Option<&str>) -> String {
    let mut u = url::Url::parse(url).expect("admin URL parses");
    u.set_path(db);
    if let Some(user) = user {
        u.set_username(user).unwrap();
        u.set_password(None).unwrap();
    }
    u.to_string()
}

async fn exec(conn: &mut PgConnection, sql: String) {
    sqlx::raw_sql(sqlx::AssertSqlSafe(sql.clone()))
        .execute(&mut *conn)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
}

#[tokio::test]
async fn postgres_warehouse_matches_sqlite_and_enforces_limits() {
    let admin = admin_url();
    let mut conn = PgConnection::connect(&admin).await.unwrap_or_else(|e| {
        panic!("PostgreSQL must be running for this test (.ci/run starts it): {e}")
    });
    let db = format!("steward_test_{}", std::process::id());
    let role = format!("steward_ro_{}", std::process::id());
    exec(
        &mut conn,
        format!("DROP DATABASE IF EXISTS {db} WITH (FORCE)"),
    )
    .await;
    exec(&mut conn, format!("DROP ROLE IF EXISTS {role}")).await;
    exec(&mut conn, format!("CREATE DATABASE {db}")).await;
    exec(&mut conn, format!("CREATE ROLE {role} LOGIN")).await;

    let outcome = AssertUnwindSafe(async {
        let owner_url = with_database(&admin, &db, None);
        steward::demo::postgres::load(demo_db(), &owner_url).await.expect("demo loads into PostgreSQL");
        let mut owner = PgConnection::connect(&owner_url).await.unwrap();
        exec(&mut owner, format!("GRANT USAGE ON SCHEMA public TO {role}; GRANT SELECT ON ALL TABLES IN SCHEMA public TO {role}")).await;
        let ro_url = with_database(&admin, &db, Some(&role));
        checks(&ro_url).await;
    })
    .catch_unwind()
    .await;

    exec(
        &mut conn,
        format!("DROP DATABASE IF EXISTS {db} WITH (FORCE)"),
    )
    .await;
    exec(&mut conn, format!("DROP ROLE IF EXISTS {role}")).await;
    if let Err(panic) = outcome {
        std::panic::resume_unwind(panic);
    }
}

fn same(a: &ResultSet, b: &ResultSet) -> bool {
    let norm = |r: &ResultSet| {
        let mut rows: Vec<String> = r
            .rows
            .iter()
            .map(|row| {
                row.iter()
                    .map(|v| match v.as_f64() {
                        Some(f) => format!("{:.6}", f),
                        None => v.to_string(),
                    })
                    .collect::<Vec<_>>()
                    .join("|")
            })
            .collect();
        rows.sort();
        rows
    };
    norm(a) == norm(b)
}

async fn checks(ro_url: &str) {
    let pg = steward::warehouse::connect(ro_url)
        .await
        .expect("read-only role connects");
    let lite = steward::warehouse::connect(&format!("sqlite://{}", demo_db().display()))
        .await
        .unwrap();
    let dir = root().join("policies");
    let policy = Policy::load(&dir).unwrap();
    let layer = SemanticLayer::load(&dir.join("semantic"), &policy.schema).unwrap();
    let grants = policy.grants(&Principal {
        user: "t".into(),
        roles: vec!["analyst".into()],
        groups: Vec::new(),
    });
    let range = TimeRange::new(as_of() - chrono::Duration::days(35), as_of()).unwrap();

    // Every metric gives the same numbers on both warehouses (the demo's median
    // measure is written in SQLite SQL — julianday — so it is left out here).
    let mut compared = 0;
    for m in layer
        .metrics()
        .filter(|m| m.name != "median_ticket_resolution_hours")
    {
        let first_dim = layer.dimensions_of(m).first().map(|d| d.name.clone());
        for (grain, group_by) in [
            (None, vec![]),
            (Some(Grain::Week), vec![]),
            (None, first_dim.into_iter().collect()),
        ] {
            let q = MetricQuery {
                metric: m.name.clone(),
                range,
                grain,
                custom_grain: None,
                group_by,
                filters: vec![],
            };
            let mut results = Vec::new();
            for w in [&lite, &pg] {
                let c = layer.compile(&q, w.dialect()).unwrap();
                let v = validate(&c.sql, w.dialect(), &policy, &grants, Origin::Metric).unwrap();
                results.push(
                    w.execute(&v).await.unwrap_or_else(|e| {
                        panic!("{} on {}: {e}\n{}", m.name, w.dialect(), c.sql)
                    }),
                );
            }
            assert!(
                same(&results[0], &results[1]),
                "{} {grain:?}: sqlite {:?} vs postgres {:?}",
                m.name,
                results[0].rows,
                results[1].rows
            );
            compared += 1;
        }
    }
    assert!(compared >= 30);

    // The legitimate corpus returns the same rows with and without the guard.
    let mut raw_conn = PgConnection::connect(ro_url).await.unwrap();
    let mut compared = 0;
    for (d, sql) in crate::guard_corpus::legit_corpus(&policy)
        .into_iter()
        .filter(|(d, _)| *d == Dialect::Postgres)
    {
        let v = validate(&sql, d, &policy, &grants, Origin::AdHoc).unwrap();
        let guarded = pg
            .execute(&v)
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"));
        let raw = raw_postgres(&mut raw_conn, &sql).await;
        assert_eq!(
            crate::guard_corpus::normalized(&raw),
            crate::guard_corpus::normalized(&guarded.rows),
            "{sql}"
        );
        compared += 1;
    }
    assert!(compared >= 100, "{compared}");

    // policy init proposes classes from the PostgreSQL catalogue and samples.
    let tables = steward::warehouse::introspect::introspect(ro_url)
        .await
        .unwrap();
    let customers = tables
        .iter()
        .find(|t| t.name == "customers")
        .expect("customers table");
    let class = |c: &str| {
        let col = customers.columns.iter().find(|x| x.name == c).unwrap();
        steward::policy::propose::propose_class("customers", col).0
    };
    assert_eq!(class("contact_email"), steward::policy::ColumnClass::Pii);
    assert_eq!(class("region"), steward::policy::ColumnClass::Public);

    // The row cap and the statement timeout hold on PostgreSQL.
    let mut tight = policy.clone();
    tight.max_rows = 5;
    tight.statement_timeout_ms = 50;
    let g = tight.grants(&Principal {
        user: "t".into(),
        roles: vec!["analyst".into()],
        groups: Vec::new(),
    });
    let v = validate(
        "SELECT event_id FROM events",
        pg.dialect(),
        &tight,
        &g,
        Origin::AdHoc,
    )
    .unwrap();
    assert_eq!(pg.execute(&v).await.unwrap().rows.len(), 5);
    let slow = "SELECT COUNT(*) FROM events a CROSS JOIN events b CROSS JOIN events c";
    let v = validate(slow, pg.dialect(), &tight, &g, Origin::AdHoc).unwrap();
    assert!(matches!(
        pg.execute(&v).await,
        Err(WarehouseError::Timeout(50))
    ));

    // The chat answers the same on PostgreSQL.
    let mut settings = demo_settings();
    settings.warehouse = ro_url.to_owned();
    let app_pg = spawn(settings).await;
    let app_lite = spawn(demo_settings()).await;
    for q in [
        "What was our DAU last week vs the week before?",
        "How are we doing?",
        "Show me the email addresses of customers who churned last month.",
    ] {
        let (_, a) = app_pg.ask("carol", q).await;
        let (_, b) = app_lite.ask("carol", q).await;
        assert_eq!(a["kind"], b["kind"], "{q}");
        assert_eq!(a["data"], b["data"], "{q}");
    }
}

#[tokio::test]
async fn sqlite_enforces_the_timeout_and_row_cap_too() {
    let lite = steward::warehouse::connect(&format!("sqlite://{}", demo_db().display()))
        .await
        .unwrap();
    let mut policy = Policy::load(&root().join("policies")).unwrap();
    policy.max_rows = 5;
    policy.statement_timeout_ms = 50;
    let g = policy.grants(&Principal {
        user: "t".into(),
        roles: vec!["analyst".into()],
        groups: Vec::new(),
    });
    let v = validate(
        "SELECT event_id FROM events",
        lite.dialect(),
        &policy,
        &g,
        Origin::AdHoc,
    )
    .unwrap();
    assert_eq!(lite.execute(&v).await.unwrap().rows.len(), 5);
    let v = validate(
        "SELECT COUNT(*) FROM events a CROSS JOIN events b CROSS JOIN events c",
        lite.dialect(),
        &policy,
        &g,
        Origin::AdHoc,
    )
    .unwrap();
    assert!(matches!(
        lite.execute(&v).await,
        Err(WarehouseError::Timeout(50))
    ));
}

#[tokio::test]
async fn a_statement_that_builds_a_huge_value_fails_alone() {
    let lite = steward::warehouse::connect(&format!("sqlite://{}", demo_db().display()))
        .await
        .unwrap();
    let policy = Policy::load(&root().join("policies")).unwrap();
    let g = policy.grants(&Principal {
        user: "t".into(),
        roles: vec!["analyst".into()],
        groups: Vec::new(),
    });
    let run = |sql: &str| validate(sql, lite.dialect(), &policy, &g, Origin::AdHoc).unwrap();
    // Doubles a string 40 times (a terabyte): SQLite's heap ceiling or the
    // timeout stops it; the process and the next statement are unaffected.
    let doubling = run(
        "WITH RECURSIVE r(s, n) AS (SELECT 'ab', 0 UNION ALL SELECT s || s, n + 1 FROM r WHERE n < 40) SELECT max(length(s)) AS l FROM r",
    );
    assert!(lite.execute(&doubling).await.is_err());
    // Many wide rows: the result stops at the byte cap, marked truncated.
    let wide = run(
        "WITH RECURSIVE r(s, n) AS (SELECT 'ab', 0 UNION ALL SELECT s || s, n + 1 FROM r WHERE n < 18) SELECT s FROM r, (SELECT 1 FROM customers LIMIT 200) x WHERE n = 18",
    );
    let set = lite.execute(&wide).await.unwrap();
    assert!(
        set.truncated && set.rows.len() < 200,
        "{} rows",
        set.rows.len()
    );
    let ok = run("SELECT COUNT(*) AS n FROM customers");
    assert_eq!(lite.execute(&ok).await.unwrap().rows.len(), 1);
}

#[tokio::test]
async fn an_unreachable_postgres_is_a_clear_error_without_credentials() {
    let Err(err) = steward::warehouse::connect("postgres://steward:s3cret@127.0.0.1:1/nope").await
    else {
        panic!("port 1 has no PostgreSQL");
    };
    let text = err.to_string();
    assert!(text.contains("cannot connect"), "{text}");
    assert!(!text.contains("s3cret"), "{text}");
}

/// Runs raw SQL on PostgreSQL (the oracle), decoding the types the demo uses.
async fn raw_postgres(conn: &mut PgConnection, sql: &str) -> Vec<Vec<serde_json::Value>> {
    raw_postgres_result(conn, sql)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
}

/// [`raw_postgres`], with the database's error as a string.
pub async fn raw_postgres_result(
    conn: &mut PgConnection,
    sql: &str,
) -> Result<Vec<Vec<serde_json::Value>>, String> {
    use serde_json::Value;
    use sqlx::{Row, TypeInfo, ValueRef};
    let rows = sqlx::query(sqlx::AssertSqlSafe(sql.to_owned()))
        .fetch_all(&mut *conn)
        .await
        .map_err(|e| e.to_string())?;
    Ok(rows
        .iter()
        .map(|r| {
            (0..r.columns().len())
                .map(|i| {
                    let raw = r.try_get_raw(i).unwrap();
                    if raw.is_null() {
                        return Value::Null;
                    }
                    match raw.type_info().name() {
                        "INT2" => Value::from(r.get::<i16, _>(i)),
                        "INT4" => Value::from(r.get::<i32, _>(i)),
                        "INT8" => Value::from(r.get::<i64, _>(i)),
                        "FLOAT4" => Value::from(f64::from(r.get::<f32, _>(i))),
                        "FLOAT8" => Value::from(r.get::<f64, _>(i)),
                        "NUMERIC" => Value::from(
                            rust_decimal::prelude::ToPrimitive::to_f64(
                                &r.get::<rust_decimal::Decimal, _>(i),
                            )
                            .unwrap(),
                        ),
                        "BOOL" => Value::from(r.get::<bool, _>(i)),
                        "DATE" => Value::from(
                            r.get::<chrono::NaiveDate, _>(i)
                                .format("%Y-%m-%d")
                                .to_string(),
                        ),
                        "TIMESTAMP" => Value::from(
                            r.get::<chrono::NaiveDateTime, _>(i)
                                .format("%Y-%m-%d %H:%M:%S")
                                .to_string(),
                        ),
                        _ => Value::from(r.get::<String, _>(i)),
                    }
                })
                .collect()
        })
        .collect())
}

/// The catalogue each engine declares (`Warehouse::catalog`): declared
/// types, primary keys (composite ones in key order) and foreign keys
/// (composite ones paired column by column), read the same from SQLite's
/// pragmas and PostgreSQL's `information_schema` for the same DDL.
#[tokio::test]
async fn both_engines_report_the_declared_types_and_keys() {
    const DDL: &[&str] = &[
        "CREATE TABLE airlines (uid BIGINT, name TEXT, PRIMARY KEY (uid))",
        "CREATE TABLE airports (code TEXT PRIMARY KEY, city TEXT)",
        "CREATE TABLE flights (airline BIGINT REFERENCES airlines (uid), flight_no BIGINT, \
         source TEXT REFERENCES airports (code), PRIMARY KEY (airline, flight_no))",
        "CREATE TABLE legs (airline BIGINT, flight_no BIGINT, leg INTEGER, \
         FOREIGN KEY (airline, flight_no) REFERENCES flights (airline, flight_no))",
    ];
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("keys.sqlite");
    {
        use sqlx::ConnectOptions;
        let mut conn = sqlx::sqlite::SqliteConnectOptions::new()
            .filename(&path)
            .create_if_missing(true)
            .connect()
            .await
            .unwrap();
        for ddl in DDL {
            sqlx::raw_sql(*ddl).execute(&mut conn).await.unwrap();
        }
    }
    let lite = steward::warehouse::connect(&format!("sqlite://{}", path.display()))
        .await
        .unwrap()
        .catalog()
        .await;
    let keys = |c: &steward::warehouse::catalog::Catalog| -> Vec<String> {
        c.values()
            .flat_map(|t| &t.foreign_keys)
            .map(|k| {
                format!(
                    "{}.{} -> {}.{}",
                    k.table, k.column, k.ref_table, k.ref_column
                )
            })
            .collect()
    };
    let expected_keys = [
        "flights.airline -> airlines.uid",
        "flights.source -> airports.code",
        "legs.airline -> flights.airline",
        "legs.flight_no -> flights.flight_no",
    ];
    let mut got = keys(&lite);
    got.sort();
    assert_eq!(got, expected_keys, "{lite:#?}");
    assert_eq!(lite["flights"].primary_key, ["airline", "flight_no"]);
    assert_eq!(lite["airports"].primary_key, ["code"]);
    assert!(lite["legs"].primary_key.is_empty());
    assert_eq!(lite["airlines"].types["uid"], "BIGINT");

    with_postgres_database("steward_catalog", |url| async move {
        let mut conn = PgConnection::connect(&url).await.unwrap();
        for ddl in DDL {
            sqlx::raw_sql(*ddl).execute(&mut conn).await.unwrap();
        }
        let pg = steward::warehouse::connect(&url)
            .await
            .unwrap()
            .catalog()
            .await;
        let mut got = keys(&pg);
        got.sort();
        assert_eq!(got, expected_keys, "{pg:#?}");
        assert_eq!(pg["flights"].primary_key, ["airline", "flight_no"]);
        assert!(pg["legs"].primary_key.is_empty());
        assert_eq!(pg["airlines"].types["uid"], "bigint");
    })
    .await;
}
