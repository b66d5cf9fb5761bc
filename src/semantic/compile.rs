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
    Joins, aggregate, aggregate_expr, entity_expr, join_inputs, qualify, render_template,
    rewrite_identifiers,
};
use super::model::{MeasureDef, MetricDef, MetricType, NameRef, PeriodAgg, Window, WindowChoice};
use super::periods::{grain_adjective, next_period_start, period_start, periods};
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

    fn input_sql(&self, r: &NameRef, shape: &Shape) -> Result<String, SemanticError> {
        let metric = self
            .metric(r.name())
            .ok_or_else(|| SemanticError::UnknownMetric(r.name().to_owned()))?;
        let mut s = shape.clone();
        s.where_templates.extend(r.filter.0.iter().cloned());
        Ok(self.metric_sql(metric, &s)?.0)
    }

    /// A derived metric's input with `offset_window` or `offset_to_grain`,
    /// after MetricFlow. `offset_window`: the input over rows whose time plus
    /// the window falls in the period (a month's value "a week earlier" sums
    /// the days a week before each of its days), with or without a grain.
    /// `offset_to_grain`: for each period `p` of the query's grain, the
    /// input's value for the period starting at the start of `p`'s
    /// `offset_to_grain` period (none when that is not a period start).
    fn offset_input_sql(
        &self,
        derived: &MetricDef,
        r: &NameRef,
        shape: &Shape,
    ) -> Result<String, SemanticError> {
        if shape.custom.is_some() {
            return Err(custom_unsupported(&derived.name, "an offset"));
        }
        if let Some(w) = r.offset_window {
            let mut shifted = shape.clone();
            shifted.shift = Some(w);
            return self.input_sql(r, &shifted);
        }
        let Some(grain) = shape.grain.filter(|g| !g.is_sub_daily()) else {
            return Err(SemanticError::Invalid(format!(
                "metric {} compares each period with the start of its {} (offset_to_grain); ask for it by day, week, month, quarter or year",
                derived.name,
                r.offset_to_grain.as_deref().unwrap_or("period")
            )));
        };
        let to_grain = match &r.offset_to_grain {
            Some(g) => Some(Grain::parse(g).ok_or_else(|| {
                SemanticError::Invalid(format!(
                    "metric {}: unknown offset_to_grain {g:?}",
                    derived.name
                ))
            })?),
            None => None,
        };
        let shifts: Vec<(NaiveDate, NaiveDate)> = periods(shape.range, grain)
            .into_iter()
            .map(|(p, _)| {
                let target = to_grain.map_or(p, |g| period_start(p, g));
                (p, target)
            })
            .collect();
        let lo = shifts
            .iter()
            .map(|(_, t)| *t)
            .min()
            .unwrap_or(shape.range.start);
        let hi = shifts
            .iter()
            .map(|(_, t)| *t)
            .max()
            .unwrap_or(shape.range.start);
        // The input over whole periods covering every target.
        let mut input_shape = shape.clone();
        input_shape.range = TimeRange {
            start: period_start(lo, grain),
            end: next_period_start(hi, grain),
        };
        let input = self.input_sql(r, &input_shape)?;
        let d = shape.dialect;
        let values: Vec<String> = shifts
            .iter()
            .map(|(p, t)| format!("({}, {})", d.date_literal(*p), d.date_literal(*t)))
            .collect();
        let mut cols = vec!["shifts.period AS period".to_owned()];
        cols.extend(shape.keys().iter().skip(1).map(|k| format!("i.{k} AS {k}")));
        cols.push("i.value AS value".into());
        Ok(format!(
            "WITH shifts (period, target) AS (VALUES {}) SELECT {} FROM shifts JOIN ({input}) AS i ON i.period = shifts.target",
            values.join(", "),
            cols.join(", ")
        ))
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

    /// MetricFlow's `join_to_timespine`: one row per period of the range
    /// (periods without data have NULL dimensions and value), the metric's
    /// rows joined to them on the period.
    fn spine_sql(
        &self,
        metric: &MetricDef,
        sql: &str,
        grain: Grain,
        shape: &Shape,
    ) -> Result<String, SemanticError> {
        if grain.is_sub_daily() {
            return Err(SemanticError::Invalid(format!(
                "metric {}: join_to_timespine needs a grain of a day or longer",
                metric.name
            )));
        }
        let d = shape.dialect;
        let values: Vec<String> = periods(shape.range, grain)
            .iter()
            .map(|(start, _)| format!("({})", d.date_literal(*start)))
            .collect();
        let mut cols = vec!["spine.period AS period".to_owned()];
        cols.extend(shape.keys().iter().skip(1).map(|k| format!("v.{k} AS {k}")));
        cols.push("v.value AS value".into());
        Ok(format!(
            "WITH spine (period) AS (VALUES {}) SELECT {} FROM spine LEFT JOIN ({sql}) AS v ON v.period = spine.period",
            values.join(", "),
            cols.join(", ")
        ))
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
    fn base_sql(
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

    /// A cumulative measure, after MetricFlow: the value on a day is the
    /// aggregate over the trailing `window` ending on that day, or over the
    /// days since the start of its `grain_to_date` period. A period of the
    /// query's grain reports the value on its first or last day, or the mean
    /// of its daily values (`period_agg`; periods are clipped to the range);
    /// without a grain, the value on the range's last day.
    fn cumulative_sql(
        &self,
        model: usize,
        measure: &MeasureDef,
        metric: &MetricDef,
        shape: &Shape,
    ) -> Result<String, SemanticError> {
        if shape.custom.is_some() {
            return Err(custom_unsupported(&metric.name, "a cumulative metric"));
        }
        let p = &metric.type_params;
        let window = p.cumulative_window();
        let to_date = p.cumulative_grain_to_date();
        let first_day = |day: NaiveDate| match (window, to_date) {
            (Some(w), _) => window_start(w, day),
            (None, Some(g)) => period_start(day, g),
            // No window: everything up to the day (MetricFlow's default).
            (None, None) => NaiveDate::MIN,
        };
        let Some(grain) = shape.grain else {
            let day = shape.range.last_day();
            let range = TimeRange {
                start: first_day(day),
                end: shape.range.end,
            };
            let base = self.base_sql(model, measure, shape, range, false)?;
            let keys = shape.keys();
            return aggregate(
                measure,
                &keys,
                "measure_value",
                &format!("({base}) AS base"),
                shape.dialect,
            );
        };
        if grain.is_sub_daily() {
            return Err(SemanticError::Invalid(format!(
                "metric {} is cumulative over days; it has no {} values",
                metric.name,
                grain_adjective(grain)
            )));
        }
        if p.period_agg() == PeriodAgg::Average && grain > Grain::Day {
            // The mean of the daily values within each period.
            let mut daily = shape.clone();
            daily.grain = Some(Grain::Day);
            let fine = self.cumulative_sql(model, measure, metric, &daily)?;
            return Ok(mean_by_period(&fine, shape));
        }
        let reports: Vec<(NaiveDate, NaiveDate)> = periods(shape.range, grain)
            .into_iter()
            .map(|(start, last)| match p.period_agg() {
                PeriodAgg::First => (start, start),
                // By day (the only grain left for `average`), first and last agree.
                PeriodAgg::Last | PeriodAgg::Average => (start, last),
            })
            .collect();
        let lo = reports
            .iter()
            .map(|(_, day)| first_day(*day))
            .min()
            .unwrap_or(shape.range.start);
        let wide = TimeRange {
            start: lo.min(shape.range.start),
            end: shape.range.end,
        };
        let base = self.base_sql(model, measure, shape, wide, false)?;
        let d = shape.dialect;
        let values: Vec<String> = reports
            .iter()
            .map(|(period, day)| {
                let from = first_day(*day);
                format!(
                    "({}, {}, {})",
                    d.date_literal(*period),
                    if from == NaiveDate::MIN {
                        d.date_literal(wide.start)
                    } else {
                        d.date_literal(from)
                    },
                    d.date_literal(*day + Duration::days(1))
                )
            })
            .collect();
        let dims: Vec<String> = shape.group_by.iter().map(|g| output_name(g)).collect();
        let mut select = vec!["p.period AS period".to_owned()];
        select.extend(dims.iter().map(|k| format!("b.{k} AS {k}")));
        let agg = aggregate_expr(measure, "b.measure_value", d)?;
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

/// The error for a custom granularity asked of something that cannot use one.
fn custom_unsupported(name: &str, what: &str) -> SemanticError {
    SemanticError::Invalid(format!(
        "{name}: {what} cannot be reported by a custom granularity yet; ask by day, week, month, quarter or year"
    ))
}

/// The mean of `fine`'s values (keys: `period` at a finer grain, then the
/// shape's dimensions) per period of the shape's grain (or over the whole
/// range without one), with the shape's keys.
fn mean_by_period(fine: &str, shape: &Shape) -> String {
    let outer_keys: Vec<String> = shape.group_by.iter().map(|d| output_name(d)).collect();
    let mut select = Vec::new();
    let mut group = outer_keys.clone();
    if let Some(q) = shape.grain {
        let period = shape.dialect.truncate(q, "fine.period");
        select.push(format!("{period} AS period"));
        group.insert(0, period);
    }
    select.extend(outer_keys.iter().map(|k| format!("fine.{k} AS {k}")));
    select.push("AVG(fine.value) AS value".into());
    let group_sql = if group.is_empty() {
        String::new()
    } else {
        format!(" GROUP BY {}", group.join(", "))
    };
    format!(
        "SELECT {} FROM ({fine}) AS fine{group_sql}",
        select.join(", ")
    )
}

/// `day` moved `window` forward or back, in calendar units (MetricFlow's
/// `day ± INTERVAL window`); a window shorter than a day moves by the whole
/// days that cover it.
fn shift(day: NaiveDate, w: Window, forward: bool) -> NaiveDate {
    let per_day = match w.grain {
        Grain::Second => 86_400,
        Grain::Minute => 1_440,
        Grain::Hour => 24,
        _ => 1,
    };
    let (days, months) = match w.grain {
        Grain::Week => (7 * w.count, 0),
        Grain::Month => (0, w.count),
        Grain::Quarter => (0, 3 * w.count),
        Grain::Year => (0, 12 * w.count),
        Grain::Day => (w.count, 0),
        Grain::Second | Grain::Minute | Grain::Hour => ((w.count + per_day - 1) / per_day, 0),
    };
    let months = chrono::Months::new(u32::try_from(months).unwrap_or(u32::MAX));
    if forward {
        (day + Duration::days(days))
            .checked_add_months(months)
            .unwrap_or(NaiveDate::MAX)
    } else {
        (day - Duration::days(days))
            .checked_sub_months(months)
            .unwrap_or(NaiveDate::MIN)
    }
}

/// The day `window` after `day` (`day + INTERVAL window`, whole days).
pub(super) fn window_end(w: Window, day: NaiveDate) -> NaiveDate {
    shift(day, w, true)
}

/// The first day of a trailing `window` ending on `day`: MetricFlow's
/// `ts > day - INTERVAL window AND ts <= day`, in calendar units.
fn window_start(w: Window, day: NaiveDate) -> NaiveDate {
    let before = shift(day, w, false);
    before.succ_opt().unwrap_or(before)
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
