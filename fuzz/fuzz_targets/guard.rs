//! Fuzz target: the guard must never panic, and whatever it accepts must
//! re-validate unchanged and read no PII for an analyst.
#![no_main]

use std::sync::LazyLock;

use libfuzzer_sys::fuzz_target;
use steward::policy::{ColumnClass, Grants, Policy, Principal};
use steward::sql::{Dialect, Origin, validate};

static POLICY: LazyLock<(Policy, Grants)> = LazyLock::new(|| {
    let p = Policy::load(std::path::Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../policies"))).unwrap();
    let g = p.grants(&Principal { user: "fuzz".into(), roles: vec!["analyst".into()] });
    (p, g)
});

fuzz_target!(|data: &[u8]| {
    let Ok(sql) = std::str::from_utf8(data) else { return };
    let (policy, grants) = &*POLICY;
    for dialect in [Dialect::Sqlite, Dialect::Postgres, Dialect::Snowflake] {
        if let Ok(v) = validate(sql, dialect, policy, grants, Origin::AdHoc) {
            assert!(!v.classes().contains(&ColumnClass::Pii));
            let again = validate(v.sql(), dialect, policy, grants, Origin::AdHoc).expect("accepted SQL re-validates");
            assert_eq!(again.sql(), v.sql());
        }
    }
});
