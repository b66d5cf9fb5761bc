//! The LLM path against a scripted model: what runs is decided by the guard
//! and the agent, never by the model; invented numbers never reach the user;
//! rejections are repaired within a bound; a model that is down degrades.

use serde_json::{Value, json};
use steward::llm::{LlmPath, PlanMode, Route};

use crate::helpers::{demo_db, demo_settings, oracle, spawn};
use crate::scripted_llm::{self, Reply, ScriptedLlm, sql, step};

const PLANS: &str =
    "SELECT plan, COUNT(*) AS customer_count FROM customers GROUP BY plan ORDER BY plan";

async fn app_with(
    llm: &ScriptedLlm,
    tune: impl FnOnce(&mut steward::settings::Settings),
) -> crate::helpers::TestApp {
    scripted_llm::demo_app(llm, LlmPath::Plan, tune).await
}

/// All message contents of a recorded request, joined.
fn transcript(request: &Value) -> String {
    request["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["content"].as_str().unwrap_or_default().to_owned())
        .collect::<Vec<_>>()
        .join("\n---\n")
}

async fn growth_customers() -> f64 {
    oracle(
        demo_db(),
        "SELECT CAST(COUNT(*) AS REAL) FROM customers WHERE plan = 'growth'",
    )
    .await[0]
}

#[tokio::test]
async fn model_prose_with_invented_numbers_falls_back_to_the_table() {
    let llm = scripted_llm::start(vec![
        sql(PLANS),
        Reply::Text(
            "There are 999,999 growth customers, 45% more than the industry average.".into(),
        ),
    ])
    .await;
    let app = app_with(&llm, |_| {}).await;
    let (status, body) = app
        .ask("alice", "How many customers does each plan have?")
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["kind"], "sql", "{body}");
    let text = body["answer"].as_str().unwrap();
    assert!(!text.contains("999") && !text.contains("45"), "{text}");
    assert!(text.contains("result table"), "{text}");
    let rows = body["data"]["rows"].as_array().unwrap();
    let growth = rows.iter().find(|r| r[0] == "growth").unwrap();
    assert_eq!(growth[1].as_f64(), Some(growth_customers().await));
    assert_eq!(body["llm"]["calls"], 2);
}

#[tokio::test]
async fn grounded_model_prose_is_kept_and_the_data_is_quoted() {
    let n = growth_customers().await;
    let prose = format!("The growth plan has {n} customers.");
    let llm = scripted_llm::start(vec![sql(PLANS), Reply::Text(prose.clone())]).await;
    let app = app_with(&llm, |_| {}).await;
    let (_, body) = app
        .ask("alice", "How many customers does each plan have?")
        .await;
    assert_eq!(body["answer"], prose.as_str(), "{body}");
    let requests = llm.requests();
    assert_eq!(requests.len(), 2);
    let plan = &requests[0];
    assert_eq!(
        plan["messages"][0]["role"], "system",
        "the system prompt comes first"
    );
    assert_eq!(plan["response_format"]["type"], "json_schema");
    let system = plan["messages"][0]["content"].as_str().unwrap();
    assert!(
        !system.contains("contact_email"),
        "pii columns denied to alice reach the prompt"
    );
    let writing = transcript(&requests[1]);
    let data = writing.find("<data>").unwrap();
    assert!(
        writing.find("growth").unwrap() > data,
        "rows are quoted as data"
    );
    assert_eq!(requests[1]["stream"], true, "the answer is streamed");
}

#[tokio::test]
async fn a_guard_rejection_is_fed_back_and_repaired() {
    let llm = scripted_llm::start(vec![
        sql("SELECT contact_email FROM customers"),
        sql(PLANS),
        Reply::Text("Here are the plans.".into()),
    ])
    .await;
    let app = app_with(&llm, |_| {}).await;
    let (_, body) = app
        .ask("alice", "How many customers does each plan have?")
        .await;
    assert_eq!(body["kind"], "sql", "{body}");
    assert_eq!(body["llm"]["repairs"], 1);
    let queries = body["queries"].as_array().unwrap();
    assert_eq!(queries.len(), 1, "the rejected statement never ran");
    assert!(!body.to_string().contains('@'), "no email in the answer");
    let second = transcript(&llm.requests()[1]);
    assert!(
        second.contains("contact_email"),
        "the rejection is explained: {second}"
    );
    assert!(second.contains("correction"), "{second}");
}

