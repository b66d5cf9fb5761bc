//! Fuzz target: the guard must never panic or overflow its stack, and whatever
//! it accepts must re-validate unchanged, read no PII for an analyst, and
//! read PII only masked for support.
#![no_main]

use std::sync::LazyLock;

use libfuzzer_sys::fuzz_target;
use steward::policy::{ColumnClass, Grants, Policy, Principal};
use steward::sql::{Dialect, Origin, validate};

static POLICY: LazyLock<(Policy, Grants, Grants)> = LazyLock::new(|| {
    let p = Policy::load(std::path::Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../policies"))).unwrap();
    let grants = |role: &str| {
        p.grants(&Principal { user: "fuzz".into(), roles: vec![role.into()], groups: Vec::new() })
    };
    let (a, s) = (grants("analyst"), grants("support"));
    (p, a, s)
});

fuzz_target!(|data: &[u8]| {
    let Ok(sql) = std::str::from_utf8(data) else { return };
    let (policy, analyst, support) = &*POLICY;
    for dialect in [Dialect::Sqlite, Dialect::Postgres, Dialect::Snowflake] {
        if let Ok(v) = validate(sql, dialect, policy, analyst, Origin::AdHoc) {
            assert!(!v.classes().contains(&ColumnClass::Pii));
            let again = validate(v.sql(), dialect, policy, analyst, Origin::AdHoc).expect("accepted SQL re-validates");
            assert_eq!(again.sql(), v.sql());
        }
        if let Ok(v) = validate(sql, dialect, policy, support, Origin::AdHoc) {
            assert!(!v.classes().contains(&ColumnClass::Sensitive));
            if v.classes().contains(&ColumnClass::Pii) {
                assert!(!v.masked().is_empty(), "PII read unmasked by support: {}", v.sql());
            }
        }
    }
});
