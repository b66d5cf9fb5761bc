//! The differential oracle: the guard and PostgreSQL's own privileges must
//! agree.
//!
//! `steward policy apply` gives each steward role a database role whose views
//! hold exactly the columns and rows the policy lets it read. A generator
//! (proptest strategies over the demo schema: joins of every kind, `USING`
//! and `NATURAL`, alias column lists, whole-row references, CTEs with quoted
//! names, set operations, subqueries in every clause, `*`, masked and denied
//! columns anywhere) proposes statements; for each role, every statement the
//! guard allows must
//! 1. run unchanged as the role's database role without an error (a
//!    permission error means the guard allowed what the database forbids), and
//! 2. return the same rows there as the guard's rewrite returns as an
//!    unrestricted reader (the guard's masks and filters equal the database's);
//! 3. and the rewrite itself must run as the database role (the path steward
//!    takes with `enforce_in_database`).
//!
//! Any disagreement fails the test. The counts are printed to stderr (shown
//! by `cargo test` even when the test passes) and written to
//! `target/tmp/oracle-report.txt`.

use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};
use sqlx::{Connection, PgConnection};
use steward::policy::{Policy, Principal};
use steward::sql::{Dialect, Origin, validate};

use crate::guard_corpus::normalized;
use crate::helpers::{demo_db, root, with_postgres_database};
use crate::postgres::raw_postgres_result;

/// Roles checked; `viewer` runs no SQL.
const ROLES: [&str; 5] = ["analyst", "analyst_emea", "support", "compliance", "admin"];

/// Statements generated per run.
const STATEMENTS: usize = 400;

/// Low-cardinality columns to group by, per table.
fn group_columns(table: &str) -> &'static [&'static str] {
    match table {
        "customers" => &["region", "plan", "industry"],
        "user_profiles" => &["platform", "country", "signup_channel"],
        "support_tickets" => &["priority", "category"],
        "billing_history" => &["status"],
        "customer_contracts" => &["plan", "status"],
        "customer_mrr_daily" => &["plan"],
        _ => &["customer_id"],
    }
}

/// Tables the generator reads; the largest (`customer_mrr_daily`, `events`,
/// `sessions`) are left out to keep correlated subqueries fast; their row
/// filters are the same key-following predicates these tables get.
pub(crate) const TABLES: [&str; 5] = [
    "customers",
    "user_profiles",
    "support_tickets",
    "billing_history",
    "customer_contracts",
];

/// Every column of a table in the allow-list, personal and sensitive included.
fn any_column(policy: &Policy, table: &str) -> Vec<String> {
    policy.schema.tables[table]
        .columns
        .keys()
        .cloned()
        .collect()
}

