//! "Why did X drop on day D?": the metric on D against the same weekday in
//! the four weeks before, then the same comparison within each dimension to
//! find where the change is concentrated. It reports a correlation, not a cause.

use chrono::{Datelike, Duration};

use super::{Answer, AnswerKind, DataTable, KeyNumber, Orchestrator, format_value, group_digits};
use crate::policy::Grants;
use crate::semantic::{Grain, MetricQuery, TimeRange};
use crate::warehouse::ResultSet;

/// Number of previous same-weekdays forming the baseline.
const BASELINE_WEEKS: i64 = 4;

/// Per-key values on the day and the baseline mean, from a daily series.
fn split_days(
    r: &ResultSet,
    metric: &str,
    day: &str,
    baseline: &[String],
    key: Option<&str>,
) -> Vec<(String, f64, f64)> {
    let (Some(pi), Some(vi)) = (
        r.columns.iter().position(|c| c == "period"),
        r.columns.iter().position(|c| c == metric),
    ) else {
        return Vec::new();
    };
    let ki = key.and_then(|k| r.columns.iter().position(|c| c == k));
    let mut acc: Vec<(String, f64, f64)> = Vec::new();
    for row in &r.rows {
        let period = row[pi].as_str().unwrap_or_default();
        let k = ki
            .map(|i| {
                row[i]
                    .as_str()
                    .map(str::to_owned)
                    .unwrap_or_else(|| row[i].to_string())
            })
            .unwrap_or_default();
        let v = row[vi].as_f64().unwrap_or(0.0);
        let idx = match acc.iter().position(|(x, _, _)| *x == k) {
            Some(i) => i,
            None => {
                acc.push((k, 0.0, 0.0));
                acc.len() - 1
            }
        };
        if period == day {
            acc[idx].1 += v;
        } else if baseline.iter().any(|b| b == period) {
            acc[idx].2 += v / baseline.len() as f64;
        }
    }
    acc
}

fn pct(a: f64, b: f64) -> String {
    if b == 0.0 {
        return "n/a".into();
    }
    let p = (a - b) / b * 100.0;
    format!(
        "{}{}%",
        if p >= 0.0 { "+" } else { "-" },
        group_digits(p.abs(), 1)
    )
}

