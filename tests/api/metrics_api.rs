//! The Metrics API.

use crate::helpers::{demo_db, oracle, spawn_demo};

#[tokio::test]
async fn the_catalogue_lists_metrics_with_dimensions() {
    let app = spawn_demo().await;
    let (status, body) = app.get(Some("dave"), "/api/metrics").await;
    assert_eq!(status, 200);
    let dau = body["metrics"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["name"] == "dau")
        .unwrap();
    assert!(
        dau["dimensions"]
            .as_array()
            .unwrap()
            .iter()
            .any(|d| d == "platform")
    );
}

#[tokio::test]
async fn a_breakdown_by_grain_and_dimension_matches_sql() {
    let app = spawn_demo().await;
    let (status, body) = app
        .get(
            Some("dave"),
            "/api/metrics/signups?start=2026-11-01&end=2026-11-08&grain=day&group_by=platform",
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body["columns"],
        serde_json::json!(["period", "platform", "signups"])
    );
    let total: f64 = body["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r[2].as_f64().unwrap())
        .sum();
    let expected = oracle(demo_db(), "SELECT COUNT(*) * 1.0 FROM user_profiles WHERE signed_up_at >= '2026-11-01' AND signed_up_at < '2026-11-08'").await[0];
    assert_eq!(total, expected);
}

#[tokio::test]
async fn bad_metric_queries_are_4xx() {
    let app = spawn_demo().await;
    for (path, status, code) in [
        ("/api/metrics/nps", 404, "unknown_metric"),
        (
            "/api/metrics/revenue?group_by=platform",
            400,
            "unknown_dimension",
        ),
        ("/api/metrics/dau?grain=fortnight", 400, "invalid_grain"),
        (
            "/api/metrics/dau?start=2026-13-01&end=2026-11-01",
            400,
            "invalid_date",
        ),
        (
            "/api/metrics/dau?start=2026-11-05&end=2026-11-01",
            400,
            "invalid_range",
        ),
        ("/api/metrics/dau?bogus=1", 400, "invalid_query"),
        (
            "/api/metrics/signups?filter=platform",
            400,
            "invalid_filter",
        ),
    ] {
        let (got, body) = app.get(Some("alice"), path).await;
        assert_eq!(got, status, "{path}: {body}");
        assert_eq!(body["error"]["code"], code, "{path}: {body}");
    }
    let (got, _) = app.get(None, "/api/metrics").await;
    assert_eq!(got, 401);
}

#[tokio::test]
async fn filter_values_cannot_inject_sql() {
    let app = spawn_demo().await;
    let (status, body) = app
        .get(
            Some("alice"),
            "/api/metrics/signups?filter=platform:ios'%20OR%20'1'='1",
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body["rows"][0][0].as_f64(),
        Some(0.0),
        "no platform has that literal name: {body}"
    );
}

#[tokio::test]
async fn a_named_dimension_value_filters_the_metric() {
    let app = crate::helpers::spawn_demo().await;
    let (_, body) = app.ask("dave", "How many signups on iOS last week?").await;
    assert_eq!(body["kind"], "metric", "{body}");
    let expected = oracle(
        demo_db(),
        "SELECT COUNT(*) * 1.0 FROM user_profiles WHERE platform = 'ios' AND signed_up_at >= '2026-11-09' AND signed_up_at < '2026-11-16'",
    )
    .await[0];
    assert_eq!(
        body["data"]["rows"][0][1].as_f64(),
        Some(expected),
        "{body}"
    );
    assert!(body["answer"].as_str().unwrap().contains("platform = ios"));
}

#[tokio::test]
async fn a_regional_analyst_sees_only_their_region_through_every_table_and_metric() {
    let app = spawn_demo().await;
    // MRR lives in customer_mrr_daily; the EMEA filter on customers follows its key.
    let (status, body) = app
        .get(Some("erin"), "/api/metrics/mrr?group_by=region")
        .await;
    assert_eq!(status, 200, "{body}");
    let col = body["columns"]
        .as_array()
        .unwrap()
        .iter()
        .position(|c| c == "region")
        .unwrap();
    let regions: std::collections::BTreeSet<String> = body["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r[col].as_str().unwrap_or_default().to_owned())
        .collect();
    assert_eq!(regions.into_iter().collect::<Vec<_>>(), ["EMEA"], "{body}");
    // Plain counts of tables that reach a customer are EMEA's too.
    for (question, all) in [
        (
            "How many support tickets are there?",
            "SELECT COUNT(*) * 1.0 FROM support_tickets",
        ),
        (
            "How many invoices are there?",
            "SELECT COUNT(*) * 1.0 FROM billing_history",
        ),
    ] {
        let (_, answer) = app.ask("erin", question).await;
        let everyone = oracle(demo_db(), all).await[0];
        // The prose and the table; random ids (conversation, event) may
        // hold any digits.
        let text = format!("{} {}", answer["answer"], answer["data"]);
        assert!(
            !text.contains(&format!("{everyone:.0}")) || everyone < 10.0,
            "{question}: erin saw the all-region count {everyone}: {text}"
        );
    }
}

#[tokio::test]
async fn saved_queries_are_listed_and_answered_in_the_chat() {
    let app = spawn_demo().await;
    let (status, body) = app.get(Some("dave"), "/api/metrics").await;
    assert_eq!(status, 200);
    let saved = body["saved_queries"].as_array().unwrap();
    let weekly = saved
        .iter()
        .find(|q| q["name"] == "weekly_signups_by_channel")
        .expect("the demo's saved query is listed");
    assert_eq!(weekly["in_chat"], true);
    let question = weekly["question"].as_str().unwrap();
    let (status, answer) = app.ask("dave", question).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["kind"], "metric", "{answer}");
    assert_eq!(answer["metric"], "signups");
    assert_eq!(
        answer["data"]["columns"],
        serde_json::json!(["period", "signup_channel", "signups"]),
        "{answer}"
    );
}

#[tokio::test]
async fn grains_finer_than_the_data_are_refused() {
    let app = spawn_demo().await;
    let (status, body) = app
        .get(
            Some("dave"),
            "/api/metrics/signups?start=2026-11-01&end=2026-11-03&grain=hour",
        )
        .await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"]["code"], "invalid_metric_query", "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("per day"),
        "{body}"
    );
    let (_, catalogue) = app.get(Some("dave"), "/api/metrics").await;
    let signups = catalogue["metrics"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["name"] == "signups")
        .unwrap();
    assert_eq!(signups["grains"][0], "day", "{signups}");
}