pub(crate) fn statement(policy: &Policy) -> BoxedStrategy<String> {
    let tables: Vec<(String, Vec<String>)> = TABLES
        .iter()
        .map(|t| (t.to_string(), any_column(policy, t)))
        .collect();
    let table = prop::sample::select(tables);
    let pred_op = prop::sample::select(vec![
        "IS NOT NULL",
        "LIKE '%a%'",
        "= 'EMEA'",
        "<> 'x'",
        "IN ('a', 'b')",
    ]);
    let shape = 0..14u8;
    (table.clone(), table, pred_op, shape, any::<prop::sample::Index>(), any::<prop::sample::Index>(), any::<bool>())
        .prop_map(|((t, cols), (t2, cols2), op, shape, i, j, flag)| {
            let c = i.get(&cols).clone();
            let c2 = j.get(&cols2).clone();
            let g = *i.get(group_columns(&t));
            let g2 = *j.get(group_columns(&t2));
            let cte = if flag { "\"T\"" } else { "\"t\"" };
            match shape {
                0 => format!("SELECT {g}, count(*) AS n, count(DISTINCT {c}) AS d FROM {t} GROUP BY {g}"),
                1 => format!("SELECT {g}, count(*) AS n FROM {t} a WHERE CAST(a.{c} AS TEXT) {op} GROUP BY {g}"),
                2 => format!("SELECT count(*) AS n FROM {t} a JOIN {t2} b USING ({c})"),
                3 => format!("SELECT count(*) AS n FROM {t} a NATURAL JOIN (SELECT {c2} AS {c} FROM {t2}) b"),
                4 => format!("SELECT count(*) AS n, count(DISTINCT x) AS d FROM {t} AS a(x)"),
                5 => format!("SELECT count(*) AS n FROM {t} a WHERE a IS NOT NULL"),
                6 => format!("SELECT count(DISTINCT concat(a.*)) AS n FROM {t} a"),
                7 => format!("WITH {cte} AS (SELECT 1 AS {c}) SELECT count(*) AS n, max({t}.{c}) AS m FROM {t}"),
                8 => format!("SELECT {g} FROM {t} UNION SELECT {g2} FROM {t2}"),
                9 => format!(
                    "SELECT {g}, count(*) AS n FROM {t} a WHERE a.customer_id IN (SELECT b.customer_id FROM {t2} b WHERE CAST(b.{c2} AS TEXT) {op}) GROUP BY {g}"
                ),
                10 => format!("SELECT count(*) AS n, count(DISTINCT s.{c}) AS d, max(s.{c}) AS m FROM (SELECT * FROM {t}) s"),
                11 => format!(
                    "SELECT a.{g}, count(*) AS n, max(l.k) AS k FROM {t} a, LATERAL (SELECT count(*) AS k FROM {t2} b WHERE b.customer_id = a.customer_id AND CAST(b.{c2} AS TEXT) {op}) l GROUP BY a.{g}"
                ),
                12 => format!(
                    "SELECT {g}, (SELECT count(*) FROM {t2} b WHERE b.customer_id = a.customer_id) AS k FROM {t} a WHERE EXISTS (SELECT 1 FROM {t2} b WHERE CAST(b.{c2} AS TEXT) {op}) GROUP BY {g}, a.customer_id ORDER BY 1, 2"
                ),
                _ => format!("SELECT min({c}) AS lo, max({c}) AS hi, count({c}) AS n FROM {t}"),
            }
        })
        .boxed()
}

