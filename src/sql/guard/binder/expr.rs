//! Expressions: the allow-list of node kinds, functions and their output
//! bounds, windows, casts.

use sqlparser::ast::*;

use super::*;

impl Binder<'_> {
    /// An ORDER BY item inside a window, an aggregate or `WITHIN GROUP`:
    /// its names are input columns, never output aliases (PostgreSQL, SQLite
    /// and Snowflake all bind them so).
    pub(super) fn order_by_expr(&mut self, o: &mut OrderByExpr) -> Result<(), Rejection> {
        order_by_options(o)?;
        self.expr(&mut o.expr)
    }

    /// An item of a query's own ORDER BY. A bare name that is an output alias
    /// names that output, before any input column (PostgreSQL manual, SELECT,
    /// "ORDER BY Clause"; SQLite, "The ORDER BY clause"); Snowflake documents
    /// no precedence. So where the name is also an input column in scope, the
    /// item is replaced by the alias's bound expression, which every dialect
    /// reads the same way; otherwise it names the output and reads nothing.
    pub(super) fn output_order_by_expr(&mut self, o: &mut OrderByExpr) -> Result<(), Rejection> {
        order_by_options(o)?;
        if let Expr::Identifier(id) = &o.expr {
            let name = self.canon(id);
            let alias = self
                .levels
                .last()
                .and_then(|l| l.aliases.iter().find(|(a, _)| *a == name))
                .cloned();
            if let Some((_, bound)) = alias {
                let is_column = self
                    .levels
                    .iter()
                    .filter(|l| !l.hidden)
                    .any(|l| l.visible.iter().any(|v| v.name == name));
                match bound {
                    Some(expr) if is_column => o.expr = Expr::Nested(Box::new(expr)),
                    _ => {}
                }
                return Ok(());
            }
        }
        self.expr(&mut o.expr)
    }

    pub(super) fn window_spec(&mut self, w: &mut WindowSpec) -> Result<(), Rejection> {
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

    // Grows the stack on the heap when it runs low (stacker), as sqlparser
    // does for its own recursion.
    #[recursive::recursive]
    pub(super) fn expr(&mut self, e: &mut Expr) -> Result<(), Rejection> {
        self.enter()?;
        self.expr_inner(e)?;
        self.depth -= 1;
        Ok(())
    }

    pub(super) fn expr_inner(&mut self, e: &mut Expr) -> Result<(), Rejection> {
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

    // Grows the stack on the heap when it runs low (stacker), as sqlparser
    // does for its own recursion.
    #[recursive::recursive]
    pub(super) fn function(&mut self, f: &mut Function) -> Result<(), Rejection> {
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

/// Options of an ORDER BY item the binder does not accept.
fn order_by_options(o: &OrderByExpr) -> Result<(), Rejection> {
    only(o.with_fill.is_none(), || "WITH FILL".into())?;
    only(
        !matches!(o.options.sort, Some(OrderBySort::Using(_))),
        || "ORDER BY … USING an operator".into(),
    )
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
