//! Slack's Events API and slash command against a local capture server that
//! stands in for Slack's Web API and `response_url` hooks (Slack itself
//! cannot be reached from here): signature checks, retries, the immediate
//! acknowledgement, Block Kit answers, and Slack users mapped to principals
//! through the identity directory.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::routing::{get, post};
use hmac::{Hmac, KeyInit, Mac};
use serde_json::{Value, json};
use sha2::Sha256;
use steward::session::{DirectoryEntry, SessionStore};
use steward::settings::Settings;

use crate::helpers::{TestApp, demo_settings, fresh_index_dir, spawn};

pub const SIGNING_SECRET: &str = "test-signing-secret-0123456789";
const BOT_TOKEN: &str = "xoxb-test-bot-token";

/// One request the capture server received.
#[derive(Debug, Clone)]
pub struct Call {
    pub path: String,
    pub authorization: Option<String>,
    pub body: Value,
}

#[derive(Clone)]
struct CaptureState {
    calls: Arc<Mutex<Vec<Call>>>,
    /// Slack user id → `users.info` user object.
    users: Arc<Mutex<HashMap<String, Value>>>,
    /// Held `users.info` calls wait for this.
    gate: Arc<tokio::sync::Semaphore>,
    /// Channel id → member ids (`conversations.members`).
    channels: Arc<Mutex<HashMap<String, Vec<String>>>>,
}

/// steward's own bot user, as `auth.test` reports it.
pub const BOT_USER: &str = "UBOTSTEWARD";

/// The stand-in for Slack.
pub struct Capture {
    pub base: String,
    state: CaptureState,
}

fn record(s: &CaptureState, path: String, headers: &HeaderMap, body: Value) {
    s.calls.lock().unwrap().push(Call {
        path,
        authorization: headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned),
        body,
    });
}