#[tokio::test]
async fn guard_and_database_agree_on_generated_statements() {
    with_postgres_database("steward_oracle", |url| async move {
        steward::demo::postgres::load(demo_db(), &url)
            .await
            .expect("demo loads into PostgreSQL");
        let reader = format!("steward_oracle_reader_{}", std::process::id());
        let mut admin = PgConnection::connect(&url).await.unwrap();
        for sql in [
            format!("DROP ROLE IF EXISTS {reader}"),
            format!("CREATE ROLE {reader} LOGIN"),
            format!("GRANT SELECT ON ALL TABLES IN SCHEMA public TO {reader}"),
        ] {
            sqlx::raw_sql(sqlx::AssertSqlSafe(sql)).execute(&mut admin).await.unwrap();
        }
        let (policy, _) = steward::startup::load_policy(&root().join("policies")).unwrap();
        let statements =
            steward::policy::enforce::statements(&policy, Dialect::Postgres, "public", &reader)
                .unwrap();
        steward::run::apply_postgres(&url, &statements)
            .await
            .expect("the generated policy SQL applies");
        // Applying twice replaces what the first run made.
        steward::run::apply_postgres(&url, &statements)
            .await
            .expect("policy apply is idempotent");

        let mut reader_url = url::Url::parse(&url).unwrap();
        reader_url.set_username(&reader).unwrap();
        reader_url.set_password(None).unwrap();
        let mut conn = PgConnection::connect(reader_url.as_str()).await.unwrap();

        let mut runner = TestRunner::new_with_rng(
            Config::default(),
            TestRng::deterministic_rng(RngAlgorithm::ChaCha),
        );
        let strategy = statement(&policy);
        let (mut allowed, mut rejected, mut compared, mut over_cap, mut invalid) = (0, 0, 0, 0, 0);
        let mut failures = Vec::new();
        for _ in 0..STATEMENTS {
            let sql = strategy.new_tree(&mut runner).unwrap().current();
            for role in ROLES {
                let grants = policy.grants(&Principal {
                    user: "oracle".into(),
                    roles: vec![role.into()],
                    groups: Vec::new(),
                });
                let Ok(v) = validate(&sql, Dialect::Postgres, &policy, &grants, Origin::AdHoc)
                else {
                    rejected += 1;
                    continue;
                };
                allowed += 1;
                let db_role = format!("steward_{role}");
                let as_role = run(&mut conn, Some(&db_role), &sql).await;
                let rewritten = run(&mut conn, None, v.sql()).await;
                let rewritten_as_role = run(&mut conn, Some(&db_role), v.sql()).await;
                match (as_role, rewritten, rewritten_as_role) {
                    // Ill-typed for the warehouse however it is run (e.g. a
                    // USING join of columns of different types): not a
                    // policy question.
                    (Err(_), Err(_), Err(_)) => invalid += 1,
                    (Err(e), _, _) => failures.push(format!(
                        "{role}: the guard allowed what the database refuses ({e}):\n  {sql}"
                    )),
                    (_, Err(e), _) | (_, _, Err(e)) => failures.push(format!(
                        "{role}: the rewrite fails ({e}):\n  {sql}\n  -> {}",
                        v.sql()
                    )),
                    (Ok(a), Ok(b), Ok(c)) if a.len() as u64 > policy.max_rows => {
                        over_cap += 1;
                        let _ = (b, c);
                    }
                    (Ok(a), Ok(b), Ok(c)) => {
                        compared += 1;
                        let (a, b, c) = (normalized(&a), normalized(&b), normalized(&c));
                        if a != b || b != c {
                            failures.push(format!(
                                "{role}: rows differ:\n  {sql}\n  -> {}\n  database: {:?}\n  guard: {:?}",
                                v.sql(),
                                a.iter().take(5).collect::<Vec<_>>(),
                                b.iter().take(5).collect::<Vec<_>>()
                            ));
                        }
                    }
                }
            }
        }
        let report = format!(
            "differential oracle (guard vs PostgreSQL roles): {STATEMENTS} generated statements x {} roles = {} validations; {allowed} allowed, {rejected} rejected; {compared} compared row for row, {over_cap} over the row cap, {invalid} ill-typed for PostgreSQL; {} disagreements\n",
            ROLES.len(),
            STATEMENTS * ROLES.len(),
            failures.len()
        );
        let out = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("oracle-report.txt");
        let _ = std::fs::write(&out, &report);
        // Straight to stderr: libtest captures only the print macros, and CI
        // should show these counts whether the test passes or not.
        let _ = std::io::Write::write_all(&mut std::io::stderr(), report.as_bytes());
        assert!(failures.is_empty(), "{report}{}", failures.join("\n"));
        assert!(allowed >= 300 && rejected >= 300 && compared >= 200, "{report}");
        drop(conn);
        enforced_warehouse_runs_as_the_role(&policy, reader_url.as_str()).await;
        let _ = sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
            "REASSIGN OWNED BY {reader} TO CURRENT_USER; DROP OWNED BY {reader}; DROP ROLE IF EXISTS {reader}"
        )))
        .execute(&mut admin)
        .await;
    })
    .await;
}

