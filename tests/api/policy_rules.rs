//! Masking and row filters, executed against the demo warehouse.

use crate::helpers::{demo_db, oracle, spawn_demo};

#[tokio::test]
async fn a_regional_analyst_only_counts_their_region() {
    let app = spawn_demo().await;
    let (_, body) = app
        .ask("erin", "How many churned customers last month?")
        .await;
    assert_eq!(body["metric"], "churned_customers", "{body}");
    let emea = oracle(
        demo_db(),
        "SELECT COUNT(*) * 1.0 FROM customers WHERE region = 'EMEA' AND churned_at >= '2026-10-01' AND churned_at < '2026-11-01'",
    )
    .await[0];
    assert_eq!(body["data"]["rows"][0][1].as_f64(), Some(emea), "{body}");
    let (_, list) = app.ask("erin", "List all customer records").await;
    assert_eq!(list["kind"], "sql", "{list}");
    let cols: Vec<&str> = list["data"]["columns"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap())
        .collect();
    let region = cols.iter().position(|c| *c == "region").unwrap();
    let rows = list["data"]["rows"].as_array().unwrap();
    assert!(
        !rows.is_empty() && rows.iter().all(|r| r[region] == "EMEA"),
        "{list}"
    );
    assert_eq!(
        list["queries"][0]["row_filters"],
        serde_json::json!(["customers: (region = 'EMEA')"])
    );
}

#[tokio::test]
async fn masked_emails_come_back_masked_for_support() {
    let app = spawn_demo().await;
    let (_, body) = app
        .ask(
            "sam",
            "Show me the email addresses of customers who churned last month.",
        )
        .await;
    assert_eq!(body["kind"], "sql", "{body}");
    let cols: Vec<&str> = body["data"]["columns"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap())
        .collect();
    let email = cols.iter().position(|c| *c == "contact_email").unwrap();
    let rows = body["data"]["rows"].as_array().unwrap();
    assert!(!rows.is_empty());
    assert!(rows.iter().all(|r| r[email] == "****"), "{body}");
    assert!(
        !body.to_string().contains(".example"),
        "no email leaked: {body}"
    );
    assert_eq!(
        body["queries"][0]["masked"],
        serde_json::json!(["customers.contact_email"]),
        "{body}"
    );
}
