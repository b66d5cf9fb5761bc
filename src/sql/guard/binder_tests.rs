//! The classes of statements the security review found the pattern-based
//! guard let through, each spelled several ways in every dialect; the rule
//! for several roles; row filters that follow keys; resource limits.

use super::*;
use crate::policy::{ColumnClass, Policy, Principal};

const ALL: [Dialect; 3] = [Dialect::Sqlite, Dialect::Postgres, Dialect::Snowflake];

use crate::policy::demo_policy as policy;

fn grants_of(p: &Policy, roles: &[&str]) -> Grants {
    p.grants(&Principal {
        user: "t".into(),
        roles: roles.iter().map(|r| r.to_string()).collect(),
        groups: Vec::new(),
    })
}

fn run(p: &Policy, roles: &[&str], d: Dialect, sql: &str) -> Result<ValidatedSql, Rejection> {
    validate(sql, d, p, &grants_of(p, roles), Origin::AdHoc)
}

fn denied(roles: &[&str], dialects: &[Dialect], sql: &str) {
    let p = policy();
    for d in dialects {
        if let Ok(v) = run(&p, roles, *d, sql) {
            panic!("{roles:?} [{d}] accepted {sql}\n  -> {}", v.sql());
        }
    }
}

fn allowed(roles: &[&str], d: Dialect, sql: &str) -> ValidatedSql {
    run(&policy(), roles, d, sql).unwrap_or_else(|e| panic!("{roles:?} [{d}] {sql}: {e}"))
}

#[test]
fn using_and_natural_join_columns_are_bound_and_read() {
    for sql in [
        "SELECT count(*) AS n FROM customers JOIN (SELECT 'x@y' AS contact_email) v USING (contact_email)",
        "SELECT count(*) AS n FROM (SELECT 'x@y' AS contact_email) v JOIN customers USING (contact_email)",
        "SELECT count(*) FROM customers NATURAL JOIN (SELECT 'x@y' AS contact_email) v",
        "SELECT count(*) FROM (SELECT 'x@y' AS contact_email) v NATURAL JOIN customers",
        "SELECT count(*) FROM customers a JOIN customers b USING (contact_name)",
        "SELECT count(*) FROM customers LEFT JOIN (SELECT 'n' AS contact_name, 'e' AS contact_email) v USING (contact_name, contact_email)",
        "SELECT count(*) FROM user_profiles u JOIN (SELECT 'x' AS email) v USING (email)",
        "SELECT count(*) FROM customers c JOIN (customers d JOIN (SELECT 'x' AS contact_phone) v USING (contact_phone)) ON c.customer_id = d.customer_id",
    ] {
        denied(&["analyst"], &ALL, sql);
        denied(&["admin"], &ALL, sql);
        // Masked: the join would compare the real values.
        denied(&["support"], &ALL, sql);
    }
    // Compliance may read PII, so it may join on it too.
    allowed(
        &["compliance"],
        Dialect::Postgres,
        "SELECT count(*) AS n FROM customers JOIN (SELECT 'x@y' AS contact_email) v USING (contact_email)",
    );
    // Ordinary USING joins keep working, and the merged column is one column.
    let v = allowed(
        &["analyst"],
        Dialect::Postgres,
        "SELECT customer_id, a.region FROM customers a JOIN customer_contracts USING (customer_id)",
    );
    assert!(v.sql().contains("USING"), "{}", v.sql());
    allowed(
        &["analyst"],
        Dialect::Sqlite,
        "SELECT x FROM (SELECT 1 AS x) a NATURAL JOIN (SELECT 1 AS x) b",
    );
}

#[test]
fn whole_row_references_are_denied_anywhere() {
    for sql in [
        "SELECT concat(c.*) AS x FROM customers c",
        "SELECT (c.*) FROM customers c",
        "SELECT format('%s', c.*) FROM customers c",
        "SELECT count(*) FROM customers c WHERE c.* IS NOT NULL",
        "SELECT c FROM customers c",
        "SELECT count(*) FROM customers c WHERE c IS NOT NULL",
        "SELECT count(*) FROM customers c WHERE CAST(c AS TEXT) LIKE '%@%'",
        "SELECT x FROM (SELECT c AS x FROM customers c) t",
        "SELECT count(*) FROM customers WHERE customers IS NOT NULL",
        "SELECT length(customers::text) FROM customers",
        "SELECT count(c.*) FROM customers c",
        "SELECT region, max(c) FROM customers c GROUP BY region",
        "WITH t AS (SELECT contact_email AS e FROM customers) SELECT count(*) FROM t WHERE t IS NOT NULL",
    ] {
        denied(&["analyst"], &ALL, sql);
        denied(&["support"], &ALL, sql);
    }
}

