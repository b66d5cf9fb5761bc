//! Validation and rewriting of one statement against the policy.
//!
//! Column references are resolved conservatively: a qualified reference
//! (`t.col`) is resolved through table aliases to its table; a bare reference
//! is checked against *every* allow-listed table the statement reads that has
//! a column of that name, so a bare `contact_email` is denied wherever it
//! appears (select list, WHERE, JOIN, GROUP BY, ORDER BY, HAVING, windows,
//! function arguments) if any such column is denied. Wildcards are rejected:
//! they would read columns nobody named.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::ops::ControlFlow;

use sqlparser::ast::{
    Expr, LimitClause, ObjectName, Query, Select, SelectItem, SetExpr, Statement, TableFactor,
    Value, Visit, Visitor,
};
use sqlparser::parser::Parser;

use super::{Dialect, ValidatedSql};
use crate::policy::{Access, Capability, ColumnClass, Grants, Policy};

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
#[serde(tag = "rule", rename_all = "snake_case")]
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
/// allow-listed and readable by the grants. Then rewrites the outer LIMIT to
/// at most `policy.max_rows`.
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
    let classes = scan.resolve(policy, grants)?;
    clamp_limit(query, policy.max_rows);
    let tables = scan.tables.clone();
    Ok(ValidatedSql {
        sql: statements[0].to_string(),
        dialect,
        tables,
        classes,
        max_rows: policy.max_rows,
        timeout_ms: policy.statement_timeout_ms,
    })
}

fn statement_kind(s: &Statement) -> String {
    let text = s.to_string();
    let word = text
        .split_whitespace()
        .next()
        .unwrap_or("statement")
        .to_ascii_uppercase();
    format!("a {word} statement")
}

/// Facts gathered in one walk over the AST.
#[derive(Default)]
struct Scan {
    /// Allow-listed tables read (lower case), filled by the relation check.
    tables: BTreeSet<String>,
    /// Relation names that are not CTE references in scope, checked in `resolve`.
    relations: Vec<ObjectName>,
    /// Open WITH clauses, innermost last.
    cte_frames: Vec<CteFrame>,
    /// CTE and derived-table names, which qualify columns checked elsewhere.
    derived: BTreeSet<String>,
    /// Table alias (lower case) → tables it may stand for.
    aliases: BTreeMap<String, BTreeSet<String>>,
    /// Output names a bare identifier may refer to (select aliases, CTE columns).
    output_names: BTreeSet<String>,
    /// Column references: qualifier parts + column, all lower case.
    columns: Vec<Vec<String>>,
}

impl Visitor for Scan {
    type Break = Rejection;

    fn pre_visit_statement(&mut self, s: &Statement) -> ControlFlow<Rejection> {
        match s {
            Statement::Query(_) => ControlFlow::Continue(()),
            other => ControlFlow::Break(Rejection::NotReadOnly(statement_kind(other))),
        }
    }

    fn pre_visit_query(&mut self, q: &Query) -> ControlFlow<Rejection> {
        if !q.locks.is_empty() {
            return ControlFlow::Break(Rejection::NotReadOnly(
                "a locking clause (FOR UPDATE/SHARE)".into(),
            ));
        }
        if q.fetch.is_some() {
            return ControlFlow::Break(Rejection::NotReadOnly("FETCH FIRST (use LIMIT)".into()));
        }
        if q.for_clause.is_some()
            || q.settings.is_some()
            || q.format_clause.is_some()
            || !q.pipe_operators.is_empty()
        {
            return ControlFlow::Break(Rejection::NotReadOnly("this query clause".into()));
        }
        // Entering the body of CTE i: only CTEs before it are visible there
        // (all of them, itself included, under WITH RECURSIVE).
        let address = q as *const Query as usize;
        if let Some(frame) = self.cte_frames.last_mut()
            && let Some(i) = frame.bodies.iter().position(|b| *b == address)
        {
            frame.visible = if frame.recursive {
                frame.names.len()
            } else {
                i
            };
        }
        if let Some(with) = &q.with {
            let names: Vec<String> = with
                .cte_tables
                .iter()
                .map(|c| c.alias.name.value.to_ascii_lowercase())
                .collect();
            self.derived.extend(names.iter().cloned());
            for cte in &with.cte_tables {
                self.output_names.extend(
                    cte.alias
                        .columns
                        .iter()
                        .map(|c| c.name.value.to_ascii_lowercase()),
                );
            }
            self.cte_frames.push(CteFrame {
                visible: names.len(),
                bodies: with
                    .cte_tables
                    .iter()
                    .map(|c| &*c.query as *const Query as usize)
                    .collect(),
                names,
                recursive: with.recursive,
                owner: address,
            });
        }
        check_body(&q.body)
    }

