//! The MetricFlow YAML shapes steward reads.
//!
//! Field names follow the dbt Semantic Layer specification; fields steward does
//! not use are accepted and ignored so existing dbt projects load unchanged.

use serde::de::{self, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Serialize};

use super::Grain;

/// `semantic_models:` entry (dbt's `semantic_model_schema`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SemanticModelDef {
    /// Model name.
    pub name: String,
    /// What the model holds.
    #[serde(default, deserialize_with = "null_default")]
    pub description: String,
    /// Human label.
    #[serde(default)]
    pub label: Option<String>,
    /// `ref('table')` or a bare table name (the YAML form).
    #[serde(default)]
    pub model: Option<String>,
    /// The relation `dbt parse` resolved `model:` to (the manifest form, and
    /// accepted in YAML): its `alias` names the table.
    #[serde(default)]
    pub node_relation: Option<NodeRelation>,
    /// The entity this model's rows are, for models without a primary entity
    /// (dimensions are then reachable as `primary_entity__dimension`).
    #[serde(default)]
    pub primary_entity: Option<String>,
    /// `defaults.agg_time_dimension`.
    #[serde(default)]
    pub defaults: Option<ModelDefaults>,
    /// Join keys.
    #[serde(default, deserialize_with = "null_default")]
    pub entities: Vec<EntityDef>,
    /// Group-by and time columns.
    #[serde(default, deserialize_with = "null_default")]
    pub dimensions: Vec<DimensionDef>,
    /// Aggregations.
    #[serde(default, deserialize_with = "null_default")]
    pub measures: Vec<MeasureDef>,
    /// `config.meta`.
    #[serde(default)]
    pub config: Option<Config>,
    /// Where dbt read the definition (manifest only); not used.
    #[serde(default)]
    pub metadata: Option<IgnoredAny>,
}

/// `node_relation:` of a semantic model or time spine (dbt's `node_relation_schema`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeRelation {
    /// The relation's name: the table steward reads.
    pub alias: String,
    /// The schema dbt built it in; steward's warehouse connection decides
    /// the schema (its search path), so this is informational.
    pub schema_name: String,
    /// The database, informational.
    #[serde(default)]
    pub database: Option<String>,
    /// The quoted full name, informational.
    #[serde(default)]
    pub relation_name: Option<String>,
}

impl SemanticModelDef {
    /// The table behind the model: `ref('x')` → `x`; `node_relation.alias`
    /// when there is no `model:`. Lower-case.
    pub fn table(&self) -> String {
        let name = match (&self.model, &self.node_relation) {
            (Some(m), _) => {
                let m = m.trim();
                m.strip_prefix("ref(")
                    .and_then(|r| r.strip_suffix(')'))
                    .map(|r| r.trim().trim_matches(|c| c == '\'' || c == '"'))
                    .unwrap_or(m)
                    .to_owned()
            }
            (None, Some(r)) => r.alias.clone(),
            (None, None) => String::new(),
        };
        name.to_ascii_lowercase()
    }

    /// The default time dimension for this model's measures.
    pub fn agg_time_dimension(&self) -> Option<&str> {
        self.defaults
            .as_ref()
            .and_then(|d| d.agg_time_dimension.as_deref())
    }
}

/// `defaults:` of a semantic model.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelDefaults {
    /// Time dimension measures aggregate over unless they say otherwise.
    #[serde(default)]
    pub agg_time_dimension: Option<String>,
}

/// Entity (join key) type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum EntityType {
    /// One row per value, every row has one.
    #[serde(alias = "PRIMARY")]
    Primary,
    /// At most one row per value.
    #[serde(alias = "UNIQUE")]
    Unique,
    /// Many rows per value.
    #[serde(alias = "FOREIGN")]
    Foreign,
    /// Natural key (SCD tables).
    #[serde(alias = "NATURAL")]
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

