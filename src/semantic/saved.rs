//! Saved queries (dbt's `saved_queries:`): read, checked against the
//! metrics and dimensions they name, and kept as [`SavedQuery`].

use std::sync::LazyLock;

use regex::Regex;

use super::expr::{Joins, render_template};
use super::model::SavedQueryDef;
use super::{DimensionFilter, Grain, SavedQuery, SemanticLayer};
use crate::sql::Dialect;

/// A saved query the chat answers as one metric question: one metric, at
/// most one breakdown, filters that are dimension values.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SavedPlan {
    /// The metric.
    pub metric: String,
    /// `metric_time` grain.
    pub grain: Option<Grain>,
    /// The breakdown dimension.
    pub group_by: Option<String>,
    /// `dimension IN (values)` filters.
    pub filters: Vec<DimensionFilter>,
}

/// `{{ Dimension('x') }} = 'v'` or `{{ Dimension('x') }} IN ('a', 'b')`.
static VALUE_FILTER: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r#"(?i)^\s*\{\{\s*Dimension\(\s*['"]([a-z0-9_]+)['"]\s*\)\s*\}\}\s*(?:=\s*('(?:[^']|'')*')|IN\s*\(\s*('(?:[^']|'')*'(?:\s*,\s*'(?:[^']|'')*')*)\s*\))\s*$"#)
        .expect("value filter pattern compiles")
});

static QUOTED: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"'((?:[^']|'')*)'").expect("quoted pattern compiles"));

impl SavedQuery {
    /// The saved query as one metric question, or why the chat cannot ask it
    /// that way (it stays a suggestion the Metrics API lists).
    ///
    /// # Errors
    /// Several metrics, several breakdowns, or a filter other than
    /// `{{ Dimension('x') }} = 'v'` / `IN ('a', …)`.
    pub fn plan(&self) -> Result<SavedPlan, String> {
        let [metric] = self.metrics.as_slice() else {
            return Err("it asks for several metrics".into());
        };
        if self.group_by.len() > 1 {
            return Err("it breaks down by several dimensions".into());
        }
        let mut filters = Vec::new();
        for f in &self.filters {
            let c = VALUE_FILTER
                .captures(f)
                .ok_or_else(|| format!("its filter {f:?} is not a dimension value"))?;
            let values = c
                .get(2)
                .or_else(|| c.get(3))
                .map(|m| {
                    QUOTED
                        .captures_iter(m.as_str())
                        .map(|q| q[1].replace("''", "'"))
                        .collect()
                })
                .unwrap_or_default();
            filters.push(DimensionFilter {
                dimension: c[1].to_owned(),
                values,
            });
        }
        Ok(SavedPlan {
            metric: metric.clone(),
            grain: self.grain,
            group_by: self.group_by.first().cloned(),
            filters,
        })
    }
}

/// One `group_by` entry of a saved query.
enum GroupBy {
    /// `metric_time` at a grain.
    Time(Grain),
    /// A dimension, `entity__name`.
    Dimension(String),
}

/// Reads `TimeDimension('metric_time', 'month')`, `Dimension('user__platform')`,
/// `metric_time__month` or `user__platform`.
fn group_by(item: &str) -> Result<GroupBy, String> {
    let t = item.trim();
    let t = t
        .strip_prefix("{{")
        .and_then(|x| x.strip_suffix("}}"))
        .unwrap_or(t)
        .trim();
    let (func, args) = match t.split_once('(') {
        Some((f, a)) => (
            Some(f.trim()),
            a.strip_suffix(')')
                .ok_or_else(|| format!("cannot read group_by {item:?}"))?,
        ),
        None => (None, t),
    };
    let args: Vec<String> = args
        .split(',')
        .map(|a| a.trim().trim_matches(|c| c == '\'' || c == '"').to_owned())
        .collect();
    let name = args
        .first()
        .cloned()
        .unwrap_or_default()
        .to_ascii_lowercase();
    match func {
        Some("TimeDimension") | None if name.starts_with("metric_time") => {
            let grain = match (func, name.split_once("__")) {
                (Some(_), _) => args.get(1).map(String::as_str).unwrap_or("day"),
                (None, Some((_, g))) => g,
                (None, None) => "day",
            };
            Grain::parse(grain)
                .map(GroupBy::Time)
                .ok_or_else(|| format!("group_by {item:?}: unknown grain {grain:?}"))
        }
        Some("Dimension") | None => Ok(GroupBy::Dimension(name)),
        Some("TimeDimension") => Err(format!(
            "group_by {item:?}: grouping by a time dimension other than metric_time is not supported yet"
        )),
        Some(other) => Err(format!(
            "group_by {item:?}: grouping by {other}(…) is not supported yet"
        )),
    }
}