async fn users_info(
    State(s): State<CaptureState>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> axum::Json<Value> {
    let id = q.get("user").cloned().unwrap_or_default();
    record(&s, "users.info".into(), &headers, json!({ "user": id }));
    if id.starts_with("UHOLD") {
        let _ = s.gate.acquire().await.map(|p| p.forget());
    }
    let user = s.users.lock().unwrap().get(&id).cloned();
    axum::Json(match user {
        Some(u) => json!({"ok": true, "user": u}),
        None => json!({"ok": false, "error": "user_not_found"}),
    })
}

/// `conversations.members`, two members per page so the cursor is followed.
async fn members(
    State(s): State<CaptureState>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> axum::Json<Value> {
    let id = q.get("channel").cloned().unwrap_or_default();
    record(
        &s,
        "conversations.members".into(),
        &headers,
        json!({ "channel": id }),
    );
    let Some(all) = s.channels.lock().unwrap().get(&id).cloned() else {
        return axum::Json(json!({"ok": false, "error": "channel_not_found"}));
    };
    let from: usize = q.get("cursor").and_then(|c| c.parse().ok()).unwrap_or(0);
    let page: Vec<&String> = all.iter().skip(from).take(2).collect();
    let next = if from + 2 < all.len() {
        (from + 2).to_string()
    } else {
        String::new()
    };
    axum::Json(json!({"ok": true, "members": page, "response_metadata": {"next_cursor": next}}))
}

async fn auth_test(State(s): State<CaptureState>, headers: HeaderMap) -> axum::Json<Value> {
    record(&s, "auth.test".into(), &headers, Value::Null);
    axum::Json(json!({"ok": true, "user_id": BOT_USER}))
}

async fn api_method(
    State(s): State<CaptureState>,
    Path(method): Path<String>,
    headers: HeaderMap,
    body: String,
) -> axum::Json<Value> {
    record(
        &s,
        method,
        &headers,
        serde_json::from_str(&body).unwrap_or(Value::Null),
    );
    axum::Json(json!({"ok": true}))
}

async fn hook(
    State(s): State<CaptureState>,
    Path(rest): Path<String>,
    headers: HeaderMap,
    body: String,
) -> &'static str {
    record(
        &s,
        format!("hooks/{rest}"),
        &headers,
        serde_json::from_str(&body).unwrap_or(Value::Null),
    );
    "ok"
}

impl Capture {
    pub async fn start() -> Capture {
        let state = CaptureState {
            calls: Arc::default(),
            users: Arc::default(),
            gate: Arc::new(tokio::sync::Semaphore::new(0)),
            channels: Arc::default(),
        };
        let app = Router::new()
            .route("/api/users.info", get(users_info))
            .route("/api/conversations.members", get(members))
            .route("/api/auth.test", get(auth_test))
            .route("/api/{method}", post(api_method))
            .route("/hooks/{*rest}", post(hook))
            .with_state(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://127.0.0.1:{}", listener.local_addr().unwrap().port());
        tokio::spawn(async move { axum::serve(listener, app).await });
        Capture { base, state }
    }

    /// A Slack user as `users.info` describes them.
    pub fn user(&self, id: &str, email: &str, confirmed: bool) {
        self.state.users.lock().unwrap().insert(
            id.into(),
            json!({"id": id, "deleted": false, "is_bot": false, "is_email_confirmed": confirmed,
                   "profile": {"email": email, "real_name": id}}),
        );
    }

    /// A channel and its members.
    pub fn channel(&self, id: &str, members: &[&str]) {
        self.state
            .channels
            .lock()
            .unwrap()
            .insert(id.into(), members.iter().map(|m| (*m).to_owned()).collect());
    }

    pub fn set_user(&self, id: &str, user: Value) {
        self.state.users.lock().unwrap().insert(id.into(), user);
    }

    pub fn calls(&self) -> Vec<Call> {
        self.state.calls.lock().unwrap().clone()
    }

    /// How many calls to `path` (a Web API method) were made so far.
    pub fn count(&self, path: &str) -> usize {
        self.state
            .calls
            .lock()
            .unwrap()
            .iter()
            .filter(|c| c.path == path)
            .count()
    }

    /// Waits (up to 60 s) for the `n`th (from 0) call to `path`.
    pub async fn nth(&self, path: &str, n: usize) -> Call {
        self.nth_matching(n, |c| c.path == path).await
    }

    /// Waits (up to 60 s) for the `n`th (from 0) call for which `pick` holds.
    pub async fn nth_matching(&self, n: usize, pick: impl Fn(&Call) -> bool) -> Call {
        for _ in 0..600 {
            if let Some(c) = self.calls().into_iter().filter(|c| pick(c)).nth(n) {
                return c;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("no matching call {n}; calls: {:?}", self.calls());
    }

    /// Lets held `users.info` calls (users `UHOLD…`) return.
    pub fn release(&self) {
        self.state.gate.add_permits(100);
    }

    /// Waits (up to 60 s) for a delivered message (`chat.*` or a hook) for which `pick` holds.
    pub async fn delivered(&self, pick: impl Fn(&Call) -> bool) -> Call {
        for _ in 0..600 {
            if let Some(c) = self
                .calls()
                .into_iter()
                .find(|c| (c.path.starts_with("chat.") || c.path.starts_with("hooks/")) && pick(c))
            {
                return c;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("nothing delivered; calls: {:?}", self.calls());
    }
}

/// Turns Slack on in `s`, pointed at `capture`, with secrets in files.
pub fn with_slack(s: &mut Settings, capture: &Capture) {
    let dir = fresh_index_dir();
    std::fs::create_dir_all(&dir).unwrap();
    let secret = dir.join("slack-signing-secret");
    let token = dir.join("slack-bot-token");
    std::fs::write(&secret, format!("{SIGNING_SECRET}\n")).unwrap();
    std::fs::write(&token, BOT_TOKEN).unwrap();
    s.slack.enabled = true;
    s.slack.api_base_url = format!("{}/api", capture.base);
    s.slack.response_url_prefix = format!("{}/hooks/", capture.base);
    s.slack.signing_secret_file = Some(secret);
    s.slack.bot_token_file = Some(token);
    s.slack.sign_in_url = Some("https://steward.example.com/auth/login".into());
}

pub fn sign(body: &str, ts: i64) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(SIGNING_SECRET.as_bytes()).unwrap();
    mac.update(format!("v0:{ts}:{body}").as_bytes());
    format!("v0={}", hex::encode(mac.finalize().into_bytes()))
}

/// POSTs a body to a Slack endpoint, signed now.
pub async fn post_signed(base: &str, path: &str, body: &str, form: bool) -> reqwest::Response {
    let ts = chrono::Utc::now().timestamp();
    post_raw(base, path, body, form, &ts.to_string(), &sign(body, ts)).await
}

async fn post_raw(
    base: &str,
    path: &str,
    body: &str,
    form: bool,
    ts: &str,
    signature: &str,
) -> reqwest::Response {
    let kind = if form {
        "application/x-www-form-urlencoded"
    } else {
        "application/json"
    };
    reqwest::Client::new()
        .post(format!("{base}{path}"))
        .header("content-type", kind)
        .header("x-slack-request-timestamp", ts)
        .header("x-slack-signature", signature)
        .body(body.to_owned())
        .send()
        .await
        .unwrap()
}

pub fn mention(event_id: &str, user: &str, text: &str, channel_type: &str) -> String {
    let kind = if channel_type == "im" {
        "message"
    } else {
        "app_mention"
    };
    json!({
        "type": "event_callback", "team_id": "T1", "event_id": event_id,
        "event": {"type": kind, "channel_type": channel_type, "user": user, "text": text,
                  "ts": "1700000000.000100", "channel": if channel_type == "im" { "D1" } else { "C1" }}
    })
    .to_string()
}

struct Setup {
    app: TestApp,
    capture: Capture,
}

/// steward with Slack on; the directory knows alice (analyst) and carol (compliance).
async fn setup(tweak: impl FnOnce(&mut Settings)) -> Setup {
    let capture = Capture::start().await;
    let mut s = demo_settings();
    with_slack(&mut s, &capture);
    tweak(&mut s);
    let store = SessionStore::connect(&s.sessions).await.unwrap();
    let now = chrono::Utc::now().timestamp();
    for (user, role, group) in [
        ("alice", "analyst", "data-analysts"),
        ("carol", "compliance", "compliance-officers"),
    ] {
        store
            .record_identity(&DirectoryEntry {
                sub: format!("sub-{user}"),
                email: format!("{user}@example.com"),
                user: user.into(),
                roles: vec![role.into()],
                groups: vec![group.into()],
                updated_at: now,
            })
            .await
            .unwrap();
    }
    capture.user("UALICE", "Alice@Example.com", true);
    capture.user("UCAROL", "carol@example.com", true);
    let app = spawn(s).await;
    Setup { app, capture }
}

fn texts(call: &Call) -> String {
    call.body["blocks"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|b| b.to_string())
        .collect::<Vec<_>>()
        .join("\n")
}

#[tokio::test]
async fn url_verification_and_bad_requests_get_the_right_status() {
    let s = setup(|_| {}).await;
    let base = &s.app.base;
    let ok = post_signed(
        base,
        "/slack/events",
        r#"{"type":"url_verification","challenge":"abc123"}"#,
        false,
    )
    .await;
    assert_eq!(ok.status(), 200);
    assert_eq!(ok.json::<Value>().await.unwrap()["challenge"], "abc123");

    let body = r#"{"type":"url_verification","challenge":"x"}"#;
    let now = chrono::Utc::now().timestamp();
    let cases = [
        ("unsigned", now.to_string(), String::new()),
        ("forged", now.to_string(), format!("v0={}", "ab".repeat(32))),
        ("signed for another body", now.to_string(), sign("{}", now)),
        ("stale", (now - 600).to_string(), sign(body, now - 600)),
        (
            "from the future",
            (now + 600).to_string(),
            sign(body, now + 600),
        ),
        ("junk timestamp", "soon".to_owned(), sign(body, now)),
    ];
    for (what, ts, sig) in cases {
        let r = post_raw(base, "/slack/events", body, false, &ts, &sig).await;
        assert_eq!(r.status(), 401, "{what}");
    }
    // The same signed request twice: the second is a replay.
    let sig = sign(body, now);
    assert_eq!(
        post_raw(base, "/slack/events", body, false, &now.to_string(), &sig)
            .await
            .status(),
        200
    );
    assert_eq!(
        post_raw(base, "/slack/events", body, false, &now.to_string(), &sig)
            .await
            .status(),
        401
    );
    // The same signature in upper-case hex is the same signature: still a replay.
    let shouted = format!("v0={}", sig.trim_start_matches("v0=").to_ascii_uppercase());
    assert_eq!(
        post_raw(
            base,
            "/slack/events",
            body,
            false,
            &now.to_string(),
            &shouted
        )
        .await
        .status(),
        401
    );
    // Signed but malformed, oversized, or a command with a foreign response_url.
    assert_eq!(
        post_signed(base, "/slack/events", "{not json", false)
            .await
            .status(),
        400
    );
    let huge = format!(
        r#"{{"type":"url_verification","challenge":"{}"}}"#,
        "x".repeat(70_000)
    );
    assert_eq!(
        post_signed(base, "/slack/events", &huge, false)
            .await
            .status(),
        413
    );
    let foreign = "command=%2Fask&text=DAU&user_id=UALICE&channel_id=C1&team_id=T1&response_url=https%3A%2F%2Fevil.example%2Fhook";
    assert_eq!(
        post_signed(base, "/slack/commands", foreign, true)
            .await
            .status(),
        400
    );
    assert_eq!(
        post_signed(base, "/slack/commands", "text=hi", true)
            .await
            .status(),
        400
    );
    assert!(
        s.capture.calls().is_empty(),
        "nothing reached Slack: {:?}",
        s.capture.calls()
    );

    // Slack off: the endpoints do not exist.
    let off = spawn(demo_settings()).await;
    assert_eq!(
        post_signed(&off.base, "/slack/events", body, false)
            .await
            .status(),
        404
    );
}

#[tokio::test]
async fn mentions_are_acknowledged_at_once_answered_privately_and_not_twice() {
    let s = setup(|_| {}).await;
    s.capture.user("UHOLD1", "alice@example.com", true);
    let body = mention(
        "Ev1",
        "UHOLD1",
        "<@UBOT> What was DAU last week vs the week before?",
        "channel",
    );
    // users.info is held until after the acknowledgement arrives: the ack
    // cannot have waited for the answer.
    let ack = post_signed(&s.app.base, "/slack/events", &body, false).await;
    assert_eq!(ack.status(), 200);
    assert_eq!(ack.text().await.unwrap(), "");
    assert!(
        s.capture.calls().iter().all(|c| c.path == "users.info"),
        "{:?}",
        s.capture.calls()
    );
    // Slack retries the same event (new signature): acknowledged, not answered again.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(
        post_signed(&s.app.base, "/slack/events", &body, false)
            .await
            .status(),
        200
    );
    s.capture.release();
    let answer = s.capture.delivered(|_| true).await;
    // In a channel the answer is shown to the asker only, in the thread.
    assert_eq!(answer.path, "chat.postEphemeral");
    assert_eq!(
        answer.authorization.as_deref(),
        Some(&*format!("Bearer {BOT_TOKEN}"))
    );
    assert_eq!(
        (&answer.body["user"], &answer.body["channel"]),
        (&json!("UHOLD1"), &json!("C1"))
    );
    assert_eq!(answer.body["thread_ts"], "1700000000.000100");
    let blocks = texts(&answer);
    assert!(blocks.contains("daily active users"), "{blocks}");
    assert!(
        answer.body["blocks"]
            .as_array()
            .unwrap()
            .iter()
            .any(|b| b.get("fields").is_some()),
        "key numbers: {blocks}"
    );
    assert!(
        blocks.contains("\"expand\":false") && blocks.contains("SELECT"),
        "collapsed SQL: {blocks}"
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    let answers = s
        .capture
        .calls()
        .iter()
        .filter(|c| c.path != "users.info")
        .count();
    assert_eq!(answers, 1, "answered once");
}

#[tokio::test]
async fn direct_messages_and_slash_commands_are_answered_under_the_askers_grants() {
    let s = setup(|_| {}).await;
    let base = &s.app.base;
    // A DM: answered in its thread with chat.postMessage.
    let dm = mention(
        "Ev2",
        "UALICE",
        "Show me the email addresses of customers who churned last month.",
        "im",
    );
    assert_eq!(
        post_signed(base, "/slack/events", &dm, false)
            .await
            .status(),
        200
    );
    let answer = s.capture.delivered(|c| c.path == "chat.postMessage").await;
    assert_eq!(
        (&answer.body["channel"], &answer.body["thread_ts"]),
        (&json!("D1"), &json!("1700000000.000100"))
    );
    // alice is an analyst: no grant for personal data, so no email addresses.
    assert!(!answer.body.to_string().contains("@"), "{}", answer.body);

    // /ask: an ephemeral acknowledgement now, the answer at response_url later.
    let form = format!(
        "command=%2Fask&text=What+was+DAU+last+week%3F&user_id=UCAROL&channel_id=C9&team_id=T1&response_url={}",
        urlencode(&format!("{}/hooks/commands/T1/1/xyz", s.capture.base))
    );
    let ack = post_signed(base, "/slack/commands", &form, true).await;
    assert_eq!(ack.status(), 200);
    assert_eq!(
        ack.json::<Value>().await.unwrap()["response_type"],
        "ephemeral"
    );
    let answer = s.capture.delivered(|c| c.path.starts_with("hooks/")).await;
    assert_eq!(answer.path, "hooks/commands/T1/1/xyz");
    assert_eq!(answer.body["response_type"], "ephemeral");
    assert!(
        texts(&answer).contains("daily active users"),
        "{}",
        answer.body
    );
    assert_eq!(
        answer.authorization, None,
        "the bot token is not sent to hooks"
    );

    // An empty command gets usage help at once.
    let empty = format!(
        "command=%2Fask&text=&user_id=UCAROL&channel_id=C9&team_id=T1&response_url={}",
        urlencode(&format!("{}/hooks/x", s.capture.base))
    );
    let help = post_signed(base, "/slack/commands", &empty, true).await;
    assert!(
        help.json::<Value>().await.unwrap()["text"]
            .as_str()
            .unwrap()
            .contains("/ask What was DAU")
    );
}

#[tokio::test]
async fn slack_users_steward_cannot_vouch_for_get_a_polite_refusal() {
    let s = setup(|_| {}).await;
    s.capture.user("UNOBODY", "nobody@example.com", true);
    s.capture.user("UUNCONF", "alice@example.com", false);
    s.capture.set_user("UBOTUSER", json!({"id": "UBOTUSER", "is_bot": true, "is_email_confirmed": true, "profile": {"email": "alice@example.com"}}));
    s.capture.set_user("UGONE", json!({"id": "UGONE", "deleted": true, "is_email_confirmed": true, "profile": {"email": "alice@example.com"}}));
    for (i, user) in ["UNOBODY", "UUNCONF", "UBOTUSER", "UGONE", "UUNKNOWN"]
        .iter()
        .enumerate()
    {
        let body = mention(&format!("Ev-r{i}"), user, "What was DAU last week?", "im");
        assert_eq!(
            post_signed(&s.app.base, "/slack/events", &body, false)
                .await
                .status(),
            200
        );
        let reply = s.capture.nth("chat.postMessage", i).await;
        let text = reply.body["text"].as_str().unwrap();
        assert!(
            text.starts_with("Sorry") && text.contains("https://steward.example.com/auth/login"),
            "{user}: {text}"
        );
        assert!(
            !reply.body.to_string().contains("DAU was"),
            "no data for {user}"
        );
    }
    // Bot messages and edits are never answered (steward must not answer itself).
    let own = json!({"type": "event_callback", "team_id": "T1", "event_id": "Ev-bot",
        "event": {"type": "message", "channel_type": "im", "bot_id": "B1", "user": "UALICE", "text": "hi", "ts": "1.1", "channel": "D1"}});
    let before = s.capture.calls().len();
    assert_eq!(
        post_signed(&s.app.base, "/slack/events", &own.to_string(), false)
            .await
            .status(),
        200
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(s.capture.calls().len(), before);
}

#[tokio::test]
async fn other_workspaces_are_refused_when_teams_are_listed() {
    let s = setup(|s| s.slack.allowed_teams = vec!["T-OURS".into()]).await;
    let body = mention("Ev-t", "UALICE", "What was DAU last week?", "im");
    assert_eq!(
        post_signed(&s.app.base, "/slack/events", &body, false)
            .await
            .status(),
        403
    );
}

fn urlencode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// A button press as Slack sends it: form-encoded `payload=` JSON.
fn press(user: &str, action: &str, value: &str, response_url: &str) -> String {
    let payload = json!({
        "type": "block_actions", "team": {"id": "T1"}, "user": {"id": user},
        "response_url": response_url,
        "actions": [{"action_id": action, "value": value, "type": "button"}],
    });
    format!("payload={}", urlencode(&payload.to_string()))
}

#[tokio::test]
async fn feedback_buttons_record_the_askers_feedback_only() {
    let s = setup(|_| {}).await;
    let base = &s.app.base;
    let dm = mention(
        "Ev-fb",
        "UALICE",
        "How many customers are on each plan?",
        "im",
    );
    post_signed(base, "/slack/events", &dm, false).await;
    let answer = s.capture.delivered(|c| c.path == "chat.postMessage").await;
    let actions = answer.body["blocks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|b| b["type"] == "actions")
        .expect("feedback buttons under the answer")
        .clone();
    let up = &actions["elements"][0];
    assert_eq!(up["action_id"], "feedback_up");
    let event = up["value"].as_str().unwrap().to_owned();
    assert_eq!(event.len(), 32);

    // alice's thumbs up on her own answer: stored, and a candidate proposed.
    let hook = format!("{}/hooks/actions/T1/1/a", s.capture.base);
    let r = post_signed(
        base,
        "/slack/interactions",
        &press("UALICE", "feedback_up", &event, &hook),
        true,
    )
    .await;
    assert_eq!(r.status(), 200);
    let thanks = s
        .capture
        .delivered(|c| c.path == "hooks/actions/T1/1/a")
        .await;
    assert!(
        texts(&thanks).contains("sent to the data stewards"),
        "{}",
        thanks.body
    );
    assert_eq!(thanks.body["response_type"], "ephemeral");
    let (_, queue) = s.app.get(Some("bob"), "/api/review/candidates").await;
    assert!(
        queue["candidates"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["event_id"] == event.as_str() && c["proposed_by"] == "alice"),
        "{queue}"
    );

    // carol pressing a button under alice's answer records nothing.
    let other = format!("{}/hooks/actions/T1/1/b", s.capture.base);
    post_signed(
        base,
        "/slack/interactions",
        &press("UCAROL", "feedback_down", &event, &other),
        true,
    )
    .await;
    let refused = s
        .capture
        .delivered(|c| c.path == "hooks/actions/T1/1/b")
        .await;
    assert!(texts(&refused).contains("Not recorded"), "{}", refused.body);
    let (_, fb) = s.app.get(Some("bob"), "/api/review/feedback").await;
    assert!(
        fb["feedback"]
            .as_array()
            .unwrap()
            .iter()
            .all(|f| f["user"] == "alice"),
        "{fb}"
    );

    // Hostile presses: unsigned, a foreign response_url, junk payloads.
    let unsigned = reqwest::Client::new()
        .post(format!("{base}/slack/interactions"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(press("UALICE", "feedback_up", &event, &hook))
        .send()
        .await
        .unwrap();
    assert_eq!(unsigned.status(), 401);
    let r = post_signed(
        base,
        "/slack/interactions",
        &press("UALICE", "feedback_up", &event, "https://evil.example/x"),
        true,
    )
    .await;
    assert_eq!(r.status(), 400);
    for junk in ["payload=%7Bnot+json", "nothing=here", ""] {
        let r = post_signed(base, "/slack/interactions", junk, true).await;
        assert_eq!(r.status(), 400, "{junk}");
    }
    let long = "e".repeat(65);
    let r = post_signed(
        base,
        "/slack/interactions",
        &press("UALICE", "feedback_up", &long, &hook),
        true,
    )
    .await;
    assert_eq!(r.status(), 400);
}

/// Slack questions count against the asker's per-user question rate, as web
/// chat and Metrics API questions do: past the burst, a polite notice with
/// the wait instead of an answer.
#[tokio::test]
async fn slack_questions_count_against_the_askers_question_rate() {
    let s = setup(|st| {
        st.limits.questions_per_minute = 1;
        st.limits.question_burst = 2;
    })
    .await;
    for (n, id) in ["Ev-rate-1", "Ev-rate-2", "Ev-rate-3"]
        .into_iter()
        .enumerate()
    {
        let body = mention(id, "UALICE", "What was DAU last week?", "im");
        assert_eq!(
            post_signed(&s.app.base, "/slack/events", &body, false)
                .await
                .status(),
            200
        );
        // One at a time, so the order of the replies is the order asked.
        s.capture.nth("chat.postMessage", n).await;
    }
    let replies: Vec<String> = s
        .capture
        .calls()
        .iter()
        .filter(|c| c.path == "chat.postMessage")
        .map(|c| c.body["text"].as_str().unwrap_or_default().to_owned())
        .collect();
    assert!(replies[0].contains("daily active users"), "{replies:?}");
    assert!(replies[1].contains("daily active users"), "{replies:?}");
    assert!(
        replies[2].starts_with("Sorry, you are asking faster") && replies[2].contains("seconds"),
        "{replies:?}"
    );
}
