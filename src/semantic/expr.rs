//! SQL building blocks for the compiler: aggregations, joining input
//! subqueries, the joins that reach other models' dimensions, qualification
//! of column references, and MetricFlow's Jinja filter syntax.

use std::ops::ControlFlow;

use sqlparser::ast::{Expr, Ident, visit_expressions_mut};
use sqlparser::parser::Parser;

use super::compile::Shape;
use super::model::Agg;
use super::{SemanticError, SemanticLayer};
use crate::sql::Dialect;

pub(super) fn aggregate_expr(agg: Agg, col: &str) -> String {
    match agg {
        Agg::Sum => format!("SUM({col})"),
        Agg::Count => format!("COUNT({col})"),
        Agg::CountDistinct => format!("COUNT(DISTINCT {col})"),
        Agg::Average => format!("AVG({col})"),
        Agg::Min => format!("MIN({col})"),
        Agg::Max => format!("MAX({col})"),
        Agg::SumBoolean => format!("SUM(CASE WHEN {col} THEN 1 ELSE 0 END)"),
        // Median needs window functions; see `aggregate`.
        Agg::Median => format!("AVG({col})"),
    }
}

/// `SELECT keys, AGG(col) AS value FROM from GROUP BY keys`.
pub(super) fn aggregate(
    agg: Agg,
    keys: &[String],
    col: &str,
    from: &str,
    dialect: Dialect,
) -> String {
    if agg == Agg::Median {
        return dialect.median_select(keys, col, from, "value");
    }
    let select_keys = if keys.is_empty() {
        String::new()
    } else {
        format!("{}, ", keys.join(", "))
    };
    let group = if keys.is_empty() {
        String::new()
    } else {
        format!(" GROUP BY {}", keys.join(", "))
    };
    format!(
        "SELECT {select_keys}{} AS value FROM {from}{group}",
        aggregate_expr(agg, col)
    )
}

/// Joins input subqueries on the shape's keys and computes `expr` as `value`.
pub(super) fn join_inputs(
    inputs: &[String],
    aliases: &[&str],
    expr: &str,
    shape: &Shape,
) -> String {
    let keys = shape.keys();
    let first = aliases[0];
    let mut select: Vec<String> = keys.iter().map(|k| format!("{first}.{k} AS {k}")).collect();
    select.push(format!("{expr} AS value"));
    let mut from = format!("({}) AS {first}", inputs[0]);
    for (sql, alias) in inputs.iter().zip(aliases).skip(1) {
        if keys.is_empty() {
            from.push_str(&format!(" CROSS JOIN ({sql}) AS {alias}"));
        } else {
            let on: Vec<String> = keys
                .iter()
                .map(|k| {
                    shape
                        .dialect
                        .null_safe_eq(&format!("{first}.{k}"), &format!("{alias}.{k}"))
                })
                .collect();
            from.push_str(&format!(
                " LEFT JOIN ({sql}) AS {alias} ON {}",
                on.join(" AND ")
            ));
        }
    }
    format!("SELECT {} FROM {from}", select.join(", "))
}

/// The joins a base query needs to reach dimensions of other models.
pub(super) struct Joins<'a> {
    layer: &'a SemanticLayer,
    from: usize,
    /// `(model index, alias, join clause)` in join order.
    joined: Vec<(usize, String, String)>,
}

impl<'a> Joins<'a> {
    pub(super) fn new(layer: &'a SemanticLayer, from: usize) -> Self {
        Joins {
            layer,
            from,
            joined: Vec::new(),
        }
    }

    fn alias_of(&self, model: usize) -> Option<String> {
        if model == self.from {
            return Some("m0".to_owned());
        }
        self.joined
            .iter()
            .find(|(m, _, _)| *m == model)
            .map(|(_, a, _)| a.clone())
    }

