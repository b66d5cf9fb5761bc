//! `POST /api/chat`: one question, one answer (or a stream of events);
//! `GET`/`DELETE /api/history`: the caller's asked questions.

use std::sync::LazyLock;

use std::convert::Infallible;
use std::sync::Arc;

use axum::extract::State;
use axum::extract::rejection::JsonRejection;
use axum::http::StatusCode;
use axum::http::{HeaderMap, header};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use rand::RngExt;
use regex::Regex;
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;

use super::{ApiError, AppState, CurrentPrincipal};
use crate::audit::Channel;
use crate::orchestrator::{Answer, progress};
use crate::policy::Principal;

/// Request body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChatRequest {
    /// The question in words.
    pub question: String,
    /// Continue a conversation (letters, digits, `-`, `_`; at most 64).
    #[serde(default)]
    pub conversation_id: Option<String>,
    /// Run every statement on the warehouse instead of serving results from
    /// the cache (admins only; others get 403).
    #[serde(default)]
    pub fresh: bool,
    /// The asker's IANA time zone, for a subscription the question asks
    /// for ("send me … every Monday at 9:00"); default UTC.
    #[serde(default)]
    pub timezone: Option<String>,
}

/// Response body: the answer plus the conversation id.
#[derive(Debug, Serialize)]
pub struct ChatResponse {
    /// Conversation id to send with follow-up questions.
    pub conversation_id: String,
    /// The answer.
    #[serde(flatten)]
    pub answer: Answer,
}

/// SQL statements typed into the chat: steward answers questions in words and
/// never runs SQL it was handed.
static SQL_TEXT: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i);\s*(drop|delete|insert|update|alter|create|truncate|attach|pragma|grant|select|exec)\b|\b(drop|truncate|alter)\s+table\b|\bdelete\s+from\b|\binsert\s+into\b|\bunion\s+(all\s+)?select\b|'\s*or\s+'?\d+'?\s*=\s*'?\d|--\s*$|/\*.*\*/")
        .expect("sql pattern compiles")
});

pub(super) fn router() -> Router<AppState> {
    Router::new().route("/api/chat", post(chat)).route(
        "/api/history",
        axum::routing::get(history).delete(clear_history),
    )
}

/// Checks a question (empty, too long, control characters, SQL text);
/// returns it trimmed.
///
/// # Errors
/// An [`ApiError`] with a 400 or 413 status.
pub fn check_question(question: &str, max_chars: usize) -> Result<&str, ApiError> {
    let q = question.trim();
    if q.is_empty() {
        return Err(ApiError::bad_request("empty_question", "ask a question"));
    }
    if q.chars().count() > max_chars {
        return Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "question_too_long",
            format!("questions are limited to {max_chars} characters"),
        ));
    }
    if q.chars().any(|c| c.is_control() && c != '\n' && c != '\t') {
        return Err(ApiError::bad_request(
            "invalid_question",
            "the question contains control characters",
        ));
    }
    if SQL_TEXT.is_match(q) {
        return Err(ApiError::bad_request(
            "sql_not_accepted",
            "steward answers questions in words; it does not run SQL typed into the chat",
        ));
    }
    Ok(q)
}

/// Adds the question to the asker's history (a failure only loses the entry).
async fn remember(
    state: &AppState,
    principal: &Principal,
    conversation: &str,
    question: &str,
    answer: &Answer,
) {
    let kind = serde_json::to_value(answer.kind)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default();
    let now = chrono::Utc::now().timestamp();
    if let Err(e) = state
        .sessions
        .record_asked(&principal.user, conversation, question, &kind, now)
        .await
    {
        tracing::warn!(error = %e, "history not recorded");
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct HistoryParams {
    limit: Option<i64>,
}

/// `GET /api/history?limit=N`: the caller's questions, newest first
/// (`{"questions": [{"conversation_id", "question", "kind", "asked_at"}]}`).
async fn history(
    State(state): State<AppState>,
    CurrentPrincipal(principal): CurrentPrincipal,
    params: Result<axum::extract::Query<HistoryParams>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let axum::extract::Query(p) =
        params.map_err(|e| ApiError::bad_request("invalid_query", e.body_text()))?;
    let limit = p.limit.unwrap_or(100);
    if !(1..=crate::session::MAX_HISTORY).contains(&limit) {
        return Err(ApiError::bad_request(
            "invalid_query",
            "limit must be 1-500",
        ));
    }
    let questions = state
        .sessions
        .history(&principal.user, limit)
        .await
        .map_err(|e| ApiError::internal("session_store", e))?;
    Ok(Json(serde_json::json!({ "questions": questions })))
}

/// `DELETE /api/history`: forgets the caller's questions (`{"cleared": n}`).
async fn clear_history(
    State(state): State<AppState>,
    CurrentPrincipal(principal): CurrentPrincipal,
) -> Result<Json<serde_json::Value>, ApiError> {
    let cleared = state
        .sessions
        .clear_history(&principal.user)
        .await
        .map_err(|e| ApiError::internal("session_store", e))?;
    Ok(Json(serde_json::json!({ "cleared": cleared })))
}

/// Whether the client asked for server-sent events.
fn wants_stream(headers: &HeaderMap) -> bool {
    headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("text/event-stream"))
}

/// Streams the answer as server-sent events
/// (<https://html.spec.whatwg.org/multipage/server-sent-events.html>):
/// `progress` events (JSON: `{"stage": "planned" | "running_sql" | …}`), then
/// `delta` events carrying the prose as it is written, then one `answer`
/// event with the same JSON body a non-streaming request gets.
fn stream_answer(
    state: AppState,
    principal: Principal,
    channel: Channel,
    conversation_id: String,
    question: String,
    fresh: bool,
    turn: tokio::sync::OwnedSemaphorePermit,
) -> Response {
    let (tx, rx) = mpsc::unbounded_channel::<Event>();
    tokio::spawn(async move {
        let _turn = turn;
        let (progress_tx, mut progress_rx) = mpsc::unbounded_channel();
        let orchestrator = Arc::clone(&state.orchestrator);
        // Boxed: the answer's future is large, and a stack frame holding it
        // (in `select!` below) would be too.
        let answering = Box::pin(progress::with_progress(
            progress_tx,
            orchestrator.ask_fresh_in(&principal, channel, &conversation_id, &question, fresh),
        ));
        let forward = async {
            while let Some(p) = progress_rx.recv().await {
                if let Ok(e) = Event::default().event("progress").json_data(&p) {
                    let _ = tx.send(e);
                }
            }
        };
        // A client that went away (the event stream was dropped) gets no
        // answer, so the work stops: no more model calls or statements.
        let both = Box::pin(async { tokio::join!(answering, forward) });
        let answer = tokio::select! {
            (answer, ()) = both => answer,
            () = tx.closed() => {
                tracing::info!("client disconnected; answer abandoned");
                return;
            }
        };
        let answer = match answer {
            Ok(a) => a,
            Err(e) => {
                let e = ApiError::from_ask(e);
                let body = serde_json::json!({"error": {
                    "code": e.code,
                    "message": e.message,
                    "retry_after": e.retry_after,
                }});
                let _ = tx.send(Event::default().event("error").data(body.to_string()));
                return;
            }
        };
        remember(&state, &principal, &conversation_id, &question, &answer).await;
        let words: Vec<&str> = answer.answer.split_inclusive(' ').collect();
        for chunk in words.chunks(8) {
            let _ = tx.send(Event::default().event("delta").data(chunk.concat()));
        }
        if let Ok(e) = Event::default().event("answer").json_data(ChatResponse {
            conversation_id,
            answer,
        }) {
            let _ = tx.send(e);
        }
    });
    let events = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|e| (Ok::<_, Infallible>(e), rx))
    });
    Sse::new(events)
        .keep_alive(KeepAlive::default())
        .into_response()
}

