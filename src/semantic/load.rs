//! Loading and validating semantic-layer YAML files.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use serde::Deserialize;

use std::path::PathBuf;

use serde::de::IgnoredAny;

use super::model::{
    Filter, MeasureDef, MetricDef, MetricType, MetricTypeParams, NameRef, SavedQueryDef,
    SemanticModelDef,
};
use super::validate::{validate_metric, validate_model};
use super::{CustomGrain, Grain, SavedQuery, SemanticLayer, SemanticSource, TimeSpine, compile};
use crate::policy::{PolicyError, Schema, SourceFile};

/// One YAML document of a semantic-layer file. Other top-level keys
/// (`version`, `sources`, `exposures`…) are dbt's and not read.
#[derive(Deserialize)]
struct SemanticDoc {
    #[serde(default)]
    semantic_models: Vec<SemanticModelDef>,
    #[serde(default)]
    metrics: Vec<MetricDef>,
    #[serde(default)]
    saved_queries: Vec<SavedQueryDef>,
    /// dbt model properties: read only for `time_spine:`.
    #[serde(default)]
    models: Vec<ModelProperties>,
}

/// `models:` entry of a dbt properties file; steward reads its `time_spine`.
#[derive(Deserialize)]
struct ModelProperties {
    #[serde(default)]
    name: String,
    #[serde(default)]
    time_spine: Option<TimeSpineDef>,
    #[serde(default, deserialize_with = "super::model::null_default")]
    columns: Vec<SpineColumn>,
}

/// A `columns:` entry of a model; steward reads the time spine's `granularity`.
#[derive(Deserialize)]
struct SpineColumn {
    #[serde(default)]
    name: String,
    #[serde(default)]
    granularity: Option<Grain>,
}

/// `models[].time_spine` of a dbt properties file.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TimeSpineDef {
    standard_granularity_column: String,
    #[serde(default, deserialize_with = "super::model::null_default")]
    custom_granularities: Vec<CustomGranularityDef>,
}

/// A custom granularity: a column of the time spine naming each day's period.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CustomGranularityDef {
    name: String,
    #[serde(default)]
    column_name: Option<String>,
}

/// `project_configuration.time_spines[]` of the manifest.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ManifestTimeSpine {
    node_relation: super::model::NodeRelation,
    primary_column: ManifestSpineColumn,
    #[serde(default, deserialize_with = "super::model::null_default")]
    custom_granularities: Vec<CustomGranularityDef>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ManifestSpineColumn {
    name: String,
    time_granularity: Grain,
}

/// `target/semantic_manifest.json` as `dbt parse` writes it.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Manifest {
    semantic_models: Vec<SemanticModelDef>,
    metrics: Vec<MetricDef>,
    #[serde(default)]
    saved_queries: Vec<SavedQueryDef>,
    #[serde(default)]
    project_configuration: Option<ProjectConfiguration>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ProjectConfiguration {
    #[serde(default, deserialize_with = "super::model::null_default")]
    time_spines: Vec<ManifestTimeSpine>,
    #[serde(default, rename = "time_spine_table_configurations")]
    _time_spine_table_configurations: Option<IgnoredAny>,
    #[serde(default, rename = "dsi_package_version")]
    _dsi_package_version: Option<IgnoredAny>,
    #[serde(default, rename = "metadata")]
    _metadata: Option<IgnoredAny>,
}

/// Where a definition came from, so later checks can point at its line.
#[derive(Clone, Copy)]
struct Origin {
    file: usize,
    /// 0-based line where its YAML document starts.
    from_line: usize,
}

/// Definitions read from files, before validation.
#[derive(Default)]
struct Collected {
    files: Vec<SourceFile>,
    models: Vec<(SemanticModelDef, Origin)>,
    metrics: Vec<(MetricDef, Origin)>,
    saved: Vec<(SavedQueryDef, Origin)>,
    spines: Vec<(TimeSpine, Origin)>,
}

