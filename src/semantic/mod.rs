//! The semantic layer: semantic models, measures, dimensions, metrics and
//! saved queries, as a dbt project writes them.
//!
//! Definitions are read in the dbt Semantic Layer's own forms
//! (<https://docs.getdbt.com/docs/build/semantic-models>,
//! <https://docs.getdbt.com/docs/build/metrics-overview>; the JSON Schema of
//! dbt-semantic-interfaces in `shared/data/dbt_semantic_interfaces`): YAML
//! files as written (several documents each, `model: ref()` or
//! `node_relation`) or `semantic_manifest.json`. Metrics of type `simple`,
//! `ratio`, `derived` (with offsets), `cumulative` and `conversion`; every
//! aggregation including percentiles; grains from a second to a year. A
//! construct steward does not compute is refused at load with its file, line
//! and name. steward reads `config.meta` for `synonyms`, `format` and
//! `default_window_days`.
//!
//! [`SemanticLayer::compile`] turns a [`MetricQuery`] into SQL; the SQL is not
//! trusted because of where it came from: it goes through the guard like any
//! other statement. `tests/api/metricflow.rs` compares the results with
//! MetricFlow's on PostgreSQL.

mod compile;
mod conversion;
mod expr;
mod load;
mod model;
mod periods;
mod saved;
mod timeline;
mod validate;

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;

use chrono::NaiveDate;
use serde::Serialize;

pub use compile::CompiledQuery;
pub use model::{
    Agg, AggParams, DimensionDef, DimensionType, EntityDef, EntityType, Filter, MeasureDef,
    MetricDef, MetricType, PeriodAgg, SemanticModelDef, ValueFormat, Window,
};
pub use periods::period_start;
pub use saved::SavedPlan;

/// Time grain of a metric query's `period` column, finest first (dbt's
/// `TimeGranularity`, without the sub-second grains).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Grain {
    /// A second.
    Second,
    /// A minute.
    Minute,
    /// An hour.
    Hour,
    /// Calendar day.
    Day,
    /// ISO week, starting Monday.
    Week,
    /// Calendar month.
    Month,
    /// Calendar quarter.
    Quarter,
    /// Calendar year.
    Year,
}

impl Grain {
    /// Parses `second`, `minute`, `hour`, `day`, `week`, `month`, `quarter`,
    /// `year` (case-insensitive; `hourly`, `daily`, `weekly`… too).
    ///
    /// ```
    /// use steward::semantic::Grain;
    /// assert_eq!(Grain::parse("Week"), Some(Grain::Week));
    /// assert_eq!(Grain::parse("HOUR"), Some(Grain::Hour));
    /// assert_eq!(Grain::parse("fortnight"), None);
    /// ```
    pub fn parse(s: &str) -> Option<Grain> {
        match s.to_ascii_lowercase().as_str() {
            "second" => Some(Grain::Second),
            "minute" => Some(Grain::Minute),
            "hour" | "hourly" => Some(Grain::Hour),
            "day" | "daily" => Some(Grain::Day),
            "week" | "weekly" => Some(Grain::Week),
            "month" | "monthly" => Some(Grain::Month),
            "quarter" | "quarterly" => Some(Grain::Quarter),
            "year" | "yearly" => Some(Grain::Year),
            _ => None,
        }
    }

    /// The grain's name as used in the API.
    pub fn as_str(self) -> &'static str {
        match self {
            Grain::Second => "second",
            Grain::Minute => "minute",
            Grain::Hour => "hour",
            Grain::Day => "day",
            Grain::Week => "week",
            Grain::Month => "month",
            Grain::Quarter => "quarter",
            Grain::Year => "year",
        }
    }

    /// Whether periods of this grain are shorter than a day (their `period`
    /// is a timestamp, not a date).
    pub fn is_sub_daily(self) -> bool {
        self < Grain::Day
    }
}

impl<'de> serde::Deserialize<'de> for Grain {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Grain::parse(&s).ok_or_else(|| {
            let reason = match s.to_ascii_lowercase().as_str() {
                "nanosecond" | "microsecond" | "millisecond" => {
                    "sub-second granularities are not supported"
                }
                _ => {
                    "not a standard granularity (second … year); custom granularities from a time spine are not supported"
                }
            };
            serde::de::Error::custom(format!("granularity {s:?}: {reason}"))
        })
    }
}

