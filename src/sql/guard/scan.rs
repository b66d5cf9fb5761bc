//! One walk over the AST: statement shape checks, CTE scoping, and the
//! references to tables and columns, then their resolution against the policy.

use std::collections::{BTreeMap, BTreeSet};
use std::ops::ControlFlow;

use sqlparser::ast::{
    Expr, ObjectName, Query, Select, SelectItem, SetExpr, Statement, TableFactor, Value, Visitor,
};

use super::functions::{ALLOWED_FUNCTIONS, DATE_PARTS};
use super::{Rejection, statement_kind};
use crate::policy::{Access, ColumnClass, Grants, Policy};
use crate::sql::Dialect;

/// Facts gathered in one walk over the AST.
#[derive(Default)]
pub(super) struct Scan {
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
    /// Column references in visit order: qualifier parts + column, lower case.
    columns: Vec<Vec<String>>,
    /// Table factors in pre-order: the table name for reads of a real table
    /// (not a CTE), `None` for anything else.
    table_factors: Vec<Option<String>>,
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
        self.table_factors.push(None);
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
                    self.aliases.entry(a).or_default().insert(table.clone());
                }
                if let Some(last) = self.table_factors.last_mut() {
                    *last = Some(table);
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
    /// Allow-listed tables the statement reads (after `resolve`).
    pub(super) fn tables(&self) -> &BTreeSet<String> {
        &self.tables
    }

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

    /// Checks relations and column references against the policy and
    /// decides, for each reference and table factor, how to rewrite it.
    pub(super) fn resolve(
        &mut self,
        policy: &Policy,
        grants: &Grants,
        dialect: Dialect,
    ) -> Result<Resolution, Rejection> {
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

        let mut res = Resolution::default();
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
                    None if self.derived.contains(q) => {
                        res.actions.push(None);
                        continue;
                    }
                    None => return Err(Rejection::UnknownColumn(parts.join("."))),
                },
                None => self.tables.iter().collect(),
            };
            // The most restrictive access over every table the name may mean.
            let mut strictest: Option<(Access, String, ColumnClass)> = None;
            for table in candidates {
                if let Some(def) = policy.schema.column(table, column) {
                    let mut access = grants.access(def.class);
                    if access == Access::Hash && dialect == Dialect::Sqlite {
                        access = Access::Deny;
                    }
                    res.classes.insert(def.class);
                    if strictest.as_ref().is_none_or(|(a, _, _)| access < *a) {
                        strictest = Some((access, format!("{table}.{column}"), def.class));
                    }
                }
            }
            match strictest {
                Some((Access::Deny, column, class)) => {
                    return Err(Rejection::ColumnDenied {
                        column,
                        class,
                        roles: grants.roles_phrase(),
                    });
                }
                Some((Access::Allow, _, _)) => res.actions.push(None),
                Some((access, column, _)) => {
                    res.masked.insert(column);
                    res.actions.push(Some(access));
                }
                None if qualifier.is_none()
                    && (self.output_names.contains(column) || DATE_PARTS.contains(&column)) =>
                {
                    res.actions.push(None)
                }
                None => {
                    let shown =
                        qualifier.map_or_else(|| column.to_owned(), |q| format!("{q}.{column}"));
                    return Err(Rejection::UnknownColumn(shown));
                }
            }
        }
        res.filters = self
            .table_factors
            .iter()
            .map(|t| {
                let t = t.as_ref()?;
                let predicate = grants.row_filter(t)?;
                Some((t.clone(), predicate.to_owned()))
            })
            .collect();
        Ok(res)
    }
}

/// What the guard decided for one statement.
#[derive(Debug, Default)]
pub(super) struct Resolution {
    /// Column classes the statement reads.
    pub classes: BTreeSet<ColumnClass>,
    /// Per column reference (visit order): `None` to keep, or the masking action.
    pub actions: Vec<Option<Access>>,
    /// Masked columns, `table.column`.
    pub masked: BTreeSet<String>,
    /// Per table factor (pre-order): the table and the row filter to apply.
    pub filters: Vec<Option<(String, String)>>,
}