impl Collected {
    /// Reads every YAML document of `path` (documents separated by `---`).
    fn read_yaml(&mut self, path: &Path) -> Result<(), PolicyError> {
        let source = SourceFile::read(path)?;
        let file = self.files.len();
        let starts = document_starts(&source.text);
        for (i, doc) in serde_yaml_ng::Deserializer::from_str(&source.text).enumerate() {
            let from_line = starts.get(i).copied().unwrap_or(0);
            let parsed = SemanticDoc::deserialize(doc).map_err(|e| PolicyError {
                file: source.path.clone(),
                line: e.location().map(|l| l.line()),
                reason: crate::policy::strip_location(&e.to_string()),
            })?;
            for m in parsed.models {
                let Some(ts) = m.time_spine else { continue };
                let day = m
                    .columns
                    .iter()
                    .find(|c| c.name == ts.standard_granularity_column)
                    .and_then(|c| c.granularity)
                    .unwrap_or(Grain::Day);
                if day != Grain::Day {
                    return Err(error_in_section(
                        &source,
                        from_line,
                        "models:",
                        &format!("name: {}", m.name),
                        Some("granularity"),
                        format!(
                            "time spine {}: steward reads time spines by day; {} is by {}",
                            m.name,
                            ts.standard_granularity_column,
                            day.as_str()
                        ),
                    ));
                }
                self.spines.push((
                    spine(
                        &m.name,
                        &ts.standard_granularity_column,
                        ts.custom_granularities,
                    ),
                    Origin { file, from_line },
                ));
            }
            let at = || Origin { file, from_line };
            self.models
                .extend(parsed.semantic_models.into_iter().map(|m| (m, at())));
            self.metrics
                .extend(parsed.metrics.into_iter().map(|m| (m, at())));
            self.saved
                .extend(parsed.saved_queries.into_iter().map(|m| (m, at())));
        }
        self.files.push(source);
        Ok(())
    }

    /// Reads `semantic_manifest.json`.
    fn read_manifest(&mut self, path: &Path) -> Result<(), PolicyError> {
        let source = SourceFile::read(path)?;
        let parsed: Manifest = serde_json::from_str(&source.text).map_err(|e| PolicyError {
            file: source.path.clone(),
            line: Some(e.line()),
            reason: format!("not a semantic manifest: {e}"),
        })?;
        let file = self.files.len();
        let at = || Origin { file, from_line: 0 };
        for t in parsed
            .project_configuration
            .into_iter()
            .flat_map(|p| p.time_spines)
        {
            if t.primary_column.time_granularity != Grain::Day {
                return Err(source.error_at(
                    "time_spines",
                    format!(
                        "time spine {}: steward reads time spines by day",
                        t.node_relation.alias
                    ),
                ));
            }
            self.spines.push((
                spine(
                    &t.node_relation.alias,
                    &t.primary_column.name,
                    t.custom_granularities,
                ),
                at(),
            ));
        }
        self.models
            .extend(parsed.semantic_models.into_iter().map(|m| (m, at())));
        self.metrics
            .extend(parsed.metrics.into_iter().map(|m| (m, at())));
        self.saved
            .extend(parsed.saved_queries.into_iter().map(|m| (m, at())));
        self.files.push(source);
        Ok(())
    }
}

/// A time spine: its table, day column and custom granularities (a
/// granularity's column defaults to its name), lower-cased.
fn spine(table: &str, day: &str, custom: Vec<CustomGranularityDef>) -> TimeSpine {
    TimeSpine {
        table: table.to_ascii_lowercase(),
        day_column: day.to_ascii_lowercase(),
        custom: custom
            .into_iter()
            .map(|c| CustomGrain {
                column: c
                    .column_name
                    .unwrap_or_else(|| c.name.clone())
                    .to_ascii_lowercase(),
                name: c.name.to_ascii_lowercase(),
            })
            .collect(),
    }
}

/// 0-based first line of each YAML document in `text`.
fn document_starts(text: &str) -> Vec<usize> {
    let mut starts = vec![0];
    for (i, line) in text.lines().enumerate() {
        if line.trim_end() == "---" && i > 0 {
            starts.push(i + 1);
        }
    }
    // A file that opens with `---` starts its first document after it.
    if text.lines().next().is_some_and(|l| l.trim_end() == "---") {
        starts[0] = 1;
    }
    starts
}

/// The YAML files of a dbt project: every `.yml`/`.yaml` under the
/// project's `model-paths` (default `models`), sorted.
fn dbt_project_files(project: &Path) -> Result<Vec<PathBuf>, PolicyError> {
    #[derive(Deserialize)]
    struct DbtProject {
        #[serde(default, rename = "model-paths")]
        model_paths: Option<Vec<String>>,
    }
    let manifest = project.join("dbt_project.yml");
    let source = SourceFile::read(&manifest)?;
    let parsed: DbtProject = source.parse()?;
    let dirs = parsed
        .model_paths
        .unwrap_or_else(|| vec!["models".to_owned()]);
    let mut files = Vec::new();
    for dir in dirs {
        let root = project.join(&dir);
        if !root.is_dir() {
            return Err(source.error_at(
                &dir,
                format!("model path {} is not a directory", root.display()),
            ));
        }
        collect_yaml(&root, &mut files).map_err(|e| PolicyError {
            file: root.clone(),
            line: None,
            reason: format!("cannot read the dbt project: {e}"),
        })?;
    }
    files.sort();
    Ok(files)
}