#[test]
fn alias_column_lists_rename_only_known_columns() {
    for sql in [
        "SELECT d FROM customers AS c(a, b, cn, d)",
        "SELECT a FROM customers c(a)",
    ] {
        denied(&["analyst"], &ALL, sql);
        denied(&["support"], &ALL, sql);
    }
    denied(
        &["analyst"],
        &ALL,
        "SELECT x.a FROM (SELECT contact_email FROM customers) AS x(a)",
    );
    // Renaming a derived column keeps its mask.
    let v = allowed(
        &["support"],
        Dialect::Postgres,
        "SELECT x.a FROM (SELECT contact_email FROM customers) AS x(a)",
    );
    assert!(v.sql().contains("'****'"), "{}", v.sql());
    allowed(
        &["analyst"],
        Dialect::Postgres,
        "SELECT a, b FROM (SELECT region, plan FROM customers) AS t(a, b)",
    );
    allowed(
        &["analyst"],
        Dialect::Sqlite,
        "WITH t(a) AS (SELECT region FROM customers) SELECT a FROM t",
    );
}

#[test]
fn cte_names_follow_each_dialects_identifier_rules() {
    // PostgreSQL: "Customers" is not customers.
    denied(
        &["analyst"],
        &[Dialect::Postgres],
        r#"WITH "Customers" AS (SELECT 1 AS x) SELECT customers.contact_email FROM customers"#,
    );
    // Snowflake folds unquoted names to upper case: "customers" is not CUSTOMERS.
    denied(
        &["analyst"],
        &[Dialect::Snowflake],
        r#"WITH "customers" AS (SELECT 1 AS x) SELECT customers.contact_email FROM customers"#,
    );
    // A row-filtered role cannot escape its filter that way either.
    for (d, sql) in [
        (
            Dialect::Postgres,
            r#"WITH "Customers" AS (SELECT 1 AS x) SELECT region FROM customers"#,
        ),
        (
            Dialect::Snowflake,
            r#"WITH "customers" AS (SELECT 1 AS x) SELECT region FROM customers"#,
        ),
    ] {
        let v = allowed(&["analyst_emea"], d, sql);
        assert!(v.sql().contains("region = 'EMEA'"), "{}", v.sql());
    }
    // A quoted name that folds the same way is the same CTE.
    let v = allowed(
        &["analyst"],
        Dialect::Postgres,
        r#"WITH mine AS (SELECT 'x' AS contact_email) SELECT contact_email FROM "mine""#,
    );
    assert!(v.tables().is_empty());
    // and a CTE named like a table, in any spelling that folds to its name, is refused.
    denied(
        &["analyst"],
        &[Dialect::Postgres],
        r#"WITH "customers" AS (SELECT 'x' AS contact_email) SELECT contact_email FROM customers"#,
    );
    // A quoted table name in another case is another (unknown) table.
    denied(
        &["analyst"],
        &[Dialect::Postgres],
        r#"SELECT region FROM "CUSTOMERS""#,
    );
}

#[test]
fn only_allow_listed_columns_bind_whatever_their_alias() {
    let mut p = policy();
    p.schema
        .tables
        .get_mut("customers")
        .unwrap()
        .columns
        .shift_remove("contact_phone");
    for sql in [
        "SELECT contact_phone AS contact_phone FROM customers",
        "SELECT c.contact_phone AS contact_phone FROM customers c",
        "SELECT x.contact_phone FROM (SELECT contact_phone FROM customers) x",
        "SELECT count(*) FROM customers WHERE contact_phone LIKE '+1%'",
    ] {
        for d in ALL {
            for role in ["analyst", "compliance", "support"] {
                assert!(run(&p, &[role], d, sql).is_err(), "{role} [{d}] {sql}");
            }
        }
    }
    // An output alias is still usable where SQL allows it: ORDER BY names
    // the output, and elsewhere the alias becomes its expression, so the
    // warehouse cannot take it for the hidden column of that name.
    run(
        &p,
        &["analyst"],
        Dialect::Postgres,
        "SELECT region AS contact_phone FROM customers ORDER BY contact_phone",
    )
    .unwrap();
    let v = run(
        &p,
        &["analyst"],
        Dialect::Sqlite,
        "SELECT region AS r, count(*) AS n FROM customers GROUP BY r HAVING n > 1",
    )
    .unwrap();
    assert!(
        v.sql().contains("GROUP BY (region) HAVING (count(*)) > 1"),
        "{}",
        v.sql()
    );
}