/// `entities:` entry (dbt's `entity_schema`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EntityDef {
    /// Entity name, shared across models to join them.
    pub name: String,
    /// Key type.
    #[serde(rename = "type")]
    pub kind: EntityType,
    /// Column or SQL expression; defaults to the name.
    #[serde(default, deserialize_with = "sql_expr")]
    pub expr: Option<String>,
    /// Description.
    #[serde(default, deserialize_with = "null_default")]
    pub description: String,
    /// Human label.
    #[serde(default)]
    pub label: Option<String>,
    /// A role name (legacy MetricFlow field): not supported.
    #[serde(default)]
    pub role: Option<String>,
    /// Legacy alias of `name`: not supported.
    #[serde(default)]
    pub entity: Option<String>,
    /// `config.meta`.
    #[serde(default)]
    pub config: Option<Config>,
    /// Manifest only; not used.
    #[serde(default)]
    pub metadata: Option<IgnoredAny>,
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
    #[serde(alias = "CATEGORICAL")]
    Categorical,
    /// A timestamp or date.
    #[serde(alias = "TIME")]
    Time,
}

/// `dimensions:` entry (dbt's `dimension_schema`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DimensionDef {
    /// Dimension name.
    pub name: String,
    /// Categorical or time.
    #[serde(rename = "type")]
    pub kind: DimensionType,
    /// Column or SQL expression; defaults to the name.
    #[serde(default, deserialize_with = "sql_expr")]
    pub expr: Option<String>,
    /// Human label.
    #[serde(default)]
    pub label: Option<String>,
    /// Description.
    #[serde(default, deserialize_with = "null_default")]
    pub description: String,
    /// A partition column hint for the warehouse; read and not needed.
    #[serde(default, deserialize_with = "null_default")]
    pub is_partition: bool,
    /// `type_params.time_granularity` for time dimensions.
    #[serde(default)]
    pub type_params: Option<DimensionTypeParams>,
    /// `config.meta` (steward reads `synonyms`).
    #[serde(default)]
    pub config: Option<Config>,
    /// Manifest only; not used.
    #[serde(default)]
    pub metadata: Option<IgnoredAny>,
}

impl DimensionDef {
    /// The SQL expression of the dimension.
    pub fn expr(&self) -> &str {
        self.expr.as_deref().unwrap_or(&self.name)
    }

    /// The finest grain of a time dimension (`day` when not given).
    pub fn granularity(&self) -> Grain {
        self.type_params
            .as_ref()
            .and_then(|t| t.time_granularity)
            .unwrap_or(Grain::Day)
    }

    /// Whether `config.meta.state` marks the values as states (see [`Meta::state`]).
    pub fn is_state(&self) -> bool {
        self.config.as_ref().is_some_and(|c| c.meta.state)
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

/// `type_params` of a dimension (dbt's `dimension_type_params_schema`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DimensionTypeParams {
    /// Finest grain of a time dimension.
    #[serde(default)]
    pub time_granularity: Option<Grain>,
    /// Slowly changing dimension validity (`is_start`/`is_end`): not supported.
    #[serde(default)]
    pub validity_params: Option<IgnoredAny>,
}

/// Measure aggregation (`agg:`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Agg {
    /// `SUM(expr)`.
    #[serde(alias = "SUM")]
    Sum,
    /// `COUNT(expr)`.
    #[serde(alias = "COUNT")]
    Count,
    /// `COUNT(DISTINCT expr)`.
    #[serde(alias = "COUNT_DISTINCT")]
    CountDistinct,
    /// `AVG(expr)`.
    #[serde(alias = "AVERAGE")]
    Average,
    /// `MIN(expr)`.
    #[serde(alias = "MIN")]
    Min,
    /// `MAX(expr)`.
    #[serde(alias = "MAX")]
    Max,
    /// `SUM(CASE WHEN expr THEN 1 ELSE 0 END)`.
    #[serde(alias = "SUM_BOOLEAN")]
    SumBoolean,
    /// The 50th percentile (continuous).
    #[serde(alias = "MEDIAN")]
    Median,
    /// The `agg_params.percentile` percentile: continuous, discrete or
    /// approximate as `agg_params` says.
    #[serde(alias = "PERCENTILE")]
    Percentile,
}

impl Agg {
    /// Whether values over sub-periods add up to the value over the whole
    /// period (so a range total is a sum, not a mean of daily values).
    pub fn is_additive(self) -> bool {
        matches!(self, Agg::Sum | Agg::Count | Agg::SumBoolean)
    }
}

/// `agg_params:` of a percentile measure (dbt's `aggregation_type_params_schema`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AggParams {
    /// The percentile, in `[0, 1]`.
    #[serde(default)]
    pub percentile: Option<f64>,
    /// `PERCENTILE_DISC`: a value of the input, not an interpolation.
    #[serde(default, deserialize_with = "null_default")]
    pub use_discrete_percentile: bool,
    /// An approximate percentile, where the warehouse has one.
    #[serde(default, deserialize_with = "null_default")]
    pub use_approximate_percentile: bool,
}

