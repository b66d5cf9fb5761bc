//! Saved queries (dbt's `saved_queries:`): read, checked against the
//! metrics and dimensions they name, and kept as [`SavedQuery`].

use super::expr::{Joins, render_template};
use super::model::SavedQueryDef;
use super::{Grain, SavedQuery, SemanticLayer};
use crate::sql::Dialect;

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
}
