//! Slack endpoints (see [`crate::slack`]):
//!
//! - `POST /slack/events` (Events API): `url_verification` answered with its
//!   `challenge`; `event_callback` with `app_mention`, or `message` in a
//!   direct message, acknowledged at once (200, empty) and answered in the
//!   background; retries (same `event_id`) acknowledged without a second answer.
//! - `POST /slack/commands` (slash command such as `/ask`, form-encoded):
//!   acknowledged at once with an ephemeral "looking into it", answered
//!   through the command's `response_url`.
//! - `POST /slack/interactions` (interactivity, `payload=` JSON): the
//!   feedback buttons under an answer, recorded as the presser's feedback
//!   (only on their own answers) and confirmed through `response_url`.
//!
//! All verify Slack's signature on the raw body first (401 when missing,
//! forged, older than five minutes, or replayed); bodies over 64 KiB are 413;
//! 404 while `slack.enabled` is off.

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use super::{ApiError, AppState};
use crate::slack::reply::{self, Destination, SlackQuestion};
use crate::slack::{Slack, verify};

/// Largest accepted Slack request body, bytes (Slack's payloads are a few KiB).
pub const MAX_SLACK_BODY: usize = 64 * 1024;
/// How long request signatures and event ids are remembered, seconds (longer
/// than Slack's retry schedule and the signature's five-minute window).
const REMEMBER_SECS: i64 = 3600;

pub(super) fn router() -> Router<AppState> {
    Router::new()
        .route("/slack/events", post(events))
        .route("/slack/commands", post(commands))
        .route("/slack/interactions", post(interactions))
}

/// Slack's interactivity request (`payload=` JSON, form-encoded): the
/// feedback buttons under an answer. Acknowledged at once; the feedback is
/// recorded in a task and its outcome posted to the `response_url`, seen
/// by the presser only. Other interactions are acknowledged and ignored.
async fn interactions(State(state): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    let result = async {
        let slack = verified(&state, &headers, &body).await?;
        let payload: Value = url::form_urlencoded::parse(&body)
            .find(|(k, _)| k == "payload")
            .and_then(|(_, v)| serde_json::from_str(&v).ok())
            .ok_or_else(|| ApiError::bad_request("invalid_request", "expected payload=JSON"))?;
        if str_of(&payload, "type") != "block_actions" {
            return Ok(StatusCode::OK.into_response());
        }
        if !team_allowed(slack, str_of(&payload["team"], "id")) {
            return Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "forbidden",
                "unknown workspace",
            ));
        }
        let action = &payload["actions"][0];
        let rating = match str_of(action, "action_id") {
            crate::slack::blocks::FEEDBACK_UP => crate::review::Rating::Up,
            crate::slack::blocks::FEEDBACK_DOWN => crate::review::Rating::Down,
            _ => return Ok(StatusCode::OK.into_response()),
        };
        let (user, event, response_url) = (
            str_of(&payload["user"], "id"),
            str_of(action, "value"),
            str_of(&payload, "response_url"),
        );
        if user.is_empty() || event.is_empty() || event.len() > 64 {
            return Err(ApiError::bad_request(
                "invalid_request",
                "expected a button press with a user and a value",
            ));
        }
        check_response_url(slack, response_url)?;
        tokio::spawn(reply::feedback(
            Arc::clone(slack),
            state.sessions.clone(),
            Arc::clone(&state.orchestrator),
            user.to_owned(),
            event.to_owned(),
            rating,
            Destination::ResponseUrl {
                url: response_url.to_owned(),
                public: false,
            },
        ));
        Ok(StatusCode::OK.into_response())
    }
    .await;
    result.unwrap_or_else(IntoResponse::into_response)
}

fn unauthorized(why: &str) -> ApiError {
    tracing::warn!(reason = why, "slack request refused");
    ApiError::new(
        StatusCode::UNAUTHORIZED,
        "invalid_signature",
        why.to_owned(),
    )
}

