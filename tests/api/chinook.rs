//! Another real database: Chinook (MIT), with its own policy.

use crate::helpers::{demo_settings, root, spawn};

fn chinook_settings() -> steward::settings::Settings {
    let mut s = demo_settings();
    s.warehouse = format!(
        "sqlite://{}",
        root()
            .join("tests/fixtures/chinook/chinook.sqlite")
            .display()
    );
    s.policies = root().join("tests/fixtures/chinook/policies");
    s.as_of = chrono::NaiveDate::from_ymd_opt(2026, 1, 1);
    s
}

#[tokio::test]
async fn chinook_revenue_by_country_through_the_metrics_api() {
    let app = spawn(chinook_settings()).await;
    let (status, body) = app
        .get(
            Some("dave"),
            "/api/metrics/revenue?start=2025-01-01&end=2026-01-01&group_by=billingcountry",
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let total: f64 = body["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r[1].as_f64().unwrap())
        .sum();
    assert!((total - 450.58).abs() < 0.01, "{body}");
    assert_eq!(body["rows"][0][0], "USA");
}

#[tokio::test]
async fn chinook_customer_emails_and_phones_are_pii() {
    let app = spawn(chinook_settings()).await;
    let (_, alice) = app
        .ask("alice", "Show me the email addresses of customers")
        .await;
    assert_eq!(alice["kind"], "refusal", "{alice}");
    assert!(
        alice["reason"]
            .as_str()
            .unwrap()
            .contains("customer.email is PII"),
        "{alice}"
    );
    let (_, alice) = app.ask("alice", "List customer phone numbers").await;
    assert!(
        alice["reason"]
            .as_str()
            .unwrap()
            .contains("customer.phone is PII"),
        "{alice}"
    );
    let (_, carol) = app
        .ask("carol", "Show me the email addresses of customers")
        .await;
    assert_eq!(carol["kind"], "sql", "{carol}");
    assert_eq!(carol["data"]["rows"].as_array().unwrap().len(), 59);
}

#[tokio::test]
async fn chinook_metric_questions_work() {
    let app = spawn(chinook_settings()).await;
    let (_, body) = app.ask("alice", "What was revenue last month?").await;
    assert_eq!(body["kind"], "metric", "{body}");
    assert!(body["answer"].as_str().unwrap().contains('$'));
}
