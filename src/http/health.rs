//! `GET /healthz` (the process is up, and what it serves) and `GET /readyz`
//! (this instance should get traffic).

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Json, Router};

use super::AppState;

/// The health routes.
pub(super) fn router() -> Router<AppState> {
    Router::new()
        .route("/healthz", get(health))
        .route("/readyz", get(ready))
}

/// `GET /healthz`: status, warehouse dialect, as-of date, metric count,
/// retrieval status and the model in use.
async fn health(State(state): State<AppState>) -> Json<serde_json::Value> {
    let o = &state.orchestrator;
    Json(serde_json::json!({
        "status": "ok",
        "warehouse": o.warehouse.dialect(),
        "as_of": o.as_of,
        "metrics": o.semantic.metrics().count(),
        "retrieval": o.docs.status(),
        "llm": match &o.llm {
            Some(l) => serde_json::json!({
                "model": l.settings().model,
                "mode": l.settings().mode,
                "route": l.settings().route,
            }),
            None => serde_json::json!("none (deterministic planner)"),
        },
    }))
}

/// `GET /readyz`: whether this instance should get traffic. 200
/// `{"status": "ready", "checks": {…}}` when steward's database (sessions,
/// audit, conversations) and the warehouse answer and shutdown has not begun;
/// otherwise 503 with the same shape naming what failed (`/healthz` only says
/// the process is up). Each check gets two seconds.
async fn ready(State(state): State<AppState>) -> axum::response::Response {
    use std::sync::atomic::Ordering;
    let two = std::time::Duration::from_secs(2);
    let check = |ok: bool| if ok { "ok" } else { "unreachable" };
    let database = check(matches!(
        tokio::time::timeout(two, state.sessions.ping()).await,
        Ok(Ok(()))
    ));
    let warehouse = check(matches!(
        tokio::time::timeout(two, state.orchestrator.warehouse.ping()).await,
        Ok(Ok(()))
    ));
    let draining = state.draining.load(Ordering::Relaxed);
    let ok = database == "ok" && warehouse == "ok" && !draining;
    let status = if ok {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let body = serde_json::json!({
        "status": if ok { "ready" } else if draining { "draining" } else { "unavailable" },
        "checks": {
            "audit": database,
            "sessions": database,
            "warehouse": warehouse,
        },
    });
    (status, Json(body)).into_response()
}
