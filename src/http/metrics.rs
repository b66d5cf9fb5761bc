//! The Metrics API: `GET /api/metrics` (catalogue) and
//! `GET /api/metrics/{name}?start=&end=&time=&grain=&group_by=&filter=`.
//!
//! `start`/`end` are ISO dates (`end` exclusive); `time` is a phrase such as
//! `last week`; `group_by` is comma-separated dimensions; `filter` is
//! `dimension:value` (repeatable by comma). Default window: the metric's
//! `default_window_days`, else the last 7 days.

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use chrono::{Duration, NaiveDate};
use serde::Deserialize;

use super::{ApiError, AppState, CurrentPrincipal};
use crate::audit::scope::QuestionScope;
use crate::orchestrator::StepError;
use crate::orchestrator::timephrase::find_ranges;
use crate::semantic::{DimensionFilter, Grain, MetricQuery, SemanticError, TimeRange};
use crate::warehouse::WarehouseError;

pub(super) fn router() -> Router<AppState> {
    Router::new()
        .route("/api/metrics", get(list))
        .route("/api/metrics/{name}", get(query))
}

async fn list(
    State(state): State<AppState>,
    CurrentPrincipal(_): CurrentPrincipal,
) -> Json<serde_json::Value> {
    let layer = &state.orchestrator.semantic;
    let metrics: Vec<_> = layer
        .metrics()
        .map(|m| {
            serde_json::json!({
                "name": m.name,
                "label": m.label(),
                "description": m.description.trim(),
                "type": m.kind,
                "format": m.format(),
                "dimensions": layer.dimensions_of(m).iter().map(|d| d.name.clone()).collect::<Vec<_>>(),
                "grains": layer
                    .grains_of(m)
                    .iter()
                    .map(|g| g.as_str().to_owned())
                    .chain(layer.custom_grain_names())
                    .collect::<Vec<_>>(),
            })
        })
        .collect();
    let saved: Vec<_> = layer
        .saved_queries()
        .iter()
        .map(|q| {
            let mut v = serde_json::json!(q);
            // Whether asking the question in the chat runs it, and if not why.
            let plan = q.plan();
            v["in_chat"] = serde_json::json!(plan.is_ok());
            if let Err(why) = plan {
                v["not_in_chat_because"] = serde_json::json!(why);
            }
            v
        })
        .collect();
    Json(serde_json::json!({
        "metrics": metrics,
        "saved_queries": saved,
    }))
}

/// Query parameters of a metric query.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Params {
    start: Option<String>,
    end: Option<String>,
    time: Option<String>,
    grain: Option<String>,
    group_by: Option<String>,
    filter: Option<String>,
}

fn parse_date(name: &str, s: &str) -> Result<NaiveDate, ApiError> {
    NaiveDate::parse_from_str(s, "%Y-%m-%d").map_err(|_| {
        ApiError::bad_request(
            "invalid_date",
            format!("{name} must be a date like 2026-01-31"),
        )
    })
}

