//! Checks of one definition at a time: a semantic model against the schema
//! allow-list, a metric against the measures and metrics defined. Failures
//! name the key to point at, so the loader can give its line.

use std::collections::{BTreeMap, BTreeSet};

use super::Grain;
use super::model::{
    Agg, AggParams, DimensionType, MetricDef, MetricType, NameRef, SemanticModelDef,
};
use crate::policy::Schema;

/// A validation failure: the key to point at inside the definition (its
/// `name:` line when `None`) and the reason.
pub(super) type Invalid = (Option<String>, String);

/// A construct of dbt's schema that steward does not support yet.
fn unsupported(key: &str, what: &str, whose: &str) -> Invalid {
    (
        Some(key.to_owned()),
        format!("{whose}: {what} ({key}) is not supported yet"),
    )
}

/// Checks one semantic model.
pub(super) fn validate_model(m: &SemanticModelDef, schema: &Schema) -> Result<(), Invalid> {
    let whose = format!("semantic model {}", m.name);
    if m.model.is_none() && m.node_relation.is_none() {
        return Err((
            None,
            format!("{whose} names no table: set `model: ref('…')` or `node_relation`"),
        ));
    }
    let table = m.table();
    let Some((_, def)) = schema.table(&table) else {
        let key = if m.model.is_some() { "model:" } else { "alias" };
        return Err((
            Some(key.to_owned()),
            format!(
                "{whose} reads table {table}, which schema.yaml does not list: add it to the schema allow-list (with its column classes) or remove the semantic model"
            ),
        ));
    };
    for e in &m.entities {
        if e.role.is_some() {
            return Err(unsupported("role", "an entity role", &whose));
        }
        if e.entity.is_some() {
            return Err(unsupported("entity:", "the legacy entity alias", &whose));
        }
    }
    let time_dims: Vec<&str> = m
        .dimensions
        .iter()
        .filter(|d| d.kind == DimensionType::Time)
        .map(|d| d.name.as_str())
        .collect();
    for d in &m.dimensions {
        if d.expr.is_none() && !def.columns.contains_key(&d.name.to_ascii_lowercase()) {
            return Err((
                Some(format!("name: {}", d.name)),
                format!(
                    "dimension {} is not an allow-listed column of {table} and has no expr",
                    d.name
                ),
            ));
        }
        if d.type_params
            .as_ref()
            .is_some_and(|t| t.validity_params.is_some())
        {
            return Err(unsupported(
                "validity_params",
                "slowly changing dimension validity",
                &whose,
            ));
        }
    }
    if let Some(t) = m.agg_time_dimension()
        && !time_dims.contains(&t)
    {
        return Err((
            Some(t.to_owned()),
            format!(
                "agg_time_dimension {t} is not a time dimension of {}",
                m.name
            ),
        ));
    }
    for measure in &m.measures {
        let time = measure
            .agg_time_dimension
            .as_deref()
            .or(m.agg_time_dimension());
        match time {
            None => {
                return Err((
                    Some(format!("name: {}", measure.name)),
                    format!(
                        "measure {} has no agg_time_dimension (set defaults.agg_time_dimension)",
                        measure.name
                    ),
                ));
            }
            Some(t) if !time_dims.contains(&t) => {
                return Err((
                    Some(t.to_owned()),
                    format!(
                        "measure {} aggregates over {t}, which is not a time dimension",
                        measure.name
                    ),
                ));
            }
            Some(_) => {}
        }
        if let Some(nad) = &measure.non_additive_dimension {
            if !time_dims.contains(&nad.name.as_str()) {
                return Err((
                    Some(format!("name: {}", nad.name)),
                    format!(
                        "non_additive_dimension {} of measure {} is not a time dimension",
                        nad.name, measure.name
                    ),
                ));
            }
            if !nad.window_groupings.is_empty() {
                return Err(unsupported(
                    "window_groupings",
                    "a non-additive dimension's window groupings",
                    &format!("measure {}", measure.name),
                ));
            }
        }
        match (measure.agg, measure.agg_params) {
            (Agg::Percentile, p) => {
                let ok = p
                    .and_then(|p| p.percentile)
                    .is_some_and(|x| (0.0..=1.0).contains(&x));
                if !ok {
                    return Err((
                        Some(format!("name: {}", measure.name)),
                        format!(
                            "percentile measure {} needs agg_params.percentile between 0 and 1",
                            measure.name
                        ),
                    ));
                }
            }
            (_, Some(p)) if p != AggParams::default() => {
                return Err((
                    Some("agg_params".to_owned()),
                    format!(
                        "measure {}: agg_params apply to `agg: percentile` only",
                        measure.name
                    ),
                ));
            }
            _ => {}
        }
    }
    Ok(())
}

