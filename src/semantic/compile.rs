//! Compiling metric queries to SQL.
//!
//! Every metric compiles to one SELECT whose columns are `period` (when a
//! grain is asked for), one column per group-by dimension (named after it),
//! and the metric's value (named after the metric). Measures are first
//! projected from a base derived table (`measure_value`, plus keys) and then
//! aggregated, which keeps every aggregation the same shape whatever joins the
//! dimensions need. Column references in model expressions are qualified
//! with their model's alias, so joined models cannot make them ambiguous.

use std::ops::ControlFlow;

use chrono::{Datelike, Duration, NaiveDate};
use serde::Serialize;
use sqlparser::ast::{Expr, Ident, visit_expressions_mut};
use sqlparser::parser::Parser;

use super::load::parse_window_days;
use super::model::{Agg, MeasureDef, MetricDef, MetricType, WindowChoice};
use super::{Grain, MetricQuery, SemanticError, SemanticLayer, TimeRange};
use crate::sql::{Dialect, quote_literal};

/// SQL for one metric query, with the shape of its result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CompiledQuery {
    /// One SELECT statement (not yet validated: it must pass the guard).
    pub sql: String,
    /// Result column names in order: `period`?, dimensions…, metric name.
    pub columns: Vec<String>,
    /// How values over a range were rolled up, when not a plain aggregate
    /// (e.g. "mean of daily values").
    pub rollup: Option<String>,
}

/// What one (sub)query must produce.
#[derive(Clone)]
struct Shape<'q> {
    range: TimeRange,
    grain: Option<Grain>,
    group_by: &'q [String],
    filters: &'q [super::DimensionFilter],
    /// MetricFlow Jinja filters pushed down from metrics and references.
    where_templates: Vec<String>,
    dialect: Dialect,
}

impl<'q> Shape<'q> {
    fn keys(&self) -> Vec<String> {
        let mut k = Vec::new();
        if self.grain.is_some() {
            k.push("period".to_owned());
        }
        k.extend(self.group_by.iter().map(|d| output_name(d)));
        k
    }
}

/// `user__platform` → `platform`: the column name a dimension gets.
fn output_name(dimension: &str) -> String {
    let lower = dimension.to_ascii_lowercase();
    lower
        .rsplit_once("__")
        .map(|(_, d)| d.to_owned())
        .unwrap_or(lower)
}

impl SemanticLayer {
    /// Compiles a metric query into one SELECT statement for `dialect`.
    ///
    /// # Errors
    /// [`SemanticError::UnknownMetric`] and [`SemanticError::UnknownDimension`]
    /// for names the layer does not define; [`SemanticError::Invalid`] for
    /// definitions that cannot be compiled.
    pub fn compile(
        &self,
        q: &MetricQuery,
        dialect: Dialect,
    ) -> Result<CompiledQuery, SemanticError> {
        let metric = self
            .metric(&q.metric)
            .ok_or_else(|| SemanticError::UnknownMetric(q.metric.clone()))?;
        for d in q
            .group_by
            .iter()
            .chain(q.filters.iter().map(|f| &f.dimension))
        {
            self.check_dimension(metric, d)?;
        }
        let shape = Shape {
            range: q.range,
            grain: q.grain,
            group_by: &q.group_by,
            filters: &q.filters,
            where_templates: Vec::new(),
            dialect,
        };
        let (inner, rollup) = self.metric_sql(metric, &shape)?;
        let keys = shape.keys();
        let mut columns = keys.clone();
        columns.push(metric.name.clone());
        let order = if q.grain.is_some() || q.group_by.is_empty() {
            keys.join(", ")
        } else {
            format!("{} DESC, {}", metric.name, keys.join(", "))
        };
        let mut projection = keys.clone();
        projection.push(format!("value AS {}", metric.name));
        let projection = projection.join(", ");
        let sql = if order.is_empty() {
            format!("SELECT {projection} FROM ({inner}) AS result")
        } else {
            format!("SELECT {projection} FROM ({inner}) AS result ORDER BY {order}")
        };
        Ok(CompiledQuery {
            sql,
            columns,
            rollup,
        })
    }

