//! The SQL guard: the only way to obtain a [`ValidatedSql`], which is the only
//! thing a warehouse executes.
//!
//! The guard parses a statement with sqlparser for the warehouse's dialect,
//! binds every name in it and checks it against the policy for one of a
//! principal's roles and the origin of the statement, and rewrites it (masks,
//! row filters, `*` expansion, LIMIT clamp). It is pure: no I/O, no clock, no
//! randomness; the same inputs always give the same decision.

mod dialect;
mod guard;

use std::collections::BTreeSet;

use serde::Serialize;

pub use dialect::{Dialect, Percentile, PercentileKind, quote_literal};
pub use guard::{Origin, Rejection, function_allowed, validate};

use crate::policy::ColumnClass;

/// A statement the guard accepted, after rewriting.
///
/// Only [`validate`] constructs this type; warehouses accept nothing else, so
/// no code path can run SQL that skipped the guard.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ValidatedSql {
    sql: String,
    dialect: Dialect,
    role: String,
    tables: BTreeSet<String>,
    classes: BTreeSet<ColumnClass>,
    masked: Vec<String>,
    row_filters: Vec<String>,
    max_rows: u64,
    timeout_ms: u64,
}

/// The test-only switch that turns the guard off: `sql` as it is, to run
/// under `role` (compiled only with the `guard-off-for-tests` feature, which
/// only the test suite enables). It lets the engine's own enforcement be
/// tested against statements the guard would refuse.
#[cfg(feature = "guard-off-for-tests")]
pub fn unguarded_for_tests(sql: &str, role: &str, dialect: Dialect) -> ValidatedSql {
    ValidatedSql {
        sql: sql.to_owned(),
        dialect,
        role: role.to_owned(),
        tables: BTreeSet::new(),
        classes: BTreeSet::new(),
        masked: Vec::new(),
        row_filters: Vec::new(),
        max_rows: 1000,
        timeout_ms: 5_000,
    }
}

impl ValidatedSql {
    /// The rewritten SQL text to execute.
    pub fn sql(&self) -> &str {
        &self.sql
    }

    /// The dialect it was validated for.
    pub fn dialect(&self) -> Dialect {
        self.dialect
    }

    /// The role the statement was validated under, and runs under where the
    /// database enforces the policy too (`SET ROLE`).
    pub fn role(&self) -> &str {
        &self.role
    }

    /// Allow-listed tables the statement reads.
    pub fn tables(&self) -> &BTreeSet<String> {
        &self.tables
    }

    /// Column classes the statement reads (e.g. whether the result holds PII).
    pub fn classes(&self) -> &BTreeSet<ColumnClass> {
        &self.classes
    }

    /// Columns (`table.column`) whose references were masked, hashed or nulled.
    pub fn masked(&self) -> &[String] {
        &self.masked
    }

    /// Row filters injected, as `table: predicate`.
    pub fn row_filters(&self) -> &[String] {
        &self.row_filters
    }

    /// The row cap the LIMIT clamp applied; warehouses stop reading past it.
    pub fn max_rows(&self) -> u64 {
        self.max_rows
    }

    /// The statement timeout in milliseconds.
    pub fn timeout_ms(&self) -> u64 {
        self.timeout_ms
    }

    /// The same statement with a timeout and row cap no higher than these
    /// (limits only ever tighten; the text is unchanged, so the warehouse
    /// stops reading at the lower cap and marks the result truncated).
    #[must_use]
    pub fn tightened(mut self, timeout_ms: u64, max_rows: u64) -> ValidatedSql {
        self.timeout_ms = self.timeout_ms.min(timeout_ms.max(1));
        self.max_rows = self.max_rows.min(max_rows.max(1));
        self
    }
}
