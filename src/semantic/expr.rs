//! SQL building blocks for the compiler: aggregations, joining input
//! subqueries, the joins that reach other models' dimensions, qualification
//! of column references, and MetricFlow's Jinja filter syntax.

use std::ops::ControlFlow;

use sqlparser::ast::{Expr, Ident, visit_expressions_mut};
use sqlparser::parser::Parser;

use super::compile::Shape;
use super::model::{Agg, MeasureDef};
use super::{Grain, SemanticError, SemanticLayer};
use crate::sql::{Dialect, Percentile, PercentileKind};

/// The percentile a measure asks for, if it is `median` or `percentile`.
fn percentile_of(measure: &MeasureDef) -> Option<Percentile> {
    match measure.agg {
        Agg::Median => Some(Percentile {
            fraction: 0.5,
            kind: PercentileKind::Continuous,
        }),
        Agg::Percentile => {
            let p = measure.agg_params.unwrap_or_default();
            Some(Percentile {
                fraction: p.percentile.unwrap_or(0.5),
                kind: if p.use_approximate_percentile {
                    PercentileKind::Approximate
                } else if p.use_discrete_percentile {
                    PercentileKind::Discrete
                } else {
                    PercentileKind::Continuous
                },
            })
        }
        _ => None,
    }
}

fn no_percentile(measure: &MeasureDef, dialect: Dialect) -> SemanticError {
    SemanticError::Invalid(format!(
        "measure {}: {dialect} cannot compute this percentile (an approximate percentile needs Snowflake; a percentile over a cumulative window needs PostgreSQL or Snowflake)",
        measure.name
    ))
}

/// The aggregate of `col` as one expression (for GROUP BY queries).
///
/// # Errors
/// A percentile the dialect has no aggregate for.
pub(super) fn aggregate_expr(
    measure: &MeasureDef,
    col: &str,
    dialect: Dialect,
) -> Result<String, SemanticError> {
    if let Some(p) = percentile_of(measure) {
        return dialect
            .percentile_aggregate(col, p)
            .ok_or_else(|| no_percentile(measure, dialect));
    }
    Ok(match measure.agg {
        Agg::Sum => format!("SUM({col})"),
        Agg::Count => format!("COUNT({col})"),
        Agg::CountDistinct => format!("COUNT(DISTINCT {col})"),
        Agg::Average => format!("AVG({col})"),
        Agg::Min => format!("MIN({col})"),
        Agg::Max => format!("MAX({col})"),
        Agg::SumBoolean => format!("SUM(CASE WHEN {col} THEN 1 ELSE 0 END)"),
        Agg::Median | Agg::Percentile => unreachable!("percentiles are handled above"),
    })
}

/// `SELECT keys, AGG(col) AS value FROM from GROUP BY keys`.
///
/// # Errors
/// A percentile the dialect cannot compute.
pub(super) fn aggregate(
    measure: &MeasureDef,
    keys: &[String],
    col: &str,
    from: &str,
    dialect: Dialect,
) -> Result<String, SemanticError> {
    if let Some(p) = percentile_of(measure) {
        return dialect
            .percentile_select(keys, col, from, "value", p)
            .ok_or_else(|| no_percentile(measure, dialect));
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
    Ok(format!(
        "SELECT {select_keys}{} AS value FROM {from}{group}",
        aggregate_expr(measure, col, dialect)?
    ))
}

/// Joins input subqueries on the shape's keys and computes `expr` as `value`.
///
/// As MetricFlow's FULL OUTER JOIN of inputs does, a period or group that only
/// some inputs have rows for is kept, and the missing inputs are NULL (so a
/// ratio without numerator rows is NULL, not absent). The keys are the UNION
/// of the inputs' keys, each input LEFT JOINed to them with a null-safe
/// equality (PostgreSQL cannot FULL JOIN on `IS NOT DISTINCT FROM`).
pub(super) fn join_inputs(
    inputs: &[String],
    aliases: &[&str],
    expr: &str,
    shape: &Shape,
) -> String {
    let keys = shape.keys();
    let ctes: Vec<String> = inputs
        .iter()
        .zip(aliases)
        .map(|(sql, alias)| format!("{alias} AS ({sql})"))
        .collect();
    if keys.is_empty() {
        return format!(
            "WITH {} SELECT {expr} AS value FROM {}",
            ctes.join(", "),
            aliases.join(" CROSS JOIN ")
        );
    }
    let key_list = keys.join(", ");
    let union: Vec<String> = aliases
        .iter()
        .map(|a| format!("SELECT {key_list} FROM {a}"))
        .collect();
    let mut select: Vec<String> = keys.iter().map(|k| format!("keyset.{k} AS {k}")).collect();
    select.push(format!("{expr} AS value"));
    let joins: Vec<String> = aliases
        .iter()
        .map(|a| {
            let on: Vec<String> = keys
                .iter()
                .map(|k| {
                    shape
                        .dialect
                        .null_safe_eq(&format!("keyset.{k}"), &format!("{a}.{k}"))
                })
                .collect();
            format!(" LEFT JOIN {a} ON {}", on.join(" AND "))
        })
        .collect();
    format!(
        "WITH {}, keyset AS ({}) SELECT {} FROM keyset{}",
        ctes.join(", "),
        union.join(" UNION "),
        select.join(", "),
        joins.concat()
    )
}

/// The joins a base query needs to reach dimensions of other models.
pub(super) struct Joins<'a> {
    layer: &'a SemanticLayer,
    from: usize,
    /// The measure's aggregation time dimension (what `metric_time` means).
    metric_time: String,
    dialect: Dialect,
    /// `(model index, alias, join clause)` in join order.
    joined: Vec<(usize, String, String)>,
}

