//! The text-to-SQL path (`llm.path = "sql"`) against a scripted model:
//! candidates are run through the guard and grouped by result, the largest
//! group answers, low agreement is labelled or refused, a repair never
//! resends a refused statement, and a database with no metrics and no
//! documents gets a working model path on either path.

use serde_json::Value;
use steward::llm::{LlmPath, LowAgreement, Route};

use crate::helpers::{demo_db, oracle, root};
use crate::scripted_llm::{self, Reply, ScriptedLlm};

const TOTAL: &str = "SELECT COUNT(*) AS n FROM customers";

async fn app(
    llm: &ScriptedLlm,
    tune: impl FnOnce(&mut steward::settings::Settings),
) -> crate::helpers::TestApp {
    scripted_llm::demo_app(llm, LlmPath::Sql, |s| {
        s.llm.route = Route::Always;
        tune(s);
    })
    .await
}

fn fenced(sql: &str) -> String {
    format!("```sql\n{sql}\n```")
}

/// The embedding model's directory from `STEWARD_TEST_EMBEDDING_MODEL`;
/// `None`, after saying `test` is skipped, when it is not set to one.
fn embedding_model(test: &str) -> Option<String> {
    match std::env::var("STEWARD_TEST_EMBEDDING_MODEL") {
        Ok(dir) if std::path::Path::new(&dir).join("model.onnx").is_file() => Some(dir),
        _ => {
            eprintln!(
                "SKIPPED {test}: STEWARD_TEST_EMBEDDING_MODEL is not set to a model directory"
            );
            None
        }
    }
}

fn text(sql: &str) -> Reply {
    Reply::Text(fenced(sql))
}

/// Asserts a 200 SQL answer whose first cell is `sql`'s value on the demo
/// warehouse (the oracle).
async fn assert_sql_answer(status: u16, body: &Value, sql: &'static str) {
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["kind"], "sql", "{body}");
    let want = oracle(demo_db(), sql).await[0];
    assert_eq!(body["data"]["rows"][0][0].as_f64(), Some(want), "{body}");
}

#[tokio::test]
async fn the_largest_group_of_equal_results_answers() {
    let total = fenced(TOTAL);
    let total2 = fenced("SELECT count(*) AS n FROM customers WHERE 1 = 1");
    let total3 = fenced("SELECT COUNT(customer_id) AS n FROM customers");
    let starter = fenced("SELECT COUNT(*) AS n FROM customers WHERE plan = 'starter'");
    let llm = scripted_llm::start_with_samples(
        vec![text(
            "SELECT COUNT(*) AS n FROM customers WHERE plan = 'growth'",
        )],
        vec![vec![&total, &total2, &starter, &total3]],
    )
    .await;
    let app = app(&llm, |s| s.llm.candidates = 5).await;
    let (status, body) = app
        .ask("alice", "How many customers do we have in all?")
        .await;
    assert_sql_answer(
        status,
        &body,
        "SELECT CAST(COUNT(*) AS REAL) FROM customers",
    )
    .await;
    assert_eq!(body["llm"]["candidates"], 5, "{body}");
    assert_eq!(body["llm"]["agreement"].as_f64(), Some(0.6), "{body}");
    assert_eq!(
        body["llm"]["calls"], 2,
        "one greedy and one sampled request: {body}"
    );
    // Five distinct statements, each validated and audited before it ran.
    let requests = llm.requests();
    assert_eq!(requests.len(), 2);
    let sampled = requests
        .iter()
        .find(|r| r["n"] == 4)
        .expect("a request for four samples");
    assert!(sampled["temperature"].as_f64().unwrap() > 0.0);
    // Every request stops decoding at the closing fence, so no candidate
    // holds the others up by explaining itself.
    for r in &requests {
        assert_eq!(r["stop"], "\n```\n", "{r}");
    }
    assert!(
        body["interpretation"]["sentence"]
            .as_str()
            .unwrap()
            .starts_with("I read this as:"),
        "{body}"
    );
    assert!(
        body["notes"].to_string().find("Low confidence").is_none(),
        "{body}"
    );
}

#[tokio::test]
async fn low_agreement_is_labelled_or_refused_as_configured() {
    let a = fenced("SELECT COUNT(*) AS n FROM customers WHERE plan = 'starter'");
    let b = fenced("SELECT COUNT(*) AS n FROM customers WHERE plan = 'enterprise'");
    let c = fenced("SELECT COUNT(*) AS n FROM customers WHERE region = 'EMEA'");
    for (mode, kind) in [
        (LowAgreement::Label, "sql"),
        (LowAgreement::Refuse, "refusal"),
    ] {
        let llm = scripted_llm::start_with_samples(vec![text(TOTAL)], vec![vec![&a, &b, &c]]).await;
        let app = app(&llm, |s| s.llm.low_agreement = mode).await;
        let (_, body) = app.ask("alice", "How many customers are there?").await;
        assert_eq!(body["kind"], kind, "{body}");
        assert_eq!(body["llm"]["agreement"].as_f64(), Some(0.25), "{body}");
        if kind == "sql" {
            assert!(
                body["notes"].to_string().contains("Low confidence"),
                "{body}"
            );
        } else {
            assert!(
                body["data"]["rows"].as_array().unwrap().is_empty(),
                "{body}"
            );
        }
    }
}