/// `non_additive_dimension:` of a semi-additive measure (balances, MRR).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NonAdditiveDimension {
    /// A time dimension of the same model.
    pub name: String,
    /// `min` (first snapshot of the period) or `max` (last); MetricFlow's
    /// default is `min`.
    #[serde(default)]
    pub window_choice: WindowChoice,
    /// Entities to pick the snapshot per: not supported.
    #[serde(default, deserialize_with = "null_default")]
    pub window_groupings: Vec<String>,
}

/// Which snapshot of a period a semi-additive measure reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum WindowChoice {
    /// The first snapshot in the period.
    #[default]
    #[serde(alias = "MIN")]
    Min,
    /// The last snapshot in the period.
    #[serde(alias = "MAX")]
    Max,
}

/// `measures:` entry (dbt's `measure_schema`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MeasureDef {
    /// Measure name.
    pub name: String,
    /// Description.
    #[serde(default, deserialize_with = "null_default")]
    pub description: String,
    /// Human label.
    #[serde(default)]
    pub label: Option<String>,
    /// Aggregation.
    pub agg: Agg,
    /// Parameters of a percentile aggregation.
    #[serde(default)]
    pub agg_params: Option<AggParams>,
    /// Column or SQL expression (`1` counts rows); defaults to the name.
    #[serde(default, deserialize_with = "sql_expr")]
    pub expr: Option<String>,
    /// Time dimension to aggregate over (else the model default).
    #[serde(default)]
    pub agg_time_dimension: Option<String>,
    /// Semi-additive behaviour.
    #[serde(default)]
    pub non_additive_dimension: Option<NonAdditiveDimension>,
    /// Also define a simple metric of the same name.
    #[serde(default, deserialize_with = "null_default")]
    pub create_metric: bool,
    /// Label of that metric.
    #[serde(default)]
    pub create_metric_display_name: Option<String>,
    /// `config.meta`.
    #[serde(default)]
    pub config: Option<Config>,
    /// Manifest only; not used.
    #[serde(default)]
    pub metadata: Option<IgnoredAny>,
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
    #[serde(alias = "SIMPLE")]
    Simple,
    /// Numerator metric divided by denominator metric.
    #[serde(alias = "RATIO")]
    Ratio,
    /// An expression over other metrics.
    #[serde(alias = "DERIVED")]
    Derived,
    /// A measure over a trailing window (or grain-to-date).
    #[serde(alias = "CUMULATIVE")]
    Cumulative,
    /// Entities that did a base event and then a conversion event.
    #[serde(alias = "CONVERSION")]
    Conversion,
}

/// A filter in dbt's forms: one Jinja SQL template, a list of them (all must
/// hold), or the manifest's `{where_filters: [{where_sql_template}]}`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Filter(pub Vec<String>);

impl<'de> Deserialize<'de> for Filter {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Filter;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a filter: a string, a list of strings or {where_filters: [...]}")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Filter, E> {
                Ok(Filter(vec![v.to_owned()]))
            }
            fn visit_unit<E: de::Error>(self) -> Result<Filter, E> {
                Ok(Filter::default())
            }
            fn visit_none<E: de::Error>(self) -> Result<Filter, E> {
                Ok(Filter::default())
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Filter, A::Error> {
                let mut out = Vec::new();
                while let Some(s) = seq.next_element::<String>()? {
                    out.push(s);
                }
                Ok(Filter(out))
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Filter, A::Error> {
                #[derive(Deserialize)]
                #[serde(deny_unknown_fields)]
                struct Intersection {
                    where_filters: Vec<Template>,
                }
                #[derive(Deserialize)]
                #[serde(deny_unknown_fields)]
                struct Template {
                    where_sql_template: String,
                }
                let i = Intersection::deserialize(de::value::MapAccessDeserializer::new(map))?;
                Ok(Filter(
                    i.where_filters
                        .into_iter()
                        .map(|t| t.where_sql_template)
                        .collect(),
                ))
            }
        }
        d.deserialize_any(V)
    }
}