#[test]
fn several_roles_never_mix_their_grants() {
    let p = policy();
    // SQL comes with analyst_emea's rows; viewer cannot widen it.
    let v = run(
        &p,
        &["analyst_emea", "viewer"],
        Dialect::Sqlite,
        "SELECT region FROM customers",
    )
    .unwrap();
    assert_eq!(v.role(), "analyst_emea");
    assert!(v.sql().contains("region = 'EMEA'"));
    // Metrics come with the broadest role that grants them (viewer: all rows).
    let m = validate(
        "SELECT region FROM customers",
        Dialect::Sqlite,
        &p,
        &grants_of(&p, &["analyst_emea", "viewer"]),
        Origin::Metric,
    )
    .unwrap();
    assert_eq!(m.role(), "viewer");
    assert!(m.row_filters().is_empty());
    // One role per statement: support's masked PII or analyst's revenue, not both.
    let both = ["support", "analyst"];
    assert_eq!(
        run(
            &p,
            &both,
            Dialect::Sqlite,
            "SELECT contact_email FROM customers"
        )
        .unwrap()
        .role(),
        "support"
    );
    assert_eq!(
        run(
            &p,
            &both,
            Dialect::Sqlite,
            "SELECT company_name FROM customers"
        )
        .unwrap()
        .role(),
        "analyst"
    );
    assert!(
        run(
            &p,
            &both,
            Dialect::Sqlite,
            "SELECT company_name, contact_email FROM customers"
        )
        .is_err()
    );
    // With a filtered and an unfiltered role holding sql, the unfiltered one runs.
    let v = run(
        &p,
        &["analyst_emea", "compliance"],
        Dialect::Sqlite,
        "SELECT region FROM customers",
    )
    .unwrap();
    assert_eq!(v.role(), "compliance");
    assert!(v.row_filters().is_empty());
}

#[test]
fn row_filters_follow_keys_to_every_table_of_the_entity() {
    for table in [
        "customers",
        "user_profiles",
        "sessions",
        "events",
        "customer_contracts",
        "customer_mrr_daily",
        "billing_history",
        "support_tickets",
    ] {
        for d in ALL {
            let v = allowed(
                &["analyst_emea"],
                d,
                &format!("SELECT count(*) FROM {table}"),
            );
            assert!(
                v.sql().contains("region = 'EMEA'") && !v.row_filters().is_empty(),
                "[{d}] {table}: {}",
                v.sql()
            );
        }
    }
}

#[test]
fn row_filters_that_cannot_apply_stop_loading() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("schema.yaml"),
        "tables:\n  t:\n    columns:\n      from: {class: public}\n      a: {class: public}\n",
    )
    .unwrap();
    let roles = |filter: &str| {
        format!(
            "roles:\n  r:\n    can: [sql]\n    columns: {{public: allow}}\n    row_filters:\n      t: '{filter}'\n"
        )
    };
    std::fs::write(dir.path().join("roles.yaml"), roles("from = 1")).unwrap();
    let err = Policy::load(dir.path()).unwrap_err();
    assert_eq!(err.line, Some(6), "{err}");
    // Quoted, the reserved word is a column, and the filter applies.
    std::fs::write(dir.path().join("roles.yaml"), roles("\"from\" = 1")).unwrap();
    let p = Policy::load(dir.path()).unwrap();
    for d in ALL {
        let v = run(&p, &["r"], d, "SELECT a FROM t").unwrap();
        assert!(v.sql().contains("WHERE (\"from\" = 1)"), "{}", v.sql());
    }
}