#[tokio::test]
async fn a_repair_never_resends_a_refused_statement_and_pii_never_runs() {
    let pii = "SELECT contact_email FROM customers";
    let fenced_pii = fenced(pii);
    let spaced = fenced("SELECT  contact_email\nFROM customers");
    let llm = scripted_llm::start_with_samples(
        // The greedy candidate, then the repair's: the same statement again.
        vec![text(pii), text("SELECT  contact_email\nFROM customers")],
        // The sampled candidates, then the repair's: the same, respaced.
        vec![
            vec![&fenced_pii, &fenced_pii, &fenced_pii],
            vec![&spaced, &fenced_pii, &spaced],
        ],
    )
    .await;
    let app = app(&llm, |_| {}).await;
    let (_, body) = app
        .ask("alice", "List our customers' email addresses")
        .await;
    assert_eq!(body["kind"], "refusal", "{body}");
    assert!(!body.to_string().contains(".example"), "{body}");
    assert_eq!(body["llm"]["repairs"], 1, "{body}");
    let requests = llm.requests();
    assert_eq!(
        requests.len(),
        4,
        "greedy and sampled, then both again for the one repair round"
    );
    for repair in &requests[2..] {
        let repair = repair["messages"].to_string();
        assert!(
            repair.contains("failed"),
            "the repair shows the error: {repair}"
        );
    }
    // The guard saw the statement once (one denial in the question's
    // audit event), not again for the repair.
    let (_, audit) = app
        .get(Some("bob"), "/api/admin/audit?kind=question&limit=5")
        .await;
    let event = &audit["events"][0];
    assert_eq!(
        event["decisions"]["denied"].as_array().map(Vec::len),
        Some(1),
        "{event}"
    );
}

#[tokio::test]
async fn a_repair_round_with_fresh_candidates_recovers_and_names_the_columns_table() {
    // Every first-round candidate puts `plan` on the wrong table.
    let wrong = "SELECT COUNT(*) AS n FROM sessions s WHERE s.plan = 'growth'";
    let fixed = "SELECT COUNT(*) AS n FROM customers WHERE plan = 'growth'";
    let (f_wrong, f_fixed) = (fenced(wrong), fenced(fixed));
    let llm = scripted_llm::start_with_samples(
        vec![text(wrong), text(wrong)],
        vec![
            vec![&f_wrong, &f_wrong, &f_wrong],
            // The repair round: the greedy reply repeats the refused
            // statement (not run again); two sampled replies agree on a fix.
            vec![&f_fixed, &f_fixed, &f_wrong],
        ],
    )
    .await;
    let app = app(&llm, |_| {}).await;
    let (status, body) = app
        .ask("alice", "How many customers are on the growth plan?")
        .await;
    assert_sql_answer(
        status,
        &body,
        "SELECT CAST(COUNT(*) AS REAL) FROM customers WHERE plan = 'growth'",
    )
    .await;
    assert_eq!(body["llm"]["repairs"], 1, "{body}");
    assert_eq!(body["llm"]["calls"], 4, "{body}");
    // Two of the repair round's four replies agree on the answer.
    assert_eq!(body["llm"]["agreement"].as_f64(), Some(0.5), "{body}");
    let requests = llm.requests();
    let repair = requests[2]["messages"].to_string();
    let hint = repair.split("plan is a column of ").nth(1).unwrap_or("");
    assert!(
        hint.starts_with("customer_contracts, customer_mrr_daily, customers."),
        "the repair names the tables that have the column: {repair}"
    );
}

#[tokio::test]
async fn a_column_on_the_wrong_alias_is_moved_without_a_repair() {
    let wrong = "SELECT COUNT(*) AS n FROM support_tickets AS t JOIN customers AS c ON t.customer_id = c.customer_id WHERE t.region = 'EMEA'";
    let f = fenced(wrong);
    let llm = scripted_llm::start_with_samples(vec![text(wrong)], vec![vec![&f, &f, &f]]).await;
    let app = app(&llm, |_| {}).await;
    let (status, body) = app
        .ask(
            "alice",
            "How many support tickets came from EMEA customers?",
        )
        .await;
    assert_sql_answer(
        status,
        &body,
        "SELECT CAST(COUNT(*) AS REAL) FROM support_tickets t JOIN customers c ON t.customer_id = c.customer_id WHERE c.region = 'EMEA'",
    )
    .await;
    let sql = body["queries"][0]["sql"].as_str().unwrap_or_default();
    assert!(sql.contains("c.region = 'EMEA'"), "{sql}");
    assert_eq!(body["llm"]["repairs"], 0, "{body}");
    assert_eq!(llm.requests().len(), 2, "no repair request");
}

