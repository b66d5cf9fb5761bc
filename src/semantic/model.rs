//! The MetricFlow YAML shapes steward reads.
//!
//! Field names follow the dbt Semantic Layer specification; fields steward does
//! not use are accepted and ignored so existing dbt projects load unchanged.

use serde::{Deserialize, Serialize};

use super::Grain;

/// `semantic_models:` entry.
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct SemanticModelDef {
    /// Model name.
    pub name: String,
    /// What the model holds.
    #[serde(default)]
    pub description: String,
    /// `ref('table')` or a bare table name; must be allow-listed.
    pub model: String,
    /// `defaults.agg_time_dimension`.
    #[serde(default)]
    pub defaults: Option<ModelDefaults>,
    /// Join keys.
    #[serde(default)]
    pub entities: Vec<EntityDef>,
    /// Group-by and time columns.
    #[serde(default)]
    pub dimensions: Vec<DimensionDef>,
    /// Aggregations.
    #[serde(default)]
    pub measures: Vec<MeasureDef>,
}

impl SemanticModelDef {
    /// The table behind `model:`: `ref('x')` → `x`.
    pub fn table(&self) -> String {
        let m = self.model.trim();
        let inner = m
            .strip_prefix("ref(")
            .and_then(|r| r.strip_suffix(')'))
            .map(|r| r.trim().trim_matches(|c| c == '\'' || c == '"'))
            .unwrap_or(m);
        inner.to_ascii_lowercase()
    }

    /// The default time dimension for this model's measures.
    pub fn agg_time_dimension(&self) -> Option<&str> {
        self.defaults
            .as_ref()
            .and_then(|d| d.agg_time_dimension.as_deref())
    }
}

/// `defaults:` of a semantic model.
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct ModelDefaults {
    /// Time dimension measures aggregate over unless they say otherwise.
    pub agg_time_dimension: Option<String>,
}

/// Entity (join key) type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum EntityType {
    /// One row per value, every row has one.
    Primary,
    /// At most one row per value.
    Unique,
    /// Many rows per value.
    Foreign,
    /// Natural key (SCD tables).
    Natural,
}

impl EntityType {
    /// Whether joining *to* this entity keeps one row per key.
    pub fn is_unique(self) -> bool {
        matches!(
            self,
            EntityType::Primary | EntityType::Unique | EntityType::Natural
        )
    }
}

/// `entities:` entry.
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct EntityDef {
    /// Entity name, shared across models to join them.
    pub name: String,
    /// Key type.
    #[serde(rename = "type")]
    pub kind: EntityType,
    /// Column or SQL expression; defaults to the name.
    #[serde(default)]
    pub expr: Option<String>,
}

impl EntityDef {
    /// The SQL expression of the key.
    pub fn expr(&self) -> &str {
        self.expr.as_deref().unwrap_or(&self.name)
    }
}

/// Dimension type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum DimensionType {
    /// A category to group or filter by.
    Categorical,
    /// A timestamp or date.
    Time,
}

/// `dimensions:` entry.
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct DimensionDef {
    /// Dimension name.
    pub name: String,
    /// Categorical or time.
    #[serde(rename = "type")]
    pub kind: DimensionType,
    /// Column or SQL expression; defaults to the name.
    #[serde(default)]
    pub expr: Option<String>,
    /// Human label.
    #[serde(default)]
    pub label: Option<String>,
    /// Description.
    #[serde(default)]
    pub description: String,
    /// `type_params.time_granularity` for time dimensions.
    #[serde(default)]
    pub type_params: Option<DimensionTypeParams>,
    /// `config.meta` (steward reads `synonyms`).
    #[serde(default)]
    pub config: Option<Config>,
}

impl DimensionDef {
    /// The SQL expression of the dimension.
    pub fn expr(&self) -> &str {
        self.expr.as_deref().unwrap_or(&self.name)
    }