/// Checks one metric against the measures and metrics defined.
pub(super) fn validate_metric(
    metric: &MetricDef,
    measures: &BTreeSet<String>,
    metrics: &BTreeMap<String, MetricDef>,
) -> Result<(), Invalid> {
    let whose = format!("metric {}", metric.name);
    let p = &metric.type_params;
    let plain = |m: String| (None, m);
    let need_metric = |r: &Option<NameRef>, what: &str| -> Result<(), Invalid> {
        match r {
            None => Err(plain(format!(
                "{} metric {} needs type_params.{what}",
                kind_name(metric.kind),
                metric.name
            ))),
            Some(r) if !metrics.contains_key(&r.name().to_ascii_lowercase()) => Err((
                Some(r.name().to_owned()),
                format!(
                    "metric {} refers to metric {}, which is not defined",
                    metric.name,
                    r.name()
                ),
            )),
            Some(_) => Ok(()),
        }
    };
    if p.is_private.is_some() {
        return Err(unsupported("is_private", "a private metric", &whose));
    }
    if p.metric_aggregation_params.is_some() {
        return Err(unsupported(
            "metric_aggregation_params",
            "a simple metric with its own aggregation (use a measure)",
            &whose,
        ));
    }
    let fills = p.fill_nulls_with.is_some() || p.join_to_timespine.is_some();
    if fills && metric.kind != MetricType::Simple {
        return Err((
            Some("fill_nulls_with".to_owned()),
            format!(
                "{whose}: fill_nulls_with and join_to_timespine apply to simple metrics here (set them on the input metric)"
            ),
        ));
    }
    let measure_refs = p
        .measure
        .iter()
        .filter(|_| metric.kind != MetricType::Simple);
    let metric_refs = p.numerator.iter().chain(&p.denominator);
    for r in measure_refs.chain(metric_refs) {
        if r.fill_nulls_with.is_some() || r.join_to_timespine {
            let key = if r.fill_nulls_with.is_some() {
                "fill_nulls_with"
            } else {
                "join_to_timespine"
            };
            return Err(unsupported(
                key,
                "filling empty periods outside a simple metric's measure",
                &whose,
            ));
        }
    }
    for r in p.measure.iter().chain(&p.numerator).chain(&p.denominator) {
        if r.offset_window.is_some() || r.offset_to_grain.is_some() {
            return Err((
                Some("offset_".to_owned()),
                format!(
                    "{whose}: offset_window and offset_to_grain apply to a derived metric's inputs"
                ),
            ));
        }
    }
    for r in &p.metrics {
        if r.fill_nulls_with.is_some() || r.join_to_timespine {
            return Err(unsupported(
                "fill_nulls_with",
                "filling empty periods on a derived metric's input (set it on the input metric)",
                &whose,
            ));
        }
        if r.offset_window.is_some() && r.offset_to_grain.is_some() {
            return Err((
                Some("offset_to_grain".to_owned()),
                format!("{whose}: set offset_window or offset_to_grain, not both"),
            ));
        }
        if r.offset_window.is_some_and(|w| w.grain.is_sub_daily()) {
            return Err(unsupported(
                "offset_window",
                "an offset shorter than a day",
                &whose,
            ));
        }
        if let Some(g) = &r.offset_to_grain
            && Grain::parse(g).is_none_or(Grain::is_sub_daily)
        {
            return Err((
                Some("offset_to_grain".to_owned()),
                format!("{whose}: offset_to_grain {g:?} is not day, week, month, quarter or year"),
            ));
        }
    }
    if metric.kind != MetricType::Cumulative
        && (p.window.is_some() || p.grain_to_date.is_some() || p.cumulative_type_params.is_some())
    {
        return Err((
            Some("window".to_owned()),
            format!("{whose}: window and grain_to_date apply to cumulative metrics only"),
        ));
    }
    match metric.kind {
        MetricType::Simple | MetricType::Cumulative => {
            let Some(m) = &p.measure else {
                return Err(plain(format!(
                    "{} metric {} needs type_params.measure",
                    kind_name(metric.kind),
                    metric.name
                )));
            };
            if !measures.contains(m.name()) {
                return Err((
                    Some(m.name().to_owned()),
                    format!(
                        "metric {} uses measure {}, which no semantic model defines",
                        metric.name,
                        m.name()
                    ),
                ));
            }
            if metric.kind == MetricType::Cumulative {
                validate_cumulative(metric)?;
            }
        }
        MetricType::Ratio => {
            need_metric(&p.numerator, "numerator")?;
            need_metric(&p.denominator, "denominator")?;
        }
        MetricType::Derived => {
            if p.expr.as_deref().is_none_or(|e| e.trim().is_empty()) {
                return Err(plain(format!(
                    "derived metric {} needs type_params.expr",
                    metric.name
                )));
            }
            if p.metrics.is_empty() {
                return Err(plain(format!(
                    "derived metric {} needs type_params.metrics",
                    metric.name
                )));
            }
            for i in &p.metrics {
                need_metric(&Some(i.clone()), "metrics")?;
            }
        }
        MetricType::Conversion => validate_conversion(metric, measures)?,
    }
    Ok(())
}