    fn post_visit_query(&mut self, q: &Query) -> ControlFlow<Rejection> {
        let address = q as *const Query as usize;
        if self.cte_frames.last().is_some_and(|f| f.owner == address) {
            self.cte_frames.pop();
        }
        // Leaving a CTE body: what follows (the next CTE sets its own
        // visibility) is the main body, which sees every CTE.
        if let Some(frame) = self.cte_frames.last_mut()
            && frame.bodies.contains(&address)
        {
            frame.visible = frame.names.len();
        }
        ControlFlow::Continue(())
    }

    fn pre_visit_select(&mut self, s: &Select) -> ControlFlow<Rejection> {
        if s.into.is_some() {
            return ControlFlow::Break(Rejection::NotReadOnly("SELECT INTO".into()));
        }
        if !s.lateral_views.is_empty() || !s.connect_by.is_empty() {
            return ControlFlow::Break(Rejection::NotReadOnly("this SELECT clause".into()));
        }
        for item in &s.projection {
            match item {
                SelectItem::Wildcard(_) | SelectItem::QualifiedWildcard(..) => {
                    return ControlFlow::Break(Rejection::Wildcard);
                }
                SelectItem::ExprWithAlias { alias, .. } => {
                    self.output_names.insert(alias.value.to_ascii_lowercase());
                }
                SelectItem::ExprWithAliases { aliases, .. } => {
                    self.output_names
                        .extend(aliases.iter().map(|a| a.value.to_ascii_lowercase()));
                }
                SelectItem::UnnamedExpr(_) => {}
            }
        }
        ControlFlow::Continue(())
    }

    fn pre_visit_table_factor(&mut self, t: &TableFactor) -> ControlFlow<Rejection> {
        match t {
            TableFactor::Table {
                name, alias, args, ..
            } => {
                if args.is_some() {
                    return ControlFlow::Break(Rejection::NotReadOnly(format!(
                        "table function {name}"
                    )));
                }
                if let Some(a) = alias {
                    self.output_names
                        .extend(a.columns.iter().map(|c| c.name.value.to_ascii_lowercase()));
                }
                let alias = alias.as_ref().map(|a| a.name.value.to_ascii_lowercase());
                if self.is_visible_cte(name) {
                    self.derived.extend(alias);
                    return ControlFlow::Continue(());
                }
                let table = name.to_string().to_ascii_lowercase();
                let table = table
                    .rsplit('.')
                    .next()
                    .unwrap_or(&table)
                    .trim_matches('"')
                    .to_owned();
                self.aliases
                    .entry(table.clone())
                    .or_default()
                    .insert(table.clone());
                if let Some(a) = alias {
                    self.aliases.entry(a).or_default().insert(table);
                }
                ControlFlow::Continue(())
            }
            TableFactor::Derived { alias, .. } => {
                if let Some(a) = alias {
                    self.derived.insert(a.name.value.to_ascii_lowercase());
                    self.output_names
                        .extend(a.columns.iter().map(|c| c.name.value.to_ascii_lowercase()));
                }
                ControlFlow::Continue(())
            }
            TableFactor::NestedJoin { .. } => ControlFlow::Continue(()),
            other => {
                let text = other.to_string();
                let head: String = text.chars().take(40).collect();
                ControlFlow::Break(Rejection::NotReadOnly(format!(
                    "the table expression {head}"
                )))
            }
        }
    }

    fn pre_visit_relation(&mut self, name: &ObjectName) -> ControlFlow<Rejection> {
        if !self.is_visible_cte(name) {
            self.relations.push(name.clone());
        }
        ControlFlow::Continue(())
    }

    fn pre_visit_expr(&mut self, e: &Expr) -> ControlFlow<Rejection> {
        match e {
            Expr::Identifier(id) => self.columns.push(vec![id.value.to_ascii_lowercase()]),
            Expr::CompoundIdentifier(parts) => {
                self.columns
                    .push(parts.iter().map(|p| p.value.to_ascii_lowercase()).collect());
            }
            Expr::Function(f) => {
                let parts = &f.name.0;
                let name = f.name.to_string().to_ascii_lowercase();
                if parts.len() != 1 || !ALLOWED_FUNCTIONS.contains(&name.as_str()) {
                    return ControlFlow::Break(Rejection::Function(name));
                }
            }
            Expr::Value(v) if matches!(v.value, Value::Placeholder(_)) => {
                return ControlFlow::Break(Rejection::NotReadOnly(
                    "a parameter placeholder".into(),
                ));
            }
            _ => {}
        }
        ControlFlow::Continue(())
    }
}