#[tokio::test]
async fn a_cannot_answer_majority_is_a_refusal_without_numbers() {
    let no = "-- cannot answer: no table holds app store ratings";
    let llm =
        scripted_llm::start_with_samples(vec![Reply::Text(no.into())], vec![vec![no, no, no]])
            .await;
    let app = app(&llm, |_| {}).await;
    let (_, body) = app.ask("alice", "What's our app store rating?").await;
    assert_eq!(body["kind"], "refusal", "{body}");
    assert!(
        body["answer"]
            .as_str()
            .unwrap()
            .contains("app store ratings"),
        "{body}"
    );
    assert!(body["data"]["rows"].as_array().unwrap().is_empty());
}

/// A `policy init`-style policy (no metrics) and no documents: the model
/// path works on both paths, and no tool with nothing to offer (an empty
/// `enum`, which llama.cpp rejects) is in the request.
#[tokio::test]
async fn a_database_without_metrics_or_documents_still_gets_the_model() {
    let dir = tempfile::tempdir().unwrap();
    let policies = dir.path().join("policies");
    std::fs::create_dir_all(policies.join("semantic")).unwrap();
    for f in ["schema.yaml", "roles.yaml"] {
        std::fs::copy(root().join("policies").join(f), policies.join(f)).unwrap();
    }
    let docs = dir.path().join("docs");
    std::fs::create_dir_all(&docs).unwrap();
    let want = oracle(demo_db(), "SELECT CAST(COUNT(*) AS REAL) FROM customers").await[0];
    for path in [LlmPath::Plan, LlmPath::Sql] {
        let llm = match path {
            LlmPath::Plan => {
                scripted_llm::start(vec![
                    scripted_llm::sql(TOTAL),
                    Reply::Text("Counted.".into()),
                ])
                .await
            }
            LlmPath::Sql => {
                let t = fenced(TOTAL);
                scripted_llm::start_with_samples(vec![text(TOTAL)], vec![vec![&t, &t, &t]]).await
            }
        };
        let (p, d) = (policies.clone(), docs.clone());
        let app = app(&llm, move |s| {
            s.policies = p;
            s.docs = d;
            s.index_dir = crate::helpers::fresh_index_dir();
            s.llm.path = path;
        })
        .await;
        let (status, body) = app.ask("alice", "How many customers are there?").await;
        assert_eq!(status, 200);
        assert_eq!(body["kind"], "sql", "{path:?}: {body}");
        assert_eq!(body["data"]["rows"][0][0].as_f64(), Some(want), "{body}");
        let first = llm.requests()[0].to_string();
        assert!(!first.contains("\"enum\":[]"), "{path:?}: {first}");
        if path == LlmPath::Plan {
            let tools: Vec<Value> =
                llm.requests()[0]["response_format"]["json_schema"]["schema"]["anyOf"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|v| v["properties"]["tool"]["const"].clone())
                    .collect();
            assert!(!tools.contains(&"query_metric".into()), "{tools:?}");
            assert!(!tools.contains(&"search_docs".into()), "{tools:?}");
            assert!(!tools.contains(&"list_metrics".into()), "{tools:?}");
        }
    }
}