#[test]
fn output_size_functions_are_bounded() {
    for sql in [
        "SELECT printf('%0900000000d', 1)",
        "SELECT printf('%.900000000f', 1.0)",
        "SELECT printf('%*d', 900000000, 1)",
        "SELECT printf(region, 1) FROM customers",
        "SELECT format('%900000000s', 'x')",
        "SELECT lpad('x', 900000000)",
        "SELECT rpad(region, 2000, 'x') FROM customers",
        "SELECT lpad('x', customer_id) FROM customers",
        "SELECT replace(replace('aaaaaaaaaa', 'a', 'aaaaaaaaaa'), 'a', 'aaaaaaaaaa')",
        "SELECT replace(region, 'E', region) FROM customers",
        "SELECT zeroblob(1000000000)",
        "SELECT randomblob(1000000000)",
        "SELECT repeat('x', 1000000000)",
    ] {
        denied(&["analyst"], &ALL, sql);
    }
    for sql in [
        "SELECT printf('%s-%02d', region, 1) FROM customers",
        "SELECT lpad(region, 10, ' ') FROM customers",
        "SELECT replace(region, '_', ' ') FROM customers",
    ] {
        allowed(&["analyst"], Dialect::Sqlite, sql);
    }
}

#[test]
fn deep_statements_are_refused_without_overflowing_the_callers_stack() {
    let long_sum = format!("SELECT {}1", "1+".repeat(45_000));
    let deep_parens = format!("SELECT {}1{}", "(".repeat(5_000), ")".repeat(5_000));
    let long_and = format!(
        "SELECT region FROM customers WHERE {}",
        vec!["region = 'x'"; 5_000].join(" OR ")
    );
    // The longest statement validated on the caller's stack, as deep as it
    // can be, on a thread with half a worker's stack (debug build).
    let inline_limit = format!("SELECT {}1", "1+".repeat(1_020));
    assert!(inline_limit.len() <= 2_048);
    std::thread::Builder::new()
        .stack_size(1024 * 1024)
        .spawn(move || {
            let p = policy();
            let g = grants_of(&p, &["analyst"]);
            for d in ALL {
                assert!(validate(&inline_limit, d, &p, &g, Origin::AdHoc).is_err());
                let broken = format!("{inline_limit} +");
                assert!(validate(&broken, d, &p, &g, Origin::AdHoc).is_err());
            }
        })
        .unwrap()
        .join()
        .expect("short deep statements fit the caller's stack");
    // A thread with a small stack, as a server worker might have.
    std::thread::Builder::new()
        .stack_size(256 * 1024)
        .spawn(move || {
            let p = policy();
            let g = grants_of(&p, &["analyst"]);
            for sql in [&long_sum, &deep_parens, &long_and] {
                for d in ALL {
                    assert!(validate(sql, d, &p, &g, Origin::AdHoc).is_err());
                }
            }
            assert!(matches!(
                validate(&long_sum, Dialect::Sqlite, &p, &g, Origin::AdHoc),
                Err(Rejection::TooComplex(_))
            ));
        })
        .unwrap()
        .join()
        .expect("the guard refuses deep statements without crashing");
}

#[test]
fn the_classes_read_are_reported() {
    let v = allowed(&["compliance"], Dialect::Sqlite, "SELECT * FROM customers");
    assert!(v.classes().contains(&ColumnClass::Pii));
    let v = allowed(&["analyst"], Dialect::Sqlite, "SELECT * FROM customers");
    assert!(!v.classes().contains(&ColumnClass::Pii));
}

