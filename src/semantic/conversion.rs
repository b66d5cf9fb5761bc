//! Conversion metrics: of the entities that did a base event, how many then
//! did a conversion event.
//!
//! Semantics from dbt's documentation of conversion metrics
//! (<https://docs.getdbt.com/docs/build/conversion>): the base events are the
//! rows of the base measure's model in the range (with the query's filters
//! and the base measure's filter); a conversion event (a row of the
//! conversion measure's model, with its filter) counts for the **closest
//! base event before it** (`base.ts <= conversion.ts`) of the same entity,
//! with the constant properties equal, within the window when there is one
//! (`conversion.ts < base.ts + window`), and is attributed to that base
//! event's period and dimensions. Each conversion event counts once.
//! `conversions` is the conversion measure over those events;
//! `conversion_rate` is conversions divided by the base measure over the
//! base events (NULL when that is 0).
//!
//! MetricFlow 0.211 compiles these differently (it joins on day-truncated
//! times, does not apply the base measure's filter, and its de-duplication
//! partitions by a fresh random UUID, so it keeps every pair), so the
//! MetricFlow comparison checks conversion metrics against an independent
//! SQL statement written from the definition above instead.

use chrono::Duration;

use super::compile::{Extra, Shape};
use super::expr::{aggregate, join_inputs};
use super::model::{MeasureDef, MetricDef, NameRef};
use super::{SemanticError, SemanticLayer, TimeRange};

impl SemanticLayer {
    /// SQL producing the shape's keys and `value` for a conversion metric.
    pub(super) fn conversion_sql(
        &self,
        metric: &MetricDef,
        shape: &Shape,
    ) -> Result<String, SemanticError> {
        let invalid = |why: &str| SemanticError::Invalid(format!("metric {}: {why}", metric.name));
        let p = metric
            .type_params
            .conversion_type_params
            .as_ref()
            .ok_or_else(|| invalid("needs conversion_type_params"))?;
        let (base_ref, base_model, base_measure) =
            self.input_measure(metric, &p.base_measure, "base_measure")?;
        let (conv_ref, conv_model, conv_measure) =
            self.input_measure(metric, &p.conversion_measure, "conversion_measure")?;
        let d = shape.dialect;

        // Base events: the query's keys, filters and range, plus the entity
        // and the base side of each constant property.
        let mut base_shape = shape.clone();
        base_shape
            .where_templates
            .extend(base_ref.filter.0.iter().cloned());
        let mut base_extra = vec![Extra::Entity(p.entity.clone(), "conv_entity".into())];
        base_extra.extend(
            p.constant_properties
                .iter()
                .enumerate()
                .map(|(i, c)| Extra::Dimension(c.base_property.clone(), format!("conv_p{i}"))),
        );
        let base_events = self.events_sql(
            base_model,
            base_measure,
            &base_shape,
            shape.range,
            true,
            &base_extra,
        )?;

        // Conversion events: no query keys or filters; from the range's
        // start, to its end plus the window.
        let key = self.row_key(conv_model).map(str::to_owned).ok_or_else(|| {
            invalid(&format!(
                "the conversion measure's model {} needs a primary or unique entity to tell its events apart",
                self.models()[conv_model].name
            ))
        })?;
        let conv_shape = Shape {
            range: shape.range,
            grain: None,
            group_by: &[],
            filters: &[],
            where_templates: conv_ref.filter.0.clone(),
            shift: shape.shift,
            custom: None,
            dialect: d,
        };
        let mut conv_extra = vec![
            Extra::Entity(p.entity.clone(), "conv_entity".into()),
            Extra::Entity(key, "conv_event".into()),
        ];
        conv_extra.extend(
            p.constant_properties.iter().enumerate().map(|(i, c)| {
                Extra::Dimension(c.conversion_property.clone(), format!("conv_p{i}"))
            }),
        );
        let until = match p.window {
            Some(w) => super::timeline::window_end(w, shape.range.end),
            None => chrono::NaiveDate::from_ymd_opt(9999, 12, 31).unwrap_or(shape.range.end),
        };
        let conv_range = TimeRange {
            start: shape.range.start,
            end: until.max(shape.range.end + Duration::days(1)),
        };
        let conv_events = self.events_sql(
            conv_model,
            conv_measure,
            &conv_shape,
            conv_range,
            false,
            &conv_extra,
        )?;

        // Each conversion event, with the closest base event before it.
        let keys = shape.keys();
        let mut on = vec![
            "b.conv_entity = c.conv_entity".to_owned(),
            "b.ts <= c.ts".to_owned(),
        ];
        on.extend((0..p.constant_properties.len()).map(|i| format!("b.conv_p{i} = c.conv_p{i}")));
        if let Some(w) = p.window {
            on.push(format!(
                "c.ts < {}",
                d.add_interval("b.ts", w.count, w.grain)
            ));
        }
        let mut matched_cols: Vec<String> = keys.iter().map(|k| format!("b.{k} AS {k}")).collect();
        matched_cols.push("c.measure_value AS measure_value".into());
        matched_cols.push(
            "ROW_NUMBER() OVER (PARTITION BY c.conv_event ORDER BY b.ts DESC) AS conv_rank".into(),
        );
        let matched = format!(
            "SELECT {} FROM ({base_events}) AS b JOIN ({conv_events}) AS c ON {}",
            matched_cols.join(", "),
            on.join(" AND ")
        );
        let first = format!("(SELECT * FROM ({matched}) AS m WHERE conv_rank = 1) AS firsts");
        let conversions = aggregate(conv_measure, &keys, "measure_value", &first, d)?;
        let calculation = p
            .calculation
            .as_deref()
            .unwrap_or("conversion_rate")
            .to_ascii_lowercase();
        match calculation.as_str() {
            "conversions" => Ok(conversions),
            "conversion_rate" => {
                let base = aggregate(
                    base_measure,
                    &keys,
                    "measure_value",
                    &format!("({base_events}) AS base"),
                    d,
                )?;
                Ok(join_inputs(
                    &[base, conversions],
                    &["base", "conv"],
                    "conv.value * 1.0 / NULLIF(base.value, 0)",
                    shape,
                ))
            }
            other => Err(invalid(&format!(
                "calculation {other:?} is not conversion_rate or conversions"
            ))),
        }
    }

    /// A conversion metric's base or conversion measure: the reference, its
    /// model and its definition.
    fn input_measure<'a>(
        &'a self,
        metric: &MetricDef,
        r: &'a Option<NameRef>,
        what: &str,
    ) -> Result<(&'a NameRef, usize, &'a MeasureDef), SemanticError> {
        let invalid =
            |why: String| SemanticError::Invalid(format!("metric {}: {why}", metric.name));
        let r = r
            .as_ref()
            .ok_or_else(|| invalid(format!("needs conversion_type_params.{what}")))?;
        let (model, m) = self
            .find_measure(r.name())
            .ok_or_else(|| invalid(format!("measure {} is not defined", r.name())))?;
        Ok((r, model, m))
    }
}