/// With the embedding model, a question whose subject matches nothing the
/// asker may read ("dress code", "app store rating") is refused before any
/// model call: a small model would write some query over the tables it was
/// shown instead of refusing. A question about a readable table, value or
/// metric still reaches the model.
#[tokio::test]
async fn a_subject_nothing_readable_matches_is_refused_before_the_model() {
    let Some(dir) =
        embedding_model("a_subject_nothing_readable_matches_is_refused_before_the_model")
    else {
        return;
    };
    let llm = scripted_llm::start(vec![text(TOTAL); 5]).await;
    let app = app(&llm, |s| {
        s.retrieval.model = dir.clone();
        s.llm.candidates = 1;
    })
    .await;
    for question in [
        "What is the dress code for the office?",
        "What's our app store rating?",
        "What was the gross margin last quarter?",
    ] {
        let (status, body) = app.ask("alice", question).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["kind"], "refusal", "{question}: {body}");
        assert_eq!(
            body["reason"], "the question's subject matches nothing the asker may read",
            "{question}: {body}"
        );
    }
    assert!(llm.requests().is_empty(), "{:?}", llm.requests());
    // Values ("Germany"), tables and metrics are subjects steward can query.
    let (_, body) = app.ask("alice", "How many users are from Germany?").await;
    assert_ne!(
        body["reason"], "the question's subject matches nothing the asker may read",
        "{body}"
    );
    // Whichever term is central, a side term naming a readable column is
    // enough: words of method ("alphabetical", "substring") are no subject.
    for question in [
        "List the plan names of our customers in alphabetical order",
        "Which regions contain the substring 'EM'?",
    ] {
        let (_, body) = app.ask("alice", question).await;
        assert_ne!(
            body["reason"], "the question's subject matches nothing the asker may read",
            "{question}: {body}"
        );
    }
    assert_eq!(llm.requests().len(), 3, "the model was asked: {body}");

    // On the plan path the model may search the documentation, so a subject
    // a readable document names is not refused; one none names still is.
    let llm = scripted_llm::start(vec![Reply::Text("{}".into()); 4]).await;
    let plan = scripted_llm::demo_app(&llm, LlmPath::Plan, |s| {
        s.llm.route = Route::Always;
        s.retrieval.model = dir.clone();
    })
    .await;
    let (_, body) = plan
        .ask("alice", "What is the dress code for the office?")
        .await;
    assert_eq!(body["kind"], "refusal", "{body}");
    assert!(llm.requests().is_empty(), "{:?}", llm.requests());
    let (_, body) = plan
        .ask("alice", "Who gets paged for escalation by the runbook?")
        .await;
    assert_ne!(
        body["reason"], "the question's subject matches nothing the asker may read",
        "{body}"
    );
    assert!(!llm.requests().is_empty(), "the model was asked: {body}");
}

/// A word the planner does not recognise is accounted for when dropping it
/// leaves the question as close to the metric answer as before (by the
/// embedding model, `orchestrator/meaning.rs`): the metric answers and no
/// model is asked. A word that names a computation never is, and without
/// the embedding model nothing is rescued.
#[tokio::test]
async fn words_that_add_nothing_to_a_metric_answer_are_accounted_for_by_meaning() {
    let Some(dir) =
        embedding_model("words_that_add_nothing_to_a_metric_answer_are_accounted_for_by_meaning")
    else {
        return;
    };
    let rescued = "Can you pull up sales for the past 30 days?";
    let llm = scripted_llm::start(vec![text(TOTAL); 4]).await;
    let with_meaning = scripted_llm::demo_app(&llm, LlmPath::Sql, |s| {
        s.retrieval.model = dir.clone();
    })
    .await;
    let (status, body) = with_meaning.ask("alice", rescued).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["kind"], "metric", "{body}");
    assert_eq!(body["metric"], "revenue", "{body}");
    assert!(llm.requests().is_empty(), "{:?}", llm.requests());
    // "fraction" names a computation: never answered as a metric.
    let (_, body) = with_meaning
        .ask("alice", "What fraction of signups become paying customers?")
        .await;
    assert_ne!(body["kind"], "metric", "{body}");

    let llm = scripted_llm::start(vec![text(TOTAL); 4]).await;
    let without = scripted_llm::demo_app(&llm, LlmPath::Sql, |s| {
        s.retrieval.model = "off".into();
    })
    .await;
    let (_, body) = without.ask("alice", rescued).await;
    assert_ne!(body["kind"], "metric", "{body}");
}

/// A server that returns fewer choices than `n` asked for (llama.cpp with
/// one slot, several OpenAI-compatible servers) is sent the missing ones
/// as single requests, each seeded apart, so the question still gets every
/// candidate and a rerun gets the same ones.
#[tokio::test]
async fn a_server_returning_fewer_samples_than_asked_gets_seeded_single_requests() {
    let one = fenced(TOTAL);
    let llm =
        scripted_llm::start_with_samples(vec![text(TOTAL); 3], vec![vec![one.as_str()]]).await;
    let app = app(&llm, |s| s.llm.seed = Some(7)).await;
    let (status, body) = app.ask("alice", "How many customers are there?").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["kind"], "sql", "{body}");
    assert_eq!(body["llm"]["candidates"], 4, "{body}");
    assert_eq!(body["llm"]["agreement"].as_f64(), Some(1.0), "{body}");
    let mut seeds: Vec<(u64, i64)> = llm
        .requests()
        .iter()
        .map(|r| {
            (
                r["n"].as_u64().unwrap_or(1),
                r["seed"].as_i64().unwrap_or(-1),
            )
        })
        .collect();
    seeds.sort_unstable();
    // The greedy request and the request for three share the seed; the two
    // single requests that make up the missing samples follow it.
    assert_eq!(seeds, [(1, 7), (1, 8), (1, 9), (3, 7)], "{seeds:?}");
}
