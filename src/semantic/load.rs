//! Loading and validating semantic-layer YAML files.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use serde::Deserialize;

use super::model::{DimensionType, MetricDef, MetricType, SemanticModelDef};
use super::{SemanticLayer, compile};
use crate::policy::{PolicyError, Schema, SourceFile};

#[derive(Deserialize)]
struct SemanticFile {
    #[serde(default)]
    semantic_models: Vec<SemanticModelDef>,
    #[serde(default)]
    metrics: Vec<MetricDef>,
}

/// Where a definition came from, so later checks can point at its line.
struct Origin {
    file: usize,
}

impl SemanticLayer {
    /// Loads every `*.yml` / `*.yaml` file in `dir` (sorted by name) and
    /// validates the result against the schema allow-list.
    ///
    /// # Errors
    /// A [`PolicyError`] with file, line and reason when a file is not valid
    /// YAML or has the wrong shape; when a model's table is not allow-listed;
    /// when names repeat; when a measure, metric, time dimension or window
    /// that a definition refers to does not exist; or when metrics form a cycle.
    pub fn load(dir: &Path, schema: &Schema) -> Result<SemanticLayer, PolicyError> {
        let mut paths: Vec<_> = std::fs::read_dir(dir)
            .map_err(|e| PolicyError {
                file: dir.to_owned(),
                line: None,
                reason: format!("cannot read the semantic layer directory: {e}"),
            })?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "yml" || x == "yaml"))
            .collect();
        paths.sort();

        let mut files = Vec::new();
        let mut models: Vec<(SemanticModelDef, Origin)> = Vec::new();
        let mut metrics: Vec<(MetricDef, Origin)> = Vec::new();
        for path in paths {
            let source = SourceFile::read(&path)?;
            let parsed: SemanticFile = source.parse()?;
            let file = files.len();
            models.extend(
                parsed
                    .semantic_models
                    .into_iter()
                    .map(|m| (m, Origin { file })),
            );
            metrics.extend(parsed.metrics.into_iter().map(|m| (m, Origin { file })));
            files.push(source);
        }

        let at = |origin: &Origin, section: &str, needle: &str, reason: String| {
            error_in_section(&files[origin.file], section, needle, reason)
        };

        let mut measure_names = BTreeSet::new();
        for (m, origin) in &models {
            validate_model(m, schema)
                .map_err(|(needle, reason)| at(origin, "semantic_models:", &needle, reason))?;
            for measure in &m.measures {
                if !measure_names.insert(measure.name.clone()) {
                    return Err(at(
                        origin,
                        "semantic_models:",
                        &format!("name: {}", measure.name),
                        format!("measure {} is defined twice", measure.name),
                    ));
                }
            }
        }
        if models
            .iter()
            .map(|(m, _)| &m.name)
            .collect::<BTreeSet<_>>()
            .len()
            != models.len()
        {
            let dup = duplicate(models.iter().map(|(m, _)| m.name.as_str())).unwrap_or_default();
            let (_, origin) = models
                .iter()
                .rfind(|(m, _)| m.name == dup)
                .expect("duplicate exists");
            return Err(at(
                origin,
                "semantic_models:",
                &format!("name: {dup}"),
                format!("semantic model {dup} is defined twice"),
            ));
        }

        let mut by_name = BTreeMap::new();
        for (metric, origin) in &metrics {
            let key = metric.name.to_ascii_lowercase();
            if by_name.insert(key, metric.clone()).is_some() {
                return Err(at(
                    origin,
                    "metrics:",
                    &format!("name: {}", metric.name),
                    format!("metric {} is defined twice", metric.name),
                ));
            }
        }
        for (metric, origin) in &metrics {
            validate_metric(metric, &measure_names, &by_name).map_err(|reason| {
                at(
                    origin,
                    "metrics:",
                    &format!("name: {}", metric.name),
                    reason,
                )
            })?;
        }
        let layer = SemanticLayer {
            models: models.into_iter().map(|(m, _)| m).collect(),
            metrics: by_name,
        };
        for (metric, origin) in &metrics {
            if let Some(cycle) =
                layer.cycle_from(&metric.name.to_ascii_lowercase(), &mut Vec::new())
            {
                return Err(at(
                    origin,
                    "metrics:",
                    &format!("name: {}", metric.name),
                    format!(
                        "metrics refer to each other in a cycle: {}",
                        cycle.join(" -> ")
                    ),
                ));
            }
        }
        for (metric, origin) in &metrics {
            if let Err(e) = compile::check_compiles(&layer, metric) {
                return Err(at(
                    origin,
                    "metrics:",
                    &format!("name: {}", metric.name),
                    e.to_string(),
                ));
            }
        }
        Ok(layer)
    }

    fn cycle_from(&self, name: &str, stack: &mut Vec<String>) -> Option<Vec<String>> {
        if stack.iter().any(|s| s == name) {
            let mut c = stack.clone();
            c.push(name.to_owned());
            return Some(c);
        }
        stack.push(name.to_owned());
        let inputs = self
            .metric(name)
            .map(|m| m.input_metric_names())
            .unwrap_or_default();
        let found = inputs.iter().find_map(|i| self.cycle_from(i, stack));
        stack.pop();
        found
    }
}

