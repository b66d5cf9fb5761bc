//! Metrics over time: cumulative windows and grain-to-date, a derived
//! input's offsets, `join_to_timespine`, means of finer values per period,
//! and the calendar arithmetic of windows (after MetricFlow's semantics).

use chrono::{Duration, NaiveDate};

use super::compile::{Shape, custom_unsupported, output_name};
use super::expr::{aggregate, aggregate_expr};
use super::model::{MeasureDef, MetricDef, NameRef, PeriodAgg, Window};
use super::periods::{grain_adjective, next_period_start, period_start, periods};
use super::{Grain, SemanticError, SemanticLayer, TimeRange};

impl SemanticLayer {
    /// A derived metric's input with `offset_window` or `offset_to_grain`,
    /// after MetricFlow. `offset_window`: the input over rows whose time plus
    /// the window falls in the period (a month's value "a week earlier" sums
    /// the days a week before each of its days), with or without a grain.
    /// `offset_to_grain`: for each period `p` of the query's grain, the
    /// input's value for the period starting at the start of `p`'s
    /// `offset_to_grain` period (none when that is not a period start).
    pub(super) fn offset_input_sql(
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
        Ok(on_periods(&shifts, &input, "JOIN", shape))
    }

    /// MetricFlow's `join_to_timespine`: one row per period of the range
    /// (periods without data have NULL dimensions and value), the metric's
    /// rows joined to them on the period.
    pub(super) fn spine_sql(
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
        let spine: Vec<(NaiveDate, NaiveDate)> = periods(shape.range, grain)
            .into_iter()
            .map(|(start, _)| (start, start))
            .collect();
        Ok(on_periods(&spine, sql, "LEFT JOIN", shape))
    }

    /// A cumulative measure, after MetricFlow: the value on a day is the
    /// aggregate over the trailing `window` ending on that day, or over the
    /// days since the start of its `grain_to_date` period. A period of the
    /// query's grain reports the value on its first or last day, or the mean
    /// of its daily values (`period_agg`; periods are clipped to the range);
    /// without a grain, the value on the range's last day.
    pub(super) fn cumulative_sql(
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

/// The mean of `fine`'s values (keys: `period` at a finer grain, then the
/// shape's dimensions) per period of the shape's grain (or over the whole
/// range without one), with the shape's keys.
/// `sql`'s rows (keys `period`, dimensions…, `value`) placed on a list of
/// `(period, target)` pairs: joined (`join`: `JOIN` or `LEFT JOIN`) where
/// their period is the target, and reported under the pair's period. The
/// offsets' shifted periods and `join_to_timespine`'s spine (`target ==
/// period`) are both this.
fn on_periods(pairs: &[(NaiveDate, NaiveDate)], sql: &str, join: &str, shape: &Shape) -> String {
    let d = shape.dialect;
    let values: Vec<String> = pairs
        .iter()
        .map(|(p, t)| format!("({}, {})", d.date_literal(*p), d.date_literal(*t)))
        .collect();
    let mut cols = vec!["period_targets.period AS period".to_owned()];
    cols.extend(shape.keys().iter().skip(1).map(|k| format!("v.{k} AS {k}")));
    cols.push("v.value AS value".into());
    format!(
        "WITH period_targets (period, target) AS (VALUES {}) SELECT {} FROM period_targets {join} ({sql}) AS v ON v.period = period_targets.target",
        values.join(", "),
        cols.join(", ")
    )
}

pub(super) fn mean_by_period(fine: &str, shape: &Shape) -> String {
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