/// A half-open date range `[start, end)`: `end` is the first day not included.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct TimeRange {
    /// First day included.
    pub start: NaiveDate,
    /// First day not included.
    pub end: NaiveDate,
}

impl TimeRange {
    /// A range; `None` if `end <= start`.
    pub fn new(start: NaiveDate, end: NaiveDate) -> Option<TimeRange> {
        (end > start).then_some(TimeRange { start, end })
    }

    /// Number of days in the range.
    pub fn days(&self) -> i64 {
        (self.end - self.start).num_days()
    }

    /// The range of equal length immediately before this one.
    pub fn previous(&self) -> TimeRange {
        let len = self.end - self.start;
        TimeRange {
            start: self.start - len,
            end: self.start,
        }
    }

    /// Last day included.
    pub fn last_day(&self) -> NaiveDate {
        self.end.pred_opt().unwrap_or(self.end)
    }

    /// Every day up to and including `last`: the range of a question about
    /// the present state ("tickets still open"), which counts rows whatever
    /// their date. Starts at [`TimeRange::EARLIEST`].
    pub fn through(last: NaiveDate) -> TimeRange {
        TimeRange {
            start: TimeRange::EARLIEST,
            end: last.succ_opt().unwrap_or(last),
        }
    }

    /// The first day of an "all time" range (1900-01-01).
    pub const EARLIEST: NaiveDate = NaiveDate::from_ymd_opt(1900, 1, 1).expect("a valid date");

    /// Whether the range starts at [`TimeRange::EARLIEST`] (all time).
    pub fn is_all_time(&self) -> bool {
        self.start == TimeRange::EARLIEST
    }
}

impl fmt::Display for TimeRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_all_time() {
            write!(f, "all time through {}", self.last_day())
        } else if self.days() == 1 {
            write!(f, "{}", self.start.format("%a %Y-%m-%d"))
        } else {
            write!(f, "{} to {}", self.start, self.last_day())
        }
    }
}

/// A filter on a categorical dimension: `dimension IN (values)`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct DimensionFilter {
    /// Dimension name (`platform` or `user__platform`).
    pub dimension: String,
    /// Accepted values (compared as text).
    pub values: Vec<String>,
}

/// A request to the Metrics API.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MetricQuery {
    /// Metric name.
    pub metric: String,
    /// Time range on the metric's aggregation time dimension.
    pub range: TimeRange,
    /// `period` grain; `None` aggregates over the whole range.
    pub grain: Option<Grain>,
    /// A custom granularity of the project's time spine instead of `grain`
    /// (`fiscal_quarter`): `period` is the spine's column for each day.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub custom_grain: Option<String>,
    /// Dimensions to group by, in output order.
    pub group_by: Vec<String>,
    /// Dimension filters, all of which must hold.
    pub filters: Vec<DimensionFilter>,
}

/// One base measure's model, table, entities and times
/// ([`SemanticLayer::measure_origins`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MeasureOrigin {
    /// Its semantic model's name.
    pub model: String,
    /// Names of the entities its model declares (its own and foreign keys).
    pub entities: Vec<String>,
    /// The table the measure is computed from (possibly schema-qualified).
    pub table: String,
    /// `(name, column or expression)` of its model's time dimensions.
    pub time_dimensions: Vec<(String, String)>,
    /// The time dimension it is counted by.
    pub agg_time_dimension: String,
}

/// A semantic-layer error: the query or the definitions cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SemanticError {
    /// No metric of that name.
    #[error("there is no metric named {0:?}")]
    UnknownMetric(String),
    /// The dimension is not reachable from the metric's measures.
    #[error("metric {metric} has no dimension {dimension:?}; available: {available}")]
    UnknownDimension {
        /// The metric.
        metric: String,
        /// The requested dimension.
        dimension: String,
        /// Comma-separated dimensions the metric does have.
        available: String,
    },
    /// The definitions are inconsistent (reported at load time).
    #[error("{0}")]
    Invalid(String),
}