pub(super) async fn explain(
    o: &Orchestrator,
    grants: &Grants,
    metric: &str,
    day: TimeRange,
) -> Answer {
    let Some(def) = o.semantic.metric(metric) else {
        return Answer::refusal(
            "I have no data on that.",
            format!("no metric named {metric}"),
        );
    };
    let label = def.label().to_owned();
    let format = def.format();
    let d = day.start;
    let baseline_days: Vec<String> = (1..=BASELINE_WEEKS)
        .map(|w| (d - Duration::days(7 * w)).format("%Y-%m-%d").to_string())
        .collect();
    let range = TimeRange {
        start: d - Duration::days(7 * BASELINE_WEEKS),
        end: d + Duration::days(1),
    };
    let day_key = d.format("%Y-%m-%d").to_string();
    let weekday = d.format("%A").to_string();
    let mut answer = Answer::new(AnswerKind::Metric, String::new());
    answer.metric = Some(def.name.clone());

    let total_q = MetricQuery {
        metric: def.name.clone(),
        range,
        grain: Some(Grain::Day),
        custom_grain: None,
        group_by: Vec::new(),
        filters: Vec::new(),
    };
    let total = match o.run_metric(grants, &total_q).await {
        Ok((_, v, r)) => {
            answer.ran(
                format!("{metric} by day, {weekday} {day_key} against the previous {BASELINE_WEEKS} {weekday}s"),
                &v,
                r.rows.len(),
            );
            split_days(&r, &def.name, &day_key, &baseline_days, None)
        }
        Err(e) => return o.step_failed(answer, e),
    };
    let Some(&(_, on_day, base)) = total.first() else {
        return Answer::refusal(
            format!("There is no {label} data for {weekday} {day_key}."),
            "no data for that day",
        );
    };
    answer.key_numbers.push(KeyNumber {
        label: format!("{label} on {weekday} {day_key}"),
        value: on_day,
        formatted: format_value(on_day, format),
    });
    answer.key_numbers.push(KeyNumber {
        label: format!("average of the previous {BASELINE_WEEKS} {weekday}s"),
        value: base,
        formatted: format_value(base, format),
    });
    let mut text = format!(
        "{label} on {weekday} {day_key} were {} against an average of {} on the previous {BASELINE_WEEKS} {weekday}s ({}).",
        format_value(on_day, format),
        format_value(base, format),
        pct(on_day, base)
    );
    let fell = on_day < base;
    if !fell {
        text.push_str(&format!(
            " That is not a drop: {label} were at or above their usual {weekday} level."
        ));
    }

    // Where is the change concentrated?
    let mut best: Option<(String, String, f64, f64)> = None;
    let mut breakdown_rows: Vec<Vec<serde_json::Value>> = Vec::new();
    for dim in o.semantic.dimensions_of(def).into_iter().take(6) {
        let q = MetricQuery {
            group_by: vec![dim.name.clone()],
            ..total_q.clone()
        };
        let Ok((_, v, r)) = o.run_metric(grants, &q).await else {
            continue;
        };
        answer.ran(
            format!("{metric} by day and {}", dim.name),
            &v,
            r.rows.len(),
        );
        for (value, a, b) in split_days(&r, &def.name, &day_key, &baseline_days, Some(&dim.name)) {
            breakdown_rows.push(vec![
                dim.name.clone().into(),
                value.clone().into(),
                a.into(),
                b.into(),
            ]);
            let delta = a - b;
            let worse = match &best {
                None => true,
                Some((_, _, ba, bb)) => {
                    if fell {
                        delta < ba - bb
                    } else {
                        delta > ba - bb
                    }
                }
            };
            if worse {
                best = Some((dim.name.clone(), value, a, b));
            }
        }
    }
    if let Some((dim, value, a, b)) = &best {
        let share = if (on_day - base).abs() > f64::EPSILON {
            (a - b) / (on_day - base) * 100.0
        } else {
            0.0
        };
        answer.key_numbers.push(KeyNumber {
            label: format!("share of the change in {dim} = {value}"),
            value: share,
            formatted: format!("{}%", group_digits(share, 0)),
        });
        let portion = if share > 100.0 {
            "more than the whole net change (other segments moved the other way)".to_owned()
        } else {
            format!("{}% of the overall change", group_digits(share, 0))
        };
        text.push_str(&format!(
            " The largest change is in {dim} = {value}: {} against a usual {} ({}), which accounts for {portion}.",
            format_value(*a, format),
            format_value(*b, format),
            pct(*a, *b),
        ));
        answer.key_numbers.push(KeyNumber {
            label: format!("{label}, {dim} = {value}, on {day_key}"),
            value: *a,
            formatted: format_value(*a, format),
        });
    }
    text.push_str(" This shows where the change happened, which is a correlation in the data, not a proven cause.");
    answer.notes.push("Correlation, not causation: check release notes, campaigns and incidents before naming a cause.".into());
    answer.answer = text;
    breakdown_rows.sort_by(|x, y| {
        let dx = x[2].as_f64().unwrap_or(0.0) - x[3].as_f64().unwrap_or(0.0);
        let dy = y[2].as_f64().unwrap_or(0.0) - y[3].as_f64().unwrap_or(0.0);
        dx.partial_cmp(&dy).unwrap_or(std::cmp::Ordering::Equal)
    });
    if !fell {
        breakdown_rows.reverse();
    }
    answer.data = DataTable {
        columns: vec![
            "dimension".into(),
            "value".into(),
            format!("on_{}", d.weekday().to_string().to_lowercase()),
            "baseline_avg".into(),
        ],
        rows: breakdown_rows,
    };
    answer
}
