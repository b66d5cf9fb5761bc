//! Metric answers: one metric for one or two ranges (with change and
//! percentage change), or as a series or breakdown, with prose built from
//! the results.

use super::planner::MetricPlan;
use super::{
    Answer, AnswerKind, DataTable, KeyNumber, Orchestrator, StepError, format_value, group_digits,
};
use crate::policy::Grants;
use crate::semantic::{DimensionFilter, MetricQuery, TimeRange};
use crate::warehouse::ResultSet;

impl Orchestrator {
    /// One metric value over a range (no grain, no breakdown); `None` when
    /// the warehouse has no value for it.
    pub(super) async fn metric_value(
        &self,
        grants: &Grants,
        metric: &str,
        range: TimeRange,
        answer: &mut Answer,
        purpose: &str,
        filters: &[DimensionFilter],
    ) -> Result<Option<f64>, StepError> {
        let q = MetricQuery {
            metric: metric.to_owned(),
            range,
            grain: None,
            custom_grain: None,
            group_by: Vec::new(),
            filters: filters.to_vec(),
        };
        let (_, validated, result) = self.run_metric(grants, &q).await?;
        answer.ran(purpose, &validated, result.rows.len());
        Ok(result.get(0, metric).and_then(serde_json::Value::as_f64))
    }

    pub(super) async fn metric(&self, grants: &Grants, plan: &MetricPlan) -> Answer {
        let Some(def) = self.semantic.metric(&plan.metric) else {
            return Answer::refusal(
                "I have no data on that.",
                format!("no metric named {}", plan.metric),
            );
        };
        let format = def.format();
        let mut label = def.label().to_owned();
        if !plan.filters.is_empty() {
            let f: Vec<String> = plan
                .filters
                .iter()
                .map(|f| format!("{} = {}", f.dimension, f.values.join(" or ")))
                .collect();
            label = format!("{label} ({})", f.join(", "));
        }
        let mut answer = Answer::new(AnswerKind::Metric, String::new());
        answer.metric = Some(def.name.clone());
        answer.interpretation = Some(super::interpret::of_metric(plan, def));
        if !def.description.is_empty() {
            answer
                .notes
                .push(format!("{label}: {}", def.description.trim()));
        }
        if plan.grain.is_some() || plan.group_by.is_some() {
            let q = MetricQuery {
                metric: def.name.clone(),
                range: plan.ranges[0].range,
                grain: plan.grain,
                custom_grain: None,
                group_by: plan.group_by.iter().cloned().collect(),
                filters: plan.filters.clone(),
            };
            return match self.run_metric(grants, &q).await {
                Ok((compiled, validated, mut result)) => {
                    if let (Some(rank), None) = (plan.rank, plan.grain) {
                        rank_rows(&mut result, &def.name, rank);
                    }
                    answer.ran(
                        format!("{}, {}", def.name, plan.ranges[0].label),
                        &validated,
                        result.rows.len(),
                    );
                    answer.answer = describe_table(
                        &label,
                        &plan.ranges[0].label,
                        &result,
                        &def.name,
                        format,
                        compiled.rollup.as_deref(),
                    );
                    answer.data = DataTable {
                        columns: result.columns,
                        rows: result.rows,
                    };
                    answer
                }
                Err(e) => self.step_failed(answer, e),
            };
        }
        let mut values = Vec::new();
        for r in &plan.ranges {
            match self
                .metric_value(
                    grants,
                    &def.name,
                    r.range,
                    &mut answer,
                    &format!("{}, {}", def.name, r.label),
                    &plan.filters,
                )
                .await
            {
                Ok(v) => values.push((r, v)),
                Err(e) => return self.step_failed(answer, e),
            }
        }
        let rollup = if def.time_granularity.is_some() && !self.semantic.base_measures_additive(def)
        {
            "average "
        } else {
            ""
        };
        let mut sentences = Vec::new();
        answer.data.columns = vec!["period".into(), def.name.clone()];
        for (r, v) in &values {
            answer.data.rows.push(vec![
                r.label.clone().into(),
                v.map(serde_json::Value::from).unwrap_or_default(),
            ]);
            match v {
                Some(v) => {
                    let shown = format_value(*v, format);
                    answer.key_numbers.push(KeyNumber {
                        label: format!("{label}, {}", r.label),
                        value: *v,
                        formatted: shown.clone(),
                    });
                    let name = if rollup.is_empty() {
                        label.clone()
                    } else {
                        format!("{rollup}{}", label.to_lowercase())
                    };
                    sentences.push(format!("{name} for {} was {shown}", r.label));
                }
                None => sentences.push(format!("there is no {label} data for {}", r.label)),
            }
        }
        let mut text = capitalize(&sentences.join("; ")) + ".";
        if let [(_, Some(a)), (_, Some(b))] = values.as_slice() {
            let delta = a - b;
            let sign = if delta >= 0.0 { "+" } else { "-" };
            let change = format!("{sign}{}", format_value(delta.abs(), format));
            text.push_str(&format!(" Change: {change}"));
            answer.key_numbers.push(KeyNumber {
                label: "change".into(),
                value: delta,
                formatted: change,
            });
            if *b != 0.0 {
                let pct = delta / b * 100.0;
                let shown = format!(
                    "{}{}%",
                    if pct >= 0.0 { "+" } else { "-" },
                    group_digits(pct.abs(), 1)
                );
                text.push_str(&format!(" ({shown})"));
                answer.key_numbers.push(KeyNumber {
                    label: "% change".into(),
                    value: pct,
                    formatted: shown,
                });
            }
            text.push('.');
        }
        answer.answer = text;
        answer
    }
}