async fn chat(
    State(state): State<AppState>,
    CurrentPrincipal(principal): CurrentPrincipal,
    headers: HeaderMap,
    body: Result<Json<ChatRequest>, JsonRejection>,
) -> Result<Response, ApiError> {
    let Json(req) = body?;
    let channel = super::channel_of(&headers);
    let question = check_question(&req.question, state.limits.max_question_chars)?;
    if req.fresh {
        super::require_admin(&state, &principal)?;
    }
    state.questions.check(&principal.user)?;
    if let Some(request) = crate::subscriptions::from_chat(
        &state.orchestrator.semantic,
        question,
        req.timezone.clone(),
    ) {
        let answer = crate::subscriptions::answer_request(
            &crate::subscriptions::SubscriptionStore::new(state.sessions.clone()),
            &state.orchestrator.semantic,
            crate::subscriptions::Actor {
                principal: &principal,
                channel: super::channel_of(&headers),
                audit: &state.orchestrator.audit,
            },
            request,
            state.limits.max_question_chars,
            state.slack.is_some(),
            chrono::Utc::now().timestamp(),
        )
        .await;
        let conversation_id = format!("{:032x}", rand::rng().random::<u128>());
        let body = ChatResponse {
            conversation_id,
            answer,
        };
        if wants_stream(&headers) {
            let event = Event::default()
                .event("answer")
                .json_data(&body)
                .map_err(|e| ApiError::internal("stream", e))?;
            let events = futures_util::stream::iter([Ok::<_, Infallible>(event)]);
            return Ok(Sse::new(events).into_response());
        }
        return Ok(Json(body).into_response());
    }
    let turn = state.admission.admit().await?;
    let conversation_id = match req.conversation_id {
        Some(id)
            if id.len() <= 64
                && !id.is_empty()
                && id
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_') =>
        {
            id
        }
        Some(_) => {
            return Err(ApiError::bad_request(
                "invalid_conversation_id",
                "conversation_id must be 1-64 letters, digits, - or _",
            ));
        }
        None => format!("{:032x}", rand::rng().random::<u128>()),
    };
    if wants_stream(&headers) {
        return Ok(stream_answer(
            state,
            principal,
            channel,
            conversation_id,
            question.to_owned(),
            req.fresh,
            turn,
        ));
    }
    let answer = state
        .orchestrator
        .ask_fresh_in(&principal, channel, &conversation_id, question, req.fresh)
        .await
        .map_err(ApiError::from_ask)?;
    drop(turn);
    remember(&state, &principal, &conversation_id, question, &answer).await;
    Ok(Json(ChatResponse {
        conversation_id,
        answer,
    })
    .into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sql_injection_text_is_refused_but_questions_pass() {
        for bad in [
            "'; DROP TABLE customers; --",
            "1' OR '1'='1",
            "x UNION SELECT contact_email FROM customers",
            "DELETE FROM events",
        ] {
            assert!(check_question(bad, 2000).is_err(), "{bad}");
        }
        for ok in [
            "Which table has churn dates?",
            "Why did signups drop last Tuesday?",
            "update me on revenue",
        ] {
            assert!(check_question(ok, 2000).is_ok(), "{ok}");
        }
    }

    #[test]
    fn empty_and_long_questions_are_refused() {
        assert_eq!(
            check_question("   ", 10).unwrap_err().code,
            "empty_question"
        );
        assert_eq!(
            check_question(&"a".repeat(11), 10).unwrap_err().code,
            "question_too_long"
        );
    }
}