/// Offsets, fills and percentiles on the default SQLite warehouse, checked
/// against plain metrics of the same data through the same API.
#[tokio::test]
async fn offsets_fills_and_percentiles_run_on_sqlite() {
    let tmp = tempfile::tempdir().unwrap();
    let policies = tmp.path().join("policies");
    std::fs::create_dir_all(policies.join("semantic")).unwrap();
    for f in ["schema.yaml", "roles.yaml", "identity.yaml"] {
        std::fs::copy(
            crate::helpers::root().join("policies").join(f),
            policies.join(f),
        )
        .unwrap();
    }
    for f in ["product.yml", "revenue.yml"] {
        std::fs::copy(
            crate::helpers::root().join("policies/semantic").join(f),
            policies.join("semantic").join(f),
        )
        .unwrap();
    }
    std::fs::write(
        policies.join("semantic/extra.yml"),
        r#"metrics:
  - name: revenue_week_before
    label: Revenue a week before
    type: derived
    type_params:
      expr: before
      metrics:
        - {name: revenue, offset_window: 1 week, alias: before}
  - name: churned_every_day
    label: Churned every day
    type: simple
    type_params:
      measure: {name: churned_customers, fill_nulls_with: 0, join_to_timespine: true}
  - name: resolution_median
    label: Resolution median
    type: simple
    type_params:
      measure: resolution_hours
"#,
    )
    .unwrap();
    let mut settings = crate::helpers::demo_settings();
    settings.policies = policies;
    let app = crate::helpers::spawn(settings).await;
    let rows = |body: &serde_json::Value| body["rows"].as_array().unwrap().clone();

    // A week's "revenue a week before" is the previous week's revenue.
    let (status, shifted) = app
        .get(
            Some("dave"),
            "/api/metrics/revenue_week_before?start=2026-10-26&end=2026-11-16&grain=week",
        )
        .await;
    assert_eq!(status, 200, "{shifted}");
    let (_, plain) = app
        .get(
            Some("dave"),
            "/api/metrics/revenue?start=2026-10-19&end=2026-11-09&grain=week",
        )
        .await;
    let before: Vec<f64> = rows(&shifted)
        .iter()
        .map(|r| r[1].as_f64().unwrap())
        .collect();
    let revenue: Vec<f64> = rows(&plain)
        .iter()
        .map(|r| r[1].as_f64().unwrap())
        .collect();
    assert_eq!(before.len(), 3, "{shifted}");
    for (a, b) in before.iter().zip(&revenue) {
        assert!((a - b).abs() < 1e-6, "{before:?} vs {revenue:?}");
    }

    // Every day has a row; the days add up to the plain metric's total.
    let (status, filled) = app
        .get(
            Some("dave"),
            "/api/metrics/churned_every_day?start=2026-11-01&end=2026-11-15&grain=day",
        )
        .await;
    assert_eq!(status, 200, "{filled}");
    assert_eq!(rows(&filled).len(), 14, "{filled}");
    let total: f64 = rows(&filled).iter().map(|r| r[1].as_f64().unwrap()).sum();
    let (_, churned) = app
        .get(
            Some("dave"),
            "/api/metrics/churned_customers?start=2026-11-01&end=2026-11-15",
        )
        .await;
    assert_eq!(
        total,
        rows(&churned)[0][0].as_f64().unwrap_or(0.0),
        "{filled} {churned}"
    );

    // The median measure by week on SQLite, as a plain metric.
    let (status, median) = app
        .get(
            Some("dave"),
            "/api/metrics/resolution_median?start=2026-10-19&end=2026-11-16&grain=week",
        )
        .await;
    assert_eq!(status, 200, "{median}");
    assert!(
        rows(&median)
            .iter()
            .all(|r| r[1].as_f64().is_some_and(|v| v > 0.0)),
        "{median}"
    );
}
