//! Boards of saved answers over HTTP (see [`crate::boards`]):
//! - `GET /api/boards` → `{"boards": […]}`: the caller's boards, then shared ones.
//! - `POST /api/boards` `{"name", "shared"?}` → 201 the board; 400 `invalid_board`.
//! - `GET /api/boards/{id}` → `{"board", "pins": […]}` (questions, no answers).
//! - `DELETE /api/boards/{id}` → 204 (owner or admin).
//! - `POST /api/boards/{id}/pins` `{"question"}` → 201 the pin (owner only).
//! - `DELETE /api/boards/{id}/pins/{pin}` → 204 (owner only).
//! - `POST /api/boards/{id}/pins/{pin}/run` → `{"pin", "answer"}`: the pin's
//!   question asked now under the caller's grants (result cache when fresh;
//!   `answer.as_of` and `answer.cached` say how old), audited like a chat
//!   question and counted against the caller's question rate.
//!
//! Someone else's personal board, or a pin on it, is 404; a shared board
//! someone else owns is 403 to change.

use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use serde::Deserialize;

use super::{ApiError, AppState, CurrentPrincipal, check_question, record_action, require_admin};
use crate::audit::{Cause, EventKind};
use crate::boards::{Board, BoardError, BoardStore, NewBoard, Pin};

pub(super) fn router() -> Router<AppState> {
    Router::new()
        .route("/api/boards", get(list).post(create))
        .route("/api/boards/{id}", get(open).delete(remove))
        .route("/api/boards/{id}/pins", post(add_pin))
        .route("/api/boards/{id}/pins/{pin}", delete(remove_pin))
        .route("/api/boards/{id}/pins/{pin}/run", post(run_pin))
}

fn store(state: &AppState) -> BoardStore {
    BoardStore::new(state.sessions.clone())
}

impl From<BoardError> for ApiError {
    fn from(e: BoardError) -> ApiError {
        match e {
            BoardError::NotFound => {
                ApiError::new(StatusCode::NOT_FOUND, "not_found", e.to_string())
            }
            BoardError::Forbidden => {
                ApiError::new(StatusCode::FORBIDDEN, "forbidden", e.to_string())
            }
            BoardError::Invalid(why) => ApiError::bad_request("invalid_board", why),
            BoardError::Database(e) => ApiError::internal("board_store", e),
        }
    }
}

async fn list(
    State(state): State<AppState>,
    CurrentPrincipal(principal): CurrentPrincipal,
) -> Result<Json<serde_json::Value>, ApiError> {
    let boards = store(&state).visible(&principal).await?;
    Ok(Json(serde_json::json!({ "boards": boards })))
}

async fn create(
    State(state): State<AppState>,
    CurrentPrincipal(principal): CurrentPrincipal,
    headers: HeaderMap,
    body: Result<Json<NewBoard>, JsonRejection>,
) -> Result<(StatusCode, Json<Board>), ApiError> {
    let Json(req) = body?;
    let now = chrono::Utc::now().timestamp();
    let board = store(&state).create(&principal, req, now).await?;
    let detail =
        serde_json::json!({ "board": board.id, "name": board.name, "shared": board.shared });
    record_action(
        &state,
        &principal,
        &headers,
        EventKind::Board,
        "created",
        &board.id,
        detail,
    )
    .await?;
    Ok((StatusCode::CREATED, Json(board)))
}

async fn open(
    State(state): State<AppState>,
    CurrentPrincipal(principal): CurrentPrincipal,
    Path(id): Path<String>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let (board, pins) = store(&state).pins(&principal, &id).await?;
    Ok(Json(serde_json::json!({ "board": board, "pins": pins })))
}

async fn remove(
    State(state): State<AppState>,
    CurrentPrincipal(principal): CurrentPrincipal,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let admin = require_admin(&state, &principal).is_ok();
    store(&state).delete(&principal, &id, admin).await?;
    let detail = serde_json::json!({ "board": id });
    record_action(
        &state,
        &principal,
        &headers,
        EventKind::Board,
        "deleted",
        &id,
        detail,
    )
    .await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct NewPin {
    question: String,
}

async fn add_pin(
    State(state): State<AppState>,
    CurrentPrincipal(principal): CurrentPrincipal,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Result<Json<NewPin>, JsonRejection>,
) -> Result<(StatusCode, Json<Pin>), ApiError> {
    let Json(req) = body?;
    let question = check_question(&req.question, state.limits.max_question_chars)?;
    let now = chrono::Utc::now().timestamp();
    let pin = store(&state)
        .add_pin(&principal, &id, question, now)
        .await?;
    let detail =
        serde_json::json!({ "board": pin.board_id, "pin": pin.id, "question": pin.question });
    record_action(
        &state,
        &principal,
        &headers,
        EventKind::Board,
        "created",
        &pin.id,
        detail,
    )
    .await?;
    Ok((StatusCode::CREATED, Json(pin)))
}

async fn remove_pin(
    State(state): State<AppState>,
    CurrentPrincipal(principal): CurrentPrincipal,
    headers: HeaderMap,
    Path((id, pin)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    store(&state).remove_pin(&principal, &id, &pin).await?;
    let detail = serde_json::json!({ "board": id, "pin": pin });
    record_action(
        &state,
        &principal,
        &headers,
        EventKind::Board,
        "deleted",
        &pin,
        detail,
    )
    .await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn run_pin(
    State(state): State<AppState>,
    CurrentPrincipal(principal): CurrentPrincipal,
    Path((id, pin)): Path<(String, String)>,
    headers: HeaderMap,
) -> Result<Json<serde_json::Value>, ApiError> {
    let pin = store(&state).pin(&principal, &id, &pin).await?;
    state.questions.check(&principal.user)?;
    let turn = state.admission.admit().await?;
    // The pin's run is the viewer's own question, attributed to the pin.
    let cause = Cause {
        user: principal.user.clone(),
        channel: super::channel_of(&headers),
        purpose: "board".into(),
        parent: Some(pin.id.clone()),
    };
    let answer = state
        .orchestrator
        .ask_caused(&principal, &cause, None, &pin.question)
        .await
        .map_err(ApiError::from_ask)?;
    drop(turn);
    Ok(Json(serde_json::json!({ "pin": pin, "answer": answer })))
}