/// A reference to a measure or metric: a bare name, or dbt's
/// `metric_input_measure_schema` / `metric_input_schema` object.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NameRef {
    /// Referenced name.
    pub name: String,
    /// Extra filter (MetricFlow Jinja `{{ Dimension('x') }}` syntax).
    #[serde(default, deserialize_with = "null_default")]
    pub filter: Filter,
    /// Name used in a derived metric's `expr`.
    #[serde(default)]
    pub alias: Option<String>,
    /// Measure inputs: one row per time-spine period, even without data.
    #[serde(default, deserialize_with = "null_default")]
    pub join_to_timespine: bool,
    /// Measure inputs: the value where there is none.
    #[serde(default)]
    pub fill_nulls_with: Option<i64>,
    /// Derived inputs: the input's value this long before (`1 week`).
    #[serde(default)]
    pub offset_window: Option<Window>,
    /// Derived inputs: the input's value at the start of this grain.
    #[serde(default)]
    pub offset_to_grain: Option<String>,
}

/// Accepts `name` or `{name, …}` for a [`NameRef`].
fn name_ref<'de, D: Deserializer<'de>>(d: D) -> Result<Option<NameRef>, D::Error> {
    Ok(Option::<NameRefForm>::deserialize(d)?.map(|f| f.0))
}

/// Accepts a list of `name` or `{name, …}` for derived-metric inputs.
fn name_refs<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<NameRef>, D::Error> {
    Ok(Option::<Vec<NameRefForm>>::deserialize(d)?
        .unwrap_or_default()
        .into_iter()
        .map(|f| f.0)
        .collect())
}

struct NameRefForm(NameRef);

impl<'de> Deserialize<'de> for NameRefForm {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = NameRefForm;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a name or {name, filter, alias, ...}")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<NameRefForm, E> {
                Ok(NameRefForm(NameRef {
                    name: v.to_owned(),
                    ..NameRef::default()
                }))
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<NameRefForm, A::Error> {
                NameRef::deserialize(de::value::MapAccessDeserializer::new(map)).map(NameRefForm)
            }
        }
        d.deserialize_any(V)
    }
}

impl NameRef {
    /// Referenced name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Alias, else name.
    pub fn alias(&self) -> &str {
        self.alias.as_deref().unwrap_or(&self.name)
    }
}

/// A window such as `7 days`: the YAML string or the manifest's
/// `{count, granularity}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    /// How many grains.
    pub count: i64,
    /// Which grain.
    pub grain: Grain,
}

impl Window {
    /// Parses `N unit` (`7 days`, `2 weeks`, `1 month`); units as [`Grain::parse`]
    /// with an optional plural `s`.
    pub fn parse(s: &str) -> Option<Window> {
        let mut parts = s.split_whitespace();
        let count: i64 = parts.next()?.parse().ok()?;
        let unit = parts.next()?.to_ascii_lowercase();
        if parts.next().is_some() || count <= 0 {
            return None;
        }
        let grain = Grain::parse(&unit).or_else(|| Grain::parse(unit.strip_suffix('s')?))?;
        Some(Window { count, grain })
    }
}

impl<'de> Deserialize<'de> for Window {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Form {
            Text(String),
            Parts { count: i64, granularity: String },
        }
        let (count, granularity) = match Form::deserialize(d)? {
            Form::Text(s) => {
                return Window::parse(&s).ok_or_else(|| {
                    de::Error::custom(format!(
                        "window {s:?} is not `N unit` (e.g. `7 days`, `1 month`)"
                    ))
                });
            }
            Form::Parts { count, granularity } => (count, granularity),
        };
        let grain = Grain::parse(&granularity)
            .ok_or_else(|| de::Error::custom(format!("unknown granularity {granularity:?}")))?;
        if count <= 0 {
            return Err(de::Error::custom("a window's count must be positive"));
        }
        Ok(Window { count, grain })
    }
}

/// How a cumulative metric reports a period longer than a day
/// (`cumulative_type_params.period_agg`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum PeriodAgg {
    /// The value on the period's first day (MetricFlow's default).
    #[default]
    #[serde(alias = "FIRST")]
    First,
    /// The value on the period's last day.
    #[serde(alias = "LAST")]
    Last,
    /// The mean of the daily values.
    #[serde(alias = "AVERAGE")]
    Average,
}

/// `cumulative_type_params:` (dbt's `cumulative_type_params_schema`).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CumulativeParams {
    /// Trailing window.
    #[serde(default)]
    pub window: Option<Window>,
    /// Accumulate from the start of this grain instead.
    #[serde(default)]
    pub grain_to_date: Option<Grain>,
    /// How a period longer than a day is reported.
    #[serde(default)]
    pub period_agg: Option<PeriodAgg>,
    /// The newer form's input metric: not supported (use `type_params.measure`).
    #[serde(default)]
    pub metric: Option<String>,
}