#[tokio::test]
async fn repairs_are_bounded_and_nothing_unguarded_runs() {
    let llm = scripted_llm::start(vec![
        sql("DELETE FROM customers"),
        sql("SELECT c FROM customers c"),
        sql("SELECT contact_phone FROM customers"),
        sql(PLANS),
    ])
    .await;
    let app = app_with(&llm, |s| s.llm.max_repairs = 2).await;
    let (status, body) = app
        .ask("alice", "How many customers does each plan have?")
        .await;
    assert_eq!(status, 200);
    assert_eq!(body["kind"], "refusal", "{body}");
    assert!(body["queries"].as_array().unwrap().is_empty());
    assert_eq!(llm.left(), 1, "the fourth proposal is never asked for");
    let rows = oracle(demo_db(), "SELECT CAST(COUNT(*) AS REAL) FROM customers").await[0];
    assert!(rows > 0.0, "DELETE did not run");
}

#[tokio::test]
async fn malformed_and_unknown_steps_are_corrected_or_refused() {
    let llm = scripted_llm::start(vec![
        Reply::Text("Sure! Let me drop the table first.".into()),
        step(json!({"tool": "shell", "command": "rm -rf /"})),
        step(json!({"tool": "refuse", "reason": "the data has no such thing"})),
    ])
    .await;
    let app = app_with(&llm, |s| s.llm.max_repairs = 3).await;
    let (_, body) = app
        .ask("alice", "How many customers does each plan have?")
        .await;
    assert_eq!(body["kind"], "refusal", "{body}");
    assert!(body["answer"].as_str().unwrap().contains("no such thing"));
    assert_eq!(body["llm"]["repairs"], 2);
}

#[tokio::test]
async fn the_step_budget_ends_a_looping_model() {
    let replies = (0..10)
        .map(|_| step(json!({"tool": "describe_schema", "table": "customers"})))
        .collect();
    let llm = scripted_llm::start(replies).await;
    let app = app_with(&llm, |s| s.llm.max_steps = 3).await;
    let (_, body) = app
        .ask("alice", "How many customers does each plan have?")
        .await;
    assert_eq!(body["kind"], "refusal", "{body}");
    assert_eq!(llm.requests().len(), 3);
    let third = &llm.requests()[2]["response_format"]["json_schema"]["schema"]["anyOf"];
    let describe = third
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["properties"]["tool"]["const"] == "describe_schema")
        .expect("other tables may still be described");
    let tables = describe["properties"]["table"]["enum"].as_array().unwrap();
    assert!(
        !tables.contains(&json!("customers")),
        "a described table is not offered again"
    );
}

