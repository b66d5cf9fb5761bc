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
    BinaryOperator, CastKind, DataType, Distinct, Expr, Function, FunctionArg, FunctionArgExpr,
    FunctionArgumentClause, FunctionArguments, GroupByExpr, Ident, JoinConstraint, JoinOperator,
    LimitClause, NamedWindowExpr, ObjectName, ObjectNamePart, OrderByExpr, OrderByKind,
    OrderBySort, Query, Select, SelectFlavor, SelectItem, SelectItemQualifiedWildcardKind, SetExpr,
    TableAlias, TableFactor, TableWithJoins, Value, WildcardAdditionalOptions, WindowFrameBound,
    WindowSpec, WindowType,
};
use sqlparser::parser::Parser;

use super::Rejection;
use super::functions::{self, ALLOWED_FUNCTIONS, DATE_PARTS};
use crate::policy::{Access, ColumnClass, RoleGrants, Schema};
use crate::sql::Dialect;

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

/// A CTE in scope; `columns` is `None` when its names are not known yet.
#[derive(Debug, Clone)]
struct Cte {
    name: String,
    columns: Option<Vec<Option<String>>>,
    visible: bool,
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

    // ----- queries -------------------------------------------------------

    fn query(&mut self, q: &mut Query) -> Result<Vec<Option<String>>, Rejection> {
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
                    self.frame().push(Cte {
                        name,
                        columns,
                        visible: true,
                    });
                }
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
                        visible: true,
                    });
                }
            }
        }
        let (outputs, level) = match q.body.as_mut() {
            SetExpr::Select(s) => {
                let (outputs, level) = self.select(s)?;
                (outputs, level)
            }
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
                OrderByKind::Expressions(items) => {
                    items.iter_mut().try_for_each(|o| self.order_by_expr(o))
                }
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

    fn frame(&mut self) -> &mut Vec<Cte> {
        self.ctes.last_mut().expect("a WITH frame is open")
    }

    fn set_expr(&mut self, body: &mut SetExpr) -> Result<Vec<Option<String>>, Rejection> {
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

    /// Binds one SELECT; returns its output names and its level (with the
    /// output names as aliases) for the enclosing query's ORDER BY.
    fn select(&mut self, s: &mut Select) -> Result<(Vec<Option<String>>, Level), Rejection> {
        if s.into.is_some() {
            return Err(Rejection::NotReadOnly("SELECT INTO".into()));
        }
        only(
            s.optimizer_hints.is_empty()
                && s.select_modifiers.is_none()
                && s.top.is_none()
                && s.exclude.is_none()
                && s.lateral_views.is_empty()
                && s.prewhere.is_none()
                && s.connect_by.is_empty()
                && s.cluster_by.is_empty()
                && s.distribute_by.is_empty()
                && s.sort_by.is_empty()
                && s.value_table_mode.is_none()
                && matches!(s.flavor, SelectFlavor::Standard),
            || "this SELECT clause".into(),
        )?;
        self.levels.push(Level::default());
        let result = self.select_in_level(s);
        let level = self.levels.pop().expect("pushed above");
        result.map(|outputs| (outputs, level))
    }

    fn select_in_level(&mut self, s: &mut Select) -> Result<Vec<Option<String>>, Rejection> {
        for item in &mut s.from {
            self.table_with_joins(item)?;
        }
        for w in &mut s.named_window {
            if let NamedWindowExpr::WindowSpec(spec) = &mut w.1 {
                self.window_spec(spec)?;
            }
        }
        let mut outputs = Vec::new();
        let mut items = Vec::new();
        for item in std::mem::take(&mut s.projection) {
            match item {
                SelectItem::Wildcard(opts) => {
                    only(no_wildcard_options(&opts), || {
                        "SELECT * with options".into()
                    })?;
                    self.expand(None, &mut items, &mut outputs)?;
                }
                SelectItem::QualifiedWildcard(kind, opts) => {
                    only(no_wildcard_options(&opts), || {
                        "SELECT t.* with options".into()
                    })?;
                    let SelectItemQualifiedWildcardKind::ObjectName(name) = kind else {
                        return Err(unbound("a whole-row reference (expression.*)"));
                    };
                    self.expand(Some(&name), &mut items, &mut outputs)?;
                }
                SelectItem::UnnamedExpr(mut e) => {
                    let name = output_name(&e, self.dialect);
                    let original = match &e {
                        Expr::Identifier(id) => Some(id.clone()),
                        Expr::CompoundIdentifier(parts) => parts.last().cloned(),
                        _ => None,
                    };
                    self.expr(&mut e)?;
                    let masked = !matches!(e, Expr::Identifier(_) | Expr::CompoundIdentifier(_));
                    outputs.push(name);
                    match original {
                        // A masked column keeps its name.
                        Some(alias) if masked => {
                            items.push(SelectItem::ExprWithAlias { expr: e, alias });
                        }
                        _ => items.push(SelectItem::UnnamedExpr(e)),
                    }
                }
                SelectItem::ExprWithAlias { mut expr, alias } => {
                    self.expr(&mut expr)?;
                    outputs.push(Some(self.canon(&alias)));
                    items.push(SelectItem::ExprWithAlias { expr, alias });
                }
                SelectItem::ExprWithAliases { .. } => {
                    return Err(unsupported("a select item with several aliases"));
                }
            }
        }
        self.top().aliases = items
            .iter()
            .filter_map(|item| match item {
                SelectItem::ExprWithAlias { expr, alias } => {
                    Some((self.canon(alias), Some(expr.clone())))
                }
                _ => None,
            })
            .collect();
        s.projection = items;
        if let Some(Distinct::On(exprs)) = &mut s.distinct {
            exprs.iter_mut().try_for_each(|e| self.expr(e))?;
        }
        if let Some(e) = &mut s.selection {
            self.expr(e)?;
        }
        match &mut s.group_by {
            GroupByExpr::All(modifiers) => only(modifiers.is_empty(), || "GROUP BY ALL".into())?,
            GroupByExpr::Expressions(exprs, modifiers) => {
                only(modifiers.is_empty(), || "a GROUP BY modifier".into())?;
                exprs.iter_mut().try_for_each(|e| self.expr(e))?;
            }
        }
        if let Some(e) = &mut s.having {
            self.expr(e)?;
        }
        if let Some(e) = &mut s.qualify {
            self.expr(e)?;
        }
        Ok(outputs)
    }

    fn top(&mut self) -> &mut Level {
        self.levels.last_mut().expect("a level is open")
    }

    // ----- FROM ----------------------------------------------------------

    fn table_with_joins(&mut self, item: &mut TableWithJoins) -> Result<(), Rejection> {
        let start = self.top().visible.len();
        self.factor(&mut item.relation)?;
        for join in &mut item.joins {
            only(!join.global, || "GLOBAL JOIN".into())?;
            let constraint = match &mut join.join_operator {
                JoinOperator::Join(c)
                | JoinOperator::Inner(c)
                | JoinOperator::Left(c)
                | JoinOperator::LeftOuter(c)
                | JoinOperator::Right(c)
                | JoinOperator::RightOuter(c)
                | JoinOperator::FullOuter(c)
                | JoinOperator::CrossJoin(c) => c,
                other => return Err(unsupported(format!("the join {other:?}"))),
            };
            let right_start = self.top().visible.len();
            self.factor(&mut join.relation)?;
            match constraint {
                JoinConstraint::On(e) => self.expr(e)?,
                JoinConstraint::Using(names) => {
                    let mut merged = Vec::new();
                    for n in names.iter() {
                        let [ObjectNamePart::Identifier(id)] = n.0.as_slice() else {
                            return Err(unsupported(format!("USING ({n})")));
                        };
                        merged.push(self.canon(id));
                    }
                    self.merge(start, right_start, &merged)?;
                }
                JoinConstraint::Natural => self.natural(start, right_start)?,
                JoinConstraint::None => {}
            }
        }
        Ok(())
    }

    /// `USING (names)`: each name must be one column on the left (entries
    /// `start..right_start`) and one on the right; both are read, unmasked,
    /// and replaced by one merged column placed first, as PostgreSQL orders them.
    fn merge(
        &mut self,
        start: usize,
        right_start: usize,
        names: &[String],
    ) -> Result<(), Rejection> {
        for (i, name) in names.iter().enumerate() {
            let level = self.levels.last().expect("a level is open");
            let find = |range: std::ops::Range<usize>| -> Result<usize, Rejection> {
                let hits: Vec<usize> = range.filter(|&k| level.visible[k].name == *name).collect();
                match hits.as_slice() {
                    [one] => Ok(*one),
                    [] => Err(Rejection::UnknownColumn(format!("{name} (in USING)"))),
                    _ => Err(unbound(format!("column {name} in USING is ambiguous"))),
                }
            };
            let l = find(start..right_start)?;
            let r = find(right_start..level.visible.len())?;
            let mut refs = level.visible[l].refs.clone();
            refs.extend(level.visible[r].refs.iter().copied());
            let bases: Vec<BaseColumn> = refs
                .iter()
                .filter_map(|&(rel, col)| level.relations[rel].columns[col].base.clone())
                .collect();
            for base in bases {
                if self.read(&base)? != Access::Allow {
                    return Err(unbound(format!(
                        "a join USING {name} would compare {}.{} unmasked; join with ON instead",
                        base.table, base.column
                    )));
                }
            }
            let visible = &mut self.top().visible;
            visible.remove(r);
            visible.remove(l);
            visible.insert(
                start + i,
                Visible {
                    name: name.clone(),
                    refs,
                },
            );
        }
        Ok(())
    }

    /// `NATURAL JOIN` joins on every column the two sides share, including
    /// columns of a table that are not in the allow-list and so unknown
    /// here: allowed only between derived tables and CTEs.
    fn natural(&mut self, start: usize, right_start: usize) -> Result<(), Rejection> {
        let level = self.levels.last().expect("a level is open");
        let reads_table = level.visible[start..].iter().any(|v| {
            v.refs
                .iter()
                .any(|&(rel, col)| level.relations[rel].columns[col].base.is_some())
        });
        if reads_table {
            return Err(unbound(
                "a NATURAL JOIN with a table joins on columns nobody named; name them with ON or USING",
            ));
        }
        let left: BTreeSet<&String> = level.visible[start..right_start]
            .iter()
            .map(|v| &v.name)
            .collect();
        let mut common: Vec<String> = Vec::new();
        for v in &level.visible[right_start..] {
            if left.contains(&v.name) && !common.contains(&v.name) {
                common.push(v.name.clone());
            }
        }
        self.merge(start, right_start, &common)
    }

    fn factor(&mut self, factor: &mut TableFactor) -> Result<(), Rejection> {
        match factor {
            TableFactor::Table { .. } => self.table_factor(factor),
            TableFactor::Derived {
                lateral,
                subquery,
                alias,
                sample,
            } => {
                only(sample.is_none(), || "TABLESAMPLE".into())?;
                let hide = !*lateral;
                self.top().hidden = hide;
                let outputs = self.query(subquery);
                self.top().hidden = false;
                let outputs = outputs?;
                let (name, ident, columns) = match alias {
                    Some(a) => (
                        Some(self.canon(&a.name)),
                        Some(a.name.clone()),
                        rename(outputs, a, self.dialect)?,
                    ),
                    None => (None, None, outputs),
                };
                self.add_relation(Relation {
                    name,
                    ident,
                    table: None,
                    columns: columns
                        .into_iter()
                        .map(|name| Column { name, base: None })
                        .collect(),
                });
                Ok(())
            }
            TableFactor::NestedJoin {
                table_with_joins,
                alias,
            } => {
                only(alias.is_none(), || {
                    "an alias on a parenthesized join".into()
                })?;
                self.table_with_joins(table_with_joins)
            }
            other => Err(Rejection::NotReadOnly(format!(
                "the table expression {}",
                other.to_string().chars().take(40).collect::<String>()
            ))),
        }
    }

    fn add_relation(&mut self, relation: Relation) {
        let level = self.top();
        let index = level.relations.len();
        for (k, c) in relation.columns.iter().enumerate() {
            if let Some(name) = &c.name {
                level.visible.push(Visible {
                    name: name.clone(),
                    refs: vec![(index, k)],
                });
            }
        }
        level.relations.push(relation);
    }

    fn table_factor(&mut self, factor: &mut TableFactor) -> Result<(), Rejection> {
        let TableFactor::Table {
            name,
            alias,
            args,
            with_hints,
            version,
            with_ordinality,
            partitions,
            json_path,
            sample,
            index_hints,
        } = factor
        else {
            unreachable!("called for TableFactor::Table only");
        };
        if args.is_some() {
            return Err(Rejection::NotReadOnly(format!("table function {name}")));
        }
        only(
            with_hints.is_empty()
                && version.is_none()
                && !*with_ordinality
                && partitions.is_empty()
                && json_path.is_none()
                && sample.is_none()
                && index_hints.is_empty(),
            || format!("this way of reading {name}"),
        )?;
        let parts = self.name_parts(name)?;
        // A one-part name may be a CTE in scope (innermost WITH first).
        if let [single] = parts.as_slice()
            && let Some(cte) = self
                .ctes
                .iter()
                .rev()
                .flat_map(|f| f.iter().rev())
                .find(|c| c.visible && c.name == *single)
                .cloned()
        {
            let Some(columns) = cte.columns else {
                return Err(unbound(format!(
                    "the columns of CTE {single} are not known here; name them in WITH {single}(…)"
                )));
            };
            let (rel_name, ident, columns) = match alias {
                Some(a) => (
                    self.canon(&a.name),
                    a.name.clone(),
                    rename(columns, a, self.dialect)?,
                ),
                None => (
                    cte.name.clone(),
                    Ident::with_quote('"', cte.name.clone()),
                    columns,
                ),
            };
            self.add_relation(Relation {
                name: Some(rel_name),
                ident: Some(ident),
                table: None,
                columns: columns
                    .into_iter()
                    .map(|name| Column { name, base: None })
                    .collect(),
            });
            return Ok(());
        }
        let shown = name.to_string();
        let lower: Vec<String> = parts.iter().map(|p| p.to_ascii_lowercase()).collect();
        if lower
            .iter()
            .any(|p| SYSTEM_CATALOGS.contains(&p.as_str()) || p.starts_with("pg_"))
        {
            return Err(Rejection::SystemCatalog(lower.join(".")));
        }
        let table_part = match parts.as_slice() {
            [t] => t,
            [s, t]
                if DEFAULT_SCHEMAS
                    .iter()
                    .any(|d| self.dialect.canonical_name(d) == *s) =>
            {
                t
            }
            _ => return Err(Rejection::UnknownTable(shown)),
        };
        let Some((table, def)) = self
            .schema
            .tables
            .iter()
            .find(|(t, _)| self.dialect.canonical_name(t) == *table_part)
        else {
            return Err(Rejection::UnknownTable(shown));
        };
        if alias.as_ref().is_some_and(|a| !a.columns.is_empty()) {
            return Err(unbound(format!(
                "renaming the columns of table {table} by position (AS t(a, b, …)); alias the columns you select instead"
            )));
        }
        self.out.tables.insert(table.clone());
        // Spelled without its (default) schema, so the search path decides:
        // the base table, or the role's views where the database enforces
        // the policy too.
        if let Some(ObjectNamePart::Identifier(last)) = name.0.last().cloned() {
            *name = ObjectName(vec![ObjectNamePart::Identifier(last)]);
        }
        let columns: Vec<Column> = def
            .columns
            .iter()
            .map(|(c, col)| {
                let mut access = self.role.access(col.class);
                if access == Access::Hash && self.dialect == Dialect::Sqlite {
                    access = Access::Deny;
                }
                Column {
                    name: Some(self.dialect.canonical_name(c)),
                    base: Some(BaseColumn {
                        table: table.clone(),
                        column: c.clone(),
                        class: col.class,
                        access,
                    }),
                }
            })
            .collect();
        let (rel_name, ident, unaliased) = match alias {
            Some(a) => (self.canon(&a.name), a.name.clone(), None),
            None => (
                self.dialect.canonical_name(table),
                self.dialect.ident(table),
                Some(table.clone()),
            ),
        };
        if let Some(predicate) = self.role.row_filter(table) {
            let readable: Vec<String> = columns
                .iter()
                .filter_map(|c| c.base.as_ref())
                .filter(|b| b.access != Access::Deny)
                .map(|b| self.dialect.quote_ident(&b.column))
                .collect();
            let sql = format!(
                "SELECT {} FROM {} WHERE {predicate}",
                readable.join(", "),
                self.dialect.quote_ident(table)
            );
            let parser = self.dialect.parser();
            let subquery = Parser::new(parser.as_ref())
                .try_with_sql(&sql)
                .and_then(|mut p| p.parse_query())
                .map_err(|_| Rejection::RowFilter(table.clone()))?;
            self.out.row_filters.insert(format!("{table}: {predicate}"));
            *factor = TableFactor::Derived {
                lateral: false,
                subquery,
                alias: Some(TableAlias {
                    explicit: true,
                    name: ident.clone(),
                    columns: Vec::new(),
                    at: None,
                }),
                sample: None,
            };
        }
        self.add_relation(Relation {
            name: Some(rel_name),
            ident: Some(ident),
            table: unaliased,
            columns,
        });
        Ok(())
    }

    /// Canonical parts of an object name; function-style parts are refused.
    fn name_parts(&self, name: &ObjectName) -> Result<Vec<String>, Rejection> {
        name.0
            .iter()
            .map(|p| match p {
                ObjectNamePart::Identifier(id) => Ok(self.canon(id)),
                ObjectNamePart::Function(_) => Err(unsupported(format!("the name {name}"))),
            })
            .collect()
    }

    // ----- `*` -----------------------------------------------------------

    /// Expands `*` (all FROM items of this level) or `t.*` to the columns the
    /// role may read, masks applied; denied columns are left out.
    fn expand(
        &mut self,
        qualifier: Option<&ObjectName>,
        items: &mut Vec<SelectItem>,
        outputs: &mut Vec<Option<String>>,
    ) -> Result<(), Rejection> {
        let entries: Vec<Visible> = match qualifier {
            None => {
                let level = self.levels.last().expect("a level is open");
                if level.relations.is_empty() {
                    return Err(unbound("SELECT * without a FROM clause"));
                }
                level.visible.clone()
            }
            Some(name) => {
                let parts = self.name_parts(name)?;
                let [q] = parts.as_slice() else {
                    return Err(unbound(format!("{name}.* names no table of this query")));
                };
                let level = self.levels.last().expect("a level is open");
                let hits: Vec<usize> = (0..level.relations.len())
                    .filter(|&i| level.relations[i].name.as_deref() == Some(q.as_str()))
                    .collect();
                let [rel] = hits.as_slice() else {
                    return Err(unbound(format!(
                        "{name}.* names no single table of this query"
                    )));
                };
                let relation = &level.relations[*rel];
                if relation.columns.iter().any(|c| c.name.is_none()) {
                    return Err(unbound(format!(
                        "{name}.* includes a column without a name; name it or list the columns"
                    )));
                }
                relation
                    .columns
                    .iter()
                    .enumerate()
                    .map(|(k, c)| Visible {
                        name: c.name.clone().unwrap_or_default(),
                        refs: vec![(*rel, k)],
                    })
                    .collect()
            }
        };
        let unnamed = {
            let level = self.levels.last().expect("a level is open");
            qualifier.is_none()
                && level
                    .relations
                    .iter()
                    .any(|r| r.columns.iter().any(|c| c.name.is_none()))
        };
        if unnamed {
            return Err(unbound(
                "SELECT * over a subquery column without a name; name it or list the columns",
            ));
        }
        for v in entries {
            let level = self.levels.last().expect("a level is open");
            let (rel, col) = v.refs[0];
            let relation = &level.relations[rel];
            let column = &relation.columns[col];
            if v.refs.len() == 1
                && let Some(base) = &column.base
                && base.access == Access::Deny
            {
                continue;
            }
            let col_ident = match &column.base {
                Some(b) => self.dialect.ident(&b.column),
                None => Ident::with_quote('"', v.name.clone()),
            };
            let unique = level.visible.iter().filter(|o| o.name == v.name).count() == 1;
            let mut expr = match (&relation.ident, v.refs.len()) {
                (Some(q), 1) => Expr::CompoundIdentifier(vec![q.clone(), col_ident.clone()]),
                _ if unique => Expr::Identifier(col_ident.clone()),
                _ => {
                    return Err(unbound(format!(
                        "SELECT * would read {} from a subquery without a name; alias the subquery",
                        v.name
                    )));
                }
            };
            let base = if v.refs.len() == 1 {
                column.base.clone()
            } else {
                None
            };
            outputs.push(Some(v.name.clone()));
            match base {
                Some(b) if b.access != Access::Allow => {
                    let access = self.read(&b)?;
                    expr = self.mask(&expr, access)?;
                    items.push(SelectItem::ExprWithAlias {
                        expr,
                        alias: col_ident,
                    });
                }
                Some(b) => {
                    self.read(&b)?;
                    items.push(SelectItem::UnnamedExpr(expr));
                }
                None => items.push(SelectItem::UnnamedExpr(expr)),
            }
        }
        Ok(())
    }

    // ----- names ---------------------------------------------------------

    /// Records a read of a table column; a denied one is the rejection.
    fn read(&mut self, base: &BaseColumn) -> Result<Access, Rejection> {
        if base.access == Access::Deny {
            return Err(Rejection::ColumnDenied {
                column: format!("{}.{}", base.table, base.column),
                class: base.class,
                roles: self.role.phrase(),
            });
        }
        self.out.classes.insert(base.class);
        if base.access != Access::Allow {
            self.out
                .masked
                .insert(format!("{}.{}", base.table, base.column));
        }
        Ok(base.access)
    }

    /// Resolves a column reference and applies the policy, masking in place.
    fn column_ref(&mut self, e: &mut Expr) -> Result<(), Rejection> {
        let parts: Vec<Ident> = match e {
            Expr::Identifier(id) => vec![id.clone()],
            Expr::CompoundIdentifier(parts) => parts.clone(),
            _ => unreachable!("called for identifiers only"),
        };
        let canon: Vec<String> = parts.iter().map(|p| self.canon(p)).collect();
        let shown = parts
            .iter()
            .map(|p| p.value.clone())
            .collect::<Vec<_>>()
            .join(".");
        let columns: Vec<BaseColumn> = match canon.as_slice() {
            [name] => match self.bare(name)? {
                Bare::Columns(cols) => cols,
                Bare::Alias(expr) => {
                    *e = Expr::Nested(expr);
                    return Ok(());
                }
            },
            [q, c] => self.qualified(None, q, c, &shown)?,
            [s, q, c]
                if DEFAULT_SCHEMAS
                    .iter()
                    .any(|d| self.dialect.canonical_name(d) == *s) =>
            {
                let columns = self.qualified(Some(q), q, c, &shown)?;
                // The table is spelled without its schema now; so is the column.
                *e = Expr::CompoundIdentifier(parts[1..].to_vec());
                columns
            }
            _ => return Err(Rejection::UnknownColumn(shown)),
        };
        let mut accesses = Vec::new();
        for base in &columns {
            accesses.push(self.read(base)?);
        }
        match accesses.as_slice() {
            [] => Ok(()),
            [access] if *access != Access::Allow => {
                *e = self.mask(e, *access)?;
                Ok(())
            }
            many if many.iter().any(|a| *a != Access::Allow) => Err(unbound(format!(
                "{shown} merges columns of a JOIN USING that are masked; qualify it"
            ))),
            _ => Ok(()),
        }
    }

    /// A bare name: the base columns it reads, or the output alias it names.
    fn bare(&self, name: &str) -> Result<Bare, Rejection> {
        for level in self.levels.iter().rev().filter(|l| !l.hidden) {
            let hits: Vec<&Visible> = level.visible.iter().filter(|v| v.name == name).collect();
            match hits.as_slice() {
                [] => continue,
                [one] => {
                    return Ok(Bare::Columns(
                        one.refs
                            .iter()
                            .filter_map(|&(r, c)| level.relations[r].columns[c].base.clone())
                            .collect(),
                    ));
                }
                _ => return Err(unbound(format!("column {name} is ambiguous; qualify it"))),
            }
        }
        let names_relation = self
            .levels
            .iter()
            .filter(|l| !l.hidden)
            .any(|l| l.relations.iter().any(|r| r.name.as_deref() == Some(name)));
        if names_relation {
            return Err(unbound(format!(
                "{name} is a whole-row reference to a table; name the columns"
            )));
        }
        let alias = self
            .levels
            .iter()
            .rev()
            .find(|l| !l.hidden)
            .and_then(|l| l.aliases.iter().find(|(a, _)| a == name));
        match alias {
            Some((_, Some(expr))) => Ok(Bare::Alias(Box::new(expr.clone()))),
            _ => Err(Rejection::UnknownColumn(name.to_owned())),
        }
    }

    /// `q.c` (or `schema.q.c` when `table` is given: q must be an unaliased table).
    fn qualified(
        &self,
        table: Option<&String>,
        q: &str,
        c: &str,
        shown: &str,
    ) -> Result<Vec<BaseColumn>, Rejection> {
        for level in self.levels.iter().rev().filter(|l| !l.hidden) {
            let hits: Vec<&Relation> = level
                .relations
                .iter()
                .filter(|r| r.name.as_deref() == Some(q))
                .filter(|r| {
                    table.is_none_or(|t| {
                        r.table
                            .as_deref()
                            .map(|n| self.dialect.canonical_name(n))
                            .as_deref()
                            == Some(t.as_str())
                    })
                })
                .collect();
            match hits.as_slice() {
                [] => continue,
                [rel] => {
                    let cols: Vec<&Column> = rel
                        .columns
                        .iter()
                        .filter(|col| col.name.as_deref() == Some(c))
                        .collect();
                    return match cols.as_slice() {
                        [one] => Ok(one.base.clone().into_iter().collect()),
                        [] => Err(Rejection::UnknownColumn(shown.to_owned())),
                        _ => Err(unbound(format!("column {shown} is ambiguous"))),
                    };
                }
                _ => return Err(unbound(format!("{q} names several tables of this query"))),
            }
        }
        Err(Rejection::UnknownColumn(shown.to_owned()))
    }

    /// The masked form of an expression (`NULL`, a fixed mask, or a hash).
    fn mask(&self, e: &Expr, access: Access) -> Result<Expr, Rejection> {
        let reference = e.to_string();
        let sql = match access {
            Access::Null => "NULL".to_owned(),
            Access::Mask => format!("CASE WHEN {reference} IS NULL THEN NULL ELSE '****' END"),
            Access::Hash => format!("md5(CAST({reference} AS TEXT))"),
            Access::Allow | Access::Deny => return Ok(e.clone()),
        };
        let parser = self.dialect.parser();
        Parser::new(parser.as_ref())
            .try_with_sql(&sql)
            .and_then(|mut p| p.parse_expr())
            .map_err(|_| Rejection::Unrenderable)
    }

    // ----- expressions ---------------------------------------------------

    fn order_by_expr(&mut self, o: &mut OrderByExpr) -> Result<(), Rejection> {
        only(o.with_fill.is_none(), || "WITH FILL".into())?;
        only(
            !matches!(o.options.sort, Some(OrderBySort::Using(_))),
            || "ORDER BY … USING an operator".into(),
        )?;
        // A bare ORDER BY name that is an output alias means that output
        // column, before any input column (PostgreSQL manual, SELECT, "ORDER
        // BY Clause"; SQLite, "The ORDER BY clause"): nothing else is read.
        if let Expr::Identifier(id) = &o.expr {
            let name = self.canon(id);
            if self
                .levels
                .last()
                .is_some_and(|l| l.aliases.iter().any(|(a, _)| *a == name))
            {
                return Ok(());
            }
        }
        self.expr(&mut o.expr)
    }

    fn window_spec(&mut self, w: &mut WindowSpec) -> Result<(), Rejection> {
        w.partition_by.iter_mut().try_for_each(|e| self.expr(e))?;
        w.order_by
            .iter_mut()
            .try_for_each(|o| self.order_by_expr(o))?;
        if let Some(frame) = &mut w.window_frame {
            for bound in std::iter::once(&mut frame.start_bound).chain(frame.end_bound.as_mut()) {
                if let WindowFrameBound::Preceding(Some(e)) | WindowFrameBound::Following(Some(e)) =
                    bound
                {
                    self.expr(e)?;
                }
            }
        }
        Ok(())
    }

    fn expr(&mut self, e: &mut Expr) -> Result<(), Rejection> {
        self.enter()?;
        self.expr_inner(e)?;
        self.depth -= 1;
        Ok(())
    }

    fn expr_inner(&mut self, e: &mut Expr) -> Result<(), Rejection> {
        match e {
            Expr::Identifier(_) | Expr::CompoundIdentifier(_) => self.column_ref(e),
            Expr::Value(v) => match v.value {
                Value::Placeholder(_) => {
                    Err(Rejection::NotReadOnly("a parameter placeholder".into()))
                }
                _ => Ok(()),
            },
            Expr::BinaryOp { left, op, right } => {
                if matches!(
                    op,
                    BinaryOperator::Custom(_) | BinaryOperator::PGCustomBinaryOperator(_)
                ) {
                    return Err(unsupported(format!("the operator {op}")));
                }
                self.expr(left)?;
                self.expr(right)
            }
            Expr::AnyOp { left, right, .. } | Expr::AllOp { left, right, .. } => {
                self.expr(left)?;
                self.expr(right)
            }
            Expr::UnaryOp { expr, .. }
            | Expr::Nested(expr)
            | Expr::IsNull(expr)
            | Expr::IsNotNull(expr)
            | Expr::IsTrue(expr)
            | Expr::IsNotTrue(expr)
            | Expr::IsFalse(expr)
            | Expr::IsNotFalse(expr)
            | Expr::IsUnknown(expr)
            | Expr::IsNotUnknown(expr)
            | Expr::Ceil { expr, .. }
            | Expr::Floor { expr, .. }
            | Expr::Extract { expr, .. } => self.expr(expr),
            Expr::Collate { expr, .. } => self.expr(expr),
            Expr::IsDistinctFrom(a, b) | Expr::IsNotDistinctFrom(a, b) => {
                self.expr(a)?;
                self.expr(b)
            }
            Expr::InList { expr, list, .. } => {
                self.expr(expr)?;
                list.iter_mut().try_for_each(|e| self.expr(e))
            }
            Expr::InSubquery { expr, subquery, .. } => {
                self.expr(expr)?;
                self.query(subquery).map(|_| ())
            }
            Expr::Between {
                expr, low, high, ..
            } => {
                self.expr(expr)?;
                self.expr(low)?;
                self.expr(high)
            }
            Expr::Like {
                expr,
                pattern,
                escape_char,
                ..
            }
            | Expr::ILike {
                expr,
                pattern,
                escape_char,
                ..
            }
            | Expr::SimilarTo {
                expr,
                pattern,
                escape_char,
                ..
            } => {
                self.expr(expr)?;
                self.expr(pattern)?;
                escape_char.iter_mut().try_for_each(|e| self.expr(e))
            }
            Expr::Cast {
                kind,
                expr,
                data_type,
                format,
            } => {
                only(format.is_none(), || "CAST … FORMAT".into())?;
                only(
                    matches!(
                        kind,
                        CastKind::Cast | CastKind::DoubleColon | CastKind::TryCast
                    ),
                    || format!("{kind:?}"),
                )?;
                check_type(data_type)?;
                self.expr(expr)
            }
            Expr::AtTimeZone {
                timestamp,
                time_zone,
            } => {
                self.expr(timestamp)?;
                self.expr(time_zone)
            }
            Expr::Position { expr, r#in } => {
                self.expr(expr)?;
                self.expr(r#in)
            }
            Expr::Substring {
                expr,
                substring_from,
                substring_for,
                ..
            } => {
                self.expr(expr)?;
                substring_from.iter_mut().try_for_each(|e| self.expr(e))?;
                substring_for.iter_mut().try_for_each(|e| self.expr(e))
            }
            Expr::Trim {
                expr,
                trim_what,
                trim_characters,
                ..
            } => {
                self.expr(expr)?;
                trim_what.iter_mut().try_for_each(|e| self.expr(e))?;
                trim_characters
                    .iter_mut()
                    .flatten()
                    .try_for_each(|e| self.expr(e))
            }
            Expr::TypedString(t) => check_type(&t.data_type),
            Expr::Function(f) => self.function(f),
            Expr::Case {
                operand,
                conditions,
                else_result,
                ..
            } => {
                operand.iter_mut().try_for_each(|e| self.expr(e))?;
                for w in conditions {
                    self.expr(&mut w.condition)?;
                    self.expr(&mut w.result)?;
                }
                else_result.iter_mut().try_for_each(|e| self.expr(e))
            }
            Expr::Exists { subquery, .. } | Expr::Subquery(subquery) => {
                self.query(subquery).map(|_| ())
            }
            Expr::Tuple(items) => items.iter_mut().try_for_each(|e| self.expr(e)),
            Expr::Rollup(sets) | Expr::Cube(sets) | Expr::GroupingSets(sets) => {
                sets.iter_mut().flatten().try_for_each(|e| self.expr(e))
            }
            Expr::Array(a) => a.elem.iter_mut().try_for_each(|e| self.expr(e)),
            Expr::Interval(i) => self.expr(&mut i.value),
            Expr::Wildcard(_) | Expr::QualifiedWildcard(..) => Err(unbound(format!(
                "{e} is a whole-row reference; name the columns"
            ))),
            other => Err(unsupported(format!("the expression {other}"))),
        }
    }

    fn function(&mut self, f: &mut Function) -> Result<(), Rejection> {
        let name = match f.name.0.as_slice() {
            [ObjectNamePart::Identifier(id)] => id.value.to_ascii_lowercase(),
            _ => return Err(Rejection::Function(f.name.to_string().to_ascii_lowercase())),
        };
        if !ALLOWED_FUNCTIONS.contains(&name.as_str()) || f.uses_odbc_syntax {
            return Err(Rejection::Function(name));
        }
        only(matches!(f.parameters, FunctionArguments::None), || {
            format!("parameters of {name}")
        })?;
        match &mut f.args {
            FunctionArguments::None => {}
            FunctionArguments::Subquery(_) => {
                return Err(unsupported(format!("{name}(subquery)")));
            }
            FunctionArguments::List(list) => {
                for clause in &mut list.clauses {
                    match clause {
                        FunctionArgumentClause::OrderBy(items) => {
                            items.iter_mut().try_for_each(|o| self.order_by_expr(o))?;
                        }
                        FunctionArgumentClause::IgnoreOrRespectNulls(_) => {}
                        other => return Err(unsupported(format!("{name}(… {other})"))),
                    }
                }
                let date_part_first =
                    self.dialect == Dialect::Snowflake && functions::takes_date_part(&name);
                for (i, arg) in list.args.iter_mut().enumerate() {
                    let FunctionArg::Unnamed(arg) = arg else {
                        return Err(unsupported(format!("named arguments of {name}")));
                    };
                    match arg {
                        FunctionArgExpr::Expr(Expr::Identifier(id))
                            if i == 0
                                && date_part_first
                                && DATE_PARTS.contains(&id.value.to_ascii_lowercase().as_str()) => {
                        }
                        FunctionArgExpr::Expr(e) => self.expr(e)?,
                        FunctionArgExpr::Wildcard if name == "count" => {}
                        _ => {
                            return Err(unbound(format!(
                                "{name}({arg}) is a whole-row reference; name the columns"
                            )));
                        }
                    }
                }
                functions::check_output_size(&name, &list.args)?;
            }
        }
        f.within_group
            .iter_mut()
            .try_for_each(|o| self.order_by_expr(o))?;
        if let Some(filter) = &mut f.filter {
            self.expr(filter)?;
        }
        match &mut f.over {
            Some(WindowType::WindowSpec(spec)) => self.window_spec(spec)?,
            Some(WindowType::NamedWindow(_)) | None => {}
        }
        Ok(())
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

/// The name the warehouse gives an unaliased select item, where it is
/// predictable: a column keeps its name; PostgreSQL names a function call
/// or cast after the function or the casted column.
fn output_name(e: &Expr, dialect: Dialect) -> Option<String> {
    match e {
        Expr::Identifier(id) => Some(dialect.canonical(id)),
        Expr::CompoundIdentifier(parts) => parts.last().map(|p| dialect.canonical(p)),
        Expr::Function(f) if dialect == Dialect::Postgres => match f.name.0.as_slice() {
            [ObjectNamePart::Identifier(id)] => Some(dialect.canonical(id)),
            _ => None,
        },
        Expr::Cast { expr, .. } if dialect == Dialect::Postgres => output_name(expr, dialect),
        _ => None,
    }
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

/// Types a value may be cast to: plain scalar types. Catalog-lookup types
/// (`regclass`, `regproc`, …) and user-defined types are refused.
fn check_type(t: &DataType) -> Result<(), Rejection> {
    const SCALAR: &[&str] = &[
        "int",
        "integer",
        "bigint",
        "smallint",
        "tinyint",
        "int2",
        "int4",
        "int8",
        "numeric",
        "decimal",
        "number",
        "real",
        "float",
        "float4",
        "float8",
        "double",
        "text",
        "varchar",
        "char",
        "character",
        "string",
        "nvarchar",
        "date",
        "time",
        "timestamp",
        "timestamptz",
        "datetime",
        "interval",
        "boolean",
        "bool",
        "json",
        "jsonb",
        "blob",
        "bytea",
        "binary",
        "varbinary",
    ];
    let text = t.to_string().to_ascii_lowercase();
    let head: String = text
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
        .collect();
    if SCALAR.contains(&head.as_str()) {
        Ok(())
    } else {
        Err(unsupported(format!("a cast to {text}")))
    }
}
