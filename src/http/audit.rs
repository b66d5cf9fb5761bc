//! Admin API for the audit trail (admin role only; 403 otherwise):
//!
//! - `GET /api/admin/audit?user=&since=&until=&table=&outcome=&kind=&limit=` —
//!   events newest first (`since`/`until`: RFC 3339 or `YYYY-MM-DD`, UTC;
//!   `limit` 1–1000, default 100).
//! - `GET /api/admin/audit/verify` — the hash chain recomputed.
//! - `GET /api/admin/audit/{id}` — one event and the events under it (a
//!   question's statements, a statement's re-runs).
//! - `POST /api/admin/queries/{id}/rerun` with `{"reason": "…"}` — re-runs an
//!   audited statement ([`crate::orchestrator::rerun`]) for an admin who
//!   signed in within `audit.rerun_login_max_age_secs` (a session's
//!   `auth_time`, or a bearer token's `auth_time`; re-authenticate with
//!   `/auth/login?reauth=1`). 400 without a reason (3–500 characters), 403
//!   for non-admins (`forbidden`) and stale or unknown sign-ins
//!   (`reauthentication_required`), 404 for unknown ids, 403 `denied` when the
//!   guard refuses the SQL under the admin's current grants.

use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::routing::{get, post};
use axum::{Json, Router};
use chrono::{DateTime, NaiveDate};
use serde::Deserialize;

use super::{ApiError, AppState, CurrentPrincipal, SESSION_COOKIE, cookie, require_admin};
use crate::audit::Filter;
use crate::orchestrator::rerun::RerunError;

pub(super) fn router() -> Router<AppState> {
    Router::new()
        .route("/api/admin/audit", get(list))
        .route("/api/admin/audit/verify", get(verify))
        .route("/api/admin/audit/{id}", get(show))
        .route("/api/admin/queries/{id}/rerun", post(rerun))
}

/// Reasons are this long at most (characters) and at least 3.
const MAX_REASON_CHARS: usize = 500;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ListParams {
    user: Option<String>,
    since: Option<String>,
    until: Option<String>,
    table: Option<String>,
    outcome: Option<String>,
    kind: Option<String>,
    limit: Option<u32>,
}

/// Unix milliseconds of an RFC 3339 time or a `YYYY-MM-DD` date (UTC midnight).
pub fn parse_time(s: &str) -> Option<i64> {
    let s = s.trim();
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Some(t.timestamp_millis());
    }
    NaiveDate::parse_from_str(s, "%Y-%m-%d")
        .ok()
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .map(|t| t.and_utc().timestamp_millis())
}

fn audit_error(e: crate::audit::AuditError) -> ApiError {
    ApiError::internal("audit_unavailable", e)
}

fn short(value: Option<String>, what: &str) -> Result<Option<String>, ApiError> {
    match value {
        Some(v) if v.len() > 200 || v.chars().any(char::is_control) => Err(ApiError::bad_request(
            "invalid_filter",
            format!("{what} is not a valid filter value"),
        )),
        other => Ok(other),
    }
}

async fn list(
    State(state): State<AppState>,
    CurrentPrincipal(principal): CurrentPrincipal,
    params: Result<Query<ListParams>, QueryRejection>,
) -> Result<Json<serde_json::Value>, ApiError> {
    require_admin(&state, &principal)?;
    let Query(p) = params.map_err(|e| ApiError::bad_request("invalid_query", e.body_text()))?;
    let time = |v: Option<String>, what: &str| -> Result<Option<i64>, ApiError> {
        v.map(|s| {
            parse_time(&s).ok_or_else(|| {
                ApiError::bad_request(
                    "invalid_filter",
                    format!("{what} must be an RFC 3339 time or YYYY-MM-DD"),
                )
            })
        })
        .transpose()
    };
    if p.limit.is_some_and(|l| !(1..=1000).contains(&l)) {
        return Err(ApiError::bad_request(
            "invalid_filter",
            "limit must be 1-1000",
        ));
    }
    let filter = Filter {
        since_ms: time(p.since, "since")?,
        until_ms: time(p.until, "until")?,
        user: short(p.user, "user")?,
        table: short(p.table, "table")?,
        outcome: short(p.outcome, "outcome")?,
        kind: short(p.kind, "kind")?,
        limit: p.limit,
    };
    let events = state
        .orchestrator
        .audit
        .list(&filter)
        .await
        .map_err(audit_error)?;
    Ok(Json(serde_json::json!({ "events": events })))
}