    /// Lower-case words that name this dimension in questions, name first.
    pub fn words(&self) -> Vec<String> {
        let mut w = vec![self.name.replace('_', " ")];
        if let Some(l) = &self.label {
            w.push(l.to_lowercase());
        }
        w.extend(
            self.config
                .iter()
                .flat_map(|c| c.meta.synonyms.iter().map(|s| s.to_lowercase())),
        );
        w
    }
}

/// `type_params` of a dimension.
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct DimensionTypeParams {
    /// Finest grain of a time dimension.
    #[serde(default)]
    pub time_granularity: Option<Grain>,
}

/// Measure aggregation (`agg:`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Agg {
    /// `SUM(expr)`.
    Sum,
    /// `COUNT(expr)`.
    Count,
    /// `COUNT(DISTINCT expr)`.
    CountDistinct,
    /// `AVG(expr)`.
    Average,
    /// `MIN(expr)`.
    Min,
    /// `MAX(expr)`.
    Max,
    /// `SUM(CASE WHEN expr THEN 1 ELSE 0 END)`.
    SumBoolean,
    /// The 50th percentile (continuous).
    Median,
}

impl Agg {
    /// Whether values over sub-periods add up to the value over the whole
    /// period (so a range total is a sum, not a mean of daily values).
    pub fn is_additive(self) -> bool {
        matches!(self, Agg::Sum | Agg::Count | Agg::SumBoolean)
    }
}

/// `non_additive_dimension:` of a semi-additive measure (balances, MRR).
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct NonAdditiveDimension {
    /// A time dimension of the same model.
    pub name: String,
    /// `min` (first snapshot of the period) or `max` (last).
    pub window_choice: WindowChoice,
}

/// Which snapshot of a period a semi-additive measure reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum WindowChoice {
    /// The first snapshot in the period.
    Min,
    /// The last snapshot in the period.
    Max,
}

/// `measures:` entry.
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct MeasureDef {
    /// Measure name.
    pub name: String,
    /// Description.
    #[serde(default)]
    pub description: String,
    /// Aggregation.
    pub agg: Agg,
    /// Column or SQL expression; defaults to the name.
    #[serde(default)]
    pub expr: Option<String>,
    /// Time dimension to aggregate over (else the model default).
    #[serde(default)]
    pub agg_time_dimension: Option<String>,
    /// Semi-additive behaviour.
    #[serde(default)]
    pub non_additive_dimension: Option<NonAdditiveDimension>,
}

impl MeasureDef {
    /// The SQL expression aggregated.
    pub fn expr(&self) -> &str {
        self.expr.as_deref().unwrap_or(&self.name)
    }
}

/// Metric type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum MetricType {
    /// One measure, optionally filtered.
    Simple,
    /// Numerator metric divided by denominator metric.
    Ratio,
    /// An expression over other metrics.
    Derived,
    /// A measure over a trailing window (or grain-to-date).
    Cumulative,
}

/// A reference to a measure or metric: a bare name or `{name, filter, alias}`.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(untagged)]
pub enum NameRef {
    /// `measure: active_users`
    Name(String),
    /// `measure: {name: active_users, filter: "..."}`
    Detailed {
        /// Referenced name.
        name: String,
        /// Extra filter (MetricFlow Jinja `{{ Dimension('x') }}` syntax).
        #[serde(default)]
        filter: Option<String>,
        /// Name used in a derived metric's `expr`.
        #[serde(default)]
        alias: Option<String>,
    },
}

impl NameRef {
    /// Referenced name.
    pub fn name(&self) -> &str {
        match self {
            NameRef::Name(n) | NameRef::Detailed { name: n, .. } => n,
        }
    }

    /// Filter, if any.
    pub fn filter(&self) -> Option<&str> {
        match self {
            NameRef::Name(_) => None,
            NameRef::Detailed { filter, .. } => filter.as_deref(),
        }
    }

    /// Alias, else name.
    pub fn alias(&self) -> &str {
        match self {
            NameRef::Name(n) => n,
            NameRef::Detailed { alias, name, .. } => alias.as_deref().unwrap_or(name),
        }
    }
}

