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
//!
//! Pairs approved in the review queue (`crate::review`) live in steward's
//! database, versioned, and are exported to the same shape with their
//! `owner`, `role`, `version` and `approved_at`. [`VerifiedSet`] holds both;
//! an approved pair overrides a file pair for the same question.

use std::path::Path;
use std::sync::{Arc, RwLock};

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
    /// Who approved it (review queue pairs).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<String>,
    /// The role it was guard-checked under at approval.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
    /// Its version number in steward's database (one per approval).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<i64>,
    /// When it was approved (RFC 3339, UTC).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approved_at: Option<String>,
}

impl VerifiedQuery {
    /// A pair with no review metadata (the file's shape).
    pub fn new(question: impl Into<String>, sql: impl Into<String>) -> VerifiedQuery {
        VerifiedQuery {
            question: question.into(),
            sql: sql.into(),
            owner: None,
            role: None,
            version: None,
            approved_at: None,
        }
    }
}

/// The verified queries in force: the file's, and those approved in the
/// review queue (newest database version `version`), which replace file
/// pairs for the same question. Shared by every request of an instance;
/// [`crate::review`] refreshes the approved part from the database.
#[derive(Debug, Default)]
pub struct VerifiedSet {
    file: Vec<VerifiedQuery>,
    approved: RwLock<(i64, Arc<Vec<VerifiedQuery>>)>,
    /// When the database was last asked for a newer version; `None` for a
    /// frozen copy ([`VerifiedSet::with`], [`VerifiedSet::snapshot`]),
    /// which is never refreshed.
    checked: Option<std::sync::Mutex<Option<std::time::Instant>>>,
}

impl VerifiedSet {
    /// The file's pairs, none approved yet (version 0).
    pub fn new(file: Vec<VerifiedQuery>) -> VerifiedSet {
        VerifiedSet {
            file,
            approved: RwLock::default(),
            checked: Some(std::sync::Mutex::new(None)),
        }
    }

    /// Whether it is time to ask the database for newer approved pairs:
    /// at most once per `every`; never for a frozen copy.
    pub fn due(&self, every: std::time::Duration) -> bool {
        let Some(checked) = &self.checked else {
            return false;
        };
        let mut last = checked.lock().unwrap_or_else(|e| e.into_inner());
        let now = std::time::Instant::now();
        if last.is_some_and(|t| now.duration_since(t) < every) {
            return false;
        }
        *last = Some(now);
        true
    }

    fn frozen(file: Vec<VerifiedQuery>, version: i64, pairs: Vec<VerifiedQuery>) -> VerifiedSet {
        VerifiedSet {
            file,
            approved: RwLock::new((version, Arc::new(pairs))),
            checked: None,
        }
    }

    /// Every pair in force: approved pairs first, then file pairs whose
    /// question no approved pair has.
    pub fn all(&self) -> Vec<VerifiedQuery> {
        let approved = self.approved().1;
        let mut out: Vec<VerifiedQuery> = approved.iter().cloned().collect();
        out.extend(
            self.file
                .iter()
                .filter(|f| {
                    !approved
                        .iter()
                        .any(|a| crate::text::same_question(&a.question, &f.question))
                })
                .cloned(),
        );
        out
    }

    /// The pair for a question asked as written, if any.
    pub fn find(&self, question: &str) -> Option<VerifiedQuery> {
        // Approved pairs first: one for the same question as a file pair wins.
        let approved = self.approved().1;
        approved
            .iter()
            .chain(&self.file)
            .find(|v| crate::text::same_question(&v.question, question))
            .cloned()
    }

    /// The database version of the approved pairs held, and the pairs.
    pub fn approved(&self) -> (i64, Arc<Vec<VerifiedQuery>>) {
        let guard = self.approved.read().unwrap_or_else(|e| e.into_inner());
        (guard.0, guard.1.clone())
    }

    /// Replaces the approved pairs with those of database version `version`.
    pub fn set_approved(&self, version: i64, pairs: Vec<VerifiedQuery>) {
        let mut guard = self.approved.write().unwrap_or_else(|e| e.into_inner());
        *guard = (version, Arc::new(pairs));
    }

    /// A copy holding one more approved pair (replacing any for the same
    /// question): what the set would be after an approval, for the
    /// regression run.
    pub fn with(&self, extra: VerifiedQuery) -> VerifiedSet {
        let (version, approved) = self.approved();
        let mut pairs: Vec<VerifiedQuery> = vec![extra.clone()];
        pairs.extend(
            approved
                .iter()
                .filter(|a| !crate::text::same_question(&a.question, &extra.question))
                .cloned(),
        );
        VerifiedSet::frozen(self.file.clone(), version, pairs)
    }

    /// A copy of the set as it is now.
    pub fn snapshot(&self) -> VerifiedSet {
        let (version, approved) = self.approved();
        VerifiedSet::frozen(self.file.clone(), version, approved.to_vec())
    }
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
    fn approved_pairs_replace_file_pairs_for_the_same_question() {
        let set = VerifiedSet::new(vec![
            VerifiedQuery::new("How many plans?", "SELECT 1"),
            VerifiedQuery::new("Other?", "SELECT 2"),
        ]);
        assert_eq!(set.find("how many PLANS").unwrap().sql, "SELECT 1");
        let next = set.with(VerifiedQuery::new("How many plans", "SELECT 3"));
        assert_eq!(next.find("How many plans?").unwrap().sql, "SELECT 3");
        assert_eq!(next.all().len(), 2);
        // The original is unchanged until the approval is stored.
        assert_eq!(set.find("How many plans?").unwrap().sql, "SELECT 1");
        set.set_approved(4, vec![VerifiedQuery::new("New one", "SELECT 4")]);
        assert_eq!(set.approved().0, 4);
        assert_eq!(set.all().len(), 3);
        assert!(set.find("nothing like it").is_none());
        assert!(set.due(std::time::Duration::from_secs(60)));
        assert!(
            !set.due(std::time::Duration::from_secs(60)),
            "once a minute"
        );
        assert!(!next.due(std::time::Duration::ZERO), "a copy is frozen");
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