/// Where the semantic layer is read from (`semantic.*` settings).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SemanticSource {
    /// Every `*.yml`/`*.yaml` file of one directory (the policy directory's
    /// `semantic/`).
    Dir(PathBuf),
    /// A dbt project: every YAML file under its `model-paths`
    /// (`semantic.dbt_project`).
    DbtProject(PathBuf),
    /// `target/semantic_manifest.json` written by `dbt parse`
    /// (`semantic.manifest`).
    Manifest(PathBuf),
}

/// A saved query (dbt's `saved_queries:`), validated: a metric query steward
/// offers as a suggestion and answers as a verified question.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SavedQuery {
    /// Name.
    pub name: String,
    /// The question it answers: its label, else its description, else its name.
    pub question: String,
    /// Metrics, in order.
    pub metrics: Vec<String>,
    /// The `metric_time` grain it groups by, if any.
    pub grain: Option<Grain>,
    /// Dimensions it groups by (`entity__dimension` names).
    pub group_by: Vec<String>,
    /// Jinja filters, all of which hold.
    pub filters: Vec<String>,
    /// Row limit.
    pub limit: Option<u64>,
}

/// A time spine with custom granularities (dbt's `time_spine:` of a model):
/// a table with one row per day naming each day's custom periods.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TimeSpine {
    /// The table (allow-listed in `schema.yaml`).
    pub table: String,
    /// Its day column.
    pub day_column: String,
    /// Custom granularities.
    pub custom: Vec<CustomGrain>,
}

/// A custom granularity: `name` (as queries say it) and the spine column
/// holding each day's period (its first day, or any label).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CustomGrain {
    /// Lower-case name (`fiscal_quarter`).
    pub name: String,
    /// The spine column.
    pub column: String,
}

/// All loaded semantic models, metrics and saved queries.
#[derive(Debug, Clone)]
pub struct SemanticLayer {
    models: Vec<SemanticModelDef>,
    metrics: BTreeMap<String, MetricDef>,
    saved_queries: Vec<SavedQuery>,
    time_spines: Vec<TimeSpine>,
}

/// A dimension reachable from a measure: where it lives and how to reach it.
#[derive(Debug, Clone)]
pub(crate) struct ReachableDimension<'a> {
    /// Index of the model holding the dimension.
    pub model: usize,
    /// The join path from the measure's model: `(entity, model index)` hops.
    pub path: Vec<(&'a str, usize)>,
    /// The dimension definition.
    pub dim: &'a DimensionDef,
}

impl SemanticLayer {
    /// Keys between the models' tables: each foreign entity points at the
    /// model whose primary (or unique) entity has the same name, when both
    /// entities are plain columns. Row filters follow them
    /// ([`crate::policy::Policy::add_foreign_keys`]).
    pub fn foreign_keys(&self) -> Vec<crate::policy::ForeignKey> {
        use model::EntityType;
        let plain = |e: &str| crate::policy::is_identifier(e);
        let mut keys = Vec::new();
        for m in &self.models {
            for fk in m.entities.iter().filter(|e| e.kind == EntityType::Foreign) {
                for target in &self.models {
                    let Some(pk) = target.entities.iter().find(|e| {
                        e.name == fk.name
                            && matches!(e.kind, EntityType::Primary | EntityType::Unique)
                    }) else {
                        continue;
                    };
                    if plain(fk.expr()) && plain(pk.expr()) && target.table() != m.table() {
                        keys.push(crate::policy::ForeignKey {
                            table: m.table().to_ascii_lowercase(),
                            column: fk.expr().to_ascii_lowercase(),
                            ref_table: target.table().to_ascii_lowercase(),
                            ref_column: pk.expr().to_ascii_lowercase(),
                        });
                    }
                }
            }
        }
        keys
    }
}

impl SemanticLayer {
    /// Metrics by name, sorted.
    pub fn metrics(&self) -> impl Iterator<Item = &MetricDef> {
        self.metrics.values()
    }

    /// One metric by name (case-insensitive).
    pub fn metric(&self, name: &str) -> Option<&MetricDef> {
        self.metrics.get(&name.to_ascii_lowercase())
    }

