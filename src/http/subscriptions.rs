//! Subscriptions over HTTP (see [`crate::subscriptions`]):
//! - `POST /api/subscriptions` `{"question", "cron", "timezone"?, "target"?: "inbox"|"slack"|"channel", "slack_user"?, "slack_channel"?, "alert"?: {"metric", "above", "threshold"}}`
//!   → 201 the subscription; 400 `invalid_subscription` with the reason.
//! - `GET /api/subscriptions[?all=true]` → `{"subscriptions": […]}`: the
//!   caller's, or everyone's for an admin (`all=true` is 403 otherwise).
//! - `POST /api/subscriptions/{id}/pause`, `…/resume`, `DELETE /api/subscriptions/{id}`:
//!   the owner's or an admin's; 404 for anyone else.
//! - `GET /api/inbox` → `{"deliveries": […]}`: the caller's delivered runs, newest first.

use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use serde::Deserialize;

use super::{ApiError, AppState, CurrentPrincipal, record_action, require_admin};
use crate::audit::EventKind;
use crate::subscriptions::{self, NewSubscription, Subscription, SubscriptionStore};

pub(super) fn router() -> Router<AppState> {
    Router::new()
        .route("/api/subscriptions", post(create).get(list))
        .route("/api/subscriptions/{id}/pause", post(pause))
        .route("/api/subscriptions/{id}/resume", post(resume))
        .route("/api/subscriptions/{id}", delete(remove))
        .route("/api/inbox", get(inbox))
}

fn store(state: &AppState) -> SubscriptionStore {
    SubscriptionStore::new(state.sessions.clone())
}

fn db(e: sqlx::Error) -> ApiError {
    ApiError::internal("subscription_store", e)
}

async fn create(
    State(state): State<AppState>,
    CurrentPrincipal(principal): CurrentPrincipal,
    headers: HeaderMap,
    body: Result<Json<NewSubscription>, JsonRejection>,
) -> Result<(StatusCode, Json<Subscription>), ApiError> {
    let Json(req) = body?;
    let now = chrono::Utc::now().timestamp();
    let s = subscriptions::create(
        &store(&state),
        &state.orchestrator.semantic,
        subscriptions::Actor {
            principal: &principal,
            channel: super::channel_of(&headers),
            audit: &state.orchestrator.audit,
        },
        req,
        state.limits.max_question_chars,
        state.slack.is_some(),
        now,
    )
    .await
    .map_err(|e| ApiError::bad_request("invalid_subscription", e))?;
    Ok((StatusCode::CREATED, Json(s)))
}

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
    let Query(p) = params.map_err(|e| ApiError::bad_request("invalid_query", e.body_text()))?;
    let all = p.all.unwrap_or(false);
    if all {
        require_admin(&state, &principal)?;
    }
    let list = store(&state)
        .list((!all).then_some(principal.user.as_str()))
        .await
        .map_err(db)?;
    Ok(Json(serde_json::json!({ "subscriptions": list })))
}

/// The subscription `id` if the caller owns it or is an admin; 404 otherwise.
async fn owned(
    state: &AppState,
    principal: &crate::policy::Principal,
    id: &str,
) -> Result<Subscription, ApiError> {
    let not_found = || ApiError::new(StatusCode::NOT_FOUND, "not_found", "no such subscription");
    if !crate::audit::is_id(id) {
        return Err(not_found());
    }
    let s = store(state)
        .get(id)
        .await
        .map_err(db)?
        .ok_or_else(not_found)?;
    if s.user == principal.user || require_admin(state, principal).is_ok() {
        Ok(s)
    } else {
        Err(not_found())
    }
}

async fn set_paused(
    state: AppState,
    principal: crate::policy::Principal,
    headers: HeaderMap,
    id: String,
    paused: bool,
) -> Result<Json<Subscription>, ApiError> {
    let s = owned(&state, &principal, &id).await?;
    let now = chrono::Utc::now().timestamp();
    // Resumed: from the next run after now, so paused weeks are not sent late.
    let next = if paused {
        s.next_run_at
    } else {
        subscriptions::next_run(&s, now)
    };
    let st = store(&state);
    st.set_paused(&s.id, paused, next).await.map_err(db)?;
    let outcome = if paused { "paused" } else { "resumed" };
    let detail = serde_json::json!({ "subscription": s.id });
    record_action(
        &state,
        &principal,
        &headers,
        EventKind::Subscription,
        outcome,
        &s.id,
        detail,
    )
    .await?;
    st.get(&s.id)
        .await
        .map_err(db)?
        .map(Json)
        .ok_or_else(|| ApiError::new(StatusCode::NOT_FOUND, "not_found", "no such subscription"))
}

async fn pause(
    State(state): State<AppState>,
    CurrentPrincipal(principal): CurrentPrincipal,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Json<Subscription>, ApiError> {
    set_paused(state, principal, headers, id, true).await
}

async fn resume(
    State(state): State<AppState>,
    CurrentPrincipal(principal): CurrentPrincipal,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Json<Subscription>, ApiError> {
    set_paused(state, principal, headers, id, false).await
}

async fn remove(
    State(state): State<AppState>,
    CurrentPrincipal(principal): CurrentPrincipal,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let s = owned(&state, &principal, &id).await?;
    store(&state).delete(&s.id).await.map_err(db)?;
    let detail = serde_json::json!({ "subscription": s.id });
    record_action(
        &state,
        &principal,
        &headers,
        EventKind::Subscription,
        "deleted",
        &s.id,
        detail,
    )
    .await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn inbox(
    State(state): State<AppState>,
    CurrentPrincipal(principal): CurrentPrincipal,
) -> Result<Json<serde_json::Value>, ApiError> {
    let list = store(&state).inbox(&principal.user, 50).await.map_err(db)?;
    Ok(Json(serde_json::json!({ "deliveries": list })))
}
