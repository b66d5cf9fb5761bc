//! Compiling metric queries to SQL.
//!
//! Every metric compiles to one SELECT whose columns are `period` (when a
//! grain is asked for), one column per group-by dimension (named after it),
//! and the metric's value (named after the metric). Measures are first
//! projected from a base derived table (`measure_value`, plus keys) and then
//! aggregated, which keeps every aggregation the same shape whatever joins the
//! dimensions need. Column references in model expressions are qualified
//! with their model's alias, so joined models cannot make them ambiguous.

use chrono::{Duration, NaiveDate};
use serde::Serialize;

use super::expr::{
    Joins, aggregate, entity_expr, join_inputs, qualify, render_template, rewrite_identifiers,
};
use super::model::{MeasureDef, MetricDef, MetricType, NameRef, Window, WindowChoice};
use super::periods::grain_adjective;
use super::timeline::mean_by_period;
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

/// An extra column of [`SemanticLayer::events_sql`]: `(name, alias)`.
pub(super) enum Extra {
    /// An entity of the model, by name.
    Entity(String, String),
    /// A dimension reachable from the model.
    Dimension(String, String),
}

/// What one (sub)query must produce.
#[derive(Clone)]
pub(super) struct Shape<'q> {
    pub(super) range: TimeRange,
    pub(super) grain: Option<Grain>,
    pub(super) group_by: &'q [String],
    pub(super) filters: &'q [super::DimensionFilter],
    /// MetricFlow Jinja filters pushed down from metrics and references.
    pub(super) where_templates: Vec<String>,
    /// A derived metric's `offset_window`: rows count at their time plus
    /// this (so a period holds the rows of one window earlier).
    pub(super) shift: Option<Window>,
    /// A custom granularity: `(spine table, its day column, the period column)`.
    pub(super) custom: Option<(String, String, String)>,
    pub(super) dialect: Dialect,
}

impl<'q> Shape<'q> {
    pub(super) fn keys(&self) -> Vec<String> {
        let mut k = Vec::new();
        if self.grain.is_some() || self.custom.is_some() {
            k.push("period".to_owned());
        }
        k.extend(self.group_by.iter().map(|d| output_name(d)));
        k
    }
}

