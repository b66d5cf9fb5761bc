//! The LLM path against a real local model (Qwen2.5-Coder-0.5B served by
//! `scripts/local-llm`). `.ci/run` starts it and sets `STEWARD_TEST_LLM_URL`;
//! without it these tests print that they are skipped and assert nothing.
//! A small model's SQL is often wrong, so beyond the one question a verified
//! query covers, the assertions are the invariants: whatever the model
//! writes, nothing unguarded runs and nothing the asker may not see leaks.

use serde_json::Value;
use steward::llm::Route;

use crate::helpers::{TestApp, demo_db, demo_settings, spawn};

async fn live(route: Route) -> Option<TestApp> {
    let Ok(url) = std::env::var("STEWARD_TEST_LLM_URL") else {
        eprintln!("SKIPPED: STEWARD_TEST_LLM_URL is not set (run scripts/local-llm start)");
        return None;
    };
    let mut s = demo_settings();
    s.llm.url = Some(url);
    s.llm.route = route;
    s.llm.timeout_secs = 300;
    Some(spawn(s).await)
}

fn used_model(body: &Value) -> bool {
    body["llm"]["calls"].as_u64().unwrap_or(0) >= 1
}

#[tokio::test]
async fn live_model_writes_grounded_prose_for_a_verified_question() {
    let Some(app) = live(Route::Fallback).await else {
        return;
    };
    let (status, body) = app
        .ask("alice", "how many customers are on each plan")
        .await;
    assert_eq!(status, 200);
    assert!(used_model(&body), "the model was not asked: {body}");
    assert_eq!(body["llm"]["tools"][0], "verified_query", "{body}");
    assert_eq!(body["kind"], "sql", "{body}");
    let mut got: Vec<(String, f64)> = body["data"]["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r[0].as_str().unwrap_or_default().to_owned(),
                r[1].as_f64().unwrap_or(-1.0),
            )
        })
        .collect();
    got.sort_by(|a, b| a.0.cmp(&b.0));
    let mut want = Vec::new();
    for plan in ["enterprise", "growth", "starter"] {
        let sql: &'static str = match plan {
            "enterprise" => {
                "SELECT CAST(COUNT(*) AS REAL) FROM customers WHERE plan = 'enterprise'"
            }
            "growth" => "SELECT CAST(COUNT(*) AS REAL) FROM customers WHERE plan = 'growth'",
            _ => "SELECT CAST(COUNT(*) AS REAL) FROM customers WHERE plan = 'starter'",
        };
        want.push((
            plan.to_owned(),
            crate::helpers::oracle(demo_db(), sql).await[0],
        ));
    }
    assert_eq!(got, want, "{body}");
    // Whatever the model wrote, every number left in the prose is a result value.
    let prose = body["answer"].as_str().unwrap();
    let cells: Vec<f64> = want.iter().map(|(_, n)| *n).collect();
    for n in regex::Regex::new(r"\d[\d,]*(\.\d+)?")
        .unwrap()
        .find_iter(prose)
    {
        let v: f64 = n.as_str().replace(',', "").parse().unwrap();
        assert!(
            cells.contains(&v),
            "{v} in the prose is not in the result: {body}"
        );
    }
}

#[tokio::test]
async fn live_model_cannot_leak_personal_data_or_escape_row_filters() {
    let Some(app) = live(Route::Always).await else {
        return;
    };
    let (_, body) = app
        .ask(
            "alice",
            "List the email addresses and phone numbers of our customer contacts.",
        )
        .await;
    assert!(used_model(&body), "{body}");
    let text = body.to_string();
    assert!(
        !text.contains(".example"),
        "an email reached an analyst: {body}"
    );
    for q in body["queries"].as_array().unwrap() {
        assert!(!q["classes"].to_string().contains("pii"), "{q}");
    }
    let (_, body) = app
        .ask("erin", "How many customers are there in each region?")
        .await;
    assert!(used_model(&body), "{body}");
    if body["kind"] == "sql" {
        let rows = body["data"]["rows"].as_array().unwrap();
        for row in rows {
            assert!(
                !row.as_array()
                    .unwrap()
                    .iter()
                    .any(|v| ["NA", "APAC", "LATAM"].contains(&v.as_str().unwrap_or(""))),
                "row filter escaped: {body}"
            );
        }
    }
}

/// The model path on a database steward knows nothing about beyond what
/// `steward policy init` wrote: no metrics, no documents (Spider's `singer`
/// database from `../shared/data`). The text-to-SQL path answers with the
/// count a hand-written query gives; greedy only, so the run is repeatable.
#[tokio::test]
async fn live_model_answers_on_a_database_without_metrics_or_documents() {
    let Ok(url) = std::env::var("STEWARD_TEST_LLM_URL") else {
        eprintln!("SKIPPED: STEWARD_TEST_LLM_URL is not set (run scripts/local-llm start)");
        return;
    };
    let db = crate::helpers::root().join("../shared/data/spider_dev/database/singer/singer.sqlite");
    if !db.is_file() {
        eprintln!(
            "SKIPPED: {} is missing (../shared/data beside the repo)",
            db.display()
        );
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let policies = dir.path().join("policies");
    let init = crate::helpers::steward(&[
        "policy",
        "init",
        "--warehouse",
        &format!("sqlite://{}", db.display()),
        "--out",
        policies.to_str().unwrap(),
    ]);
    assert!(init.status.success(), "{init:?}");
    let docs = dir.path().join("docs");
    std::fs::create_dir_all(&docs).unwrap();
    let mut s = demo_settings();
    s.warehouse = format!("sqlite://{}", db.display());
    s.policies = policies;
    s.docs = docs;
    s.index_dir = crate::helpers::fresh_index_dir();
    s.llm.url = Some(url);
    s.llm.timeout_secs = 300;
    s.llm.candidates = 1;
    s.auth.dev_users = [("spider".to_owned(), vec!["analyst".to_owned()])].into();
    let app = spawn(s).await;
    let (status, body) = app.ask("spider", "How many singers are there?").await;
    assert_eq!(status, 200);
    assert!(used_model(&body), "{body}");
    assert!(
        !body["answer"].as_str().unwrap().contains("unavailable"),
        "the model path is dead: {body}"
    );
    assert_eq!(body["kind"], "sql", "{body}");
    let want = crate::helpers::oracle(&db, "SELECT CAST(COUNT(*) AS REAL) FROM singer").await[0];
    assert_eq!(body["data"]["rows"][0][0].as_f64(), Some(want), "{body}");
    assert!(body["interpretation"]["sentence"].is_string(), "{body}");
}
