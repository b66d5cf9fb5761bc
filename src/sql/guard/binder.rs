//! The binder: every name in a statement resolved to exactly one source
//! through real scopes, checked against one role's grants, and rewritten in
//! place (masks, row filters, `*` expanded).
//!
//! Scopes follow the SQL standard as PostgreSQL, SQLite and Snowflake apply it:
//! - a `SELECT` opens a level holding its FROM items: tables, derived tables,
//!   CTE references and joins; a bare column name resolves to the one column
//!   of that name in the innermost level that has it (two is ambiguous, and a
//!   denial), then in enclosing levels (correlated subqueries);
//! - a non-`LATERAL` derived table sees the enclosing levels but not its
//!   siblings; `LATERAL` sees the FROM items before it;
//! - `JOIN … USING (c)` and `NATURAL JOIN` merge columns: the merged `c`
//!   reads both sides, and both must be readable unmasked (the join compares
//!   raw values);
//! - table alias column lists rename by position, so they are allowed only on
//!   derived tables and CTEs, whose columns the binder knows; on a table the
//!   position of a column is the warehouse's, not the allow-list's;
//! - CTE and table names compare by each dialect's identifier rules
//!   ([`Dialect::canonical`]): a CTE named `"Customers"` does not shadow the
//!   table `customers` in PostgreSQL;
//! - a name that is no column but names a relation is a whole-row reference
//!   (PostgreSQL returns the whole row) and is denied, as are `t.*` and `*`
//!   anywhere but the select list.
//!
//! Only the AST node kinds matched here are accepted: anything else, including
//! a construct a future sqlparser adds, is a denial naming it.

use std::collections::BTreeSet;

use sqlparser::ast::{
    Expr, Ident, LimitClause, OrderByKind, Query, SelectItem, SetExpr, TableAlias,
    WildcardAdditionalOptions,
};
use sqlparser::parser::Parser;

use super::Rejection;
use super::functions::{self, ALLOWED_FUNCTIONS, DATE_PARTS};
use crate::policy::{Access, ColumnClass, RoleGrants, Schema};
use crate::sql::Dialect;

mod expr;
mod from;
mod names;
mod select;

use select::output_name;

/// Deepest nesting of expressions and queries the binder walks; deeper
/// statements are refused before anything else recurses over them.
pub(super) const MAX_DEPTH: usize = 200;

/// What binding decided, for [`crate::sql::ValidatedSql`].
#[derive(Debug, Default)]
pub(super) struct Decisions {
    /// Allow-listed tables read (lower case).
    pub tables: BTreeSet<String>,
    /// Column classes read.
    pub classes: BTreeSet<ColumnClass>,
    /// Columns masked, hashed or nulled, `table.column`.
    pub masked: BTreeSet<String>,
    /// Row filters applied, `table: predicate`.
    pub row_filters: BTreeSet<String>,
}

/// Binds and rewrites `query` for `role`.
///
/// # Errors
/// The first [`Rejection`]: an unknown, ambiguous, denied or whole-row
/// reference, an unsupported node, or a statement nested too deeply.
pub(super) fn bind(
    query: &mut Query,
    schema: &Schema,
    role: &RoleGrants,
    dialect: Dialect,
) -> Result<Decisions, Rejection> {
    let mut b = Binder {
        schema,
        role,
        dialect,
        depth: 0,
        levels: Vec::new(),
        ctes: Vec::new(),
        out: Decisions::default(),
    };
    b.query(query)?;
    Ok(b.out)
}

/// An allow-listed column of a table, with the role's access to it.
#[derive(Debug, Clone)]
struct BaseColumn {
    table: String,
    column: String,
    class: ColumnClass,
    access: Access,
}

/// A column of a relation in scope: a table's (with its policy) or a derived
/// table's or CTE's (already checked where it was computed). `name` is the
/// canonical name; `None` for an unnamed expression.
#[derive(Debug, Clone)]
struct Column {
    name: Option<String>,
    base: Option<BaseColumn>,
}

/// A FROM item in scope.
#[derive(Debug)]
struct Relation {
    /// Canonical name it is referred to by (alias, or table name); `None`
    /// for an unaliased derived table.
    name: Option<String>,
    /// How to spell that name in SQL the binder writes.
    ident: Option<Ident>,
    /// The table, for an unaliased table (`public.customers.region`).
    table: Option<String>,
    columns: Vec<Column>,
}

/// A column reachable by its bare name: one column, or the merged column of
/// a `USING`/`NATURAL` join (several).
#[derive(Debug, Clone)]
struct Visible {
    name: String,
    refs: Vec<(usize, usize)>,
}

/// One SELECT's scope.
#[derive(Debug, Default)]
struct Level {
    relations: Vec<Relation>,
    visible: Vec<Visible>,
    /// Output aliases and their bound select-list expressions. A bare name
    /// that is no known column but an alias (SQLite's WHERE, GROUP BY,
    /// HAVING) is replaced by the expression, so the warehouse cannot resolve
    /// it to a column outside the allow-list instead. `None`: an output of a
    /// set operation, usable only as a bare ORDER BY name.
    aliases: Vec<(String, Option<Expr>)>,
    /// Hidden while a non-LATERAL derived table of this level is bound.
    hidden: bool,
}

