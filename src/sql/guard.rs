//! Validation and rewriting of one statement against the policy.
//!
//! Column references are resolved conservatively: a qualified reference
//! (`t.col`) is resolved through table aliases to its table; a bare reference
//! is checked against *every* allow-listed table the statement reads that has
//! a column of that name, so a bare `contact_email` is denied wherever it
//! appears (select list, WHERE, JOIN, GROUP BY, ORDER BY, HAVING, windows,
//! function arguments) if any such column is denied. Wildcards are rejected:
//! they would read columns nobody named.

mod functions;
mod rewrite;
mod scan;

use std::collections::BTreeSet;
use std::ops::ControlFlow;

use sqlparser::ast::{Statement, Visit};
use sqlparser::parser::Parser;

use scan::Scan;

use super::{Dialect, ValidatedSql};
use crate::policy::{Capability, ColumnClass, Grants, Policy};

/// Longest statement the guard parses, in bytes.
pub const MAX_SQL_BYTES: usize = 100_000;

/// Where a statement came from; decides which capability it needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Origin {
    /// Compiled from a metric by the semantic layer (needs `metrics`).
    Metric,
    /// Written for the user (planner template, LLM or person; needs `sql`).
    AdHoc,
}

use serde::Serialize;

/// Why the guard refused a statement. `Display` is one sentence a user can act on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, thiserror::Error)]
#[serde(tag = "rule", content = "detail", rename_all = "snake_case")]
pub enum Rejection {
    /// The principal lacks the capability the origin needs.
    #[error("{roles} may not {action}")]
    Capability {
        /// "role viewer".
        roles: String,
        /// "run ad-hoc SQL".
        action: String,
    },
    /// Not valid SQL for the dialect.
    #[error("the SQL does not parse: {0}")]
    Parse(String),
    /// Too long to consider.
    #[error("the SQL is longer than {MAX_SQL_BYTES} bytes")]
    TooLong,
    /// Zero or several statements.
    #[error("exactly one statement is allowed, found {0}")]
    StatementCount(usize),
    /// Not a read-only SELECT, or a SELECT with a forbidden clause.
    #[error("only read-only SELECT statements are allowed; {0} is not")]
    NotReadOnly(String),
    /// A table outside the allow-list.
    #[error("table {0} is not in the allow-list")]
    UnknownTable(String),
    /// A system catalog.
    #[error("{0} is a system catalog; it cannot be queried")]
    SystemCatalog(String),
    /// A column outside the allow-list.
    #[error("column {0} is not in the allow-list")]
    UnknownColumn(String),
    /// A column the principal's roles may not read.
    #[error("column {column} is {class}; {roles} may not read it")]
    ColumnDenied {
        /// `table.column`.
        column: String,
        /// Its class.
        class: ColumnClass,
        /// "role analyst".
        roles: String,
    },
    /// A function outside the allow-list.
    #[error("function {0} is not allowed")]
    Function(String),
    /// The accepted statement does not survive printing: its SQL text would
    /// re-parse to a different statement (e.g. a quoted string or name whose
    /// escaping the printer cannot reproduce), so it is not passed on.
    #[error("the statement contains a quoted string or name that cannot be passed on unchanged")]
    Unrenderable,
    /// `*` or `t.*`.
    #[error("SELECT * is not allowed; name the columns you need")]
    Wildcard,
}

/// Validates `sql` for `grants` under `policy` and returns the statement to run.
///
/// Checks, in order: capability for the origin; size; parse (dialect rules);
/// exactly one statement; a plain `SELECT` query without `INTO`, locking,
/// `FETCH`, DML in CTEs or table functions; every table allow-listed (system
/// catalogs named as such); every function allow-listed; every column
/// allow-listed and readable by the grants. Then rewrites (masking, row
/// filters, the outer LIMIT clamped to `policy.max_rows`) and checks that the
/// SQL text it returns parses back to exactly the statement it checked.
///
/// # Errors
/// The first [`Rejection`] found.
pub fn validate(
    sql: &str,
    dialect: Dialect,
    policy: &Policy,
    grants: &Grants,
    origin: Origin,
) -> Result<ValidatedSql, Rejection> {
    let (capability, action) = match origin {
        Origin::Metric => (Capability::Metrics, "query metrics"),
        Origin::AdHoc => (Capability::Sql, "run ad-hoc SQL"),
    };
    if !grants.can(capability) {
        return Err(Rejection::Capability {
            roles: grants.roles_phrase(),
            action: action.into(),
        });
    }
    if sql.len() > MAX_SQL_BYTES {
        return Err(Rejection::TooLong);
    }
    let parser = dialect.parser();
    let mut statements = Parser::new(parser.as_ref())
        .try_with_sql(sql)
        .and_then(|mut p| p.parse_statements())
        .map_err(|e| Rejection::Parse(e.to_string()))?;
    if statements.len() != 1 {
        return Err(Rejection::StatementCount(statements.len()));
    }
    let Statement::Query(query) = &mut statements[0] else {
        return Err(Rejection::NotReadOnly(statement_kind(&statements[0])));
    };

    let mut scan = Scan::default();
    if let ControlFlow::Break(r) = query.visit(&mut scan) {
        return Err(r);
    }
    let resolution = scan.resolve(policy, grants, dialect)?;
    rewrite::apply(query, &resolution, &policy.schema, dialect);
    rewrite::clamp_limit(query, policy.max_rows);
    // What runs is the printed AST, so the printed text must parse back to
    // exactly the statement that was checked (sqlparser's printer does not
    // re-escape every quoted string faithfully; a literal holding `\'`
    // would otherwise end early and smuggle SQL past the guard).
    let rendered = statements[0].to_string();
    let reparsed = Parser::new(parser.as_ref())
        .try_with_sql(&rendered)
        .and_then(|mut p| p.parse_statements());
    if !matches!(&reparsed, Ok(again) if again.len() == 1 && again[0] == statements[0]) {
        return Err(Rejection::Unrenderable);
    }
    let row_filters = resolution
        .filters
        .iter()
        .flatten()
        .map(|(t, p)| format!("{t}: {p}"))
        .collect::<BTreeSet<_>>();
    Ok(ValidatedSql {
        sql: rendered,
        dialect,
        tables: scan.tables().clone(),
        classes: resolution.classes,
        masked: resolution.masked.into_iter().collect(),
        row_filters: row_filters.into_iter().collect(),
        max_rows: policy.max_rows,
        timeout_ms: policy.statement_timeout_ms,
    })
}

pub(crate) fn statement_kind(s: &Statement) -> String {
    let text = s.to_string();
    let word = text
        .split_whitespace()
        .next()
        .unwrap_or("statement")
        .to_ascii_uppercase();
    format!("a {word} statement")
}

#[cfg(test)]
mod proptests;
#[cfg(test)]
mod tests;
