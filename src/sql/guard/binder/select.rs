//! One SELECT: its level of scope, FROM items first, then the select list
//! (`*` expanded, masked columns keeping their names), then the clauses that
//! may name its output aliases.

use sqlparser::ast::*;

use super::*;

impl Binder<'_> {
    /// Binds one SELECT; returns its output names and its level (with the
    /// output names as aliases) for the enclosing query's ORDER BY.
    pub(super) fn select(
        &mut self,
        s: &mut Select,
    ) -> Result<(Vec<Option<String>>, Level), Rejection> {
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

    pub(super) fn select_in_level(
        &mut self,
        s: &mut Select,
    ) -> Result<Vec<Option<String>>, Rejection> {
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
}

/// The name the warehouse gives an unaliased select item, where it is
/// predictable: a column keeps its name; PostgreSQL names a function call
/// or cast after the function or the casted column.
pub(super) fn output_name(e: &Expr, dialect: Dialect) -> Option<String> {
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