fn validate_conversion(metric: &MetricDef, measures: &BTreeSet<String>) -> Result<(), Invalid> {
    let whose = format!("metric {}", metric.name);
    let Some(c) = &metric.type_params.conversion_type_params else {
        return Err((
            None,
            format!("conversion {whose} needs type_params.conversion_type_params"),
        ));
    };
    if c.base_metric.is_some() || c.conversion_metric.is_some() {
        return Err(unsupported(
            "_metric",
            "a conversion over metrics (use base_measure and conversion_measure)",
            &whose,
        ));
    }
    for (r, what) in [
        (&c.base_measure, "base_measure"),
        (&c.conversion_measure, "conversion_measure"),
    ] {
        let Some(r) = r else {
            return Err((
                Some("conversion_type_params".to_owned()),
                format!("conversion {whose} needs conversion_type_params.{what}"),
            ));
        };
        if !measures.contains(r.name()) {
            return Err((
                Some(r.name().to_owned()),
                format!(
                    "{whose} uses measure {}, which no semantic model defines",
                    r.name()
                ),
            ));
        }
        if r.fill_nulls_with.is_some() || r.join_to_timespine {
            return Err(unsupported(
                "fill_nulls_with",
                "filling empty periods",
                &whose,
            ));
        }
    }
    match c
        .calculation
        .as_deref()
        .map(str::to_ascii_lowercase)
        .as_deref()
    {
        None | Some("conversion_rate" | "conversions") => Ok(()),
        Some(other) => Err((
            Some("calculation".to_owned()),
            format!("{whose}: calculation {other:?} is not conversion_rate or conversions"),
        )),
    }
}

fn validate_cumulative(metric: &MetricDef) -> Result<(), Invalid> {
    let whose = format!("metric {}", metric.name);
    let p = &metric.type_params;
    if p.cumulative_type_params
        .as_ref()
        .is_some_and(|c| c.metric.is_some())
    {
        return Err(unsupported(
            "metric:",
            "a cumulative metric over a metric (use type_params.measure)",
            &whose,
        ));
    }
    match (p.cumulative_window(), p.cumulative_grain_to_date()) {
        (Some(_), Some(_)) => Err((
            Some("grain_to_date".to_owned()),
            format!("{whose}: set window or grain_to_date, not both"),
        )),
        (Some(w), None) if w.grain.is_sub_daily() => {
            Err(unsupported("window", "a window shorter than a day", &whose))
        }
        (None, Some(g)) if g.is_sub_daily() || g == Grain::Day => Err((
            Some("grain_to_date".to_owned()),
            format!("{whose}: grain_to_date must be week, month, quarter or year"),
        )),
        _ => Ok(()),
    }
}

fn kind_name(kind: MetricType) -> &'static str {
    match kind {
        MetricType::Simple => "simple",
        MetricType::Ratio => "ratio",
        MetricType::Derived => "derived",
        MetricType::Cumulative => "cumulative",
        MetricType::Conversion => "conversion",
    }
}
