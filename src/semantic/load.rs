//! Loading and validating semantic-layer YAML files.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use serde::Deserialize;

use std::path::PathBuf;

use serde::de::IgnoredAny;

use super::model::{
    Agg, AggParams, DimensionType, Filter, MeasureDef, MetricDef, MetricType, MetricTypeParams,
    NameRef, SavedQueryDef, SemanticModelDef,
};
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

/// A validation failure: the key to point at inside the definition (its
/// `name:` line when `None`) and the reason.
type Invalid = (Option<String>, String);

/// A construct of dbt's schema that steward does not support yet.
fn unsupported(key: &str, what: &str, whose: &str) -> Invalid {
    (
        Some(key.to_owned()),
        format!("{whose}: {what} ({key}) is not supported yet"),
    )
}

/// Checks one semantic model.
fn validate_model(m: &SemanticModelDef, schema: &Schema) -> Result<(), Invalid> {
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
fn validate_metric(
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
        // The line that names the missing measure, inside the metric.
        assert_eq!(err.line, Some(13), "{err}");
        assert!(err.reason.contains("nope"), "{err}");
    }

    #[test]
    fn table_outside_the_allow_list_is_rejected() {
        let err = load(&MODEL.replace("ref('t')", "ref('secrets')")).unwrap_err();
        assert_eq!(err.line, Some(3), "{err}");
        assert!(err.reason.contains("schema.yaml does not list"), "{err}");
    }

    #[test]
    fn bad_agg_is_a_yaml_error_with_a_line() {
        let err = load(&MODEL.replace("agg: sum", "agg: total")).unwrap_err();
        assert_eq!(err.line, Some(9), "{err}");
    }

    const METRIC: &str =
        "metrics:\n  - name: t\n    type: simple\n    type_params: {measure: total}\n";

    #[test]
    fn several_documents_in_one_file_load_and_errors_keep_their_line() {
        let s = load(&format!("{MODEL}---\n{METRIC}")).unwrap();
        assert!(s.metric("t").is_some());
        // Line 14 is `type_params` of the second document's metric.
        let err = load(&format!("{MODEL}---\n{}", METRIC.replace("total", "nope"))).unwrap_err();
        assert_eq!(err.line, Some(14), "{err}");
        let err = load(&format!(
            "---\n{MODEL}---\n{}",
            METRIC.replace("simple", "simpel")
        ))
        .unwrap_err();
        assert_eq!(err.line, Some(14), "{err}");
        assert!(err.reason.contains("simpel"), "{err}");
    }

    #[test]
    fn node_relation_names_the_table() {
        let text = MODEL.replace(
            "model: ref('t')",
            "node_relation: {alias: t, schema_name: analytics, database: prod, relation_name: '\"prod\".\"analytics\".\"t\"'}",
        );
        let s = load(&format!("{text}{METRIC}")).unwrap();
        assert_eq!(s.models()[0].table(), "t");
        let err = load(&MODEL.replace("    model: ref('t')\n", "")).unwrap_err();
        assert!(err.reason.contains("names no table"), "{err}");
    }

    #[test]
    fn unknown_keys_are_errors_at_their_line() {
        let err = load(&MODEL.replace("agg: sum", "agg: sum, agregation: x")).unwrap_err();
        assert_eq!(err.line, Some(9), "{err}");
        assert!(err.reason.contains("agregation"), "{err}");
        let err = load(&format!(
            "{MODEL}{}",
            METRIC.replace("type: simple", "type: simple\n    typo: 1")
        ))
        .unwrap_err();
        assert_eq!(err.line, Some(13), "{err}");
    }

    /// Every construct of dbt's schema steward does not support yet is a
    /// load error naming the feature, at the line that uses it.
    #[test]
    fn unsupported_constructs_are_named_at_their_line() {
        // Metric `t`, then the metric `u` under test, whose body starts at line 15.
        let metric = |body: &str| format!("{MODEL}{METRIC}  - name: u\n{body}");
        let cases: Vec<(String, &str, usize)> = vec![
            (
                metric("    type: conversion\n    type_params:\n      conversion_type_params: {entity: x, base_metric: t, conversion_metric: t}\n"),
                "conversion over metrics",
                17,
            ),
            (
                metric("    type: derived\n    type_params:\n      expr: t\n      metrics:\n        - {name: t, offset_window: 2 hours}\n"),
                "offset shorter than a day",
                19,
            ),
            (
                metric("    type: derived\n    type_params:\n      expr: t\n      metrics:\n        - {name: t, fill_nulls_with: 0}\n"),
                "fill_nulls_with",
                19,
            ),
            (
                metric("    type: simple\n    type_params:\n      measure: total\n      is_private: true\n"),
                "private",
                18,
            ),
            (
                metric("    type: simple\n    type_params:\n      metric_aggregation_params: {agg: sum, semantic_model: m}\n"),
                "own aggregation",
                17,
            ),
            (
                MODEL.replace("{name: ts, type: time}", "{name: ts, type: time, type_params: {time_granularity: day, validity_params: {is_start: true}}}"),
                "slowly changing",
                7,
            ),
            (
                MODEL.replace("expr: v}", "expr: v, non_additive_dimension: {name: ts, window_choice: max, window_groupings: [x]}}"),
                "window groupings",
                9,
            ),
            (
                MODEL.replace("type: primary, expr: id", "type: primary, expr: id, role: owner"),
                "entity role",
                5,
            ),
            (
                MODEL.replace("{name: ts, type: time}", "{name: ts, type: time, type_params: {time_granularity: nanosecond}}"),
                "sub-second",
                7,
            ),
            (
                MODEL.replace("{name: ts, type: time}", "{name: ts, type: time, type_params: {time_granularity: fiscal_quarter}}"),
                "custom granularities",
                7,
            ),
        ];
        for (text, feature, line) in cases {
            let err = load(&text).expect_err(feature);
            assert!(err.reason.contains(feature), "{feature}: {err}");
            assert_eq!(err.line, Some(line), "{feature}: {err}\n{text}");
        }
    }

    #[test]
    fn fills_and_offsets_load_where_dbt_allows_them() {
        let ok = format!(
            "{MODEL}{METRIC}  - name: filled\n    type: simple\n    type_params:\n      measure: {{name: total, fill_nulls_with: 0, join_to_timespine: true}}\n  - name: wow\n    type: derived\n    type_params:\n      expr: t - prev\n      metrics:\n        - t\n        - {{name: t, offset_window: 1 week, alias: prev}}\n        - {{name: t, offset_to_grain: month, alias: start}}\n"
        );
        let s = load(&ok).unwrap();
        assert!(s.metric("wow").is_some() && s.metric("filled").is_some());
        for (bad, why) in [
            (
                "  - name: r\n    type: ratio\n    type_params: {numerator: {name: t, offset_window: 1 week}, denominator: t}\n",
                "derived metric's inputs",
            ),
            (
                "  - name: r\n    type: derived\n    type_params: {expr: t, metrics: [{name: t, offset_window: 1 week, offset_to_grain: month}]}\n",
                "not both",
            ),
            (
                "  - name: r\n    type: derived\n    type_params: {expr: t, metrics: [{name: t, offset_to_grain: fortnight}]}\n",
                "offset_to_grain",
            ),
            (
                "  - name: r\n    type: ratio\n    type_params: {numerator: t, denominator: t, fill_nulls_with: 0}\n",
                "simple metrics",
            ),
        ] {
            let err = load(&format!("{MODEL}{METRIC}{bad}")).unwrap_err();
            assert!(err.reason.contains(why), "{why}: {err}");
        }
    }

    #[test]
    fn custom_granularities_come_from_an_allow_listed_time_spine() {
        let schema: Schema = serde_yaml_ng::from_str(
            "tables:\n  t:\n    columns:\n      id: {class: public}\n      ts: {class: public}\n      v: {class: public}\n  spine:\n    columns:\n      d: {class: public}\n      fq: {class: public}\n",
        )
        .unwrap();
        let spine = |custom: &str| {
            format!(
                "{MODEL}{METRIC}models:\n  - name: spine\n    time_spine:\n      standard_granularity_column: d\n      custom_granularities: [{custom}]\n    columns:\n      - {{name: d, granularity: day}}\n"
            )
        };
        let dir = tempfile::tempdir().unwrap();
        let load_with = |text: String| {
            std::fs::write(dir.path().join("a.yml"), text).unwrap();
            SemanticLayer::load(dir.path(), &schema)
        };
        let s = load_with(spine("{name: fiscal_quarter, column_name: fq}")).unwrap();
        let (t, c) = s.custom_grain("Fiscal_Quarter").unwrap();
        assert_eq!(
            (t.table.as_str(), t.day_column.as_str(), c.column.as_str()),
            ("spine", "d", "fq")
        );
        let mut q = super::super::MetricQuery {
            metric: "t".into(),
            range: super::super::TimeRange::new(
                chrono::NaiveDate::from_ymd_opt(2026, 1, 1).unwrap(),
                chrono::NaiveDate::from_ymd_opt(2026, 7, 1).unwrap(),
            )
            .unwrap(),
            grain: None,
            custom_grain: Some("fiscal_quarter".into()),
            group_by: vec![],
            filters: vec![],
        };
        let sql = s.compile(&q, crate::sql::Dialect::Sqlite).unwrap().sql;
        assert!(
            sql.contains("sp.fq AS period")
                && sql.contains("LEFT JOIN spine AS sp ON sp.d = date(m0.ts)"),
            "{sql}"
        );
        q.grain = Some(Grain::Month);
        assert!(
            s.compile(&q, crate::sql::Dialect::Sqlite).is_err(),
            "a grain and a custom granularity"
        );
        for (custom, why) in [
            ("{name: fiscal_quarter, column_name: nope}", "column nope"),
            ("{name: month, column_name: fq}", "standard grain"),
        ] {
            let err = load_with(spine(custom)).unwrap_err();
            assert!(err.reason.contains(why), "{why}: {err}");
        }
        // Not allow-listed: an error naming schema.yaml.
        let err = load(&spine("{name: fiscal_quarter, column_name: fq}")).unwrap_err();
        assert!(err.reason.contains("schema.yaml does not list"), "{err}");
        assert_eq!(err.line, Some(15), "{err}");
    }

    #[test]
    fn percentiles_need_their_parameters() {
        let bad = MODEL.replace("agg: sum", "agg: percentile");
        assert!(
            load(&bad)
                .unwrap_err()
                .reason
                .contains("agg_params.percentile")
        );
        let out_of_range =
            MODEL.replace("agg: sum", "agg: percentile, agg_params: {percentile: 90}");
        assert!(load(&out_of_range).is_err());
        let ok = MODEL.replace(
            "agg: sum",
            "agg: PERCENTILE, agg_params: {percentile: 0.9, use_discrete_percentile: true}",
        );
        load(&format!("{ok}{METRIC}")).unwrap();
    }

    #[test]
    fn approximate_percentiles_compile_only_where_the_warehouse_has_them() {
        let text = MODEL.replace(
            "agg: sum",
            "agg: percentile, agg_params: {percentile: 0.9, use_approximate_percentile: true}",
        );
        let s = load(&format!("{text}{METRIC}")).unwrap();
        let end = chrono::NaiveDate::from_ymd_opt(2026, 11, 16).unwrap();
        let q = super::super::MetricQuery {
            metric: "t".into(),
            range: super::super::TimeRange::new(end - chrono::Duration::days(7), end).unwrap(),
            grain: None,
            custom_grain: None,
            group_by: vec![],
            filters: vec![],
        };
        let snowflake = s.compile(&q, crate::sql::Dialect::Snowflake).unwrap();
        assert!(
            snowflake
                .sql
                .contains("APPROX_PERCENTILE(measure_value, 0.9)"),
            "{}",
            snowflake.sql
        );
        for d in [crate::sql::Dialect::Postgres, crate::sql::Dialect::Sqlite] {
            let err = s.compile(&q, d).unwrap_err().to_string();
            assert!(
                err.contains("approximate percentile needs Snowflake"),
                "{d}: {err}"
            );
        }
    }

    #[test]
    fn create_metric_defines_a_simple_metric() {
        let text = MODEL.replace(
            "agg: sum, expr: v",
            "agg: count, expr: 1, create_metric: true, create_metric_display_name: Rows",
        );
        let s = load(&text).unwrap();
        let m = s.metric("total").expect("created");
        assert_eq!(m.label(), "Rows");
        assert_eq!(m.measure_name(), Some("total"));
    }

    #[test]
    fn saved_queries_are_checked() {
        let saved = |params: &str| {
            format!(
                "{MODEL}{METRIC}saved_queries:\n  - name: s\n    label: Totals by week\n    query_params:\n{params}"
            )
        };
        let s = load(&saved(
            "      metrics: [t]\n      group_by: [\"TimeDimension('metric_time', 'week')\"]\n",
        ))
        .unwrap();
        let q = &s.saved_queries()[0];
        assert_eq!(
            (q.question.as_str(), q.grain),
            ("Totals by week", Some(Grain::Week))
        );
        for (params, why) in [
            ("      metrics: [nope]\n", "nope"),
            (
                "      metrics: [t]\n      group_by: [\"Dimension('x__colour')\"]\n",
                "colour",
            ),
            (
                "      metrics: [t]\n      where: [\"{{ Metric('t', ['x']) }} > 1\"]\n",
                "Metric",
            ),
        ] {
            let err = load(&saved(params)).unwrap_err();
            assert!(err.reason.contains(why), "{why}: {err}");
        }
    }

    #[test]
    fn a_manifest_with_nulls_loads() {
        let manifest = r#"{"semantic_models": [{"name": "m", "description": null, "node_relation": {"alias": "t", "schema_name": "s", "database": null, "relation_name": "s.t"},
            "primary_entity": null, "label": null, "metadata": null, "config": {"meta": {}},
            "defaults": {"agg_time_dimension": "ts"},
            "entities": [{"name": "x", "type": "primary", "expr": "id", "description": null, "role": null, "label": null, "metadata": null, "config": {"meta": {}}}],
            "dimensions": [{"name": "ts", "type": "time", "is_partition": false, "type_params": {"time_granularity": "day", "validity_params": null}, "expr": null, "metadata": null, "label": null, "description": null, "config": {"meta": {}}}],
            "measures": [{"name": "total", "agg": "sum", "expr": "v", "description": null, "create_metric": false, "agg_params": null, "metadata": null, "non_additive_dimension": null, "agg_time_dimension": null, "label": null, "config": {"meta": {}}}]}],
          "metrics": [{"name": "t", "description": null, "type": "cumulative", "label": "T", "filter": {"where_filters": [{"where_sql_template": "{{ Dimension('x__ts') }} IS NOT NULL"}]}, "metadata": null, "config": {"meta": {"synonyms": ["tee"]}}, "time_granularity": null,
            "type_params": {"measure": {"name": "total", "filter": null, "alias": null, "join_to_timespine": false, "fill_nulls_with": null}, "numerator": null, "denominator": null, "expr": null, "window": null, "grain_to_date": null, "metrics": [], "conversion_type_params": null,
              "cumulative_type_params": {"window": {"count": 7, "granularity": "day"}, "grain_to_date": null, "period_agg": "last"}, "input_measures": []}}],
          "project_configuration": {"time_spine_table_configurations": [], "metadata": null, "dsi_package_version": {}, "time_spines": []},
          "saved_queries": []}"#;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("semantic_manifest.json");
        std::fs::write(&path, manifest).unwrap();
        let s =
            SemanticLayer::load_from(&SemanticSource::Manifest(path.clone()), &schema()).unwrap();
        let t = s.metric("t").unwrap();
        assert_eq!(t.type_params.cumulative_window().map(|w| w.count), Some(7));
        assert_eq!(t.type_params.period_agg(), crate::semantic::PeriodAgg::Last);
        assert_eq!(t.filter.0.len(), 1);
        assert_eq!(t.words(), vec!["t", "t", "tee"]);
        std::fs::write(
            &path,
            manifest.replace("\"saved_queries\"", "\"sav_queries\""),
        )
        .unwrap();
        let err = SemanticLayer::load_from(&SemanticSource::Manifest(path), &schema()).unwrap_err();
        assert!(err.reason.contains("sav_queries"), "{err}");
    }

    #[test]
    fn a_dbt_project_is_read_under_its_model_paths() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("dbt_project.yml"),
            "name: p\nmodel-paths: [\"src\"]\n",
        )
        .unwrap();
        std::fs::create_dir_all(dir.path().join("src/marts/semantic")).unwrap();
        std::fs::write(
            dir.path().join("src/marts/semantic/m.yml"),
            format!("version: 2\n{MODEL}"),
        )
        .unwrap();
        std::fs::write(dir.path().join("src/marts/metrics.yaml"), METRIC).unwrap();
        // Not under model-paths: not read.
        std::fs::create_dir_all(dir.path().join("models")).unwrap();
        std::fs::write(dir.path().join("models/x.yml"), "metrics: [oops]\n").unwrap();
        let s = SemanticLayer::load_from(
            &SemanticSource::DbtProject(dir.path().to_owned()),
            &schema(),
        )
        .unwrap();
        assert!(s.metric("t").is_some());
        std::fs::write(
            dir.path().join("dbt_project.yml"),
            "name: p\nmodel-paths: [\"nowhere\"]\n",
        )
        .unwrap();
        let err = SemanticLayer::load_from(
            &SemanticSource::DbtProject(dir.path().to_owned()),
            &schema(),
        )
        .unwrap_err();
        assert!(err.reason.contains("not a directory"), "{err}");
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
        use super::super::model::Window;
        let w = |s: &str| Window::parse(s).map(|w| (w.count, w.grain));
        assert_eq!(w("7 days"), Some((7, Grain::Day)));
        assert_eq!(w("1 month"), Some((1, Grain::Month)));
        assert_eq!(w("2 weeks"), Some((2, Grain::Week)));
        assert_eq!(w("7"), None);
        assert_eq!(w("-1 days"), None);
        assert_eq!(w("3 fortnights"), None);
    }
}