/// One WITH clause being walked. Queries are identified by address, which is
/// stable because the AST is not modified during the walk.
struct CteFrame {
    /// CTE names in order.
    names: Vec<String>,
    /// Addresses of the CTE body queries, parallel to `names`.
    bodies: Vec<usize>,
    /// How many leading names are visible at this point of the walk.
    visible: usize,
    recursive: bool,
    /// Address of the query that owns the WITH clause.
    owner: usize,
}

/// Only SELECT, nested queries, set operations and VALUES may form a query body.
fn check_body(body: &SetExpr) -> ControlFlow<Rejection> {
    match body {
        SetExpr::Select(_) | SetExpr::Query(_) | SetExpr::Values(_) => ControlFlow::Continue(()),
        SetExpr::SetOperation { left, right, .. } => {
            check_body(left)?;
            check_body(right)
        }
        SetExpr::Table(_) => ControlFlow::Break(Rejection::NotReadOnly("TABLE".into())),
        SetExpr::Insert(_) | SetExpr::Update(_) | SetExpr::Delete(_) | SetExpr::Merge(_) => {
            ControlFlow::Break(Rejection::NotReadOnly("a data-modifying statement".into()))
        }
    }
}

/// Schemas whose tables are the default search path (`main.t`, `public.t`).
const DEFAULT_SCHEMAS: [&str; 2] = ["main", "public"];

/// Catalog prefixes named in messages as system catalogs.
const SYSTEM_CATALOGS: [&str; 7] = [
    "information_schema",
    "pg_catalog",
    "sqlite_master",
    "sqlite_schema",
    "sqlite_temp_master",
    "account_usage",
    "snowflake",
];

impl Scan {
    /// Whether a one-part relation name refers to a CTE visible at this point.
    fn is_visible_cte(&self, name: &ObjectName) -> bool {
        match name.0.as_slice() {
            [single] => {
                let n = single.to_string().trim_matches('"').to_ascii_lowercase();
                self.cte_frames
                    .iter()
                    .any(|f| f.names[..f.visible].contains(&n))
            }
            _ => false,
        }
    }

    /// Checks relations and column references against the policy; returns the
    /// column classes read.
    fn resolve(
        &mut self,
        policy: &Policy,
        grants: &Grants,
    ) -> Result<BTreeSet<ColumnClass>, Rejection> {
        for name in &self.relations {
            let parts: Vec<String> = name
                .0
                .iter()
                .map(|p| p.to_string().trim_matches('"').to_ascii_lowercase())
                .collect();
            let full = parts.join(".");
            if parts
                .iter()
                .any(|p| SYSTEM_CATALOGS.contains(&p.as_str()) || p.starts_with("pg_"))
            {
                return Err(Rejection::SystemCatalog(full));
            }
            let table = match parts.as_slice() {
                [t] => t.clone(),
                [schema, t] if DEFAULT_SCHEMAS.contains(&schema.as_str()) => t.clone(),
                _ => return Err(Rejection::UnknownTable(full)),
            };
            if policy.schema.table(&table).is_none() {
                return Err(Rejection::UnknownTable(full));
            }
            self.tables.insert(table);
        }
        // Aliases may only stand for allow-listed tables or derived tables.
        self.aliases.retain(|_, tables| {
            tables.retain(|t| policy.schema.table(t).is_some());
            !tables.is_empty()
        });

        let mut classes = BTreeSet::new();
        for parts in &self.columns {
            let (qualifier, column) = match parts.as_slice() {
                [c] => (None, c.as_str()),
                [q, c] => (Some(q.as_str()), c.as_str()),
                [s, q, c] if DEFAULT_SCHEMAS.contains(&s.as_str()) => {
                    (Some(q.as_str()), c.as_str())
                }
                _ => return Err(Rejection::UnknownColumn(parts.join("."))),
            };
            if qualifier.is_none()
                && (self.aliases.contains_key(column) || self.derived.contains(column))
            {
                // `SELECT c FROM customers c` reads the whole row in PostgreSQL.
                return Err(Rejection::NotReadOnly(format!(
                    "a whole-row reference to {column}"
                )));
            }
            let candidates: Vec<&String> = match qualifier {
                Some(q) => match self.aliases.get(q) {
                    Some(tables) => tables.iter().collect(),
                    None if self.derived.contains(q) => continue,
                    None => return Err(Rejection::UnknownColumn(parts.join("."))),
                },
                None => self.tables.iter().collect(),
            };
            let mut found = false;
            for table in candidates {
                if let Some(def) = policy.schema.column(table, column) {
                    found = true;
                    if grants.access(def.class) == Access::Deny {
                        return Err(Rejection::ColumnDenied {
                            column: format!("{table}.{column}"),
                            class: def.class,
                            roles: grants.roles_phrase(),
                        });
                    }
                    classes.insert(def.class);
                }
            }
            let is_output_name = qualifier.is_none() && self.output_names.contains(column);
            if !found && !is_output_name {
                let shown = match qualifier {
                    Some(q) => format!("{q}.{column}"),
                    None => column.to_owned(),
                };
                return Err(Rejection::UnknownColumn(shown));
            }
        }
        Ok(classes)
    }
}

