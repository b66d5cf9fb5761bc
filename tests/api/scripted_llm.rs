//! A scripted OpenAI-compatible chat-completions server for tests that need
//! a model to misbehave on cue (invent numbers, write SQL the guard rejects,
//! emit malformed plans). It replays the given replies in order and records
//! every request it receives. Tests of the real model are in `llm_live.rs`.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde_json::{Value, json};

/// One scripted reply.
#[derive(Clone, Debug)]
pub enum Reply {
    /// Text content (a JSON plan in JSON mode, or prose).
    Text(String),
    /// A native tool call.
    Call(&'static str, Value),
    /// An HTTP error status.
    Status(u16),
    /// The same reply, after a pause in milliseconds.
    Delayed(u64, Box<Reply>),
}

/// A plan step as JSON text.
pub fn step(v: Value) -> Reply {
    Reply::Text(v.to_string())
}

/// A `run_sql` step.
pub fn sql(statement: &str) -> Reply {
    step(json!({"tool": "run_sql", "sql": statement}))
}

#[derive(Clone)]
struct Script {
    replies: Arc<Mutex<VecDeque<Reply>>>,
    /// Replies to requests asking for several choices (`n` > 1), each
    /// reply's texts one choice; kept apart because such requests race
    /// the greedy one.
    samples: Arc<Mutex<VecDeque<Vec<String>>>>,
    requests: Arc<Mutex<Vec<Value>>>,
}

/// The running server.
pub struct ScriptedLlm {
    /// Base URL including `/v1`.
    pub url: String,
    requests: Arc<Mutex<Vec<Value>>>,
    replies: Arc<Mutex<VecDeque<Reply>>>,
}

impl ScriptedLlm {
    /// Requests received so far (JSON bodies).
    pub fn requests(&self) -> Vec<Value> {
        self.requests.lock().unwrap().clone()
    }

    /// Replies not yet used.
    pub fn left(&self) -> usize {
        self.replies.lock().unwrap().len()
    }
}

/// The demo app with `llm` as its model on `path`, no retries, then `tune`.
pub async fn demo_app(
    llm: &ScriptedLlm,
    path: steward::llm::LlmPath,
    tune: impl FnOnce(&mut steward::settings::Settings),
) -> crate::helpers::TestApp {
    let mut s = crate::helpers::demo_settings();
    s.llm.url = Some(llm.url.clone());
    s.llm.model = "scripted".into();
    s.llm.max_retries = 0;
    s.llm.path = path;
    tune(&mut s);
    crate::helpers::spawn(s).await
}

/// Starts a server that answers with `replies`, in order; once they run out
/// it answers HTTP 500.
pub async fn start(replies: Vec<Reply>) -> ScriptedLlm {
    start_with_samples(replies, Vec::new()).await
}

/// As [`start`]; requests with `n` > 1 are answered from `samples` instead,
/// one entry per request, each text one choice.
pub async fn start_with_samples(replies: Vec<Reply>, samples: Vec<Vec<&str>>) -> ScriptedLlm {
    let samples: VecDeque<Vec<String>> = samples
        .into_iter()
        .map(|s| s.into_iter().map(str::to_owned).collect())
        .collect();
    let script = Script {
        replies: Arc::new(Mutex::new(replies.into())),
        samples: Arc::new(Mutex::new(samples)),
        requests: Arc::default(),
    };
    let app = axum::Router::new()
        .route("/v1/chat/completions", post(complete))
        .with_state(script.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move { axum::serve(listener, app).await });
    ScriptedLlm {
        url: format!("http://127.0.0.1:{port}/v1"),
        requests: script.requests,
        replies: script.replies,
    }
}

async fn complete(State(script): State<Script>, Json(body): Json<Value>) -> Response {
    let stream = body["stream"].as_bool().unwrap_or(false);
    let n = body["n"].as_u64().unwrap_or(1);
    script.requests.lock().unwrap().push(body);
    let usage = json!({"prompt_tokens": 100, "completion_tokens": 10, "total_tokens": 110});
    if n > 1 {
        let Some(texts) = script.samples.lock().unwrap().pop_front() else {
            return (StatusCode::INTERNAL_SERVER_ERROR, "samples exhausted").into_response();
        };
        let choices: Vec<Value> = texts
            .iter()
            .enumerate()
            .map(|(i, t)| json!({"index": i, "message": {"role": "assistant", "content": t}, "finish_reason": "stop"}))
            .collect();
        return Json(json!({
            "id": "c", "object": "chat.completion", "created": 1, "model": "scripted",
            "choices": choices, "usage": usage,
        }))
        .into_response();
    }
    let Some(mut reply) = script.replies.lock().unwrap().pop_front() else {
        return (StatusCode::INTERNAL_SERVER_ERROR, "script exhausted").into_response();
    };
    while let Reply::Delayed(ms, inner) = reply {
        tokio::time::sleep(std::time::Duration::from_millis(ms)).await;
        reply = *inner;
    }
    let message = match reply {
        Reply::Status(code) => {
            return (
                StatusCode::from_u16(code).unwrap(),
                Json(json!({"error": {"message": "scripted failure", "type": "server_error"}})),
            )
                .into_response();
        }
        Reply::Text(text) if stream => {
            let mut body = String::new();
            for piece in text.split_inclusive(' ') {
                let chunk = json!({
                    "id": "c", "object": "chat.completion.chunk", "created": 1, "model": "scripted",
                    "choices": [{"index": 0, "delta": {"content": piece}, "finish_reason": null}],
                });
                body.push_str(&format!("data: {chunk}\n\n"));
            }
            let last = json!({
                "id": "c", "object": "chat.completion.chunk", "created": 1, "model": "scripted",
                "choices": [], "usage": usage,
            });
            body.push_str(&format!("data: {last}\n\ndata: [DONE]\n\n"));
            return ([("content-type", "text/event-stream")], body).into_response();
        }
        Reply::Text(text) => json!({"role": "assistant", "content": text}),
        Reply::Call(name, args) => json!({
            "role": "assistant",
            "content": null,
            "tool_calls": [{"id": "call_1", "type": "function",
                            "function": {"name": name, "arguments": args.to_string()}}],
        }),
        Reply::Delayed(..) => unreachable!("unwrapped above"),
    };
    Json(json!({
        "id": "c", "object": "chat.completion", "created": 1, "model": "scripted",
        "choices": [{"index": 0, "message": message, "finish_reason": "stop"}],
        "usage": usage,
    }))
    .into_response()
}