impl SavedQuery {
    /// Checks a saved query against `layer`: its metrics exist, every
    /// dimension it groups by is reachable from each of them, and its
    /// filters render.
    ///
    /// # Errors
    /// One sentence naming the saved query and what is wrong.
    pub(super) fn from_def(
        layer: &SemanticLayer,
        def: &SavedQueryDef,
    ) -> Result<SavedQuery, String> {
        let whose = format!("saved query {}", def.name);
        let q = &def.query_params;
        if q.metrics.is_empty() {
            return Err(format!("{whose} names no metric"));
        }
        let mut grain = None;
        let mut dims = Vec::new();
        for item in &q.group_by {
            match group_by(item).map_err(|e| format!("{whose}: {e}"))? {
                GroupBy::Time(g) => grain = Some(g),
                GroupBy::Dimension(d) => dims.push(d),
            }
        }
        for name in &q.metrics {
            let metric = layer
                .metric(name)
                .ok_or_else(|| format!("{whose} uses metric {name}, which is not defined"))?;
            for d in &dims {
                layer
                    .check_dimension(metric, d)
                    .map_err(|e| format!("{whose}: {e}"))?;
            }
            for (model, measure) in layer.base_measures(metric) {
                let time = layer.agg_time_dimension_of(model, measure);
                for f in &q.r#where.0 {
                    render_template(f, &mut Joins::new(layer, model, time, Dialect::Sqlite))
                        .map_err(|e| format!("{whose}: filter {f:?}: {e}"))?;
                }
            }
        }
        let question = def
            .label
            .clone()
            .filter(|l| !l.trim().is_empty())
            .or_else(|| Some(def.description.trim().to_owned()).filter(|d| !d.is_empty()))
            .unwrap_or_else(|| def.name.replace('_', " "));
        Ok(SavedQuery {
            name: def.name.clone(),
            question,
            metrics: q.metrics.iter().map(|m| m.to_ascii_lowercase()).collect(),
            grain,
            group_by: dims,
            filters: q.r#where.0.clone(),
            limit: q.limit,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn group_by_forms_are_read() {
        assert!(matches!(
            group_by("TimeDimension('metric_time', 'month')"),
            Ok(GroupBy::Time(Grain::Month))
        ));
        assert!(matches!(
            group_by("metric_time__week"),
            Ok(GroupBy::Time(Grain::Week))
        ));
        assert!(matches!(
            group_by("Dimension('user__platform')"),
            Ok(GroupBy::Dimension(d)) if d == "user__platform"
        ));
        assert!(matches!(
            group_by("customer__region"),
            Ok(GroupBy::Dimension(d)) if d == "customer__region"
        ));
        assert!(group_by("Entity('user')").is_err());
        assert!(group_by("TimeDimension('metric_time', 'fortnight')").is_err());
    }

    fn saved(metrics: &[&str], group_by: &[&str], filters: &[&str]) -> SavedQuery {
        SavedQuery {
            name: "s".into(),
            question: "q".into(),
            metrics: metrics.iter().map(|m| m.to_string()).collect(),
            grain: Some(Grain::Week),
            group_by: group_by.iter().map(|m| m.to_string()).collect(),
            filters: filters.iter().map(|m| m.to_string()).collect(),
            limit: None,
        }
    }

    #[test]
    fn value_filters_become_a_plan_and_other_shapes_say_why_not() {
        let p = saved(
            &["signups"],
            &["user__platform"],
            &[
                "{{ Dimension('user__country') }} = 'O''Brien land'",
                "{{ Dimension('user__signup_channel') }} in ('paid_search', 'social')",
            ],
        )
        .plan()
        .unwrap();
        assert_eq!(p.group_by.as_deref(), Some("user__platform"));
        assert_eq!(p.filters[0].values, vec!["O'Brien land"]);
        assert_eq!(p.filters[1].values, vec!["paid_search", "social"]);
        assert!(
            saved(&["a", "b"], &[], &[])
                .plan()
                .unwrap_err()
                .contains("several metrics")
        );
        assert!(saved(&["a"], &["x", "y"], &[]).plan().is_err());
        for f in [
            "{{ Dimension('user__country') }} <> 'US'",
            "{{ Dimension('user__country') }} = 'US' OR 1=1",
            "{{ TimeDimension('metric_time', 'day') }} >= '2026-01-01'",
        ] {
            assert!(saved(&["a"], &[], &[f]).plan().is_err(), "{f}");
        }
    }
}
