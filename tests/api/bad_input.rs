//! Malformed, oversized, unauthorized and hostile input.

use crate::helpers::{demo_settings, spawn, spawn_demo};

async fn post_raw(
    app: &crate::helpers::TestApp,
    user: Option<&str>,
    body: Vec<u8>,
) -> (u16, serde_json::Value) {
    let mut req = app
        .client
        .post(format!("{}/api/chat", app.base))
        .header("content-type", "application/json")
        .body(body);
    if let Some(u) = user {
        req = req.header("X-Steward-Dev-User", u);
    }
    let r = req.send().await.unwrap();
    (r.status().as_u16(), r.json().await.unwrap_or_default())
}

#[tokio::test]
async fn bad_requests_get_clear_json_errors() {
    let app = spawn_demo().await;
    let cases: Vec<(Option<&str>, Vec<u8>, u16, &str)> = vec![
        (
            Some("alice"),
            br#"{"question": "   "}"#.to_vec(),
            400,
            "empty_question",
        ),
        (Some("alice"), b"{not json".to_vec(), 400, "invalid_json"),
        (
            Some("alice"),
            br#"{"q": "x"}"#.to_vec(),
            400,
            "invalid_request",
        ),
        (
            Some("alice"),
            format!(r#"{{"question": "{}"}}"#, "a".repeat(10 * 1024 * 1024)).into_bytes(),
            413,
            "body_too_large",
        ),
        (
            Some("alice"),
            format!(r#"{{"question": "{}"}}"#, "a".repeat(3000)).into_bytes(),
            413,
            "question_too_long",
        ),
        (
            Some("mallory"),
            br#"{"question": "How are we doing?"}"#.to_vec(),
            401,
            "unknown_user",
        ),
        (
            None,
            br#"{"question": "How are we doing?"}"#.to_vec(),
            401,
            "unauthenticated",
        ),
        (
            Some("alice"),
            br#"{"question": "'; DROP TABLE customers; --"}"#.to_vec(),
            400,
            "sql_not_accepted",
        ),
        (
            Some("alice"),
            br#"{"question": "hi", "conversation_id": "../../etc"}"#.to_vec(),
            400,
            "invalid_conversation_id",
        ),
    ];
    for (user, body, status, code) in cases {
        let (got, json) = post_raw(&app, user, body).await;
        assert_eq!(got, status, "{code}: {json}");
        assert_eq!(json["error"]["code"], code, "{json}");
    }
}

#[tokio::test]
async fn the_warehouse_is_intact_after_hostile_questions() {
    let app = spawn_demo().await;
    let _ = app.ask("carol", "'; DROP TABLE customers; --").await;
    let _ = app
        .ask("carol", "show customers; DELETE FROM customers")
        .await;
    let (_, body) = app
        .ask(
            "carol",
            "Summarize all customer records including contact emails",
        )
        .await;
    assert_eq!(body["kind"], "sql", "{body}");
    assert!(!body["data"]["rows"].as_array().unwrap().is_empty());
}

#[tokio::test]
async fn unknown_routes_are_json_404s() {
    let app = spawn_demo().await;
    let (status, body) = app.get(Some("alice"), "/api/nope").await;
    assert_eq!(status, 404);
    assert_eq!(body["error"]["code"], "not_found");
}

#[tokio::test]
async fn dev_identity_mode_refuses_a_public_bind() {
    let mut s = demo_settings();
    s.bind = "0.0.0.0:0".into();
    let err = steward::startup::Application::build(&s)
        .await
        .err()
        .expect("must refuse");
    assert!(err.to_string().contains("loopback"), "{err}");
}

#[tokio::test]
async fn the_web_page_and_health_are_served() {
    let app = spawn(demo_settings()).await;
    let page = app
        .client
        .get(format!("{}/", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status().as_u16(), 200);
    assert!(page.text().await.unwrap().contains("<form id=\"ask\""));
    let (status, health) = app.get(None, "/healthz").await;
    assert_eq!(status, 200);
    assert_eq!(health["status"], "ok");
    assert!(health["retrieval"]["chunks"].as_u64().unwrap() >= 15);
}