fn capitalize(s: &str) -> String {
    let mut c = s.chars();
    c.next()
        .map(|f| f.to_uppercase().collect::<String>() + c.as_str())
        .unwrap_or_default()
}

/// Prose for a series or breakdown: count of rows, first and last or top entries.
/// Sorts a breakdown by the metric's column (rows without a value last)
/// and keeps the first `rank.limit`.
fn rank_rows(r: &mut ResultSet, metric: &str, rank: super::planner::Rank) {
    let Some(vi) = r.columns.iter().position(|c| c == metric) else {
        return;
    };
    let value = |row: &Vec<serde_json::Value>| row.get(vi).and_then(serde_json::Value::as_f64);
    r.rows.sort_by(|a, b| match (value(a), value(b)) {
        (Some(x), Some(y)) if rank.descending => y.total_cmp(&x),
        (Some(x), Some(y)) => x.total_cmp(&y),
        (Some(_), None) => std::cmp::Ordering::Less,
        (None, Some(_)) => std::cmp::Ordering::Greater,
        (None, None) => std::cmp::Ordering::Equal,
    });
    r.rows.truncate(rank.limit);
}

fn describe_table(
    label: &str,
    range: &str,
    r: &ResultSet,
    metric: &str,
    format: crate::semantic::ValueFormat,
    rollup: Option<&str>,
) -> String {
    let Some(vi) = r.columns.iter().position(|c| c == metric) else {
        return format!("No {label} data for {range}.");
    };
    if r.rows.is_empty() {
        return format!("There is no {label} data for {range}.");
    }
    let lines: Vec<String> = r
        .rows
        .iter()
        .take(8)
        .map(|row| {
            let key: Vec<String> = row[..vi]
                .iter()
                .map(|v| {
                    v.as_str()
                        .map(str::to_owned)
                        .unwrap_or_else(|| v.to_string())
                })
                .collect();
            let value = row[vi]
                .as_f64()
                .map(|v| format_value(v, format))
                .unwrap_or_else(|| "no data".into());
            format!("- {}: {value}", key.join(", "))
        })
        .collect();
    let more = if r.rows.len() > 8 {
        format!("\n(the table has all {} rows)", r.rows.len())
    } else {
        String::new()
    };
    let how = rollup.map(|x| format!(" ({x})")).unwrap_or_default();
    format!("{label}{how} for {range}:\n{}{more}", lines.join("\n"))
}
