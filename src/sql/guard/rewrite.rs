//! Rewriting an accepted statement: masking, row filters and the LIMIT clamp.
//!
//! The rewriter walks the same AST in the same order as the scan, so the
//! n-th column reference and the n-th table factor it meets are the ones the
//! resolution decided about. Replacements happen after a node's children are
//! visited, so inserted SQL is never walked (or rewritten) again.

use std::ops::ControlFlow;

use sqlparser::ast::{
    Expr, Ident, LimitClause, Query, Select, SelectItem, TableAlias, TableFactor, Value, VisitMut,
    VisitorMut,
};
use sqlparser::parser::Parser;

use super::scan::Resolution;
use crate::policy::{Access, Schema};
use crate::sql::Dialect;

/// Applies masking actions and row filters to `query`.
pub(super) fn apply(query: &mut Query, res: &Resolution, schema: &Schema, dialect: Dialect) {
    let masked_names = res
        .masked
        .iter()
        .filter_map(|c| c.rsplit('.').next().map(str::to_owned))
        .collect();
    let mut r = Rewriter {
        res,
        schema,
        dialect,
        masked_names,
        next_ref: 0,
        next_factor: 0,
        factor_stack: Vec::new(),
    };
    let _ = query.visit(&mut r);
}

struct Rewriter<'a> {
    res: &'a Resolution,
    schema: &'a Schema,
    dialect: Dialect,
    masked_names: Vec<String>,
    next_ref: usize,
    next_factor: usize,
    factor_stack: Vec<usize>,
}

impl VisitorMut for Rewriter<'_> {
    type Break = ();

    fn pre_visit_select(&mut self, select: &mut Select) -> ControlFlow<()> {
        // Keep the output name of a masked column selected bare.
        for item in &mut select.projection {
            if let SelectItem::UnnamedExpr(e) = item {
                let last = match e {
                    Expr::Identifier(id) => Some(id.clone()),
                    Expr::CompoundIdentifier(parts) => parts.last().cloned(),
                    _ => None,
                };
                if let Some(name) =
                    last.filter(|n| self.masked_names.contains(&n.value.to_ascii_lowercase()))
                {
                    *item = SelectItem::ExprWithAlias {
                        expr: e.clone(),
                        alias: name,
                    };
                }
            }
        }
        ControlFlow::Continue(())
    }

    fn post_visit_expr(&mut self, e: &mut Expr) -> ControlFlow<()> {
        if matches!(e, Expr::Identifier(_) | Expr::CompoundIdentifier(_)) {
            let action = self.res.actions.get(self.next_ref).copied().flatten();
            self.next_ref += 1;
            if let Some(access) = action
                && let Some(masked) = mask_expr(&e.to_string(), access, self.dialect)
            {
                *e = masked;
            }
        }
        ControlFlow::Continue(())
    }

    fn pre_visit_table_factor(&mut self, _t: &mut TableFactor) -> ControlFlow<()> {
        self.factor_stack.push(self.next_factor);
        self.next_factor += 1;
        ControlFlow::Continue(())
    }

    fn post_visit_table_factor(&mut self, t: &mut TableFactor) -> ControlFlow<()> {
        let Some(index) = self.factor_stack.pop() else {
            return ControlFlow::Continue(());
        };
        let Some(Some((table, predicate))) = self.res.filters.get(index) else {
            return ControlFlow::Continue(());
        };
        if let TableFactor::Table { name, alias, .. } = t {
            let alias = alias.clone().unwrap_or_else(|| TableAlias {
                explicit: true,
                name: name
                    .0
                    .last()
                    .and_then(|p| p.as_ident().cloned())
                    .unwrap_or_else(|| Ident::new(table.clone())),
                columns: Vec::new(),
                at: None,
            });
            if let Some(subquery) = filtered_table(
                name.to_string(),
                table,
                predicate,
                self.schema,
                self.dialect,
            ) {
                *t = TableFactor::Derived {
                    lateral: false,
                    subquery: Box::new(subquery),
                    alias: Some(alias),
                    sample: None,
                };
            }
        }
        ControlFlow::Continue(())
    }
}

/// The masked form of a column reference.
fn mask_expr(reference: &str, access: Access, dialect: Dialect) -> Option<Expr> {
    let sql = match access {
        Access::Null => "NULL".to_owned(),
        Access::Mask => format!("CASE WHEN {reference} IS NULL THEN NULL ELSE '****' END"),
        Access::Hash => format!("md5(CAST({reference} AS TEXT))"),
        Access::Allow | Access::Deny => return None,
    };
    let parser = dialect.parser();
    Parser::new(parser.as_ref())
        .try_with_sql(&sql)
        .and_then(|mut p| p.parse_expr())
        .ok()
}

/// `SELECT <allow-listed columns> FROM <name> WHERE <predicate>`.
fn filtered_table(
    name: String,
    table: &str,
    predicate: &str,
    schema: &Schema,
    dialect: Dialect,
) -> Option<Query> {
    let (_, def) = schema.table(table)?;
    let columns: Vec<&str> = def.columns.keys().map(String::as_str).collect();
    let sql = format!(
        "SELECT {} FROM {name} WHERE {predicate}",
        columns.join(", ")
    );
    let parser = dialect.parser();
    Parser::new(parser.as_ref())
        .try_with_sql(&sql)
        .and_then(|mut p| p.parse_query())
        .ok()
        .map(|q| *q)
}

/// Sets the outer LIMIT to `min(existing literal, max_rows)`; a missing or
/// non-literal limit becomes `max_rows`.
pub(super) fn clamp_limit(query: &mut Query, max_rows: u64) {
    let max = Expr::value(Value::Number(max_rows.to_string(), false));
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
