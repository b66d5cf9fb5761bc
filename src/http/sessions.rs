//! Admin API for sign-in sessions: `GET /api/admin/sessions[?all=true]` lists
//! them (never tokens); `POST /api/admin/sessions/revoke` with
//! `{"id": …}` or `{"user": …}` and an optional `"reason"` ends them at once.

use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;

use super::{ApiError, AppState, CurrentPrincipal, require_admin};

pub(super) fn router() -> Router<AppState> {
    Router::new()
        .route("/api/admin/sessions", get(list))
        .route("/api/admin/sessions/revoke", post(revoke))
}

/// Longest accepted revocation reason, in characters.
const MAX_REASON_CHARS: usize = 200;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ListParams {
    all: Option<bool>,
}

async fn list(
    State(state): State<AppState>,
    CurrentPrincipal(principal): CurrentPrincipal,
    params: Result<Query<ListParams>, QueryRejection>,
) -> Result<Json<serde_json::Value>, ApiError> {
    require_admin(&state, &principal)?;
    let Query(p) = params.map_err(|e| ApiError::bad_request("invalid_query", e.body_text()))?;
    let now = chrono::Utc::now().timestamp();
    let sessions = state
        .sessions
        .list(p.all.unwrap_or(false), now)
        .await
        .map_err(|e| ApiError::internal("session_store", e))?;
    Ok(Json(serde_json::json!({ "sessions": sessions })))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RevokeRequest {
    id: Option<String>,
    user: Option<String>,
    reason: Option<String>,
}

async fn revoke(
    State(state): State<AppState>,
    CurrentPrincipal(principal): CurrentPrincipal,
    body: Result<Json<RevokeRequest>, JsonRejection>,
) -> Result<Json<serde_json::Value>, ApiError> {
    require_admin(&state, &principal)?;
    let Json(req) = body?;
    let reason = req
        .reason
        .unwrap_or_else(|| format!("revoked by {}", principal.user));
    if reason.chars().count() > MAX_REASON_CHARS {
        return Err(ApiError::bad_request(
            "reason_too_long",
            format!("reason is longer than {MAX_REASON_CHARS} characters"),
        ));
    }
    let now = chrono::Utc::now().timestamp();
    let store = &state.sessions;
    let revoked = match (req.id, req.user) {
        (Some(id), None) => u64::from(
            store
                .revoke(&id, &reason, now)
                .await
                .map_err(|e| ApiError::internal("session_store", e))?,
        ),
        (None, Some(user)) => store
            .revoke_user(&user, &reason, now)
            .await
            .map_err(|e| ApiError::internal("session_store", e))?,
        _ => {
            return Err(ApiError::bad_request(
                "invalid_request",
                "give exactly one of \"id\" or \"user\"",
            ));
        }
    };
    if revoked == 0 {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "no_live_session",
            "no live session matches",
        ));
    }
    tracing::info!(admin = %principal.user, revoked, "sessions revoked");
    Ok(Json(serde_json::json!({ "revoked": revoked })))
}
