//! The review loop over HTTP (see [`crate::review`]):
//! - `POST /api/feedback` `{"event_id", "rating": "up"|"down", "comment"?, "corrected_sql"?}`
//!   → 201 `{"feedback_id", "candidate_id"}`; any signed-in principal, on
//!   their own answers only (404 otherwise).
//! - `GET /api/review/candidates[?status=pending|approved|rejected]` →
//!   `{"candidates": […], "roles": [role names]}`; `GET /api/review/feedback` → the latest 200.
//! - `POST /api/review/candidates/{id}/approve` `{"role", "question"?, "sql"?, "note"?}`
//!   → 200 `{"verified", "regression"}`, or 409 `regression` with
//!   `"regression": {"turned_wrong": […], …}` when the approval is blocked.
//! - `POST /api/review/candidates/{id}/reject` `{"note"?}` → 200 the candidate.
//! - `GET /api/review/verified` → `{"version", "verified_queries": […]}`, the
//!   approved pairs in force.
//!
//! Every route but feedback needs the `steward` capability (403).

use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;

use super::{ApiError, AppState, CurrentPrincipal};
use crate::review::{self, ApproveRequest, FeedbackRequest, ReviewError, ReviewStore};

pub(super) fn router() -> Router<AppState> {
    Router::new()
        .route("/api/feedback", post(feedback))
        .route("/api/review/candidates", get(candidates))
        .route("/api/review/feedback", get(feedback_list))
        .route("/api/review/candidates/{id}/approve", post(approve))
        .route("/api/review/candidates/{id}/reject", post(reject))
        .route("/api/review/verified", get(verified))
}

fn store(state: &AppState) -> ReviewStore {
    ReviewStore::new(state.sessions.clone())
}

impl From<ReviewError> for ApiError {
    /// Statuses by kind; a blocked approval carries its regression report
    /// beside the error as `regression`.
    fn from(e: ReviewError) -> Self {
        let (status, code) = match &e {
            ReviewError::Invalid(code, _) => (StatusCode::BAD_REQUEST, *code),
            ReviewError::Forbidden(_) => (StatusCode::FORBIDDEN, "forbidden"),
            ReviewError::NotFound(_) => (StatusCode::NOT_FOUND, "not_found"),
            ReviewError::Rejected(_) => (StatusCode::UNPROCESSABLE_ENTITY, "sql_rejected"),
            ReviewError::Conflict(_) => (StatusCode::CONFLICT, "conflict"),
            ReviewError::Regression(report) => {
                let report = serde_json::to_value(report).unwrap_or_default();
                return ApiError::new(StatusCode::CONFLICT, "regression", e.to_string())
                    .with_detail("regression", report);
            }
            ReviewError::RegressionFailed(_) => return ApiError::internal("regression_failed", &e),
            ReviewError::Store(_) => return ApiError::internal("review_store", &e),
        };
        ApiError::new(status, code, e.to_string())
    }
}

/// A candidate id: 32 hex digits.
fn check_id(id: &str) -> Result<(), ReviewError> {
    if crate::audit::is_id(id) {
        Ok(())
    } else {
        Err(ReviewError::NotFound("no such candidate".into()))
    }
}

async fn feedback(
    State(state): State<AppState>,
    CurrentPrincipal(principal): CurrentPrincipal,
    headers: axum::http::HeaderMap,
    body: Result<Json<FeedbackRequest>, JsonRejection>,
) -> Result<Response, ApiError> {
    let Json(req) = body?;
    let channel = super::channel_of(&headers);
    let outcome = review::submit_feedback(
        &state.orchestrator,
        &store(&state),
        &principal,
        channel,
        req,
    )
    .await?;
    Ok((StatusCode::CREATED, Json(outcome)).into_response())
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ListParams {
    status: Option<String>,
}

async fn candidates(
    State(state): State<AppState>,
    CurrentPrincipal(principal): CurrentPrincipal,
    params: Result<Query<ListParams>, QueryRejection>,
) -> Result<Response, ApiError> {
    review::require_steward(&state.orchestrator, &principal)?;
    let Query(p) = params.map_err(|e| ApiError::bad_request("invalid_query", e.body_text()))?;
    let status = p.status.as_deref();
    if status.is_some_and(|s| !matches!(s, "pending" | "approved" | "rejected")) {
        return Err(ApiError::bad_request(
            "invalid_status",
            "status is pending, approved or rejected",
        ));
    }
    let list = store(&state)
        .candidates(status)
        .await
        .map_err(ReviewError::from)?;
    let roles: Vec<&String> = state.orchestrator.policy.roles.keys().collect();
    Ok(Json(serde_json::json!({ "candidates": list, "roles": roles })).into_response())
}

async fn feedback_list(
    State(state): State<AppState>,
    CurrentPrincipal(principal): CurrentPrincipal,
) -> Result<Response, ApiError> {
    review::require_steward(&state.orchestrator, &principal)?;
    let list = store(&state)
        .feedback(None, 200)
        .await
        .map_err(ReviewError::from)?;
    Ok(Json(serde_json::json!({ "feedback": list })).into_response())
}

async fn approve(
    State(state): State<AppState>,
    CurrentPrincipal(principal): CurrentPrincipal,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Result<Json<ApproveRequest>, JsonRejection>,
) -> Result<Response, ApiError> {
    review::require_steward(&state.orchestrator, &principal)?;
    check_id(&id)?;
    let Json(req) = body?;
    let done = review::approve(
        &state.orchestrator,
        &store(&state),
        &state.review,
        &principal,
        super::channel_of(&headers),
        &id,
        req,
    )
    .await?;
    Ok(Json(done).into_response())
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RejectRequest {
    note: Option<String>,
}

async fn reject(
    State(state): State<AppState>,
    CurrentPrincipal(principal): CurrentPrincipal,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Result<Json<RejectRequest>, JsonRejection>,
) -> Result<Response, ApiError> {
    review::require_steward(&state.orchestrator, &principal)?;
    check_id(&id)?;
    let Json(req) = body?;
    let c = review::reject(
        &state.orchestrator,
        &store(&state),
        &principal,
        super::channel_of(&headers),
        &id,
        req.note.as_deref(),
    )
    .await?;
    Ok(Json(c).into_response())
}

async fn verified(
    State(state): State<AppState>,
    CurrentPrincipal(principal): CurrentPrincipal,
) -> Result<Response, ApiError> {
    review::require_steward(&state.orchestrator, &principal)?;
    let o = &state.orchestrator;
    review::refresh(o, &store(&state)).await?;
    let (version, pairs) = o.verified.approved();
    Ok(Json(serde_json::json!({ "version": version, "verified_queries": *pairs })).into_response())
}