/// Sets the outer LIMIT to `min(existing literal, max_rows)`; a missing or
/// non-literal limit becomes `max_rows`.
fn clamp_limit(query: &mut Query, max_rows: u64) {
    let max = Expr::value(sqlparser::ast::Value::Number(max_rows.to_string(), false));
    let clamp = |limit: &mut Option<Expr>| {
        let keep = matches!(limit, Some(Expr::Value(v)) if matches!(&v.value, Value::Number(n, _) if n.parse::<u64>().is_ok_and(|n| n <= max_rows)));
        if !keep {
            *limit = Some(max.clone());
        }
    };
    match &mut query.limit_clause {
        None => {
            query.limit_clause = Some(LimitClause::LimitOffset {
                limit: Some(max.clone()),
                offset: None,
                limit_by: Vec::new(),
            });
        }
        Some(LimitClause::LimitOffset { limit, .. }) => clamp(limit),
        Some(LimitClause::OffsetCommaLimit { limit, .. }) => {
            let mut l = Some(limit.clone());
            clamp(&mut l);
            *limit = l.unwrap_or_else(|| max.clone());
        }
    }
}

/// Functions analysts use across SQLite and PostgreSQL: aggregates, window
/// functions, string, math, conditional and date functions. Anything else
/// (file access, sleeps, extensions, remote links, admin functions) is refused.
const ALLOWED_FUNCTIONS: &[&str] = &[
    // aggregates
    "count",
    "sum",
    "avg",
    "min",
    "max",
    "total",
    "group_concat",
    "string_agg",
    "array_agg",
    "bool_and",
    "bool_or",
    "every",
    "stddev",
    "stddev_pop",
    "stddev_samp",
    "variance",
    "var_pop",
    "var_samp",
    "percentile_cont",
    "percentile_disc",
    "median",
    "mode",
    "corr",
    "covar_pop",
    "covar_samp",
    // window
    "row_number",
    "rank",
    "dense_rank",
    "percent_rank",
    "cume_dist",
    "ntile",
    "lag",
    "lead",
    "first_value",
    "last_value",
    "nth_value",
    // conditional and null handling
    "coalesce",
    "ifnull",
    "nullif",
    "iif",
    "greatest",
    "least",
    // math
    "abs",
    "round",
    "ceil",
    "ceiling",
    "floor",
    "trunc",
    "sign",
    "sqrt",
    "power",
    "pow",
    "exp",
    "ln",
    "log",
    "log10",
    "mod",
    "div",
    // strings
    "lower",
    "upper",
    "length",
    "char_length",
    "character_length",
    "substr",
    "substring",
    "trim",
    "ltrim",
    "rtrim",
    "btrim",
    "replace",
    "instr",
    "strpos",
    "position",
    "concat",
    "concat_ws",
    "printf",
    "format",
    "left",
    "right",
    "lpad",
    "rpad",
    "split_part",
    "initcap",
    "reverse",
    // dates and times
    "date",
    "time",
    "datetime",
    "julianday",
    "unixepoch",
    "strftime",
    "date_trunc",
    "date_part",
    "to_char",
    "to_date",
    "to_timestamp",
    "now",
    "current_date",
    "current_timestamp",
    "age",
    "make_date",
    "extract",
    "dateadd",
    "datediff",
    "date_add",
    "date_sub",
    // casts
    "cast",
    "to_number",
];

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Origin::Metric => "metric",
            Origin::AdHoc => "ad hoc",
        })
    }
}

#[cfg(test)]
mod tests;