    /// The qualified SQL expression of a dimension, adding joins as needed.
    pub(super) fn dimension_expr(&mut self, name: &str) -> Result<String, SemanticError> {
        let r =
            self.layer
                .resolve(self.from, name)
                .ok_or_else(|| SemanticError::UnknownDimension {
                    metric: self.layer.models[self.from].name.clone(),
                    dimension: name.to_owned(),
                    available: String::new(),
                })?;
        let mut prev = self.from;
        for (entity, model) in &r.path {
            if self.alias_of(*model).is_none() {
                let alias = format!("j{}", self.joined.len() + 1);
                let left_alias = self.alias_of(prev).unwrap_or_else(|| "m0".into());
                let left = entity_expr(self.layer, prev, entity, &left_alias)?;
                let right = entity_expr(self.layer, *model, entity, &alias)?;
                let clause = format!(
                    " LEFT JOIN {} AS {alias} ON {left} = {right}",
                    self.layer.models[*model].table()
                );
                self.joined.push((*model, alias, clause));
            }
            prev = *model;
        }
        let alias = self.alias_of(r.model).unwrap_or_else(|| "m0".into());
        qualify(r.dim.expr(), &alias)
    }

    pub(super) fn sql(&self) -> String {
        let mut s = String::from(" AS m0");
        for (_, _, clause) in &self.joined {
            s.push_str(clause);
        }
        s
    }
}

pub(super) fn entity_expr(
    layer: &SemanticLayer,
    model: usize,
    entity: &str,
    alias: &str,
) -> Result<String, SemanticError> {
    let e = layer.models[model]
        .entities
        .iter()
        .find(|e| e.name == entity)
        .ok_or_else(|| SemanticError::Invalid(format!("entity {entity} missing")))?;
    qualify(e.expr(), alias)
}

/// Prefixes every bare column reference in `expr` with `alias`.
pub(super) fn qualify(expr: &str, alias: &str) -> Result<String, SemanticError> {
    rewrite_identifiers(expr, |_| Some(vec![alias.to_owned()])).map_err(SemanticError::Invalid)
}

/// Parses `expr` and rewrites each bare identifier `x` for which `f` returns
/// `Some(prefix)` into `prefix.x` (or, when the prefix's last part is
/// `value`, into the prefix itself, for derived-metric inputs).
pub(super) fn rewrite_identifiers(
    expr: &str,
    f: impl Fn(&str) -> Option<Vec<String>>,
) -> Result<String, String> {
    let dialect = sqlparser::dialect::GenericDialect {};
    let mut parsed = Parser::new(&dialect)
        .try_with_sql(expr)
        .and_then(|mut p| p.parse_expr())
        .map_err(|e| format!("expression {expr:?} does not parse: {e}"))?;
    let _ = visit_expressions_mut(&mut parsed, |e| {
        if let Expr::Identifier(id) = e
            && let Some(prefix) = f(&id.value)
        {
            let mut parts: Vec<Ident> = prefix.iter().map(|p| Ident::new(p.clone())).collect();
            if prefix.last().map(String::as_str) != Some("value") {
                parts.push(id.clone());
            }
            *e = Expr::CompoundIdentifier(parts);
        }
        ControlFlow::<()>::Continue(())
    });
    Ok(parsed.to_string())
}

/// Renders MetricFlow's Jinja filter syntax: `{{ Dimension('entity__name') }}`
/// (and `TimeDimension('name', 'grain')`, `Entity('name')`) become qualified
/// SQL expressions; everything else is kept as written.
pub(super) fn render_template(template: &str, joins: &mut Joins) -> Result<String, SemanticError> {
    let mut out = String::new();
    let mut rest = template;
    while let Some(open) = rest.find("{{") {
        out.push_str(&rest[..open]);
        let close = rest[open..].find("}}").ok_or_else(|| {
            SemanticError::Invalid(format!("unclosed {{{{ in filter {template:?}"))
        })?;
        let call = rest[open + 2..open + close].trim();
        let (func, args) = call
            .split_once('(')
            .ok_or_else(|| SemanticError::Invalid(format!("cannot read filter call {call:?}")))?;
        let name = args
            .trim_end_matches(')')
            .split(',')
            .next()
            .unwrap_or_default()
            .trim()
            .trim_matches(|c| c == '\'' || c == '"');
        let expr = match func.trim() {
            "Dimension" | "TimeDimension" => joins.dimension_expr(name)?,
            "Entity" => {
                let from = joins.from;
                let entity = name.rsplit("__").next().unwrap_or(name);
                entity_expr(joins.layer, from, entity, "m0")?
            }
            other => {
                return Err(SemanticError::Invalid(format!(
                    "unsupported filter function {other}"
                )));
            }
        };
        out.push_str(&expr);
        rest = &rest[open + close + 2..];
    }
    out.push_str(rest);
    Ok(out)
}