/// What a bare name refers to.
enum Bare {
    /// Table columns it reads (none for a derived column).
    Columns(Vec<BaseColumn>),
    /// The bound expression of an output alias.
    Alias(Box<Expr>),
}

/// A CTE in scope (pushed once its name is visible); `columns` is `None`
/// when its names are not known yet.
#[derive(Debug, Clone)]
struct Cte {
    name: String,
    columns: Option<Vec<Option<String>>>,
}

struct Binder<'a> {
    schema: &'a Schema,
    role: &'a RoleGrants,
    dialect: Dialect,
    depth: usize,
    levels: Vec<Level>,
    ctes: Vec<Vec<Cte>>,
    out: Decisions,
}

/// Schemas whose tables are the default search path (`main.t`, `public.t`).
const DEFAULT_SCHEMAS: [&str; 2] = ["main", "public"];

/// Catalog names refused as system catalogs.
const SYSTEM_CATALOGS: [&str; 7] = [
    "information_schema",
    "pg_catalog",
    "sqlite_master",
    "sqlite_schema",
    "sqlite_temp_master",
    "account_usage",
    "snowflake",
];

fn unsupported(what: impl std::fmt::Display) -> Rejection {
    let text = what.to_string();
    let head: String = text.chars().take(60).collect();
    Rejection::Unsupported(head)
}

fn unbound(reason: impl Into<String>) -> Rejection {
    Rejection::Unbound(reason.into())
}

/// `Ok` when `cond` holds, else the [`unsupported`] rejection for `what`.
fn only(cond: bool, what: impl FnOnce() -> String) -> Result<(), Rejection> {
    if cond {
        Ok(())
    } else {
        Err(unsupported(what()))
    }
}

fn no_wildcard_options(o: &WildcardAdditionalOptions) -> bool {
    o.opt_ilike.is_none()
        && o.opt_exclude.is_none()
        && o.opt_except.is_none()
        && o.opt_replace.is_none()
        && o.opt_rename.is_none()
        && o.opt_alias.is_none()
}