/// `user__platform` → `platform`: the column name a dimension gets.
pub(super) fn output_name(dimension: &str) -> String {
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
        if let Some(g) = q.grain
            && g < self.time_granularity(metric)
        {
            return Err(SemanticError::Invalid(format!(
                "metric {} is recorded per {}; it has no {} values",
                metric.name,
                self.time_granularity(metric).as_str(),
                super::periods::grain_adjective(g)
            )));
        }
        let shape = Shape {
            range: q.range,
            grain: q.grain,
            group_by: &q.group_by,
            filters: &q.filters,
            where_templates: Vec::new(),
            shift: None,
            custom: match &q.custom_grain {
                None => None,
                Some(name) => {
                    let (spine, c) = self.custom_grain(name).ok_or_else(|| {
                        SemanticError::Invalid(format!("there is no granularity {name:?}"))
                    })?;
                    if q.grain.is_some() {
                        return Err(SemanticError::Invalid(
                            "ask for a grain or a custom granularity, not both".into(),
                        ));
                    }
                    Some((
                        spine.table.clone(),
                        spine.day_column.clone(),
                        c.column.clone(),
                    ))
                }
            },
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

    pub(super) fn check_dimension(
        &self,
        metric: &MetricDef,
        dimension: &str,
    ) -> Result<(), SemanticError> {
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
        shape
            .where_templates
            .extend(metric.filter.0.iter().cloned());
        match metric.kind {
            MetricType::Simple => self.simple_metric_sql(metric, &shape),
            MetricType::Cumulative => {
                let (measure_ref, (model, measure)) = self.measure_of(metric)?;
                shape
                    .where_templates
                    .extend(measure_ref.filter.0.iter().cloned());
                Ok((self.cumulative_sql(model, measure, metric, &shape)?, None))
            }
            MetricType::Conversion => Ok((self.conversion_sql(metric, &shape)?, None)),
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
                let refs = &metric.type_params.metrics;
                let aliases: Vec<String> = (0..refs.len()).map(|i| format!("i{i}")).collect();
                let inputs = refs
                    .iter()
                    .map(|r| {
                        if r.offset_window.is_some() || r.offset_to_grain.is_some() {
                            self.offset_input_sql(metric, r, &shape)
                        } else {
                            self.input_sql(r, &shape)
                        }
                    })
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

    pub(super) fn input_sql(&self, r: &NameRef, shape: &Shape) -> Result<String, SemanticError> {
        let metric = self
            .metric(r.name())
            .ok_or_else(|| SemanticError::UnknownMetric(r.name().to_owned()))?;
        let mut s = shape.clone();
        s.where_templates.extend(r.filter.0.iter().cloned());
        Ok(self.metric_sql(metric, &s)?.0)
    }

    fn measure_of<'a>(
        &'a self,
        metric: &'a MetricDef,
    ) -> Result<(&'a NameRef, (usize, &'a MeasureDef)), SemanticError> {
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
        let (sql, rollup) = self.simple_values_sql(metric, shape)?;
        let (measure_ref, _) = self.measure_of(metric)?;
        let p = &metric.type_params;
        let spine = measure_ref.join_to_timespine || p.join_to_timespine == Some(true);
        if spine && shape.custom.is_some() {
            return Err(custom_unsupported(&metric.name, "join_to_timespine"));
        }
        let fill = measure_ref.fill_nulls_with.or(p.fill_nulls_with);
        // As in MetricFlow, whose query filters run after the spine join, a
        // dimension filter leaves no row for periods without data.
        let sql = match shape.grain {
            Some(g) if spine && shape.filters.is_empty() => {
                self.spine_sql(metric, &sql, g, shape)?
            }
            _ => sql,
        };
        let sql = match fill {
            Some(n) => {
                let mut cols = shape.keys();
                cols.push(format!("COALESCE(filled.value, {n}) AS value"));
                format!("SELECT {} FROM ({sql}) AS filled", cols.join(", "))
            }
            None => sql,
        };
        Ok((sql, rollup))
    }

    /// A simple metric's values before `join_to_timespine`/`fill_nulls_with`.
    fn simple_values_sql(
        &self,
        metric: &MetricDef,
        shape: &Shape,
    ) -> Result<(String, Option<String>), SemanticError> {
        let (measure_ref, (model, measure)) = self.measure_of(metric)?;
        let mut shape = shape.clone();
        shape
            .where_templates
            .extend(measure_ref.filter.0.iter().cloned());
        // A metric defined at a grain (DAU) is not additive over longer ranges:
        // compute it at its grain, then report the mean of those values.
        if let Some(g) = metric.time_granularity
            && !measure.agg.is_additive()
            && shape.grain.is_none_or(|q| q > g)
        {
            if shape.custom.is_some() {
                return Err(custom_unsupported(
                    &metric.name,
                    "a metric reported as a mean of its daily values",
                ));
            }
            let mut fine = shape.clone();
            fine.grain = Some(g);
            let inner = self.measure_sql(model, measure, &fine)?;
            let sql = mean_by_period(&inner, &shape);
            return Ok((sql, Some(format!("mean of {} values", grain_adjective(g)))));
        }
        Ok((self.measure_sql(model, measure, &shape)?, None))
    }

    /// The base derived table for a measure: keys (`period` and dimensions),
    /// `ts` (the aggregation time) and `measure_value`, with joins and filters.
    pub(super) fn base_sql(
        &self,
        model: usize,
        measure: &MeasureDef,
        shape: &Shape,
        range: TimeRange,
        period: bool,
    ) -> Result<String, SemanticError> {
        self.events_sql(model, measure, shape, range, period, &[])
    }

    /// [`Self::base_sql`] with `extra` columns: each an entity (`Entity`) or
    /// a dimension (`Dimension`) reached from the model, under an alias.
    pub(super) fn events_sql(
        &self,
        model: usize,
        measure: &MeasureDef,
        shape: &Shape,
        range: TimeRange,
        period: bool,
        extra: &[Extra],
    ) -> Result<String, SemanticError> {
        let m = &self.models[model];
        let time_dim = measure
            .agg_time_dimension
            .as_deref()
            .or(m.agg_time_dimension())
            .unwrap_or_default();
        let mut joins = Joins::new(self, model, time_dim, shape.dialect);
        let ts = joins.dimension_expr(time_dim)?;
        let ts = match shape.shift {
            Some(w) => shape.dialect.add_interval(&ts, w.count, w.grain),
            None => ts,
        };
        let mut select = Vec::new();
        if period && let Some(g) = shape.grain {
            select.push(format!("{} AS period", shape.dialect.truncate(g, &ts)));
        }
        // A custom granularity: the time spine's column for the row's day.
        let mut spine_join = String::new();
        if period && let Some((table, day, column)) = &shape.custom {
            select.push(format!("sp.{column} AS period"));
            spine_join = format!(
                " LEFT JOIN {table} AS sp ON sp.{day} = {}",
                shape.dialect.truncate(Grain::Day, &ts)
            );
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
        for e in extra {
            let (expr, alias) = match e {
                Extra::Entity(name, alias) => (entity_expr(self, model, name, "m0")?, alias),
                Extra::Dimension(name, alias) => (joins.dimension_expr(name)?, alias),
            };
            select.push(format!("{expr} AS {alias}"));
        }

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
            if shape.custom.is_some() {
                return Err(custom_unsupported(&measure.name, "a semi-additive measure"));
            }
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
            "SELECT {} FROM {}{}{spine_join} WHERE {}",
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
        aggregate(measure, &keys, "measure_value", &from, shape.dialect)
    }
}

/// The error for a custom granularity asked of something that cannot use one.
pub(super) fn custom_unsupported(name: &str, what: &str) -> SemanticError {
    SemanticError::Invalid(format!(
        "{name}: {what} cannot be reported by a custom granularity yet; ask by day, week, month, quarter or year"
    ))
}

/// Compiles a metric with and without a grain to catch definitions that
/// cannot produce SQL; used at load time, when the warehouse is not known
/// yet: a definition passes if some dialect compiles it to SQL that parses
/// (one only some warehouses can run, like an approximate percentile, is
/// refused at query time on the others, naming why).
pub(crate) fn check_compiles(
    layer: &SemanticLayer,
    metric: &MetricDef,
) -> Result<(), SemanticError> {
    let end = NaiveDate::from_ymd_opt(2024, 1, 8).unwrap_or_default();
    let range = TimeRange {
        start: end - Duration::days(7),
        end,
    };
    // A metric comparing each period with its start has values only by period.
    let offsets = metric
        .type_params
        .metrics
        .iter()
        .any(|r| r.offset_to_grain.is_some());
    let grains: &[Option<Grain>] = if offsets {
        &[Some(Grain::Day)]
    } else {
        &[None, Some(Grain::Day)]
    };
    let mut first_error = None;
    for dialect in [Dialect::Sqlite, Dialect::Postgres, Dialect::Snowflake] {
        let attempt = grains.iter().try_for_each(|&grain| {
            let q = MetricQuery {
                metric: metric.name.clone(),
                range,
                grain,
                custom_grain: None,
                group_by: Vec::new(),
                filters: Vec::new(),
            };
            let compiled = layer.compile(&q, dialect)?;
            sqlparser::parser::Parser::parse_sql(dialect.parser().as_ref(), &compiled.sql)
                .map(|_| ())
                .map_err(|e| {
                    SemanticError::Invalid(format!(
                        "compiled SQL does not parse: {e}: {}",
                        compiled.sql
                    ))
                })
        });
        match attempt {
            Ok(()) => return Ok(()),
            Err(e) => {
                first_error.get_or_insert(e);
            }
        }
    }
    Err(first_error.unwrap_or_else(|| SemanticError::Invalid("no dialect".into())))
}

#[cfg(test)]
mod tests;