async fn query(
    State(state): State<AppState>,
    CurrentPrincipal(principal): CurrentPrincipal,
    Path(name): Path<String>,
    headers: axum::http::HeaderMap,
    params: Result<Query<Params>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let Query(p) = params.map_err(|e| ApiError::bad_request("invalid_query", e.body_text()))?;
    state.questions.check(&principal.user)?;
    let _turn = state.admission.admit().await?;
    let o = &state.orchestrator;
    let Some(def) = o.semantic.metric(&name) else {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "unknown_metric",
            "there is no metric by that name; GET /api/metrics lists them",
        ));
    };
    let range = match (&p.start, &p.end, &p.time) {
        (Some(s), Some(e), _) => {
            let (s, e) = (parse_date("start", s)?, parse_date("end", e)?);
            if (e - s).num_days() > 3660 {
                return Err(ApiError::bad_request(
                    "invalid_range",
                    "ranges are limited to ten years",
                ));
            }
            TimeRange::new(s, e)
                .ok_or_else(|| ApiError::bad_request("invalid_range", "end must be after start"))?
        }
        (Some(_), None, _) | (None, Some(_), _) => {
            return Err(ApiError::bad_request(
                "invalid_range",
                "give both start and end",
            ));
        }
        (None, None, Some(t)) => {
            let found = find_ranges(&t.to_lowercase(), o.as_of);
            found.first().map(|f| f.range).ok_or_else(|| {
                ApiError::bad_request("invalid_time", "the time phrase was not understood")
            })?
        }
        (None, None, None) => {
            let days = i64::from(def.meta().default_window_days.unwrap_or(7));
            TimeRange {
                start: o.as_of - Duration::days(days),
                end: o.as_of,
            }
        }
    };
    let layer = &o.semantic;
    let (grain, custom_grain) = match p.grain.as_deref() {
        None | Some("") => (None, None),
        Some(g) => match Grain::parse(g) {
            Some(grain) => (Some(grain), None),
            None if layer.custom_grain(g).is_some() => (None, Some(g.to_ascii_lowercase())),
            None => {
                let custom = layer.custom_grain_names();
                let extra = if custom.is_empty() {
                    String::new()
                } else {
                    format!(", or the project's {}", custom.join(", "))
                };
                return Err(ApiError::bad_request(
                    "invalid_grain",
                    format!(
                        "grain must be second, minute, hour, day, week, month, quarter or year{extra}"
                    ),
                ));
            }
        },
    };
    let group_by: Vec<String> = p
        .group_by
        .iter()
        .flat_map(|g| g.split(','))
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect();
    let mut filters = Vec::new();
    for f in p
        .filter
        .iter()
        .flat_map(|f| f.split(','))
        .filter(|s| !s.trim().is_empty())
    {
        let (d, v) = f.split_once(':').ok_or_else(|| {
            ApiError::bad_request("invalid_filter", "filters look like dimension:value")
        })?;
        filters.push(DimensionFilter {
            dimension: d.trim().to_owned(),
            values: vec![v.trim().to_owned()],
        });
    }
    if group_by.len() > 4 || filters.len() > 8 {
        return Err(ApiError::bad_request(
            "too_many_dimensions",
            "at most 4 group-by dimensions and 8 filters",
        ));
    }
    let q = MetricQuery {
        metric: def.name.clone(),
        range,
        grain,
        custom_grain,
        group_by,
        filters,
    };
    let grants = o.policy.grants(&principal);
    let scope = QuestionScope::standalone(&principal, super::channel_of(&headers));
    match scope.run(o.run_metric(&grants, &q)).await {
        Ok((compiled, validated, result)) => Ok(Json(serde_json::json!({
            "metric": def.name,
            "label": def.label(),
            "query": q,
            "rollup": compiled.rollup,
            "columns": result.columns,
            "rows": result.rows,
            "sql": validated.sql(),
        }))),
        Err(StepError::Semantic(e @ SemanticError::UnknownDimension { .. })) => {
            Err(ApiError::bad_request("unknown_dimension", e.to_string()))
        }
        Err(StepError::Semantic(e)) => {
            Err(ApiError::bad_request("invalid_metric_query", e.to_string()))
        }
        Err(StepError::Guard(r)) => Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "denied",
            r.to_string(),
        )),
        Err(StepError::Audit(e)) => Err(ApiError::internal("audit_unavailable", e)),
        Err(StepError::Warehouse(WarehouseError::Busy(_))) => {
            crate::prometheus::shed("busy");
            Err(ApiError::busy(state.orchestrator.retry_after_secs))
        }
        Err(StepError::Warehouse(e)) => {
            tracing::error!(error.kind = e.kind(), "metric query failed");
            Err(ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "warehouse_unavailable",
                "the warehouse could not answer",
            ))
        }
    }
}