/// `conversion_type_params:` (dbt's `conversion_type_params_schema`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConversionParams {
    /// The entity that converts (a user, a session).
    pub entity: String,
    /// The base event's measure.
    #[serde(default, deserialize_with = "name_ref")]
    pub base_measure: Option<NameRef>,
    /// The conversion event's measure.
    #[serde(default, deserialize_with = "name_ref")]
    pub conversion_measure: Option<NameRef>,
    /// The newer form: a base metric (not supported; use `base_measure`).
    #[serde(default)]
    pub base_metric: Option<String>,
    /// The newer form: a conversion metric (not supported).
    #[serde(default)]
    pub conversion_metric: Option<String>,
    /// `conversion_rate` (default) or `conversions`.
    #[serde(default)]
    pub calculation: Option<String>,
    /// How long after the base event a conversion counts; unbounded if absent.
    #[serde(default)]
    pub window: Option<Window>,
    /// Properties that must be equal on both events.
    #[serde(default, deserialize_with = "null_default")]
    pub constant_properties: Vec<ConstantProperty>,
}

/// One `constant_properties:` entry.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConstantProperty {
    /// Dimension or entity on the base side.
    pub base_property: String,
    /// Dimension or entity on the conversion side.
    pub conversion_property: String,
}

/// `type_params:` of a metric (dbt's `metric_type_params`).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetricTypeParams {
    /// Simple and cumulative metrics: the measure.
    #[serde(default, deserialize_with = "name_ref")]
    pub measure: Option<NameRef>,
    /// Ratio: numerator metric.
    #[serde(default, deserialize_with = "name_ref")]
    pub numerator: Option<NameRef>,
    /// Ratio: denominator metric.
    #[serde(default, deserialize_with = "name_ref")]
    pub denominator: Option<NameRef>,
    /// Derived: SQL expression over input metric names or aliases.
    #[serde(default, deserialize_with = "sql_expr")]
    pub expr: Option<String>,
    /// Derived: input metrics.
    #[serde(default, deserialize_with = "name_refs")]
    pub metrics: Vec<NameRef>,
    /// Cumulative (older form): trailing window such as `7 days`.
    #[serde(default)]
    pub window: Option<Window>,
    /// Cumulative (older form): accumulate from the start of this grain.
    #[serde(default)]
    pub grain_to_date: Option<Grain>,
    /// Cumulative: window, grain-to-date and period aggregation.
    #[serde(default)]
    pub cumulative_type_params: Option<CumulativeParams>,
    /// Conversion metrics.
    #[serde(default)]
    pub conversion_type_params: Option<ConversionParams>,
    /// Simple metrics (shorthand): the value where there is none.
    #[serde(default)]
    pub fill_nulls_with: Option<i64>,
    /// Simple metrics (shorthand): one row per time-spine period.
    #[serde(default)]
    pub join_to_timespine: Option<bool>,
    /// Hidden from users: not supported.
    #[serde(default)]
    pub is_private: Option<bool>,
    /// The newer form where a simple metric carries its own `agg`: not supported.
    #[serde(default)]
    pub metric_aggregation_params: Option<IgnoredAny>,
    /// Manifest only: the measures dbt resolved; recomputed by steward.
    #[serde(default)]
    pub input_measures: Option<IgnoredAny>,
}

impl MetricTypeParams {
    /// The trailing window of a cumulative metric, in either form.
    pub fn cumulative_window(&self) -> Option<Window> {
        self.cumulative_type_params
            .as_ref()
            .and_then(|c| c.window)
            .or(self.window)
    }

    /// The grain-to-date of a cumulative metric, in either form.
    pub fn cumulative_grain_to_date(&self) -> Option<Grain> {
        self.cumulative_type_params
            .as_ref()
            .and_then(|c| c.grain_to_date)
            .or(self.grain_to_date)
    }

    /// How a cumulative metric reports periods (MetricFlow's default `first`).
    pub fn period_agg(&self) -> PeriodAgg {
        self.cumulative_type_params
            .as_ref()
            .and_then(|c| c.period_agg)
            .unwrap_or_default()
    }
}