    fn check_dimension(&self, metric: &MetricDef, dimension: &str) -> Result<(), SemanticError> {
        let dims = self.dimensions_of(metric);
        let wanted = output_name(dimension);
        let ok = dims.iter().any(|d| d.name.eq_ignore_ascii_case(&wanted))
            && self
                .base_measures(metric)
                .iter()
                .all(|(m, _)| self.resolve(*m, dimension).is_some());
        if ok {
            Ok(())
        } else {
            Err(SemanticError::UnknownDimension {
                metric: metric.name.clone(),
                dimension: dimension.to_owned(),
                available: dims
                    .iter()
                    .map(|d| d.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
            })
        }
    }

    /// SQL producing the keys of `shape` and a column `value`.
    fn metric_sql(
        &self,
        metric: &MetricDef,
        shape: &Shape,
    ) -> Result<(String, Option<String>), SemanticError> {
        let mut shape = shape.clone();
        if let Some(f) = &metric.filter {
            shape.where_templates.push(f.clone());
        }
        match metric.kind {
            MetricType::Simple => self.simple_metric_sql(metric, &shape),
            MetricType::Cumulative => {
                let window = metric
                    .type_params
                    .window
                    .as_deref()
                    .and_then(parse_window_days)
                    .ok_or_else(|| {
                        SemanticError::Invalid(format!(
                            "metric {} has no valid window",
                            metric.name
                        ))
                    })?;
                let (measure_ref, (model, measure)) = self.measure_of(metric)?;
                if let Some(f) = measure_ref.filter() {
                    shape.where_templates.push(f.to_owned());
                }
                Ok((self.cumulative_sql(model, measure, window, &shape)?, None))
            }
            MetricType::Ratio => {
                let p = &metric.type_params;
                let (num, den) = (p.numerator.as_ref(), p.denominator.as_ref());
                let (Some(num), Some(den)) = (num, den) else {
                    return Err(SemanticError::Invalid(format!(
                        "ratio metric {} lacks inputs",
                        metric.name
                    )));
                };
                let inputs = [self.input_sql(num, &shape)?, self.input_sql(den, &shape)?];
                let expr = "num.value * 1.0 / NULLIF(den.value, 0)";
                Ok((join_inputs(&inputs, &["num", "den"], expr, &shape), None))
            }
            MetricType::Derived => {
                let refs = metric.type_params.metrics.as_deref().unwrap_or_default();
                let aliases: Vec<String> = (0..refs.len()).map(|i| format!("i{i}")).collect();
                let inputs = refs
                    .iter()
                    .map(|r| self.input_sql(r, &shape))
                    .collect::<Result<Vec<_>, _>>()?;
                let expr_src = metric.type_params.expr.as_deref().unwrap_or_default();
                let names: Vec<&str> = refs.iter().map(|r| r.alias()).collect();
                let expr = rewrite_identifiers(expr_src, |id| {
                    names
                        .iter()
                        .position(|n| n.eq_ignore_ascii_case(id))
                        .map(|i| vec![aliases[i].clone(), "value".into()])
                })
                .map_err(|e| SemanticError::Invalid(format!("metric {}: {e}", metric.name)))?;
                let alias_refs: Vec<&str> = aliases.iter().map(String::as_str).collect();
                Ok((join_inputs(&inputs, &alias_refs, &expr, &shape), None))
            }
        }
    }

    fn input_sql(&self, r: &super::model::NameRef, shape: &Shape) -> Result<String, SemanticError> {
        let metric = self
            .metric(r.name())
            .ok_or_else(|| SemanticError::UnknownMetric(r.name().to_owned()))?;
        let mut s = shape.clone();
        if let Some(f) = r.filter() {
            s.where_templates.push(f.to_owned());
        }
        Ok(self.metric_sql(metric, &s)?.0)
    }

    fn measure_of<'a>(
        &'a self,
        metric: &'a MetricDef,
    ) -> Result<(&'a super::model::NameRef, (usize, &'a MeasureDef)), SemanticError> {
        let r = metric.type_params.measure.as_ref().ok_or_else(|| {
            SemanticError::Invalid(format!("metric {} has no measure", metric.name))
        })?;
        let found = self.find_measure(r.name()).ok_or_else(|| {
            SemanticError::Invalid(format!("measure {} is not defined", r.name()))
        })?;
        Ok((r, found))
    }

    fn simple_metric_sql(
        &self,
        metric: &MetricDef,
        shape: &Shape,
    ) -> Result<(String, Option<String>), SemanticError> {
        let (measure_ref, (model, measure)) = self.measure_of(metric)?;
        let mut shape = shape.clone();
        if let Some(f) = measure_ref.filter() {
            shape.where_templates.push(f.to_owned());
        }
        // A metric defined at a grain (DAU) is not additive over longer ranges:
        // compute it at its grain, then report the mean of those values.
        if let Some(g) = metric.time_granularity
            && !measure.agg.is_additive()
            && shape.grain.is_none_or(|q| q > g)
        {
            let mut fine = shape.clone();
            fine.grain = Some(g);
            let inner = self.measure_sql(model, measure, &fine)?;
            let outer_keys: Vec<String> = shape.group_by.iter().map(|d| output_name(d)).collect();
            let mut select = Vec::new();
            let mut group = outer_keys.clone();
            if let Some(q) = shape.grain {
                select.push(format!(
                    "{} AS period",
                    shape.dialect.truncate(q, "fine.period")
                ));
                group.insert(0, shape.dialect.truncate(q, "fine.period"));
            }
            select.extend(outer_keys.iter().map(|k| format!("fine.{k} AS {k}")));
            select.push("AVG(fine.value) AS value".into());
            let group_sql = if group.is_empty() {
                String::new()
            } else {
                format!(" GROUP BY {}", group.join(", "))
            };
            let sql = format!(
                "SELECT {} FROM ({inner}) AS fine{group_sql}",
                select.join(", ")
            );
            return Ok((sql, Some(format!("mean of {} values", grain_adjective(g)))));
        }
        Ok((self.measure_sql(model, measure, &shape)?, None))
    }

    /// The base derived table for a measure: keys (`period` and dimensions),
    /// `ts` (the aggregation time) and `measure_value`, with joins and filters.
    fn base_sql(
        &self,
        model: usize,
        measure: &MeasureDef,
        shape: &Shape,
        range: TimeRange,
        period: bool,
    ) -> Result<String, SemanticError> {
        let m = &self.models[model];
        let time_dim = measure
            .agg_time_dimension
            .as_deref()
            .or(m.agg_time_dimension())
            .unwrap_or_default();
        let mut joins = Joins::new(self, model);
        let ts = joins.dimension_expr(time_dim)?;
        let mut select = Vec::new();
        if period && let Some(g) = shape.grain {
            select.push(format!("{} AS period", shape.dialect.truncate(g, &ts)));
        }
        for d in shape.group_by {
            select.push(format!(
                "{} AS {}",
                joins.dimension_expr(d)?,
                output_name(d)
            ));
        }
        select.push(format!("{ts} AS ts"));
        select.push(format!(
            "{} AS measure_value",
            qualify(measure.expr(), "m0")?
        ));

        let mut conditions = vec![
            format!("{ts} >= {}", shape.dialect.date_literal(range.start)),
            format!("{ts} < {}", shape.dialect.date_literal(range.end)),
        ];
        for f in shape.filters {
            let values: Vec<String> = f.values.iter().map(|v| quote_literal(v)).collect();
            conditions.push(format!(
                "{} IN ({})",
                joins.dimension_expr(&f.dimension)?,
                values.join(", ")
            ));
        }
        for t in &shape.where_templates {
            conditions.push(format!("({})", render_template(t, &mut joins)?));
        }
        if let Some(nad) = &measure.non_additive_dimension {
            let snap_col = m
                .dimensions
                .iter()
                .find(|d| d.name == nad.name)
                .map(|d| d.expr().to_owned())
                .unwrap_or_else(|| nad.name.clone());
            let pick = match nad.window_choice {
                WindowChoice::Min => "MIN",
                WindowChoice::Max => "MAX",
            };
            let inner_range = format!(
                "{snap_col} >= {} AND {snap_col} < {}",
                shape.dialect.date_literal(range.start),
                shape.dialect.date_literal(range.end)
            );
            let table = m.table();
            let snap = qualify(&snap_col, "m0")?;
            let sub = match shape.grain.filter(|_| period) {
                Some(g) => format!(
                    "{snap} IN (SELECT {pick}({snap_col}) FROM {table} WHERE {inner_range} GROUP BY {})",
                    shape.dialect.truncate(g, &snap_col)
                ),
                None => {
                    format!("{snap} = (SELECT {pick}({snap_col}) FROM {table} WHERE {inner_range})")
                }
            };
            conditions.push(sub);
        }
        Ok(format!(
            "SELECT {} FROM {}{} WHERE {}",
            select.join(", "),
            m.table(),
            joins.sql(),
            conditions.join(" AND ")
        ))
    }

    /// A simple measure aggregated by the shape's keys into `value`.
    fn measure_sql(
        &self,
        model: usize,
        measure: &MeasureDef,
        shape: &Shape,
    ) -> Result<String, SemanticError> {
        let base = self.base_sql(model, measure, shape, shape.range, true)?;
        let keys = shape.keys();
        let from = format!("({base}) AS base");
        Ok(aggregate(
            measure.agg,
            &keys,
            "measure_value",
            &from,
            shape.dialect,
        ))
    }

    /// A cumulative measure: for each period, the aggregate over the trailing
    /// `window_days` ending on the period's last day (or on the range's last
    /// day when there is no grain).
    fn cumulative_sql(
        &self,
        model: usize,
        measure: &MeasureDef,
        window_days: i64,
        shape: &Shape,
    ) -> Result<String, SemanticError> {
        let Some(grain) = shape.grain else {
            let range = TimeRange {
                start: shape.range.end - Duration::days(window_days),
                end: shape.range.end,
            };
            let base = self.base_sql(model, measure, shape, range, false)?;
            let keys = shape.keys();
            return Ok(aggregate(
                measure.agg,
                &keys,
                "measure_value",
                &format!("({base}) AS base"),
                shape.dialect,
            ));
        };
        let periods = periods(shape.range, grain);
        let lo = periods
            .first()
            .map(|(_, last)| *last)
            .unwrap_or(shape.range.start)
            - Duration::days(window_days - 1);
        let wide = TimeRange {
            start: lo.min(shape.range.start),
            end: shape.range.end,
        };
        let base = self.base_sql(model, measure, shape, wide, false)?;
        let d = shape.dialect;
        let values: Vec<String> = periods
            .iter()
            .map(|(start, last)| {
                format!(
                    "({}, {}, {})",
                    d.date_literal(*start),
                    d.date_literal(*last - Duration::days(window_days - 1)),
                    d.date_literal(*last + Duration::days(1))
                )
            })
            .collect();
        let dims: Vec<String> = shape.group_by.iter().map(|g| output_name(g)).collect();
        let mut select = vec!["p.period AS period".to_owned()];
        select.extend(dims.iter().map(|k| format!("b.{k} AS {k}")));
        let agg = aggregate_expr(measure.agg, "b.measure_value");
        let mut group = vec!["p.period".to_owned()];
        group.extend(dims.iter().map(|k| format!("b.{k}")));
        Ok(format!(
            "WITH periods (period, lo, hi) AS (VALUES {}) SELECT {}, {agg} AS value FROM periods AS p JOIN ({base}) AS b ON b.ts >= p.lo AND b.ts < p.hi GROUP BY {}",
            values.join(", "),
            select.join(", "),
            group.join(", ")
        ))
    }
}