    /// The custom granularity `name` (case-insensitive) and its time spine.
    pub fn custom_grain(&self, name: &str) -> Option<(&TimeSpine, &CustomGrain)> {
        let lower = name.to_ascii_lowercase();
        self.time_spines
            .iter()
            .find_map(|s| s.custom.iter().find(|c| c.name == lower).map(|c| (s, c)))
    }

    /// Every custom granularity's name.
    pub fn custom_grain_names(&self) -> Vec<String> {
        self.time_spines
            .iter()
            .flat_map(|s| s.custom.iter().map(|c| c.name.clone()))
            .collect()
    }

    /// Saved queries in load order.
    pub fn saved_queries(&self) -> &[SavedQuery] {
        &self.saved_queries
    }

    /// Semantic models in load order.
    pub fn models(&self) -> &[SemanticModelDef] {
        &self.models
    }

    /// The measures a metric is ultimately computed from (through ratio,
    /// derived and cumulative inputs), as `(model index, measure)`.
    pub fn base_measures(&self, metric: &MetricDef) -> Vec<(usize, &MeasureDef)> {
        let mut out = Vec::new();
        for input in metric.input_metric_names() {
            if let Some(m) = self.metric(&input) {
                out.extend(self.base_measures(m));
            }
        }
        if let Some(measure) = metric.measure_name()
            && let Some(found) = self.find_measure(measure)
        {
            out.push(found);
        }
        if let Some(c) = &metric.type_params.conversion_type_params {
            for r in [&c.base_measure, &c.conversion_measure]
                .into_iter()
                .flatten()
            {
                if let Some(found) = self.find_measure(r.name()) {
                    out.push(found);
                }
            }
        }
        out
    }

    /// Whether the metric is a snapshot: every base measure is
    /// semi-additive over time (`non_additive_dimension`, as balances and
    /// MRR), so its value for one day is the state on that day.
    pub fn is_snapshot(&self, metric: &MetricDef) -> bool {
        let bases = self.base_measures(metric);
        !bases.is_empty()
            && bases
                .iter()
                .all(|(_, m)| m.non_additive_dimension.is_some())
    }

    /// Whether every base measure of a metric adds up over time (sums and
    /// counts), so a range total is a sum rather than a mean of daily values.
    pub fn base_measures_additive(&self, metric: &MetricDef) -> bool {
        self.base_measures(metric)
            .iter()
            .all(|(_, m)| m.agg.is_additive())
    }

    pub(crate) fn find_measure(&self, name: &str) -> Option<(usize, &MeasureDef)> {
        self.models
            .iter()
            .enumerate()
            .find_map(|(i, m)| m.measures.iter().find(|x| x.name == name).map(|x| (i, x)))
    }