fn duplicate<'a>(names: impl Iterator<Item = &'a str>) -> Option<String> {
    let mut seen = BTreeSet::new();
    names
        .into_iter()
        .find(|n| !seen.insert(*n))
        .map(str::to_owned)
}

/// An error at the first line mentioning `needle` after the line that starts
/// `section`, or anywhere in the file if the section has no such line.
fn error_in_section(file: &SourceFile, section: &str, needle: &str, reason: String) -> PolicyError {
    let start = file
        .text
        .lines()
        .position(|l| l.trim_start().starts_with(section))
        .unwrap_or(0);
    let line = file
        .text
        .lines()
        .enumerate()
        .skip(start)
        .find(|(_, l)| l.contains(needle))
        .map(|(i, _)| i + 1)
        .or_else(|| file.line_of(needle));
    PolicyError {
        file: file.path.clone(),
        line,
        reason,
    }
}

/// Checks one semantic model; on failure returns `(text to locate, reason)`.
fn validate_model(m: &SemanticModelDef, schema: &Schema) -> Result<(), (String, String)> {
    let table = m.table();
    let Some((_, def)) = schema.table(&table) else {
        return Err((
            m.model.clone(),
            format!(
                "semantic model {} reads table {table}, which is not in the schema allow-list",
                m.name
            ),
        ));
    };
    let time_dims: Vec<&str> = m
        .dimensions
        .iter()
        .filter(|d| d.kind == DimensionType::Time)
        .map(|d| d.name.as_str())
        .collect();
    for d in &m.dimensions {
        if d.expr.is_none() && !def.columns.contains_key(&d.name.to_ascii_lowercase()) {
            return Err((
                format!("name: {}", d.name),
                format!(
                    "dimension {} is not an allow-listed column of {table} and has no expr",
                    d.name
                ),
            ));
        }
    }
    if let Some(t) = m.agg_time_dimension()
        && !time_dims.contains(&t)
    {
        return Err((
            t.to_owned(),
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
                    format!("name: {}", measure.name),
                    format!(
                        "measure {} has no agg_time_dimension (set defaults.agg_time_dimension)",
                        measure.name
                    ),
                ));
            }
            Some(t) if !time_dims.contains(&t) => {
                return Err((
                    t.to_owned(),
                    format!(
                        "measure {} aggregates over {t}, which is not a time dimension",
                        measure.name
                    ),
                ));
            }
            Some(_) => {}
        }
        if let Some(nad) = &measure.non_additive_dimension
            && !time_dims.contains(&nad.name.as_str())
        {
            return Err((
                format!("name: {}", nad.name),
                format!(
                    "non_additive_dimension {} of measure {} is not a time dimension",
                    nad.name, measure.name
                ),
            ));
        }
    }
    Ok(())
}

fn validate_metric(
    metric: &MetricDef,
    measures: &BTreeSet<String>,
    metrics: &BTreeMap<String, MetricDef>,
) -> Result<(), String> {
    let p = &metric.type_params;
    let need_metric = |r: &Option<super::model::NameRef>, what: &str| -> Result<(), String> {
        match r {
            None => Err(format!(
                "{} metric {} needs type_params.{what}",
                kind_name(metric.kind),
                metric.name
            )),
            Some(r) if !metrics.contains_key(&r.name().to_ascii_lowercase()) => Err(format!(
                "metric {} refers to metric {}, which is not defined",
                metric.name,
                r.name()
            )),
            Some(_) => Ok(()),
        }
    };
    match metric.kind {
        MetricType::Simple | MetricType::Cumulative => {
            let Some(m) = &p.measure else {
                return Err(format!(
                    "{} metric {} needs type_params.measure",
                    kind_name(metric.kind),
                    metric.name
                ));
            };
            if !measures.contains(m.name()) {
                return Err(format!(
                    "metric {} uses measure {}, which no semantic model defines",
                    metric.name,
                    m.name()
                ));
            }
            if metric.kind == MetricType::Cumulative {
                if p.grain_to_date.is_some() {
                    return Err(format!(
                        "metric {}: grain_to_date is not supported yet; use window",
                        metric.name
                    ));
                }
                let Some(w) = &p.window else {
                    return Err(format!(
                        "cumulative metric {} needs type_params.window (e.g. `7 days`)",
                        metric.name
                    ));
                };
                parse_window_days(w).ok_or_else(|| {
                    format!(
                        "metric {}: window {w:?} is not `N days`, `N weeks` or `N months`",
                        metric.name
                    )
                })?;
            }
        }
        MetricType::Ratio => {
            need_metric(&p.numerator, "numerator")?;
            need_metric(&p.denominator, "denominator")?;
        }
        MetricType::Derived => {
            if p.expr.as_deref().is_none_or(|e| e.trim().is_empty()) {
                return Err(format!(
                    "derived metric {} needs type_params.expr",
                    metric.name
                ));
            }
            let inputs = p.metrics.as_deref().unwrap_or_default();
            if inputs.is_empty() {
                return Err(format!(
                    "derived metric {} needs type_params.metrics",
                    metric.name
                ));
            }
            for i in inputs {
                need_metric(&Some(i.clone()), "metrics")?;
            }
        }
    }
    Ok(())
}