/// Row filters name base tables unqualified, so a CTE named like a table
/// would replace it inside them; no statement may name a CTE, a derived
/// table or another table's alias like an allow-listed table.
#[test]
fn names_that_could_shadow_a_table_inside_a_row_filter_are_refused() {
    for sql in [
        "WITH customers(customer_id, region) AS (SELECT 7,'EMEA' UNION ALL SELECT 8,'EMEA') SELECT customer_id, SUM(amount_usd) AS billed FROM billing_history GROUP BY customer_id",
        "WITH RECURSIVE user_profiles(user_id) AS (SELECT 1 UNION ALL SELECT user_id + 1 FROM user_profiles WHERE user_id < 2000) SELECT count(*) FROM sessions",
        "WITH x AS (SELECT 1 AS a), customers AS (SELECT 2 AS customer_id) SELECT count(*) FROM support_tickets",
        "SELECT count(*) FROM (WITH customers AS (SELECT 1 AS customer_id) SELECT customer_id FROM billing_history) t",
        "SELECT (WITH user_profiles AS (SELECT 1 AS user_id) SELECT count(*) FROM events) AS n",
        "WITH c AS (SELECT 1 AS a) SELECT count(*) FROM c AS customers",
        "SELECT count(*) FROM billing_history AS customers",
        "SELECT count(*) FROM (SELECT customer_id FROM billing_history) AS customers",
        "SELECT count(*) FROM (SELECT customer_id FROM customers JOIN billing_history USING (customer_id)) AS customers",
    ] {
        denied(&["analyst_emea"], &ALL, sql);
        denied(&["admin"], &ALL, sql);
    }
    // Names compare by each dialect's rules: SQLite ignores case.
    denied(
        &["analyst_emea"],
        &[Dialect::Sqlite],
        "WITH CUSTOMERS(customer_id) AS (SELECT 7) SELECT count(*) FROM billing_history",
    );
    // The guard's own filtered read keeps its table's name, so a stored
    // statement (an admin re-run) validates again, with the same rows.
    for d in ALL {
        let v = allowed(
            &["analyst_emea"],
            d,
            "SELECT customer_id, sum(amount_usd) AS billed FROM billing_history GROUP BY customer_id",
        );
        assert!(v.sql().contains("region = 'EMEA'"), "{}", v.sql());
        allowed(&["analyst_emea"], d, v.sql());
        allowed(&["admin"], d, v.sql());
    }
}

/// Names in a window's or an aggregate's ORDER BY are input columns in every
/// dialect; only a query's own ORDER BY may name an output alias, and where
/// that name is also an input column the alias's expression is written out.
#[test]
fn order_by_names_bind_as_each_clause_binds_them() {
    for sql in [
        "SELECT customer_id, customer_id AS contact_email FROM customers ORDER BY row_number() OVER (ORDER BY contact_email) LIMIT 8",
        "SELECT customer_id AS contact_email, row_number() OVER (ORDER BY contact_email) AS r FROM customers",
        "SELECT customer_id AS contact_email FROM customers ORDER BY rank() OVER (PARTITION BY region ORDER BY contact_email DESC)",
        "SELECT region, count(*) AS contact_email FROM customers GROUP BY region HAVING max(contact_email) > ''",
        "SELECT customer_id AS contact_email FROM customers ORDER BY lower(contact_email)",
    ] {
        denied(&["analyst"], &ALL, sql);
    }
    denied(
        &["analyst"],
        &[Dialect::Sqlite],
        "SELECT region, 1 AS contact_email FROM customers GROUP BY region HAVING group_concat(region ORDER BY contact_email) <> ''",
    );
    denied(
        &["analyst"],
        &[Dialect::Postgres],
        "SELECT region, 1 AS contact_email FROM customers GROUP BY region HAVING string_agg(region, ',' ORDER BY contact_email) <> ''",
    );
    denied(
        &["analyst"],
        &[Dialect::Snowflake],
        "SELECT customer_id, customer_id AS contact_email FROM customers QUALIFY row_number() OVER (ORDER BY contact_email) <= 8",
    );
    // sam's role may not read revenue: the same shapes over amount_usd.
    denied(
        &["support"],
        &ALL,
        "SELECT customer_id, customer_id AS amount_usd FROM billing_history ORDER BY row_number() OVER (ORDER BY amount_usd DESC) LIMIT 5",
    );
    // A query's own ORDER BY naming an alias that is also a column: the
    // alias's expression is written out, so no dialect can read the column.
    for d in ALL {
        let v = allowed(
            &["analyst"],
            d,
            "SELECT customer_id AS contact_email FROM customers ORDER BY contact_email LIMIT 8",
        );
        assert!(
            v.sql().contains("ORDER BY (customer_id)"),
            "[{d}] {}",
            v.sql()
        );
        // A plain output alias is still the output.
        let v = allowed(
            &["analyst"],
            d,
            "SELECT region, count(*) AS n FROM customers GROUP BY region ORDER BY n DESC",
        );
        assert!(v.sql().contains("ORDER BY n DESC"), "[{d}] {}", v.sql());
    }
    // A masked column ordered by its name sorts by the mask.
    let v = allowed(
        &["support"],
        Dialect::Postgres,
        "SELECT contact_email FROM customers ORDER BY contact_email",
    );
    let order = &v.sql()[v.sql().find("ORDER BY").unwrap()..];
    assert!(order.contains("'****'"), "{}", v.sql());
}
