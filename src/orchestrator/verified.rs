//! Verified queries: question → SQL pairs an analyst has checked, kept in
//! `policies/verified_queries.yaml` (the idea of Snowflake Cortex Analyst's
//! verified query repository). They are few-shot examples for the model,
//! shown only to principals whose grants the guard accepts them under.
//!
//! File shape:
//! ```yaml
//! verified_queries:
//!   - question: How many customers are on each plan?
//!     sql: SELECT plan, COUNT(*) AS customers FROM customers GROUP BY plan
//! ```

use std::path::Path;

use serde::Deserialize;

use crate::policy::Policy;
use crate::sql::{Dialect, Origin, validate};

/// File name inside the policy directory.
pub const FILE: &str = "verified_queries.yaml";

/// One checked question → SQL pair.
#[derive(Debug, Clone, PartialEq, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct VerifiedQuery {
    /// The question as people ask it.
    pub question: String,
    /// SQL known to answer it.
    pub sql: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    verified_queries: Vec<VerifiedQuery>,
}

/// Loads `dir/verified_queries.yaml`; a missing file means none. Every
/// statement must pass the guard under the union of all roles (so it names
/// only allow-listed tables and columns).
///
/// # Errors
/// `file: reason` for unreadable YAML, or `file: query N: rejection`.
pub fn load(dir: &Path, policy: &Policy, dialect: Dialect) -> Result<Vec<VerifiedQuery>, String> {
    let path = dir.join(FILE);
    if !path.is_file() {
        return Ok(Vec::new());
    }
    let text = std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    let file: File = serde_yaml_ng::from_str(&text).map_err(|e| {
        let line = e
            .location()
            .map(|l| format!(":{}", l.line()))
            .unwrap_or_default();
        format!("{}{line}: {e}", path.display())
    })?;
    let everyone = policy.every_role();
    for (i, q) in file.verified_queries.iter().enumerate() {
        validate(&q.sql, dialect, policy, &everyone, Origin::AdHoc).map_err(|r| {
            format!(
                "{}: query {} ({:?}): {r}",
                path.display(),
                i + 1,
                q.question
            )
        })?;
    }
    Ok(file.verified_queries)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> Policy {
        Policy::load(Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/policies"))).unwrap()
    }

    #[test]
    fn the_shipped_file_loads_and_a_bad_query_names_its_number() {
        let p = policy();
        let dir = Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/policies"));
        assert!(load(dir, &p, Dialect::Sqlite).unwrap().len() >= 10);
        let tmp = tempfile::tempdir().unwrap();
        std::fs::write(
            tmp.path().join(FILE),
            "verified_queries:\n  - question: ok\n    sql: SELECT plan FROM customers\n  - question: bad\n    sql: SELECT secret FROM nowhere\n",
        )
        .unwrap();
        let e = load(tmp.path(), &p, Dialect::Sqlite).unwrap_err();
        assert!(e.contains("query 2"), "{e}");
        std::fs::write(tmp.path().join(FILE), "verified_queries: [{question: x}]\n").unwrap();
        assert!(load(tmp.path(), &p, Dialect::Sqlite).is_err());
    }
}