/// `type_params:` of a metric.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
pub struct MetricTypeParams {
    /// Simple and cumulative metrics: the measure.
    #[serde(default)]
    pub measure: Option<NameRef>,
    /// Ratio: numerator metric.
    #[serde(default)]
    pub numerator: Option<NameRef>,
    /// Ratio: denominator metric.
    #[serde(default)]
    pub denominator: Option<NameRef>,
    /// Derived: SQL expression over input metric names or aliases.
    #[serde(default)]
    pub expr: Option<String>,
    /// Derived: input metrics.
    #[serde(default)]
    pub metrics: Option<Vec<NameRef>>,
    /// Cumulative: trailing window such as `7 days`.
    #[serde(default)]
    pub window: Option<String>,
    /// Cumulative: accumulate from the start of this grain instead.
    #[serde(default)]
    pub grain_to_date: Option<Grain>,
}

/// `config:` block; steward reads `meta`.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
pub struct Config {
    /// Free-form metadata.
    #[serde(default)]
    pub meta: Meta,
}

/// The `config.meta` keys steward understands.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
pub struct Meta {
    /// Words people use for the metric or dimension.
    #[serde(default)]
    pub synonyms: Vec<String>,
    /// `number`, `percent`, `currency` or `hours`.
    #[serde(default)]
    pub format: Option<ValueFormat>,
    /// Window for questions that name no time range.
    #[serde(default)]
    pub default_window_days: Option<u32>,
}

/// How a metric's values are printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ValueFormat {
    /// A count or plain number.
    #[default]
    Number,
    /// A ratio printed as a percentage.
    Percent,
    /// US dollars.
    Currency,
    /// A duration in hours.
    Hours,
}

/// `metrics:` entry.
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct MetricDef {
    /// Metric name.
    pub name: String,
    /// Human label.
    #[serde(default)]
    pub label: Option<String>,
    /// Definition in words.
    #[serde(default)]
    pub description: String,
    /// Type.
    #[serde(rename = "type")]
    pub kind: MetricType,
    /// Parameters of the type.
    #[serde(default)]
    pub type_params: MetricTypeParams,
    /// Metric-level filter (MetricFlow Jinja `{{ Dimension('x') }}` syntax).
    #[serde(default)]
    pub filter: Option<String>,
    /// Grain the metric is defined at; over longer ranges non-additive metrics
    /// report the mean of the values at this grain.
    #[serde(default)]
    pub time_granularity: Option<Grain>,
    /// `config.meta`.
    #[serde(default)]
    pub config: Option<Config>,
}

impl MetricDef {
    /// Label, else the name.
    pub fn label(&self) -> &str {
        self.label.as_deref().unwrap_or(&self.name)
    }

    /// `config.meta`, or defaults.
    pub fn meta(&self) -> Meta {
        self.config.clone().map(|c| c.meta).unwrap_or_default()
    }

    /// Display format.
    pub fn format(&self) -> ValueFormat {
        self.meta().format.unwrap_or_default()
    }

    /// Lower-case words that name this metric in questions: name, label, synonyms.
    pub fn words(&self) -> Vec<String> {
        let mut w = vec![self.name.replace('_', " ")];
        if let Some(l) = &self.label {
            w.push(l.to_lowercase());
        }
        w.extend(self.meta().synonyms.iter().map(|s| s.to_lowercase()));
        w
    }

    /// The measure of a simple or cumulative metric.
    pub fn measure_name(&self) -> Option<&str> {
        match self.kind {
            MetricType::Simple | MetricType::Cumulative => {
                self.type_params.measure.as_ref().map(NameRef::name)
            }
            _ => None,
        }
    }

    /// Input metrics of ratio and derived metrics.
    pub fn input_metric_names(&self) -> Vec<String> {
        let p = &self.type_params;
        match self.kind {
            MetricType::Ratio => [&p.numerator, &p.denominator]
                .into_iter()
                .flatten()
                .map(|r| r.name().to_ascii_lowercase())
                .collect(),
            MetricType::Derived => p
                .metrics
                .iter()
                .flatten()
                .map(|r| r.name().to_ascii_lowercase())
                .collect(),
            _ => Vec::new(),
        }
    }
}
