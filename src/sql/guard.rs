//! Validation and rewriting of one statement against the policy.
//!
//! The statement is parsed, then bound ([`binder`]): every column reference
//! resolves to exactly one table column (or to a derived column already
//! checked) through real scopes, or the statement is refused. Policy applies
//! to what the names are bound to, so no spelling of a reference (alias,
//! `USING`, case, CTE shadowing, `*`) reads anything the role may not.

mod binder;
mod functions;

pub use functions::allowed as function_allowed;
mod rewrite;

use sqlparser::ast::Statement;
use sqlparser::parser::Parser;

use super::{Dialect, ValidatedSql};
use crate::policy::{Capability, ColumnClass, Grants, Policy, RoleGrants};

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
    /// A double-quoted name that is no column, on SQLite: standard SQL (and
    /// the guard) reads `"AKO"` as an identifier, where SQLite would fall
    /// back to a string.
    #[error("\"{0}\" is no column; write a string value in single quotes ('{0}')")]
    QuotedValue(String),
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
    /// A name the binder cannot bind with certainty: ambiguous, a whole-row
    /// reference, a positional rename of a table's columns, a `NATURAL JOIN`
    /// with a table, a join `USING` a masked column.
    #[error("the statement cannot be checked: {0}")]
    Unbound(String),
    /// An AST node outside the binder's allow-list.
    #[error("{0} is not supported")]
    Unsupported(String),
    /// Nested deeper than the binder walks.
    #[error("the statement is nested more than {0} levels deep")]
    TooComplex(usize),
    /// The role's row filter on a table could not be applied, so the table
    /// may not be read.
    #[error("the row filter on {0} cannot be applied, so it may not be read")]
    RowFilter(String),
}

/// Stack for validating a long statement. Parsing and the binder stop at
/// bounded depth, but dropping, printing and comparing an AST recurse over it
/// as built, and a long `1+1+…` chain is one left-deep tree: such statements
/// run on a stack of their own so none can overflow a server thread's.
const GUARD_STACK_BYTES: usize = 64 << 20;

/// Statements up to this many bytes validate on the caller's stack: every
/// level of nesting takes at least two bytes (`+1`), so their ASTs are at most
/// about a thousand levels deep, which a server thread's stack holds (tested with half of one). Longer ones
/// take [`GUARD_STACK_BYTES`] (a fresh mapping costs tens of microseconds).
const INLINE_SQL_BYTES: usize = 2_048;

/// Validates `sql` for `grants` under `policy` and returns the statement to run.
///
/// Checks, in order: capability for the origin; size; parse (dialect rules);
/// exactly one statement; a plain `SELECT` query without `INTO`, locking,
/// `FETCH`, DML in CTEs or table functions; then binds every name
/// (tables allow-listed, system catalogs named as such, functions
/// allow-listed and output-bounded, every column bound to one allow-listed
/// column the role may read) while rewriting (masks, row filters, `*`
/// expanded to the readable columns), clamps the outer LIMIT to
/// `policy.max_rows`, and checks that the SQL text it returns parses back to
/// exactly the statement it checked.
///
/// The statement runs under one role: the first of the principal's roles,
/// broadest first, that holds the capability and under which it passes
/// ([`Policy::grants`]); [`ValidatedSql::role`] names it.
///
/// # Errors
/// The first [`Rejection`] under the broadest role holding the capability.
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
    let under_each_role = || {
        let parser = dialect.parser();
        let mut statements = Parser::new(parser.as_ref())
            .try_with_sql(sql)
            .and_then(|mut p| p.parse_statements())
            .map_err(|e| Rejection::Parse(e.to_string()))?;
        if statements.len() != 1 {
            return Err(Rejection::StatementCount(statements.len()));
        }
        let statement = statements.swap_remove(0);
        if !matches!(statement, Statement::Query(_)) {
            return Err(Rejection::NotReadOnly(statement_kind(&statement)));
        }
        // Parsed once; each role after the first binds its own copy, and the
        // last (usually the only) one binds the original.
        let roles: Vec<&RoleGrants> = grants.scopes_for(capability).collect();
        let mut original = Some(statement);
        let mut first_rejection = None;
        for (i, role) in roles.iter().enumerate() {
            let statement = if i + 1 < roles.len() {
                original.clone()
            } else {
                original.take()
            }
            .expect("taken only on the last role");
            match validate_as(statement, parser.as_ref(), dialect, policy, role) {
                Ok(v) => return Ok(v),
                Err(r) => {
                    first_rejection.get_or_insert(r);
                }
            }
        }
        Err(first_rejection.expect("a role holds the capability"))
    };
    if sql.len() <= INLINE_SQL_BYTES {
        under_each_role()
    } else {
        stacker::grow(GUARD_STACK_BYTES, under_each_role)
    }
}

/// [`validate`] of one parsed `SELECT` query under one role.
fn validate_as(
    mut statement: Statement,
    parser: &dyn sqlparser::dialect::Dialect,
    dialect: Dialect,
    policy: &Policy,
    role: &RoleGrants,
) -> Result<ValidatedSql, Rejection> {
    let Statement::Query(query) = &mut statement else {
        return Err(Rejection::NotReadOnly(statement_kind(&statement)));
    };
    let decisions = binder::bind(query, &policy.schema, role, dialect)?;
    rewrite::clamp_limit(query, policy.max_rows);
    // What runs is the printed AST, so the printed text must parse back to
    // exactly the statement that was checked (sqlparser's printer does not
    // re-escape every quoted string faithfully; a literal holding `\'`
    // would otherwise end early and smuggle SQL past the guard).
    let rendered = statement.to_string();
    let reparsed = Parser::new(parser)
        .try_with_sql(&rendered)
        .and_then(|mut p| p.parse_statements());
    if !matches!(&reparsed, Ok(again) if again.len() == 1 && again[0] == statement) {
        return Err(Rejection::Unrenderable);
    }
    Ok(ValidatedSql {
        sql: rendered,
        dialect,
        role: role.role.clone(),
        tables: decisions.tables,
        classes: decisions.classes,
        masked: decisions.masked.into_iter().collect(),
        row_filters: decisions.row_filters.into_iter().collect(),
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
mod binder_tests;
#[cfg(test)]
mod proptests;
#[cfg(test)]
mod tests;