/// The Slack app, once the request is proven to be Slack's and new.
async fn verified<'a>(
    state: &'a AppState,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<&'a Arc<Slack>, ApiError> {
    let slack = state
        .slack
        .as_ref()
        .ok_or_else(|| ApiError::new(StatusCode::NOT_FOUND, "not_found", "Slack is not enabled"))?;
    if body.len() > MAX_SLACK_BODY {
        return Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "body_too_large",
            "the request body is too large",
        ));
    }
    let header = |name: &'static str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .ok_or_else(|| unauthorized(&format!("missing {name} header")))
    };
    let timestamp = header("x-slack-request-timestamp")?;
    let signature = header("x-slack-signature")?;
    let now = chrono::Utc::now().timestamp();
    use secrecy::ExposeSecret;
    verify(
        slack.signing_secret.expose_secret().as_bytes(),
        timestamp,
        body,
        signature,
        now,
    )
    .map_err(|e| unauthorized(&e.to_string()))?;
    // The signature verified, so it is `v0=` and hex; hex decoding ignores
    // case, so the replay check must too (`V0=` / `A2114D…` is the same one).
    let seen_as = signature.trim().to_ascii_lowercase();
    let fresh = state
        .sessions
        .first_seen("slack-signature", &seen_as, now, REMEMBER_SECS)
        .await
        .map_err(|e| ApiError::internal("session_store", e))?;
    if !fresh {
        return Err(unauthorized("replayed request"));
    }
    Ok(slack)
}

/// 400 unless `url` is under `slack.response_url_prefix` (steward posts
/// only to Slack's hooks, never to a URL a request names).
fn check_response_url(slack: &Slack, url: &str) -> Result<(), ApiError> {
    if url.starts_with(&slack.settings.response_url_prefix) {
        Ok(())
    } else {
        Err(ApiError::bad_request(
            "invalid_request",
            "response_url is not a Slack URL",
        ))
    }
}

/// A conversation id per Slack thread and user (ids allow only `[A-Za-z0-9_-]`).
fn conversation_id(parts: &[&str]) -> String {
    let digest = Sha256::digest(parts.join("\u{1f}").as_bytes());
    format!("slack-{}", &hex::encode(digest)[..32])
}

fn spawn_answer(state: &AppState, slack: &Arc<Slack>, q: SlackQuestion) {
    tokio::spawn(reply::answer(
        Arc::clone(slack),
        state.sessions.clone(),
        Arc::clone(&state.orchestrator),
        Arc::clone(&state.questions),
        state.limits.max_question_chars,
        q,
    ));
}

fn str_of<'a>(v: &'a Value, key: &str) -> &'a str {
    v[key].as_str().unwrap_or_default()
}

async fn events(State(state): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    let result = async {
        let slack = verified(&state, &headers, &body).await?;
        let payload: Value = serde_json::from_slice(&body)
            .map_err(|_| ApiError::bad_request("invalid_json", "the body is not JSON"))?;
        match str_of(&payload, "type") {
            "url_verification" => {
                let challenge = str_of(&payload, "challenge");
                if challenge.is_empty() || challenge.len() > 256 {
                    return Err(ApiError::bad_request("invalid_request", "bad challenge"));
                }
                return Ok(axum::Json(json!({ "challenge": challenge })).into_response());
            }
            "event_callback" => {}
            _ => return Ok(StatusCode::OK.into_response()),
        }
        if !team_allowed(slack, str_of(&payload, "team_id")) {
            return Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "forbidden",
                "unknown workspace",
            ));
        }
        let event_id = str_of(&payload, "event_id");
        let now = chrono::Utc::now().timestamp();
        let first = state
            .sessions
            .first_seen("slack-event", event_id, now, REMEMBER_SECS)
            .await
            .map_err(|e| ApiError::internal("session_store", e))?;
        if !first || event_id.is_empty() {
            // A retry of an event already being answered (or no id to tell).
            return Ok(StatusCode::OK.into_response());
        }
        if let Some(q) = question_of(slack, &payload) {
            spawn_answer(&state, slack, q);
        }
        Ok(StatusCode::OK.into_response())
    }
    .await;
    result.unwrap_or_else(IntoResponse::into_response)
}

