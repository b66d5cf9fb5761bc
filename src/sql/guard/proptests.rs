//! Property tests for the guard (proptest): no panics on any input, and
//! decisions that follow the policy for generated queries.

use proptest::prelude::*;

use super::*;
use crate::policy::{ColumnClass, Policy, Principal};

fn policy() -> Policy {
    Policy::load(std::path::Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/policies"
    )))
    .unwrap()
}

fn analyst(p: &Policy) -> Grants {
    p.grants(&Principal {
        user: "p".into(),
        roles: vec!["analyst".into()],
        groups: Vec::new(),
    })
}

const TOKENS: &[&str] = &[
    "SELECT",
    "FROM",
    "WHERE",
    "GROUP BY",
    "ORDER BY",
    "HAVING",
    "UNION",
    "JOIN",
    "ON",
    "WITH",
    "AS",
    "(",
    ")",
    ",",
    ";",
    "*",
    "=",
    "'x'",
    "1",
    "--",
    "/*",
    "*/",
    "customers",
    "contact_email",
    "region",
    "events",
    "user_id",
    "c",
    "c.region",
    "COUNT(*)",
    "DELETE",
    "DROP TABLE",
    "INSERT INTO",
    "LIMIT",
    "OFFSET",
    "RECURSIVE",
    "SELECT 1",
    "sqlite_master",
    "pg_sleep(1)",
    "CASE WHEN",
    "THEN",
    "ELSE",
    "END",
    "NULL",
    "IS",
    "NOT",
    "IN",
    "EXISTS",
    "\"",
];

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_text_never_panics(s in "\\PC{0,300}") {
        let p = policy();
        let _ = validate(&s, Dialect::Sqlite, &p, &analyst(&p), Origin::AdHoc);
        let _ = validate(&s, Dialect::Postgres, &p, &analyst(&p), Origin::AdHoc);
    }

    #[test]
    fn sql_shaped_token_soup_never_panics_and_accepted_output_is_stable(
        tokens in proptest::collection::vec(proptest::sample::select(TOKENS), 1..30)
    ) {
        let p = policy();
        let g = analyst(&p);
        let sql = tokens.join(" ");
        for d in [Dialect::Sqlite, Dialect::Postgres, Dialect::Snowflake] {
            if let Ok(v) = validate(&sql, d, &p, &g, Origin::AdHoc) {
                // What the guard lets through passes the guard again unchanged,
                // and never reads a PII column.
                let again = validate(v.sql(), d, &p, &g, Origin::AdHoc).expect("accepted SQL re-validates");
                prop_assert_eq!(again.sql(), v.sql());
                prop_assert!(!v.classes().contains(&ColumnClass::Pii));
            }
        }
    }

    #[test]
    fn a_projection_is_allowed_exactly_when_it_has_no_pii(
        table_pick in 0usize..8,
        picks in proptest::collection::vec(0usize..16, 1..6),
    ) {
        let p = policy();
        let g = analyst(&p);
        let (table, def) = p.schema.tables.iter().nth(table_pick % p.schema.tables.len()).unwrap();
        let cols: Vec<(&String, ColumnClass)> = def.columns.iter().map(|(c, d)| (c, d.class)).collect();
        let chosen: Vec<(&String, ColumnClass)> = picks.iter().map(|i| cols[i % cols.len()]).collect();
        let list: Vec<&str> = chosen.iter().map(|(c, _)| c.as_str()).collect();
        let sql = format!("SELECT {} FROM {table} WHERE {} IS NOT NULL", list.join(", "), list[0]);
        let has_pii = chosen.iter().any(|(_, class)| *class == ColumnClass::Pii);
        let decision = validate(&sql, Dialect::Sqlite, &p, &g, Origin::AdHoc);
        prop_assert_eq!(decision.is_ok(), !has_pii, "{}: {:?}", sql, decision);
    }

    #[test]
    fn any_requested_limit_is_clamped(limit in 0u64..10_000_000) {
        let p = policy();
        let v = validate(&format!("SELECT region FROM customers LIMIT {limit}"), Dialect::Sqlite, &p, &analyst(&p), Origin::AdHoc).unwrap();
        let shown = v.sql().rsplit("LIMIT ").next().unwrap().trim().parse::<u64>().unwrap();
        prop_assert_eq!(shown, limit.min(p.max_rows));
    }
}

#[test]
fn deeply_nested_input_is_rejected_without_overflowing_the_stack() {
    let p = policy();
    let g = analyst(&p);
    for depth in [100, 1_000, 20_000] {
        let sql = format!("SELECT {}1{}", "(".repeat(depth), ")".repeat(depth));
        let _ = validate(&sql, Dialect::Sqlite, &p, &g, Origin::AdHoc);
        let sub = format!(
            "SELECT x FROM {}customers{}",
            "(SELECT region AS x FROM ".repeat(depth / 10),
            ")".repeat(depth / 10)
        );
        let _ = validate(&sub, Dialect::Postgres, &p, &g, Origin::AdHoc);
    }
    assert!(matches!(
        validate(
            &"a".repeat(MAX_SQL_BYTES + 1),
            Dialect::Sqlite,
            &p,
            &g,
            Origin::AdHoc
        ),
        Err(Rejection::TooLong)
    ));
}