fn collect_yaml(dir: &Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.is_dir() {
            collect_yaml(&path, out)?;
        } else if path.extension().is_some_and(|x| x == "yml" || x == "yaml") {
            out.push(path);
        }
    }
    Ok(())
}

impl SemanticLayer {
    /// Loads every `*.yml` / `*.yaml` file in `dir` (sorted by name; each may
    /// hold several YAML documents) and validates the result against the
    /// schema allow-list.
    ///
    /// # Errors
    /// As [`SemanticLayer::load_from`].
    pub fn load(dir: &Path, schema: &Schema) -> Result<SemanticLayer, PolicyError> {
        SemanticLayer::load_from(&SemanticSource::Dir(dir.to_owned()), schema)
    }

    /// Loads semantic models, metrics and saved queries from `source` and
    /// validates them against the schema allow-list.
    ///
    /// # Errors
    /// A [`PolicyError`] with file, line and reason when a file is not valid
    /// YAML or JSON or has the wrong shape (an unknown key is an error); when
    /// a definition uses a construct steward does not support yet (named);
    /// when a model's table is not allow-listed; when names repeat; when a
    /// measure, metric, dimension, time dimension or window that a definition
    /// refers to does not exist; or when metrics form a cycle.
    pub fn load_from(
        source: &SemanticSource,
        schema: &Schema,
    ) -> Result<SemanticLayer, PolicyError> {
        let mut collected = Collected::default();
        match source {
            SemanticSource::Dir(dir) => {
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
                for path in paths {
                    collected.read_yaml(&path)?;
                }
            }
            SemanticSource::DbtProject(project) => {
                for path in dbt_project_files(project)? {
                    collected.read_yaml(&path)?;
                }
            }
            SemanticSource::Manifest(path) => collected.read_manifest(path)?,
        }
        build(collected, schema)
    }
}