fn grain_adjective(g: Grain) -> &'static str {
    match g {
        Grain::Day => "daily",
        Grain::Week => "weekly",
        Grain::Month => "monthly",
        Grain::Quarter => "quarterly",
        Grain::Year => "yearly",
    }
}

/// `(first day, last day)` of each `grain` period overlapping `range`, clipped to it.
fn periods(range: TimeRange, grain: Grain) -> Vec<(NaiveDate, NaiveDate)> {
    let mut out = Vec::new();
    let mut day = range.start;
    while day < range.end {
        let start = period_start(day, grain);
        let step = match grain {
            Grain::Day => 1,
            Grain::Week => 7,
            Grain::Month => 32,
            Grain::Quarter => 93,
            Grain::Year => 367,
        };
        let next = period_start(start + Duration::days(step), grain);
        let last = next.pred_opt().unwrap_or(next).min(range.last_day());
        out.push((start, last));
        day = next;
    }
    out
}

/// The first day of the `grain` period containing `d` (weeks start Monday).
pub fn period_start(d: NaiveDate, grain: Grain) -> NaiveDate {
    match grain {
        Grain::Day => d,
        Grain::Week => d - Duration::days(i64::from(d.weekday().num_days_from_monday())),
        Grain::Month => d.with_day(1).unwrap_or(d),
        Grain::Quarter => {
            NaiveDate::from_ymd_opt(d.year(), (d.month0() / 3) * 3 + 1, 1).unwrap_or(d)
        }
        Grain::Year => NaiveDate::from_ymd_opt(d.year(), 1, 1).unwrap_or(d),
    }
}