/// Runs `sql` in a read-only transaction, as `role` with its views on the
/// search path, or as the reader on the base tables.
async fn run(
    conn: &mut PgConnection,
    role: Option<&str>,
    sql: &str,
) -> Result<Vec<Vec<serde_json::Value>>, String> {
    let mut tx = conn.begin().await.map_err(|e| e.to_string())?;
    let mut setup = vec![
        "SET TRANSACTION READ ONLY".to_owned(),
        "SET LOCAL statement_timeout = 10000".to_owned(),
    ];
    match role {
        Some(r) => {
            setup.push(format!("SET LOCAL ROLE \"{r}\""));
            setup.push(format!("SET LOCAL search_path = \"{r}\""));
        }
        None => setup.push("SET LOCAL search_path = public".to_owned()),
    }
    for s in setup {
        sqlx::raw_sql(sqlx::AssertSqlSafe(s))
            .execute(&mut *tx)
            .await
            .map_err(|e| e.to_string())?;
    }
    let rows = raw_postgres_result(&mut tx, sql).await;
    let _ = tx.rollback().await;
    rows
}

/// `enforce_in_database`: the warehouse switches to the statement's role, so
/// the database applies masks and filters too, and an unknown role fails closed.
async fn enforced_warehouse_runs_as_the_role(policy: &Policy, reader_url: &str) {
    let wh = steward::warehouse::connect_with(reader_url, true)
        .await
        .unwrap();
    let ask = |role: &str, sql: &str| {
        let grants = policy.grants(&Principal {
            user: "enforced".into(),
            roles: vec![role.into()],
            groups: Vec::new(),
        });
        validate(sql, Dialect::Postgres, policy, &grants, Origin::AdHoc).unwrap()
    };
    let masked = wh
        .execute(&ask(
            "support",
            "SELECT contact_email FROM public.customers LIMIT 5",
        ))
        .await
        .unwrap();
    assert!(!masked.rows.is_empty());
    assert!(
        masked.rows.iter().all(|r| r[0] == "****"),
        "{:?}",
        masked.rows
    );
    let regions = wh
        .execute(&ask("analyst_emea", "SELECT DISTINCT u.country, c.region FROM user_profiles u JOIN customers c ON c.customer_id = u.customer_id"))
        .await
        .unwrap();
    assert!(
        regions.rows.iter().all(|r| r[1] == "EMEA"),
        "{:?}",
        regions.rows
    );
    // A role `steward policy apply` has not created yet: refused, not run unrestricted.
    let mut changed = policy.clone();
    let analyst = changed.roles["analyst"].clone();
    changed.roles.insert("late_role".into(), analyst);
    let grants = changed.grants(&Principal {
        user: "enforced".into(),
        roles: vec!["late_role".into()],
        groups: Vec::new(),
    });
    let v = validate(
        "SELECT region FROM customers",
        Dialect::Postgres,
        &changed,
        &grants,
        Origin::AdHoc,
    )
    .unwrap();
    let err = wh.execute(&v).await.unwrap_err().to_string();
    assert!(err.contains("policy apply"), "{err}");
}

#[test]
fn policy_apply_prints_the_sql_it_would_run() {
    let out = crate::helpers::steward(&[
        "policy",
        "apply",
        "--postgres",
        "postgres://nobody@127.0.0.1:1/none",
        "--reader",
        "steward_reader",
        "--print",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("CREATE VIEW \"steward_analyst\".\"customers\" WITH (security_barrier)"));
    assert!(text.contains("GRANT \"steward_support\" TO \"steward_reader\""));
    let sf = crate::helpers::steward(&["policy", "apply", "--snowflake", "--reader", "STEWARD"]);
    assert!(String::from_utf8_lossy(&sf.stdout).contains("CREATE OR REPLACE SECURE VIEW"));
    // Hostile names are refused before anything runs.
    let bad = crate::helpers::steward(&[
        "policy",
        "apply",
        "--postgres",
        "postgres://x@127.0.0.1:1/y",
        "--reader",
        "r; DROP TABLE customers",
        "--print",
    ]);
    assert_eq!(bad.status.code(), Some(2));
    let none = crate::helpers::steward(&["policy", "apply"]);
    assert_eq!(none.status.code(), Some(2));
}