    /// The aggregation time dimension of a measure of model `model`: its own
    /// `agg_time_dimension`, else the model's default (validated at load).
    pub(crate) fn agg_time_dimension_of<'a>(
        &'a self,
        model: usize,
        measure: &'a MeasureDef,
    ) -> &'a str {
        measure
            .agg_time_dimension
            .as_deref()
            .or(self.models[model].agg_time_dimension())
            .unwrap_or_default()
    }

    /// Where a metric's base measures live and what times they are counted
    /// by: each measure's semantic model, table (as
    /// [`SemanticModelDef::table`] gives it) and entities, the names of its
    /// model's time dimensions, and its aggregation time dimension. For
    /// reading a question's words against the metric: which time a period
    /// is about ("tickets *resolved* last week" against a metric counted by
    /// `opened_at`), and which words name what is counted ("*support*
    /// tickets").
    pub fn measure_origins(&self, metric: &MetricDef) -> Vec<MeasureOrigin> {
        self.base_measures(metric)
            .into_iter()
            .map(|(model, measure)| {
                let def = &self.models[model];
                let agg = self.agg_time_dimension_of(model, measure).to_owned();
                MeasureOrigin {
                    model: def.name.clone(),
                    entities: def.entities.iter().map(|e| e.name.clone()).collect(),
                    table: def.table(),
                    time_dimensions: def
                        .dimensions
                        .iter()
                        .filter(|d| d.kind == DimensionType::Time)
                        .map(|d| {
                            (
                                d.name.clone(),
                                d.expr.clone().unwrap_or_else(|| d.name.clone()),
                            )
                        })
                        .collect(),
                    agg_time_dimension: agg,
                }
            })
            .collect()
    }

    /// The grains a metric can be queried at: from the finest granularity of
    /// its base measures' time dimensions (the coarsest of those) up to a year.
    pub fn grains_of(&self, metric: &MetricDef) -> Vec<Grain> {
        let finest = self.time_granularity(metric);
        [
            Grain::Second,
            Grain::Minute,
            Grain::Hour,
            Grain::Day,
            Grain::Week,
            Grain::Month,
            Grain::Quarter,
            Grain::Year,
        ]
        .into_iter()
        .filter(|g| *g >= finest)
        .collect()
    }

    /// The finest grain every base measure of a metric is recorded at: the
    /// coarsest granularity among their aggregation time dimensions.
    pub fn time_granularity(&self, metric: &MetricDef) -> Grain {
        self.base_measures(metric)
            .iter()
            .filter_map(|(model, measure)| {
                let name = self.agg_time_dimension_of(*model, measure);
                self.models[*model]
                    .dimensions
                    .iter()
                    .find(|d| d.name == name)
                    .map(DimensionDef::granularity)
            })
            .max()
            .unwrap_or(Grain::Day)
    }

    /// Categorical dimensions available to every base measure of a metric,
    /// by name (the names a query's `group_by` and filters may use).
    pub fn dimensions_of(&self, metric: &MetricDef) -> Vec<&DimensionDef> {
        let bases = self.base_measures(metric);
        let Some(((first, _), rest)) = bases.split_first() else {
            return Vec::new();
        };
        self.reachable(*first)
            .into_iter()
            .filter(|r| r.dim.kind == DimensionType::Categorical)
            .filter(|r| {
                rest.iter()
                    .all(|(m, _)| self.resolve(*m, &r.dim.name).is_some())
            })
            .map(|r| r.dim)
            .collect()
    }

    /// For each categorical dimension (first definition of each name), a
    /// statement listing its distinct non-null values, at most `limit + 1`
    /// of them: `(dimension name, SQL)`.
    pub fn dimension_value_queries(&self, limit: u64) -> Vec<(String, String)> {
        let mut out: Vec<(String, String)> = Vec::new();
        for m in &self.models {
            for d in m
                .dimensions
                .iter()
                .filter(|d| d.kind == DimensionType::Categorical)
            {
                if out.iter().any(|(n, _)| *n == d.name) {
                    continue;
                }
                let e = d.expr();
                let sql = format!(
                    "SELECT DISTINCT {e} AS value FROM {} WHERE {e} IS NOT NULL ORDER BY 1 LIMIT {}",
                    m.table(),
                    limit + 1
                );
                out.push((d.name.clone(), sql));
            }
        }
        out
    }

    /// Every dimension reachable from model `from` by following entities from
    /// foreign (or primary) to primary keys, breadth first, at most two hops.
    pub(crate) fn reachable(&self, from: usize) -> Vec<ReachableDimension<'_>> {
        let mut out = Vec::new();
        let mut seen = vec![from];
        let mut frontier = vec![(from, Vec::new())];
        for _depth in 0..=2 {
            let mut next = Vec::new();
            for (model, path) in frontier {
                for dim in &self.models[model].dimensions {
                    if !out
                        .iter()
                        .any(|r: &ReachableDimension| r.dim.name == dim.name)
                    {
                        out.push(ReachableDimension {
                            model,
                            path: path.clone(),
                            dim,
                        });
                    }
                }
                for entity in &self.models[model].entities {
                    for (j, other) in self.models.iter().enumerate() {
                        let joins = other
                            .entities
                            .iter()
                            .any(|e| e.name == entity.name && e.kind.is_unique());
                        if joins && !seen.contains(&j) {
                            seen.push(j);
                            let mut p: Vec<(&str, usize)> = path.clone();
                            p.push((entity.name.as_str(), j));
                            next.push((j, p));
                        }
                    }
                }
            }
            frontier = next;
        }
        out
    }

    /// Resolves `name`, `entity__name` or MetricFlow's full path
    /// `entity__entity__name` to a dimension reachable from `from`. An
    /// entity prefix must be the join path's entities, or the last of them
    /// (an entity of the dimension's model), or — for the model's own
    /// dimensions — its primary entity.
    pub(crate) fn resolve(&self, from: usize, name: &str) -> Option<ReachableDimension<'_>> {
        let lower = name.to_ascii_lowercase();
        let parts: Vec<&str> = lower.split("__").collect();
        let (dim, entities) = parts.split_last()?;
        self.reachable(from).into_iter().find(|r| {
            let path: Vec<&str> = r.path.iter().map(|(e, _)| *e).collect();
            r.dim.name == *dim
                && match entities {
                    [] => true,
                    [e] => {
                        self.models[r.model].entities.iter().any(|x| x.name == *e)
                            || self.primary_entity(r.model) == Some(*e)
                    }
                    many => many == path.as_slice(),
                }
        })
    }

    /// The entity a model's rows are: its primary (else unique) entity, or
    /// `primary_entity:`.
    fn primary_entity(&self, model: usize) -> Option<&str> {
        self.row_key(model)
            .or(self.models[model].primary_entity.as_deref())
    }

    /// The entity column that identifies a model's rows: its primary, else
    /// unique, entity.
    pub(super) fn row_key(&self, model: usize) -> Option<&str> {
        let m = &self.models[model];
        m.entities
            .iter()
            .find(|e| e.kind == EntityType::Primary)
            .or_else(|| m.entities.iter().find(|e| e.kind == EntityType::Unique))
            .map(|e| e.name.as_str())
    }

    /// MetricFlow's name for a dimension of a metric: the entity path from
    /// the metric's (first) measure's model, then the dimension
    /// (`user__customer__region`); the model's primary entity for its own
    /// dimensions (`event__event_name`). `None` if it is not reachable or the
    /// model has no primary entity.
    pub fn qualified_dimension(&self, metric: &MetricDef, name: &str) -> Option<String> {
        let (model, _) = *self.base_measures(metric).first()?;
        let r = self.resolve(model, name)?;
        let mut parts: Vec<&str> = r.path.iter().map(|(e, _)| *e).collect();
        if parts.is_empty() {
            parts.push(self.primary_entity(model)?);
        }
        parts.push(&r.dim.name);
        Some(parts.join("__"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn demo() -> SemanticLayer {
        let dir = std::path::Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/policies"));
        let policy = crate::policy::Policy::load(dir).unwrap();
        SemanticLayer::load(&dir.join("semantic"), &policy.schema).unwrap()
    }

    #[test]
    fn demo_metrics_include_the_required_set() {
        let s = demo();
        for m in [
            "dau",
            "wau",
            "mau",
            "signups",
            "checkout_conversion_rate",
            "revenue",
            "mrr",
            "active_customers",
            "churned_customers",
            "churn_rate",
            "tickets_opened",
            "median_ticket_resolution_hours",
        ] {
            assert!(s.metric(m).is_some(), "missing metric {m}");
        }
    }

    #[test]
    fn dimensions_are_reachable_through_entities() {
        let s = demo();
        let names = |m: &str| -> Vec<String> {
            s.dimensions_of(s.metric(m).unwrap())
                .iter()
                .map(|d| d.name.clone())
                .collect()
        };
        let dau = names("dau");
        for d in ["platform", "country", "signup_channel", "region", "plan"] {
            assert!(dau.contains(&d.to_owned()), "dau lacks {d}: {dau:?}");
        }
        let revenue = names("revenue");
        assert!(
            revenue.contains(&"region".to_owned()) && !revenue.contains(&"platform".to_owned())
        );
    }

    #[test]
    fn ratio_dimensions_are_those_shared_by_both_sides() {
        let s = demo();
        let dims = s.dimensions_of(s.metric("churn_rate").unwrap());
        assert!(dims.iter().any(|d| d.name == "plan"));
    }

    #[test]
    fn previous_range_has_the_same_length() {
        let d = |s: &str| NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap();
        let r = TimeRange::new(d("2026-11-09"), d("2026-11-16")).unwrap();
        assert_eq!(
            r.previous(),
            TimeRange::new(d("2026-11-02"), d("2026-11-09")).unwrap()
        );
        assert!(TimeRange::new(d("2026-11-09"), d("2026-11-09")).is_none());
    }
}