impl Binder<'_> {
    fn enter(&mut self) -> Result<(), Rejection> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(Rejection::TooComplex(MAX_DEPTH));
        }
        Ok(())
    }

    fn canon(&self, id: &Ident) -> String {
        self.dialect.canonical(id)
    }

    // Grows the stack on the heap when it runs low (stacker), as sqlparser
    // does for its own recursion.
    #[recursive::recursive]
    pub(super) fn query(&mut self, q: &mut Query) -> Result<Vec<Option<String>>, Rejection> {
        self.enter()?;
        if !q.locks.is_empty() {
            return Err(Rejection::NotReadOnly(
                "a locking clause (FOR UPDATE/SHARE)".into(),
            ));
        }
        if q.fetch.is_some() {
            return Err(Rejection::NotReadOnly("FETCH FIRST (use LIMIT)".into()));
        }
        only(
            q.for_clause.is_none()
                && q.settings.is_none()
                && q.format_clause.is_none()
                && q.pipe_operators.is_empty(),
            || "this query clause".into(),
        )?;
        let with_frame = q.with.is_some();
        if let Some(with) = &mut q.with {
            self.ctes.push(Vec::new());
            if with.recursive {
                // Every CTE of a WITH RECURSIVE is visible in every body.
                for cte in &with.cte_tables {
                    let columns = if cte.alias.columns.is_empty() {
                        shallow_outputs(&cte.query.body, self.dialect)
                    } else {
                        Some(
                            cte.alias
                                .columns
                                .iter()
                                .map(|c| Some(self.canon(&c.name)))
                                .collect(),
                        )
                    };
                    let name = self.canon(&cte.alias.name);
                    self.frame().push(Cte { name, columns });
                }
            }
            for cte in &with.cte_tables {
                self.not_a_table_name(&cte.alias.name, "a CTE", None)?;
            }
            for (i, cte) in with.cte_tables.iter_mut().enumerate() {
                only(cte.from.is_none(), || format!("CTE {}", cte.alias.name))?;
                let outputs = self.query(&mut cte.query)?;
                let columns = rename(outputs, &cte.alias, self.dialect)?;
                let name = self.canon(&cte.alias.name);
                if with.recursive {
                    self.frame()[i].columns = Some(columns);
                } else {
                    self.frame().push(Cte {
                        name,
                        columns: Some(columns),
                    });
                }
            }
        }
        let (outputs, level) = match q.body.as_mut() {
            SetExpr::Select(s) => self.select(s)?,
            other => {
                let outputs = self.set_expr(other)?;
                let level = Level {
                    aliases: outputs
                        .iter()
                        .flatten()
                        .map(|n| (n.clone(), None))
                        .collect(),
                    ..Level::default()
                };
                (outputs, level)
            }
        };
        if let Some(order_by) = &mut q.order_by {
            only(order_by.interpolate.is_none(), || "INTERPOLATE".into())?;
            self.levels.push(level);
            let bound = match &mut order_by.kind {
                OrderByKind::Expressions(items) => items
                    .iter_mut()
                    .try_for_each(|o| self.output_order_by_expr(o)),
                OrderByKind::All(_) => Err(unsupported("ORDER BY ALL")),
            };
            self.levels.pop();
            bound?;
        }
        match &mut q.limit_clause {
            None => {}
            Some(LimitClause::LimitOffset {
                limit,
                offset,
                limit_by,
            }) => {
                only(limit_by.is_empty(), || "LIMIT BY".into())?;
                if let Some(l) = limit {
                    self.expr(l)?;
                }
                if let Some(o) = offset {
                    self.expr(&mut o.value)?;
                }
            }
            Some(LimitClause::OffsetCommaLimit { offset, limit }) => {
                self.expr(offset)?;
                self.expr(limit)?;
            }
        }
        if with_frame {
            self.ctes.pop();
        }
        self.depth -= 1;
        Ok(outputs)
    }

    /// Refuses a name a statement gives a CTE, a derived table or another
    /// table's alias when it is the name of an allow-listed table (`own`:
    /// the canonical name of the table being aliased or filtered, which may
    /// keep its own name). Row filters
    /// and the filters that follow keys name base tables unqualified, so the
    /// search path decides (the role's views under database enforcement); a
    /// CTE named like a table would replace it inside them (a CTE
    /// `customers` of EMEA ids would widen every filter keyed to customers).
    pub(super) fn not_a_table_name(
        &self,
        name: &Ident,
        what: &str,
        own: Option<&str>,
    ) -> Result<(), Rejection> {
        let canon = self.canon(name);
        let shadowed = (own != Some(canon.as_str()))
            .then(|| {
                self.schema
                    .tables
                    .keys()
                    .find(|t| self.dialect.canonical_name(t) == canon)
            })
            .flatten();
        match shadowed {
            Some(t) => Err(unbound(format!(
                "{what} may not be named {name}, the name of table {t}; rename it"
            ))),
            None => Ok(()),
        }
    }

    pub(super) fn frame(&mut self) -> &mut Vec<Cte> {
        self.ctes.last_mut().expect("a WITH frame is open")
    }

    // Grows the stack on the heap when it runs low (stacker), as sqlparser
    // does for its own recursion.
    #[recursive::recursive]
    pub(super) fn set_expr(
        &mut self,
        body: &mut SetExpr,
    ) -> Result<Vec<Option<String>>, Rejection> {
        self.enter()?;
        let outputs = match body {
            SetExpr::Select(s) => self.select(s)?.0,
            SetExpr::Query(q) => self.query(q)?,
            SetExpr::SetOperation { left, right, .. } => {
                let outputs = self.set_expr(left)?;
                self.set_expr(right)?;
                outputs
            }
            SetExpr::Values(values) => {
                let mut width = 0;
                for row in &mut values.rows {
                    width = width.max(row.len());
                    for e in row.iter_mut() {
                        self.expr(e)?;
                    }
                }
                (1..=width)
                    .map(|i| Some(self.dialect.canonical_name(&format!("column{i}"))))
                    .collect()
            }
            SetExpr::Table(_) => return Err(Rejection::NotReadOnly("TABLE".into())),
            SetExpr::Insert(_) | SetExpr::Update(_) | SetExpr::Delete(_) | SetExpr::Merge(_) => {
                return Err(Rejection::NotReadOnly("a data-modifying statement".into()));
            }
        };
        self.depth -= 1;
        Ok(outputs)
    }

    pub(super) fn top(&mut self) -> &mut Level {
        self.levels.last_mut().expect("a level is open")
    }
}

/// Applies a table alias's column list to known output names (by position).
fn rename(
    mut outputs: Vec<Option<String>>,
    alias: &TableAlias,
    dialect: Dialect,
) -> Result<Vec<Option<String>>, Rejection> {
    if alias.columns.len() > outputs.len() {
        return Err(unbound(format!(
            "{} names {} columns but has {}",
            alias.name,
            alias.columns.len(),
            outputs.len()
        )));
    }
    for (slot, c) in outputs.iter_mut().zip(&alias.columns) {
        only(c.data_type.is_none(), || "a typed column alias".into())?;
        *slot = Some(dialect.canonical(&c.name));
    }
    Ok(outputs)
}

/// Output names of a query body from its select lists alone (no binding),
/// for the CTEs of a `WITH RECURSIVE`; `None` where a `*` needs scopes.
fn shallow_outputs(body: &SetExpr, dialect: Dialect) -> Option<Vec<Option<String>>> {
    match body {
        SetExpr::Select(s) => s
            .projection
            .iter()
            .map(|item| match item {
                SelectItem::UnnamedExpr(e) => Some(output_name(e, dialect)),
                SelectItem::ExprWithAlias { alias, .. } => Some(Some(dialect.canonical(alias))),
                _ => None,
            })
            .collect(),
        SetExpr::Query(q) => shallow_outputs(&q.body, dialect),
        SetExpr::SetOperation { left, .. } => shallow_outputs(left, dialect),
        _ => None,
    }
}