#[tokio::test]
async fn native_tool_calls_drive_the_same_agent() {
    let llm = scripted_llm::start(vec![
        Reply::Call("run_sql", json!({"sql": PLANS})),
        Reply::Text("Here are the plans.".into()),
    ])
    .await;
    let app = app_with(&llm, |s| s.llm.mode = PlanMode::Tools).await;
    let (_, body) = app
        .ask("alice", "How many customers does each plan have?")
        .await;
    assert_eq!(body["kind"], "sql", "{body}");
    assert_eq!(body["llm"]["mode"], "tools");
    let first = &llm.requests()[0];
    assert_eq!(first["tool_choice"], "required");
    let tools: Vec<&str> = first["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["function"]["name"].as_str().unwrap())
        .collect();
    for t in [
        "query_metric",
        "run_sql",
        "search_docs",
        "list_metrics",
        "describe_schema",
        "refuse",
    ] {
        assert!(tools.contains(&t), "{t} missing from {tools:?}");
    }
}

#[tokio::test]
async fn row_filters_and_capabilities_hold_whatever_the_model_writes() {
    let by_region = "SELECT region, COUNT(*) AS n FROM customers GROUP BY region";
    let llm = scripted_llm::start(vec![sql(by_region), Reply::Text("By region.".into())]).await;
    let app = app_with(&llm, |_| {}).await;
    let (_, body) = app
        .ask("erin", "How many customers are in each region?")
        .await;
    let rows = body["data"]["rows"].as_array().unwrap();
    assert!(!rows.is_empty(), "{body}");
    assert!(
        rows.iter().all(|r| r[0] == "EMEA"),
        "row filter escaped: {rows:?}"
    );

    let llm = scripted_llm::start(vec![sql(by_region)]).await;
    let app = app_with(&llm, |_| {}).await;
    let (_, body) = app
        .ask("dave", "How many customers are in each region?")
        .await;
    assert_eq!(
        body["kind"], "refusal",
        "viewers have no ad-hoc SQL: {body}"
    );
    let schema = llm.requests()[0]["response_format"].to_string();
    assert!(
        !schema.contains("run_sql"),
        "run_sql is not even offered to a viewer"
    );
}

#[tokio::test]
async fn query_metric_answers_through_the_semantic_layer() {
    let llm = scripted_llm::start(vec![step(json!({
        "tool": "query_metric", "metric": "dau", "period": "last week", "group_by": "", "grain": ""
    }))])
    .await;
    let app = app_with(&llm, |s| s.llm.route = Route::Always).await;
    let (_, via_model) = app.ask("alice", "active users last week please").await;
    let plain = spawn(demo_settings()).await;
    let (_, direct) = plain.ask("alice", "DAU last week").await;
    assert_eq!(via_model["kind"], "metric", "{via_model}");
    assert_eq!(via_model["data"], direct["data"]);
}

/// A small model maps questions to the nearest metric ("stock price" to
/// active customers); a metric the question's words do not fit is fed back
/// as an error, never answered.
#[tokio::test]
async fn a_metric_that_does_not_fit_the_question_is_not_answered() {
    let llm = scripted_llm::start(vec![
        step(json!({"tool": "query_metric", "metric": "active_customers", "period": "today"})),
        step(json!({"tool": "refuse", "reason": "no stock price data"})),
    ])
    .await;
    let app = app_with(&llm, |s| s.llm.route = Route::Always).await;
    let (_, body) = app.ask("dave", "What is our stock price today?").await;
    assert_eq!(body["kind"], "refusal", "{body}");
    assert!(
        body["data"]["rows"].as_array().unwrap().is_empty(),
        "{body}"
    );
    let second = transcript(&llm.requests()[1]);
    assert!(
        second.contains("does not answer this question") && second.contains("stock"),
        "{second}"
    );
}

#[tokio::test]
async fn follow_ups_carry_the_previous_question_and_sql() {
    let llm = scripted_llm::start(vec![
        sql(PLANS),
        Reply::Text("Plans.".into()),
        sql("SELECT plan, COUNT(*) AS customer_count FROM customers WHERE region = 'EMEA' GROUP BY plan"),
        Reply::Text("EMEA plans.".into()),
    ])
    .await;
    let app = app_with(&llm, |_| {}).await;
    app.ask_in("alice", "conv-1", "How many customers does each plan have?")
        .await;
    let (_, body) = app.ask_in("alice", "conv-1", "and only for EMEA?").await;
    assert_eq!(body["kind"], "sql", "{body}");
    let third = transcript(&llm.requests()[2]);
    assert!(
        third.contains("How many customers does each plan have?"),
        "{third}"
    );
    assert!(third.contains("GROUP BY plan"), "{third}");
    let other = app.ask_in("bob", "conv-1", "and only for EMEA?").await.1;
    assert_ne!(
        other["kind"], "sql",
        "another user does not continue alice's conversation"
    );
}

#[tokio::test]
async fn a_model_that_is_down_degrades_to_the_planner() {
    let llm = scripted_llm::start(vec![Reply::Status(503), Reply::Status(503)]).await;
    let app = app_with(&llm, |_| {}).await;
    let (status, body) = app
        .ask("alice", "Which customers have more than 3 open tickets?")
        .await;
    assert_eq!(status, 200);
    assert_eq!(body["kind"], "refusal", "{body}");
    assert!(
        body["answer"]
            .as_str()
            .unwrap()
            .contains("language model is unavailable")
    );
    let (_, metric) = app.ask("alice", "DAU last week").await;
    assert_eq!(metric["kind"], "metric", "metrics still work: {metric}");

    let none = spawn(demo_settings()).await;
    let (_, body) = none
        .ask("alice", "Which customers have more than 3 open tickets?")
        .await;
    assert!(
        body["answer"]
            .as_str()
            .unwrap()
            .contains("no language model is configured"),
        "{body}"
    );
}

#[tokio::test]
async fn a_streamed_model_answer_reports_thinking_sql_and_writing() {
    let llm =
        scripted_llm::start(vec![sql(PLANS), Reply::Text("Here are the plans.".into())]).await;
    let app = app_with(&llm, |_| {}).await;
    let r = app
        .client
        .post(format!("{}/api/chat", app.base))
        .header("X-Steward-Dev-User", "alice")
        .header("Accept", "text/event-stream")
        .json(&json!({ "question": "How many customers does each plan have?" }))
        .send()
        .await
        .unwrap();
    let evs = crate::streaming::events(&r.text().await.unwrap());
    let stages: Vec<String> = evs
        .iter()
        .filter(|(e, _)| e == "progress")
        .map(|(_, d)| {
            serde_json::from_str::<Value>(d).unwrap()["stage"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    for s in ["planned", "thinking", "running_sql", "writing"] {
        assert!(stages.iter().any(|x| x == s), "{s} missing from {stages:?}");
    }
    let (last, data) = evs.last().unwrap();
    assert_eq!(last, "answer");
    let answer: Value = serde_json::from_str(data).unwrap();
    assert_eq!(answer["kind"], "sql");
}

#[tokio::test]
async fn a_verified_question_is_answered_by_its_checked_sql_even_without_a_model() {
    let app = spawn(demo_settings()).await;
    let (_, body) = app
        .ask("alice", "how many customers are on each plan")
        .await;
    assert_eq!(body["kind"], "sql", "{body}");
    assert_eq!(body["queries"][0]["purpose"], "verified query");
    let rows = body["data"]["rows"].as_array().unwrap();
    let growth = rows.iter().find(|r| r[0] == "growth").unwrap();
    assert_eq!(growth[1].as_f64(), Some(growth_customers().await));
    let (_, viewer) = app.ask("dave", "how many customers are on each plan").await;
    assert_eq!(
        viewer["kind"], "refusal",
        "viewers run no SQL, verified or not: {viewer}"
    );
}

#[tokio::test]
async fn a_streamed_answer_stops_working_when_the_client_leaves() {
    let llm = scripted_llm::start(vec![
        Reply::Delayed(
            1_500,
            Box::new(step(
                json!({"tool": "describe_schema", "table": "customers"}),
            )),
        ),
        sql(PLANS),
        sql(PLANS),
    ])
    .await;
    let app = app_with(&llm, |_| {}).await;
    let response = app
        .client
        .post(format!("{}/api/chat", app.base))
        .header("X-Steward-Dev-User", "alice")
        .header("Accept", "text/event-stream")
        .json(&json!({"question": "How many customers does each plan have?"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    // The first model call is under way; the client goes away.
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    drop(response);
    tokio::time::sleep(std::time::Duration::from_millis(3_000)).await;
    assert_eq!(
        llm.requests().len(),
        1,
        "no model call after the client left"
    );
}

#[tokio::test]
async fn a_model_returning_hostile_sql_gets_nothing_and_cannot_take_the_server_down() {
    let deep = format!("SELECT {}1 AS n", "1+".repeat(45_000));
    let llm = scripted_llm::start(vec![
        // Extraction through a JOIN USING on a personal column.
        sql("SELECT count(*) AS n FROM customers JOIN (SELECT 'x@y' AS contact_email) v USING (contact_email)"),
        // Whole rows inside an expression.
        sql("SELECT concat(c.*) AS x FROM customers c"),
        // A statement too deep to walk.
        sql(&deep),
        // One call asking for gigabytes.
        sql("SELECT printf('%0900000000d', 1) AS x"),
    ])
    .await;
    let app = app_with(&llm, |s| s.llm.max_repairs = 3).await;
    let (status, body) = app
        .ask("alice", "How many customers does each plan have?")
        .await;
    assert_eq!(status, 200);
    assert_eq!(body["kind"], "refusal", "{body}");
    assert!(body["queries"].as_array().unwrap().is_empty(), "{body}");
    assert!(!body.to_string().contains('@'));
    // Still serving.
    let (status, _) = app.get(Some("alice"), "/healthz").await;
    assert_eq!(status, 200);
}
