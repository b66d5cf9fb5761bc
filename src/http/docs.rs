//! Documentation search: `GET /api/docs/search?q=&k=` (as the caller: only
//! chunks their groups may read) and, for admins,
//! `GET /api/admin/docs/flagged` (chunks that read like instructions to a
//! model, so someone can fix the documents).

use axum::extract::{Query, State};
use axum::routing::get;
use axum::{Json, Router};
use serde::Deserialize;

use super::{ApiError, AppState, CurrentPrincipal, require_admin};

pub(super) fn router() -> Router<AppState> {
    Router::new()
        .route("/api/docs/search", get(search))
        .route("/api/admin/docs/flagged", get(flagged))
}

/// Most results one search returns.
const MAX_K: usize = 20;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Params {
    #[serde(alias = "query")]
    q: String,
    k: Option<usize>,
}

fn excerpt(text: &str, chars: usize) -> String {
    let flat = text.split_whitespace().collect::<Vec<_>>().join(" ");
    match flat.char_indices().nth(chars) {
        Some((i, _)) => format!("{}…", &flat[..i]),
        None => flat,
    }
}

async fn search(
    State(state): State<AppState>,
    CurrentPrincipal(principal): CurrentPrincipal,
    params: Result<Query<Params>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let Query(p) = params.map_err(|e| ApiError::bad_request("invalid_query", e.body_text()))?;
    let q = p.q.trim();
    if q.is_empty() {
        return Err(ApiError::bad_request("empty_query", "q must not be empty"));
    }
    if q.chars().count() > state.limits.max_question_chars {
        return Err(ApiError::bad_request(
            "query_too_long",
            format!(
                "q is longer than {} characters",
                state.limits.max_question_chars
            ),
        ));
    }
    let k = p.k.unwrap_or(5);
    if !(1..=MAX_K).contains(&k) {
        return Err(ApiError::bad_request(
            "invalid_k",
            format!("k must be between 1 and {MAX_K}"),
        ));
    }
    let docs = &state.orchestrator.docs;
    let hits = docs.search(q, &principal.acl_groups(), k).await;
    let results: Vec<_> = hits
        .iter()
        .map(|h| {
            serde_json::json!({
                "id": h.chunk.id,
                "source": h.chunk.source,
                "url": h.chunk.url,
                "title": h.chunk.title,
                "section": h.chunk.section,
                "updated": h.chunk.updated,
                "score": h.score,
                "flagged": h.chunk.suspicious,
                "snippet": excerpt(&h.chunk.text, 240),
            })
        })
        .collect();
    Ok(Json(serde_json::json!({
        "mode": docs.status().mode,
        "results": results,
    })))
}

async fn flagged(
    State(state): State<AppState>,
    CurrentPrincipal(principal): CurrentPrincipal,
) -> Result<Json<serde_json::Value>, ApiError> {
    require_admin(&state, &principal)?;
    // Text only from chunks the admin may read; for the others, where they are.
    let chunks: Vec<_> = state
        .orchestrator
        .docs
        .flagged()
        .into_iter()
        .map(|c| {
            let readable = c.readable_by(&principal.acl_groups());
            serde_json::json!({
                "id": c.id,
                "source": c.source,
                "section": c.section,
                "acl": c.acl,
                "excerpt": readable.then(|| excerpt(&c.text, 400)),
            })
        })
        .collect();
    Ok(Json(serde_json::json!({ "flagged": chunks })))
}