impl<'a> Joins<'a> {
    /// Joins from model `from`, for a measure aggregated over `metric_time`.
    pub(super) fn new(
        layer: &'a SemanticLayer,
        from: usize,
        metric_time: &str,
        dialect: Dialect,
    ) -> Self {
        Joins {
            layer,
            from,
            metric_time: metric_time.to_owned(),
            dialect,
            joined: Vec::new(),
        }
    }

    /// The expression of `metric_time`.
    fn metric_time_expr(&mut self) -> Result<String, SemanticError> {
        let name = self.metric_time.clone();
        self.dimension_expr(&name)
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

/// One `{{ … }}` call of a MetricFlow filter: `Dimension('user__platform')`,
/// `TimeDimension('metric_time', 'month')`, `Entity('user')`, optionally
/// followed by `.grain('week')`.
struct TemplateCall {
    func: String,
    args: Vec<String>,
    grain: Option<String>,
}

/// Reads the inside of `{{ … }}` (see [`TemplateCall`]).
fn parse_call(call: &str) -> Result<TemplateCall, SemanticError> {
    let bad = || SemanticError::Invalid(format!("cannot read filter call {call:?}"));
    let (func, rest) = call.split_once('(').ok_or_else(bad)?;
    let close = rest.find(')').ok_or_else(bad)?;
    let quoted = |s: &str| -> Result<Vec<String>, SemanticError> {
        s.split(',')
            .map(str::trim)
            .filter(|a| !a.is_empty())
            .map(|a| {
                let unq = a
                    .strip_prefix('\'')
                    .and_then(|x| x.strip_suffix('\''))
                    .or_else(|| a.strip_prefix('"').and_then(|x| x.strip_suffix('"')));
                unq.map(str::to_owned).ok_or_else(bad)
            })
            .collect()
    };
    let args = quoted(&rest[..close])?;
    let tail = rest[close + 1..].trim();
    let grain = if tail.is_empty() {
        None
    } else {
        let inner = tail
            .strip_prefix(".grain(")
            .and_then(|t| t.strip_suffix(')'))
            .ok_or_else(|| {
                SemanticError::Invalid(format!(
                    "filter call {call:?}: only .grain(…) is supported after the call"
                ))
            })?;
        quoted(inner)?.into_iter().next()
    };
    Ok(TemplateCall {
        func: func.trim().to_owned(),
        args,
        grain,
    })
}

/// Renders MetricFlow's Jinja filter syntax
/// (<https://docs.getdbt.com/docs/build/ref-metrics-in-filters>):
/// `{{ Dimension('entity__name') }}`, `{{ TimeDimension('name', 'grain') }}`
/// or `{{ Dimension('name').grain('grain') }}` (truncated to the grain), and
/// `{{ Entity('name') }}` become qualified SQL expressions; `metric_time` is
/// the measure's aggregation time dimension. Everything outside `{{ }}` is
/// kept as written (it is SQL the guard checks like any other).
///
/// # Errors
/// An unclosed `{{`, a call that cannot be read, an unknown dimension or
/// entity, an unknown grain, or a call steward does not support (`Metric(…)`).
pub(super) fn render_template(template: &str, joins: &mut Joins) -> Result<String, SemanticError> {
    let mut out = String::new();
    let mut rest = template;
    while let Some(open) = rest.find("{{") {
        out.push_str(&rest[..open]);
        let close = rest[open..].find("}}").ok_or_else(|| {
            SemanticError::Invalid(format!("unclosed {{{{ in filter {template:?}"))
        })?;
        let call = parse_call(rest[open + 2..open + close].trim())?;
        let name = call.args.first().cloned().unwrap_or_default();
        let expr = match call.func.as_str() {
            "Dimension" | "TimeDimension" => {
                let expr = if name.rsplit("__").next() == Some("metric_time") {
                    joins.metric_time_expr()?
                } else {
                    joins.dimension_expr(&name)?
                };
                let grain = match call.func.as_str() {
                    "TimeDimension" => call.args.get(1).cloned().or(call.grain),
                    _ => call.grain,
                };
                match grain {
                    None => expr,
                    Some(g) => {
                        let g = Grain::parse(&g).ok_or_else(|| {
                            SemanticError::Invalid(format!(
                                "filter {template:?}: unknown grain {g:?}"
                            ))
                        })?;
                        joins.dialect.truncate(g, &expr)
                    }
                }
            }
            "Entity" => {
                let from = joins.from;
                let entity = name.rsplit("__").next().unwrap_or(&name);
                entity_expr(joins.layer, from, entity, "m0")?
            }
            other => {
                return Err(SemanticError::Invalid(format!(
                    "filter {template:?}: {other}(…) in a filter is not supported yet"
                )));
            }
        };
        out.push_str(&expr);
        rest = &rest[open + close + 2..];
    }
    out.push_str(rest);
    Ok(out)
}