fn build(collected: Collected, schema: &Schema) -> Result<SemanticLayer, PolicyError> {
    let Collected {
        files,
        models,
        mut metrics,
        saved,
        spines,
    } = collected;
    let at = |origin: &Origin, section: &str, anchor: &str, reason: String| {
        error_in_section(
            &files[origin.file],
            origin.from_line,
            section,
            anchor,
            None,
            reason,
        )
    };
    let at_key = |origin: &Origin, section: &str, anchor: &str, key: Option<String>, reason| {
        error_in_section(
            &files[origin.file],
            origin.from_line,
            section,
            anchor,
            key.as_deref(),
            reason,
        )
    };
    let json = |origin: &Origin| {
        files[origin.file]
            .path
            .extension()
            .is_some_and(|x| x == "json")
    };
    // The text that names a definition: `name: x` in YAML, `"name": "x"` in JSON.
    let named = |origin: &Origin, name: &str| {
        if json(origin) {
            format!("\"name\": \"{name}\"")
        } else {
            format!("name: {name}")
        }
    };

    let mut measure_names = BTreeSet::new();
    for (m, origin) in &models {
        validate_model(m, schema).map_err(|(key, reason)| {
            at_key(
                origin,
                "semantic_models:",
                &named(origin, &m.name),
                key,
                reason,
            )
        })?;
        for measure in &m.measures {
            if !measure_names.insert(measure.name.clone()) {
                return Err(at(
                    origin,
                    "semantic_models:",
                    &named(origin, &measure.name),
                    format!("measure {} is defined twice", measure.name),
                ));
            }
        }
    }
    if let Some(dup) = duplicate(models.iter().map(|(m, _)| m.name.as_str())) {
        let (_, origin) = models
            .iter()
            .rfind(|(m, _)| m.name == dup)
            .expect("duplicate exists");
        return Err(at(
            origin,
            "semantic_models:",
            &named(origin, &dup),
            format!("semantic model {dup} is defined twice"),
        ));
    }
    // `create_metric: true` defines a simple metric named after the measure.
    for (m, origin) in &models {
        for measure in m.measures.iter().filter(|x| x.create_metric) {
            metrics.push((created_metric(measure), *origin));
        }
    }

    let mut by_name = BTreeMap::new();
    for (metric, origin) in &metrics {
        let key = metric.name.to_ascii_lowercase();
        if by_name.insert(key, metric.clone()).is_some() {
            return Err(at(
                origin,
                "metrics:",
                &named(origin, &metric.name),
                format!("metric {} is defined twice", metric.name),
            ));
        }
    }
    for (metric, origin) in &metrics {
        validate_metric(metric, &measure_names, &by_name).map_err(|(key, reason)| {
            at_key(
                origin,
                "metrics:",
                &named(origin, &metric.name),
                key,
                reason,
            )
        })?;
    }
    let mut custom_names = BTreeSet::new();
    for (spine, origin) in &spines {
        let anchor = if json(origin) {
            spine.table.clone()
        } else {
            format!("name: {}", spine.table)
        };
        let Some((_, def)) = schema.table(&spine.table) else {
            // A spine only MetricFlow needs (no custom granularity) may stay outside the allow-list.
            if spine.custom.is_empty() {
                continue;
            }
            return Err(at(
                origin,
                "models:",
                &anchor,
                format!(
                    "time spine {} has custom granularities but schema.yaml does not list it: add the table and its columns to the schema allow-list",
                    spine.table
                ),
            ));
        };
        for column in
            std::iter::once(&spine.day_column).chain(spine.custom.iter().map(|c| &c.column))
        {
            if !def.columns.contains_key(column) {
                return Err(at(
                    origin,
                    "models:",
                    &anchor,
                    format!(
                        "time spine {}: column {column} is not in schema.yaml",
                        spine.table
                    ),
                ));
            }
        }
        for c in &spine.custom {
            if Grain::parse(&c.name).is_some() || !custom_names.insert(c.name.clone()) {
                return Err(at(
                    origin,
                    "models:",
                    &c.name,
                    format!(
                        "custom granularity {} is a standard grain's name or defined twice",
                        c.name
                    ),
                ));
            }
        }
    }
    let mut layer = SemanticLayer {
        models: models.into_iter().map(|(m, _)| m).collect(),
        metrics: by_name,
        saved_queries: Vec::new(),
        time_spines: spines
            .into_iter()
            .map(|(s, _)| s)
            .filter(|s| !s.custom.is_empty())
            .collect(),
    };
    for (metric, origin) in &metrics {
        if let Some(cycle) = layer.cycle_from(&metric.name.to_ascii_lowercase(), &mut Vec::new()) {
            return Err(at(
                origin,
                "metrics:",
                &named(origin, &metric.name),
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
                &named(origin, &metric.name),
                e.to_string(),
            ));
        }
    }
    let mut seen = BTreeSet::new();
    for (def, origin) in saved {
        if !seen.insert(def.name.to_ascii_lowercase()) {
            return Err(at(
                &origin,
                "saved_queries:",
                &named(&origin, &def.name),
                format!("saved query {} is defined twice", def.name),
            ));
        }
        let query = SavedQuery::from_def(&layer, &def).map_err(|reason| {
            at(
                &origin,
                "saved_queries:",
                &named(&origin, &def.name),
                reason,
            )
        })?;
        layer.saved_queries.push(query);
    }
    Ok(layer)
}

/// The simple metric a measure with `create_metric: true` defines.
fn created_metric(measure: &MeasureDef) -> MetricDef {
    MetricDef {
        name: measure.name.clone(),
        label: measure
            .create_metric_display_name
            .clone()
            .or_else(|| measure.label.clone()),
        description: measure.description.clone(),
        kind: MetricType::Simple,
        type_params: MetricTypeParams {
            measure: Some(NameRef {
                name: measure.name.clone(),
                ..NameRef::default()
            }),
            ..MetricTypeParams::default()
        },
        filter: Filter::default(),
        time_granularity: None,
        config: measure.config.clone(),
        metadata: None,
    }
}

impl SemanticLayer {
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

/// An error at the first line mentioning `anchor` (a definition's `name:`)
/// after the line that starts `section` in the document starting at line
/// `from_line`, then at the first line after it mentioning `needle` (the
/// offending key) when given; at the anchor anywhere in the file when the
/// section has none.
fn error_in_section(
    file: &SourceFile,
    from_line: usize,
    section: &str,
    anchor: &str,
    needle: Option<&str>,
    reason: String,
) -> PolicyError {
    let lines: Vec<&str> = file.text.lines().collect();
    let start = (from_line..lines.len())
        .find(|&i| lines[i].trim_start().starts_with(section))
        .unwrap_or(from_line);
    let anchor_at = (start..lines.len())
        .find(|&i| lines[i].contains(anchor))
        .or_else(|| file.line_of(anchor).map(|l| l - 1));
    let line = match (anchor_at, needle) {
        (Some(a), Some(n)) => (a..lines.len()).find(|&i| lines[i].contains(n)).or(Some(a)),
        (a, _) => a,
    };
    PolicyError {
        file: file.path.clone(),
        line: line.map(|i| i + 1),
        reason,
    }
}

#[cfg(test)]
mod tests;