fn team_allowed(slack: &Slack, team: &str) -> bool {
    slack.settings.allowed_teams.is_empty()
        || slack.settings.allowed_teams.iter().any(|t| t == team)
}

/// The question in an `event_callback`, if it is one steward answers: an
/// `app_mention`, or a user's message in a direct message. Bot messages,
/// edits and other subtypes are ignored (so steward never answers itself).
fn question_of(slack: &Slack, payload: &Value) -> Option<SlackQuestion> {
    let event = &payload["event"];
    if event.get("bot_id").is_some() || event.get("subtype").is_some() {
        return None;
    }
    let (channel, user, ts) = (
        str_of(event, "channel"),
        str_of(event, "user"),
        str_of(event, "ts"),
    );
    if channel.is_empty() || user.is_empty() || ts.is_empty() {
        return None;
    }
    let thread_ts = event["thread_ts"].as_str().unwrap_or(ts).to_owned();
    let direct = str_of(event, "type") == "message" && str_of(event, "channel_type") == "im";
    let destination = match str_of(event, "type") {
        "app_mention" if !slack.settings.public_answers => Destination::Ephemeral {
            channel: channel.to_owned(),
            user: user.to_owned(),
            thread_ts: thread_ts.clone(),
        },
        "app_mention" => Destination::Thread {
            channel: channel.to_owned(),
            thread_ts: thread_ts.clone(),
        },
        _ if direct => Destination::Thread {
            channel: channel.to_owned(),
            thread_ts: thread_ts.clone(),
        },
        _ => return None,
    };
    let team = str_of(payload, "team_id");
    Some(SlackQuestion {
        user: user.to_owned(),
        text: reply::plain_text(str_of(event, "text")),
        conversation: conversation_id(&[team, channel, &thread_ts, user]),
        channel: (!direct).then(|| channel.to_owned()),
        destination,
    })
}

async fn commands(State(state): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    let result = async {
        let slack = verified(&state, &headers, &body).await?;
        let form: std::collections::HashMap<String, String> =
            url::form_urlencoded::parse(&body).into_owned().collect();
        let field = |k: &str| form.get(k).map(String::as_str).unwrap_or_default();
        let (user, channel, team) = (field("user_id"), field("channel_id"), field("team_id"));
        let response_url = field("response_url");
        if user.is_empty() || channel.is_empty() || response_url.is_empty() {
            return Err(ApiError::bad_request(
                "invalid_request",
                "expected a slash command with user_id, channel_id and response_url",
            ));
        }
        check_response_url(slack, response_url)?;
        if !team_allowed(slack, team) {
            return Err(ApiError::new(StatusCode::FORBIDDEN, "forbidden", "unknown workspace"));
        }
        let text = reply::plain_text(field("text"));
        let command = field("command");
        if text.is_empty() {
            return Ok(axum::Json(json!({
                "response_type": "ephemeral",
                "text": format!("Ask me a question about our data, e.g. `{command} What was DAU last week vs the week before?`"),
            }))
            .into_response());
        }
        spawn_answer(
            &state,
            slack,
            SlackQuestion {
                user: user.to_owned(),
                text,
                conversation: conversation_id(&[team, channel, user, "command"]),
                channel: Some(channel.to_owned()),
                destination: Destination::ResponseUrl {
                    url: response_url.to_owned(),
                    public: slack.settings.public_answers,
                },
            },
        );
        Ok(axum::Json(json!({"response_type": "ephemeral", "text": "Looking into it…"})).into_response())
    }
    .await;
    result.unwrap_or_else(IntoResponse::into_response)
}