/// `config:` block; steward reads `meta`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Free-form metadata.
    #[serde(default, deserialize_with = "null_default")]
    pub meta: Meta,
}

/// The `config.meta` keys steward understands; other keys are the
/// project's own and are kept out of steward's way.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct Meta {
    /// Words people use for the metric or dimension.
    #[serde(default, deserialize_with = "null_default")]
    pub synonyms: Vec<String>,
    /// `number`, `percent`, `currency` or `hours`.
    #[serde(default)]
    pub format: Option<ValueFormat>,
    /// Window for questions that name no time range.
    #[serde(default)]
    pub default_window_days: Option<u32>,
    /// On a categorical dimension: its values are states a row moves
    /// through (a ticket `open`, then `resolved`). A question that names
    /// one of them and no time range asks about now, over all rows.
    #[serde(default)]
    pub state: bool,
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

/// `metrics:` entry (dbt's `metric_schema`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetricDef {
    /// Metric name.
    pub name: String,
    /// Human label.
    #[serde(default)]
    pub label: Option<String>,
    /// Definition in words.
    #[serde(default, deserialize_with = "null_default")]
    pub description: String,
    /// Type.
    #[serde(rename = "type")]
    pub kind: MetricType,
    /// Parameters of the type.
    #[serde(default)]
    pub type_params: MetricTypeParams,
    /// Metric-level filter (MetricFlow Jinja `{{ Dimension('x') }}` syntax).
    #[serde(default, deserialize_with = "null_default")]
    pub filter: Filter,
    /// Grain the metric is defined at; over longer ranges non-additive metrics
    /// report the mean of the values at this grain.
    #[serde(default)]
    pub time_granularity: Option<Grain>,
    /// `config.meta`.
    #[serde(default)]
    pub config: Option<Config>,
    /// Manifest only; not used.
    #[serde(default)]
    pub metadata: Option<IgnoredAny>,
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
                .map(|r| r.name().to_ascii_lowercase())
                .collect(),
            _ => Vec::new(),
        }
    }
}

/// `saved_queries:` entry (dbt's `saved_query_schema`): a named metric query
/// steward offers as a suggestion and answers as a verified question.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SavedQueryDef {
    /// Name.
    pub name: String,
    /// What it answers.
    #[serde(default, deserialize_with = "null_default")]
    pub description: String,
    /// Human label: the suggested question's text when present.
    #[serde(default)]
    pub label: Option<String>,
    /// The query.
    pub query_params: SavedQueryParams,
    /// Tables dbt writes the result to; steward reads the metrics instead.
    #[serde(default, rename = "exports")]
    _exports: Option<IgnoredAny>,
    /// Tags, informational.
    #[serde(default, rename = "tags")]
    _tags: Option<IgnoredAny>,
    /// `config` (dbt ≥ 1.8 allows `cache`, `meta`…), informational.
    #[serde(default, rename = "config")]
    _config: Option<IgnoredAny>,
    /// Manifest only; not used.
    #[serde(default, rename = "metadata")]
    _metadata: Option<IgnoredAny>,
}

/// `query_params:` of a saved query.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SavedQueryParams {
    /// Metrics, by name.
    pub metrics: Vec<String>,
    /// `TimeDimension('metric_time', 'month')`, `Dimension('user__platform')`
    /// or the plain `metric_time__month` / `user__platform` names.
    #[serde(default, deserialize_with = "null_default")]
    pub group_by: Vec<String>,
    /// Filters in Jinja form.
    #[serde(default, deserialize_with = "null_default")]
    pub r#where: Filter,
    /// Ordering, informational.
    #[serde(default, rename = "order_by")]
    _order_by: Option<IgnoredAny>,
    /// Row limit.
    #[serde(default)]
    pub limit: Option<u64>,
}

/// Deserializes `null` as the type's default: `semantic_manifest.json`
/// writes `null` for every absent field.
pub(super) fn null_default<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

/// An `expr:` as SQL text: dbt allows strings, booleans and integers
/// (`expr: 1` counts rows).
fn sql_expr<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Form {
        Text(String),
        Bool(bool),
        Int(i64),
    }
    Ok(match Option::<Form>::deserialize(d)? {
        None => None,
        Some(Form::Text(s)) => Some(s),
        Some(Form::Bool(b)) => Some(if b { "TRUE" } else { "FALSE" }.to_owned()),
        Some(Form::Int(i)) => Some(i.to_string()),
    })
}