fn kind_name(kind: MetricType) -> &'static str {
    match kind {
        MetricType::Simple => "simple",
        MetricType::Ratio => "ratio",
        MetricType::Derived => "derived",
        MetricType::Cumulative => "cumulative",
    }
}

/// Parses a MetricFlow window such as `7 days`, `2 weeks`, `1 month` into days
/// (a month counts as 30 days).
pub(crate) fn parse_window_days(window: &str) -> Option<i64> {
    let mut parts = window.split_whitespace();
    let n: i64 = parts.next()?.parse().ok()?;
    let unit = parts.next()?.to_ascii_lowercase();
    if parts.next().is_some() || n <= 0 {
        return None;
    }
    let per = match unit.trim_end_matches('s') {
        "day" => 1,
        "week" => 7,
        "month" => 30,
        _ => return None,
    };
    Some(n * per)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn schema() -> Schema {
        serde_yaml_ng::from_str(
            "tables:\n  t:\n    columns:\n      id: {class: public}\n      ts: {class: public}\n      v: {class: public}\n",
        )
        .unwrap()
    }

    const MODEL: &str = "semantic_models:\n  - name: m\n    model: ref('t')\n    defaults: {agg_time_dimension: ts}\n    entities: [{name: x, type: primary, expr: id}]\n    dimensions:\n      - {name: ts, type: time}\n    measures:\n      - {name: total, agg: sum, expr: v}\n";

    fn load(text: &str) -> Result<SemanticLayer, PolicyError> {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("a.yml"), text).unwrap();
        SemanticLayer::load(dir.path(), &schema())
    }

    #[test]
    fn a_valid_file_loads() {
        let s = load(&format!(
            "{MODEL}metrics:\n  - name: t\n    type: simple\n    type_params: {{measure: total}}\n"
        ))
        .unwrap();
        assert!(s.metric("t").is_some());
    }

    #[test]
    fn unknown_measure_is_reported_at_the_metric_line() {
        let err = load(&format!(
            "{MODEL}metrics:\n  - name: bad\n    type: simple\n    type_params: {{measure: nope}}\n"
        ))
        .unwrap_err();
        assert_eq!(err.line, Some(11), "{err}");
        assert!(err.reason.contains("nope"), "{err}");
    }

    #[test]
    fn table_outside_the_allow_list_is_rejected() {
        let err = load(&MODEL.replace("ref('t')", "ref('secrets')")).unwrap_err();
        assert_eq!(err.line, Some(3), "{err}");
        assert!(err.reason.contains("allow-list"), "{err}");
    }

    #[test]
    fn bad_agg_is_a_yaml_error_with_a_line() {
        let err = load(&MODEL.replace("agg: sum", "agg: total")).unwrap_err();
        assert_eq!(err.line, Some(9), "{err}");
    }

    #[test]
    fn cycles_are_rejected() {
        let text = format!(
            "{MODEL}metrics:\n  - name: a\n    type: ratio\n    type_params: {{numerator: b, denominator: b}}\n  - name: b\n    type: derived\n    type_params: {{expr: a, metrics: [a]}}\n"
        );
        let err = load(&text).unwrap_err();
        assert!(err.reason.contains("cycle"), "{err}");
    }

    #[test]
    fn windows_parse() {
        assert_eq!(parse_window_days("7 days"), Some(7));
        assert_eq!(parse_window_days("1 month"), Some(30));
        assert_eq!(parse_window_days("2 weeks"), Some(14));
        assert_eq!(parse_window_days("7"), None);
        assert_eq!(parse_window_days("-1 days"), None);
        assert_eq!(parse_window_days("3 fortnights"), None);
    }
}