fn aggregate_expr(agg: Agg, col: &str) -> String {
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
fn aggregate(agg: Agg, keys: &[String], col: &str, from: &str, dialect: Dialect) -> String {
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
fn join_inputs(inputs: &[String], aliases: &[&str], expr: &str, shape: &Shape) -> String {
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
struct Joins<'a> {
    layer: &'a SemanticLayer,
    from: usize,
    /// `(model index, alias, join clause)` in join order.
    joined: Vec<(usize, String, String)>,
}

impl<'a> Joins<'a> {
    fn new(layer: &'a SemanticLayer, from: usize) -> Self {
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
    fn dimension_expr(&mut self, name: &str) -> Result<String, SemanticError> {
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

    fn sql(&self) -> String {
        let mut s = String::from(" AS m0");
        for (_, _, clause) in &self.joined {
            s.push_str(clause);
        }
        s
    }
}

fn entity_expr(
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
fn qualify(expr: &str, alias: &str) -> Result<String, SemanticError> {
    rewrite_identifiers(expr, |_| Some(vec![alias.to_owned()])).map_err(SemanticError::Invalid)
}

/// Parses `expr` and rewrites each bare identifier `x` for which `f` returns
/// `Some(prefix)` into `prefix.x` (or, when the prefix's last part is
/// `value`, into the prefix itself, for derived-metric inputs).
fn rewrite_identifiers(
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
fn render_template(template: &str, joins: &mut Joins) -> Result<String, SemanticError> {
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

/// Compiles a metric with and without a grain to catch definitions that
/// cannot produce SQL; used at load time.
pub(crate) fn check_compiles(
    layer: &SemanticLayer,
    metric: &MetricDef,
) -> Result<(), SemanticError> {
    let end = NaiveDate::from_ymd_opt(2024, 1, 8).unwrap_or_default();
    let range = TimeRange {
        start: end - Duration::days(7),
        end,
    };
    for grain in [None, Some(Grain::Day)] {
        let q = MetricQuery {
            metric: metric.name.clone(),
            range,
            grain,
            group_by: Vec::new(),
            filters: Vec::new(),
        };
        let compiled = layer.compile(&q, Dialect::Sqlite)?;
        sqlparser::parser::Parser::parse_sql(&sqlparser::dialect::SQLiteDialect {}, &compiled.sql)
            .map_err(|e| {
                SemanticError::Invalid(format!(
                    "compiled SQL does not parse: {e}: {}",
                    compiled.sql
                ))
            })?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::semantic::tests::demo;

    fn d(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
    }

    fn q(metric: &str, grain: Option<Grain>, group_by: &[&str]) -> MetricQuery {
        MetricQuery {
            metric: metric.into(),
            range: TimeRange::new(d("2026-11-09"), d("2026-11-16")).unwrap(),
            grain,
            group_by: group_by.iter().map(|s| s.to_string()).collect(),
            filters: Vec::new(),
        }
    }

    #[test]
    fn every_demo_metric_compiles_for_both_dialects_with_and_without_grain() {
        let s = demo();
        for m in s.metrics() {
            for dialect in [Dialect::Sqlite, Dialect::Postgres] {
                for grain in [
                    None,
                    Some(Grain::Day),
                    Some(Grain::Week),
                    Some(Grain::Month),
                ] {
                    let c = s.compile(&q(&m.name, grain, &[]), dialect).unwrap();
                    let parser = dialect.parser();
                    sqlparser::parser::Parser::parse_sql(parser.as_ref(), &c.sql).unwrap_or_else(
                        |e| panic!("{} {dialect} {grain:?}: {e}\n{}", m.name, c.sql),
                    );
                }
            }
        }
    }

    #[test]
    fn breakdown_columns_are_named_after_dimensions() {
        let c = demo()
            .compile(
                &q(
                    "signups",
                    Some(Grain::Day),
                    &["platform", "customer__region"],
                ),
                Dialect::Sqlite,
            )
            .unwrap();
        assert_eq!(c.columns, vec!["period", "platform", "region", "signups"]);
        assert!(c.sql.contains("LEFT JOIN customers"), "{}", c.sql);
    }

    #[test]
    fn unknown_dimension_lists_the_available_ones() {
        let err = demo()
            .compile(&q("revenue", None, &["platform"]), Dialect::Sqlite)
            .unwrap_err();
        match err {
            SemanticError::UnknownDimension { available, .. } => {
                assert!(available.contains("region"))
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn dau_over_a_range_is_a_mean_of_daily_values() {
        let c = demo()
            .compile(&q("dau", None, &[]), Dialect::Sqlite)
            .unwrap();
        assert_eq!(c.rollup.as_deref(), Some("mean of daily values"));
        assert!(c.sql.contains("AVG(fine.value)"));
    }

    #[test]
    fn filter_values_are_quoted() {
        let mut query = q("signups", None, &[]);
        query.filters.push(crate::semantic::DimensionFilter {
            dimension: "platform".into(),
            values: vec!["x' OR '1'='1".into()],
        });
        let c = demo().compile(&query, Dialect::Sqlite).unwrap();
        assert!(c.sql.contains("IN ('x'' OR ''1''=''1')"), "{}", c.sql);
    }

    #[test]
    fn periods_cover_the_range_at_each_grain() {
        let r = TimeRange::new(d("2026-10-15"), d("2026-12-02")).unwrap();
        let months = periods(r, Grain::Month);
        assert_eq!(months.len(), 3);
        assert_eq!(months[0], (d("2026-10-01"), d("2026-10-31")));
        assert_eq!(months[2], (d("2026-12-01"), d("2026-12-01")));
        let weeks = periods(
            TimeRange::new(d("2026-11-09"), d("2026-11-23")).unwrap(),
            Grain::Week,
        );
        assert_eq!(
            weeks,
            vec![
                (d("2026-11-09"), d("2026-11-15")),
                (d("2026-11-16"), d("2026-11-22"))
            ]
        );
        assert_eq!(
            period_start(d("2026-11-21"), Grain::Quarter),
            d("2026-10-01")
        );
    }
}