async fn verify(
    State(state): State<AppState>,
    CurrentPrincipal(principal): CurrentPrincipal,
) -> Result<Json<crate::audit::VerifyReport>, ApiError> {
    require_admin(&state, &principal)?;
    let report = state
        .orchestrator
        .audit
        .verify()
        .await
        .map_err(audit_error)?;
    Ok(Json(report))
}

fn check_id(id: &str) -> Result<(), ApiError> {
    if crate::audit::is_id(id) {
        Ok(())
    } else {
        Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            "no audit event has that id",
        ))
    }
}

async fn show(
    State(state): State<AppState>,
    CurrentPrincipal(principal): CurrentPrincipal,
    Path(id): Path<String>,
) -> Result<Json<serde_json::Value>, ApiError> {
    require_admin(&state, &principal)?;
    check_id(&id)?;
    let audit = &state.orchestrator.audit;
    let event = audit.get(&id).await.map_err(audit_error)?.ok_or_else(|| {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            "no audit event has that id",
        )
    })?;
    let children = audit.children(&id).await.map_err(audit_error)?;
    Ok(Json(
        serde_json::json!({ "event": event, "children": children }),
    ))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RerunRequest {
    reason: Option<String>,
}

/// When the caller last entered credentials (Unix seconds): a session's
/// `auth_time`, or a bearer token's. `None` for dev identities and tokens
/// that do not say.
async fn authenticated_at(state: &AppState, headers: &HeaderMap, now: i64) -> Option<i64> {
    if let Some(value) = headers.get(header::AUTHORIZATION) {
        let token = value.to_str().ok()?.strip_prefix("Bearer ")?.trim();
        let bearer = state.oidc.as_ref()?.bearer(token).await.ok()?;
        return match bearer {
            crate::auth::access_token::Bearer::User { auth_time, .. } => auth_time,
            crate::auth::access_token::Bearer::Client { .. } => None,
        };
    }
    let token = cookie(headers, SESSION_COOKIE)?;
    let session = state.sessions.authenticate(token, now).await.ok()??;
    Some(session.auth_time)
}

async fn rerun(
    State(state): State<AppState>,
    CurrentPrincipal(principal): CurrentPrincipal,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Result<Json<RerunRequest>, JsonRejection>,
) -> Result<Json<crate::orchestrator::rerun::RerunResult>, ApiError> {
    require_admin(&state, &principal)?;
    let Json(req) = body?;
    let reason = req.reason.as_deref().map(str::trim).unwrap_or_default();
    let chars = reason.chars().count();
    if !(3..=MAX_REASON_CHARS).contains(&chars)
        || reason.chars().any(|c| c.is_control() && c != '\n')
    {
        return Err(ApiError::bad_request(
            "reason_required",
            format!("say why you re-run this query (3-{MAX_REASON_CHARS} characters)"),
        ));
    }
    let now = chrono::Utc::now().timestamp();
    let max_age = state.orchestrator.audit.settings().rerun_login_max_age_secs;
    match authenticated_at(&state, &headers, now).await {
        Some(at) if now - at <= max_age => {}
        _ => {
            return Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "reauthentication_required",
                format!(
                    "re-running a query needs a sign-in within the last {} minutes; sign in again (/auth/login?reauth=1)",
                    max_age / 60
                ),
            ));
        }
    }
    check_id(&id)?;
    let channel = super::channel_of(&headers);
    let result = state
        .orchestrator
        .rerun(&principal, channel, &id, reason)
        .await
        .map_err(|e| match e {
            RerunError::NotFound => {
                ApiError::new(StatusCode::NOT_FOUND, "not_found", e.to_string())
            }
            RerunError::NotAStatement(_) => ApiError::bad_request("not_a_statement", e.to_string()),
            RerunError::Denied(_) => ApiError::new(StatusCode::FORBIDDEN, "denied", e.to_string()),
            RerunError::Audit(a) => audit_error(a),
            RerunError::Warehouse(w) => {
                tracing::error!(error.kind = w.kind(), "re-run failed");
                ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "warehouse_unavailable",
                    "the warehouse could not answer",
                )
            }
        })?;
    tracing::info!(admin = %principal.user, rerun = %result.rerun_id, original = %result.original_id, "audited statement re-run");
    Ok(Json(result))
}
