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

#[test]
fn row_filters_follow_the_semantic_models_entities_without_schema_keys() {
    let dir = tempfile::tempdir().unwrap();
    let src = crate::helpers::root().join("policies");
    for f in ["roles.yaml", "identity.yaml", "verified_queries.yaml"] {
        std::fs::copy(src.join(f), dir.path().join(f)).unwrap();
    }
    // schema.yaml without any `references:`.
    let schema = std::fs::read_to_string(src.join("schema.yaml")).unwrap();
    let stripped = regex::Regex::new(r", references: [a-z_]+\.[a-z_]+")
        .unwrap()
        .replace_all(&schema, "");
    assert!(!stripped.contains(", references:"));
    std::fs::write(dir.path().join("schema.yaml"), stripped.as_ref()).unwrap();
    std::fs::create_dir(dir.path().join("semantic")).unwrap();
    for f in std::fs::read_dir(src.join("semantic")).unwrap() {
        let f = f.unwrap().path();
        std::fs::copy(&f, dir.path().join("semantic").join(f.file_name().unwrap())).unwrap();
    }
    let (policy, _) = steward::startup::load_policy(dir.path()).unwrap();
    let erin = policy.role_grants("analyst_emea").unwrap();
    // invoices → customer, events → user → customer: both from the entities.
    for table in ["billing_history", "events", "support_tickets"] {
        let f = erin.row_filter(table).unwrap_or_default();
        assert!(f.contains("region = 'EMEA'"), "{table}: {f:?}");
    }
    assert!(!policy.foreign_keys().is_empty());
}

/// A schema without display columns, as `steward policy init` writes it:
/// listings show the table's first non-personal columns instead of being
/// refused with a false reason.
#[tokio::test]
async fn listings_work_on_a_schema_without_display_columns() {
    let dir = tempfile::tempdir().unwrap();
    let policies = dir.path().join("policies");
    std::fs::create_dir_all(policies.join("semantic")).unwrap();
    let schema =
        std::fs::read_to_string(crate::helpers::root().join("policies/schema.yaml")).unwrap();
    let stripped: String = schema
        .lines()
        .filter(|l| !l.trim_start().starts_with("display:"))
        .map(|l| format!("{l}\n"))
        .collect();
    assert_ne!(
        stripped, schema,
        "the demo schema has display columns to strip"
    );
    std::fs::write(policies.join("schema.yaml"), stripped).unwrap();
    std::fs::copy(
        crate::helpers::root().join("policies/roles.yaml"),
        policies.join("roles.yaml"),
    )
    .unwrap();
    let mut s = crate::helpers::demo_settings();
    s.policies = policies;
    let app = crate::helpers::spawn(s).await;
    let (_, body) = app.ask("alice", "List all customers").await;
    assert_eq!(body["kind"], "sql", "{body}");
    let columns = body["data"]["columns"].as_array().unwrap();
    assert!(!columns.is_empty(), "{body}");
    assert!(
        !columns.iter().any(|c| c == "contact_email"),
        "no personal column by default: {body}"
    );
    assert!(!body.to_string().contains(".example"), "{body}");
}
