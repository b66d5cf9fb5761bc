//! Serving a team at once: the result cache (keyed so it cannot show one
//! principal's rows to another, audited, bypassed by admins and re-runs,
//! invalidated by a change to the data), bounded work (503 with
//! `Retry-After`, exactly one question event per answer returned), per-user
//! rate limits (429) and `/readyz`.

use std::path::PathBuf;

use serde_json::{Value, json};
use steward::session::SessionStore;
use steward::settings::Settings;

use crate::helpers::{TestApp, demo_db, demo_settings, fresh_index_dir, session, spawn};

/// The demo settings on a private copy of the demo warehouse (tests here
/// change or delete it).
fn own_warehouse() -> (Settings, PathBuf) {
    let dir = fresh_index_dir();
    std::fs::create_dir_all(&dir).unwrap();
    let copy = dir.join("warehouse.sqlite");
    std::fs::copy(demo_db(), &copy).unwrap();
    let mut settings = demo_settings();
    settings.warehouse = format!("sqlite://{}", copy.display());
    (settings, copy)
}

/// POSTs a question; returns (status, `Retry-After`, body).
async fn post_chat(app: &TestApp, user: &str, body: Value) -> (u16, Option<String>, Value) {
    let r = app
        .client
        .post(format!("{}/api/chat", app.base))
        .header("X-Steward-Dev-User", user)
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    let retry = r
        .headers()
        .get("retry-after")
        .map(|v| v.to_str().unwrap().to_owned());
    (status, retry, r.json().await.unwrap_or(Value::Null))
}

/// `user`'s newest audit events of `kind`.
async fn events(app: &TestApp, user: &str, kind: &str, limit: usize) -> Vec<Value> {
    let (status, body) = app
        .get(
            Some("bob"),
            &format!("/api/admin/audit?user={user}&kind={kind}&limit={limit}"),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    body["events"].as_array().unwrap().clone()
}

const DAU: &str = "What was DAU last week vs the week before?";

#[tokio::test]
async fn a_repeated_question_is_served_from_the_cache_under_the_same_grants_only() {
    let (settings, _copy) = own_warehouse();
    let app = spawn(settings).await;
    let (status, first) = app.ask("alice", DAU).await;
    assert_eq!(status, 200, "{first}");
    assert!(first.get("cached").is_none(), "{first}");
    assert!(
        first["as_of"].is_string(),
        "an answer from data says when: {first}"
    );

    let (_, second) = app.ask("alice", DAU).await;
    assert_eq!(second["cached"], true, "{second}");
    assert_eq!(second["data"], first["data"]);
    // The cached rows keep their time (when the first statement ran; the two
    // clocks are read a slot wait apart).
    let time =
        |a: &Value| chrono::DateTime::parse_from_rfc3339(a["as_of"].as_str().unwrap()).unwrap();
    assert!(
        (time(&second) - time(&first)).abs() < chrono::Duration::seconds(1),
        "{second}\n{first}"
    );
    // Still a question event, and a statement event marked as cached.
    let q = &events(&app, "alice", "question", 1).await[0];
    assert_eq!(q["outcome"], "answered");
    assert!(q["statements"][0]["cached_as_of"].is_string(), "{q}");
    let st = &events(&app, "alice", "statement", 1).await[0];
    assert_eq!(st["outcome"], "cached", "{st}");
    assert_eq!(st["parent"], q["id"]);

    // erin's role filters rows to her region: the guard's SQL differs, so
    // alice's cached rows are never hers.
    let by_region = "Signups last week by region";
    let (_, alice) = app.ask("alice", by_region).await;
    let (_, erin) = app.ask("erin", by_region).await;
    assert!(erin.get("cached").is_none(), "{erin}");
    assert_ne!(erin["data"], alice["data"], "{erin}\n{alice}");
    // The same statement under another role is another entry too.
    let (_, bob) = app.ask("bob", DAU).await;
    assert!(bob.get("cached").is_none(), "{bob}");

    // Admins may force a fresh run; nobody else may.
    let (status, _, fresh) = post_chat(&app, "bob", json!({"question": DAU, "fresh": true})).await;
    assert_eq!(status, 200, "{fresh}");
    assert!(fresh.get("cached").is_none(), "{fresh}");
    let (status, _, denied) =
        post_chat(&app, "alice", json!({"question": DAU, "fresh": true})).await;
    assert_eq!(status, 403, "{denied}");
    assert_eq!(denied["error"]["code"], "forbidden");
}

#[tokio::test]
async fn a_change_to_the_warehouse_file_invalidates_cached_results() {
    let (settings, copy) = own_warehouse();
    let app = spawn(settings).await;
    app.ask("alice", DAU).await;
    let (_, cached) = app.ask("alice", DAU).await;
    assert_eq!(cached["cached"], true, "{cached}");
    // A write to the database file (here only its modification time; any
    // committed write changes it) is a new data version.
    let file = std::fs::File::options().write(true).open(&copy).unwrap();
    file.set_modified(std::time::SystemTime::now() + std::time::Duration::from_secs(5))
        .unwrap();
    let (_, after) = app.ask("alice", DAU).await;
    assert!(after.get("cached").is_none(), "{after}");
    assert_eq!(after["data"], cached["data"]);
}

#[tokio::test]
async fn a_rerun_never_uses_the_cache() {
    let (settings, _copy) = own_warehouse();
    let db = SessionStore::connect(&settings.sessions).await.unwrap();
    let app = spawn(settings).await;
    app.ask("bob", DAU).await;
    let (_, cached) = app.ask("bob", DAU).await;
    assert_eq!(cached["cached"], true, "{cached}");
    let statement = events(&app, "bob", "statement", 1).await[0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let (cookie, csrf) = session(&db, "bob", &["admin"], 60).await;
    let r = app
        .client
        .post(format!("{}/api/admin/queries/{statement}/rerun", app.base))
        .header("cookie", cookie)
        .header("x-csrf-token", csrf)
        .json(&json!({"reason": "is the cached DAU still right?"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let rerun: Value = r.json().await.unwrap();
    let (_, shown) = app
        .get(
            Some("bob"),
            &format!("/api/admin/audit/{}", rerun["rerun_id"].as_str().unwrap()),
        )
        .await;
    let ran = &shown["event"]["statements"][0];
    assert!(ran["id"].is_string(), "{shown}");
    assert!(ran.get("cached_as_of").is_none(), "{shown}");
    let st = &events(&app, "bob", "statement", 1).await[0];
    assert_eq!(st["outcome"], "started", "{st}");
}

#[tokio::test]
async fn past_the_statement_limit_questions_get_503_and_each_answer_one_question_event() {
    let (mut settings, _copy) = own_warehouse();
    settings.limits.max_concurrent_statements = 1;
    settings.limits.queue_timeout_ms = 0;
    settings.cache.enabled = false;
    let app = spawn(settings).await;
    let questions = [
        DAU,
        "How many signups last week?",
        "Revenue last month by plan",
        "Signups last week by region",
        "What is the KPI overview?",
        "Active customers by industry",
    ];
    let users = ["alice", "dave", "erin", "sam"];
    let asks = (0..24).map(|i| {
        let app = &app;
        async move {
            let user = users[i % users.len()];
            let q = questions[i % questions.len()];
            (user, post_chat(app, user, json!({ "question": q })).await)
        }
    });
    let replies = futures_util::future::join_all(asks).await;
    let mut answered = std::collections::BTreeMap::<&str, usize>::new();
    let mut busy = 0;
    for (user, (status, retry, body)) in &replies {
        match status {
            200 => *answered.entry(user).or_default() += 1,
            503 => {
                busy += 1;
                assert_eq!(body["error"]["code"], "busy", "{body}");
                let secs: u64 = retry.as_deref().expect("Retry-After").parse().unwrap();
                assert!(secs >= 1);
            }
            other => panic!("{other}: {body}"),
        }
    }
    assert!(
        busy > 0,
        "one slot and no queue: some questions are turned away"
    );
    assert!(!answered.is_empty(), "and some are answered");
    // Exactly one question event per answer returned; the turned-away
    // questions are recorded as overloaded, with no answer.
    for user in users {
        let evs = events(&app, user, "question", 100).await;
        let answers = evs
            .iter()
            .filter(|e| e["outcome"] == "answered" || e["outcome"] == "refused")
            .count();
        assert_eq!(answers, answered.get(user).copied().unwrap_or(0), "{user}");
    }
    let (_, report) = app.get(Some("bob"), "/api/admin/audit/verify").await;
    assert_eq!(report["problems"], json!([]), "{report}");
}

#[tokio::test]
async fn a_user_past_the_rate_limit_gets_429_with_retry_after_and_others_do_not() {
    let mut settings = demo_settings();
    settings.limits.questions_per_minute = 2;
    settings.limits.question_burst = 2;
    let app = spawn(settings).await;
    for _ in 0..2 {
        let (status, _, body) = post_chat(&app, "alice", json!({"question": DAU})).await;
        assert_eq!(status, 200, "{body}");
    }
    let (status, retry, body) = post_chat(&app, "alice", json!({"question": DAU})).await;
    assert_eq!(status, 429, "{body}");
    assert_eq!(body["error"]["code"], "rate_limited");
    let secs: u64 = retry.expect("Retry-After").parse().unwrap();
    assert!((1..=30).contains(&secs), "{secs}");
    // The Metrics API counts against the same limit.
    let (status, body) = app
        .get(
            Some("alice"),
            "/api/metrics/signups?start=2026-11-01&end=2026-11-08",
        )
        .await;
    assert_eq!(status, 429, "{body}");
    let (status, _, body) = post_chat(&app, "bob", json!({"question": DAU})).await;
    assert_eq!(status, 200, "{body}");
}

#[tokio::test]
async fn readyz_fails_while_the_warehouse_is_unreachable_and_healthz_does_not() {
    let (settings, copy) = own_warehouse();
    let app = spawn(settings).await;
    let (status, body) = app.get(None, "/readyz").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["status"], "ready");
    assert_eq!(body["checks"]["warehouse"], "ok");
    assert_eq!(body["checks"]["audit"], "ok");
    std::fs::remove_file(&copy).unwrap();
    let (status, body) = app.get(None, "/readyz").await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["checks"]["warehouse"], "unreachable", "{body}");
    assert_eq!(body["checks"]["sessions"], "ok", "{body}");
    let (status, _) = app.get(None, "/healthz").await;
    assert_eq!(status, 200);
}

/// A scripted model whose every reply takes `ms` and counts all customers.
async fn slow_model(replies: usize, ms: u64) -> crate::scripted_llm::ScriptedLlm {
    let reply =
        crate::scripted_llm::Reply::Text("```sql\nSELECT COUNT(*) AS n FROM customers\n```".into());
    crate::scripted_llm::start(
        (0..replies)
            .map(|_| crate::scripted_llm::Reply::Delayed(ms, Box::new(reply.clone())))
            .collect(),
    )
    .await
}

const TO_MODEL: &str = "How many customers do we have in all?";

#[tokio::test]
async fn past_the_model_limit_questions_get_503_not_a_degraded_answer() {
    let llm = slow_model(4, 1500).await;
    let app = crate::scripted_llm::demo_app(&llm, steward::llm::LlmPath::Sql, |s| {
        s.llm.route = steward::llm::Route::Always;
        s.llm.candidates = 1;
        s.llm.max_concurrent = 1;
        s.llm.queue_timeout_ms = 100;
    })
    .await;
    let (first, second) = tokio::join!(
        post_chat(&app, "alice", json!({ "question": TO_MODEL })),
        post_chat(&app, "dave", json!({ "question": TO_MODEL })),
    );
    let mut statuses = [first.0, second.0];
    statuses.sort_unstable();
    assert_eq!(statuses, [200, 503], "{first:?}\n{second:?}");
    let busy = if first.0 == 503 { &first } else { &second };
    assert_eq!(busy.2["error"]["code"], "busy");
    assert!(busy.1.is_some(), "Retry-After");
}

#[tokio::test]
async fn on_sigterm_an_instance_finishes_the_answer_in_flight_takes_no_new_work_and_exits() {
    let llm = slow_model(1, 2500).await;
    let port = crate::oidc_provider::free_port();
    let base = format!("http://127.0.0.1:{port}");
    let mut child = crate::helpers::steward_command()
        .args(["serve", "--bind", &format!("127.0.0.1:{port}")])
        .env(
            "STEWARD_WAREHOUSE",
            format!("sqlite://{}", demo_db().display()),
        )
        .env("STEWARD_AS_OF", crate::helpers::as_of().to_string())
        .env("STEWARD_LLM__URL", &llm.url)
        .env("STEWARD_LLM__ROUTE", "always")
        .env("STEWARD_LLM__CANDIDATES", "1")
        .env("STEWARD_LLM__MAX_RETRIES", "0")
        .env("STEWARD_LIMITS__SHUTDOWN_GRACE_SECS", "20")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let client = reqwest::Client::new();
    let mut ready = false;
    for _ in 0..240 {
        if let Ok(r) = client.get(format!("{base}/readyz")).send().await
            && r.status() == 200
        {
            ready = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
    }
    assert!(ready, "steward serve became ready");
    let asking = tokio::spawn({
        let (client, base) = (client.clone(), base.clone());
        async move {
            let r = client
                .post(format!("{base}/api/chat"))
                .header("X-Steward-Dev-User", "alice")
                .json(&json!({ "question": TO_MODEL }))
                .send()
                .await
                .unwrap();
            (r.status().as_u16(), r.json::<Value>().await.unwrap())
        }
    });
    // The question is now waiting on the model.
    while llm.requests().is_empty() {
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let term = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(term.success());
    // New connections are refused once the listener closes…
    let mut refused = false;
    for _ in 0..50 {
        if reqwest::Client::new()
            .get(format!("{base}/healthz"))
            .send()
            .await
            .is_err()
        {
            refused = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(refused, "no new work after SIGTERM");
    // …while the answer in flight is finished and delivered…
    let (status, body) = asking.await.unwrap();
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["kind"], "sql", "{body}");
    // …and the process exits cleanly within the grace period.
    let exited = tokio::task::spawn_blocking(move || {
        for _ in 0..200 {
            if let Some(status) = child.try_wait().unwrap() {
                return Some(status);
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        let _ = child.kill();
        None
    })
    .await
    .unwrap();
    assert!(exited.is_some_and(|s| s.success()), "{exited:?}");
}

/// Statement events written for the dimension catalogue so far.
async fn catalogue_statements(o: &steward::orchestrator::Orchestrator) -> usize {
    let filter = steward::audit::Filter {
        kind: Some("statement".into()),
        limit: Some(1000),
        ..Default::default()
    };
    o.audit
        .list(&filter)
        .await
        .unwrap()
        .iter()
        .filter(|e| e.purpose.as_deref() == Some("dimension catalogue"))
        .count()
}

#[tokio::test]
async fn the_dimension_catalogue_is_read_back_until_the_data_changes() {
    let (settings, copy) = own_warehouse();
    std::fs::create_dir_all(&settings.index_dir).unwrap();
    let first = steward::startup::build_orchestrator(&settings)
        .await
        .unwrap();
    let queried = catalogue_statements(&first).await;
    assert!(queried > 0, "the first start queries the warehouse");
    assert!(!first.dimension_values.is_empty());
    // A one-shot command starting again reads it back: no statement runs.
    let second = steward::startup::build_orchestrator(&settings)
        .await
        .unwrap();
    assert_eq!(second.dimension_values, first.dimension_values);
    assert_eq!(catalogue_statements(&second).await, queried);
    // New data: queried again.
    let file = std::fs::File::options().write(true).open(&copy).unwrap();
    file.set_modified(std::time::SystemTime::now() + std::time::Duration::from_secs(5))
        .unwrap();
    let third = steward::startup::build_orchestrator(&settings)
        .await
        .unwrap();
    assert_eq!(catalogue_statements(&third).await, 2 * queried);
}

#[tokio::test]
async fn readyz_fails_while_the_audit_and_sessions_database_is_unreachable() {
    crate::helpers::with_postgres_database("steward_readyz", |url| async move {
        let mut settings = demo_settings();
        settings.sessions.database = url.clone();
        let app = spawn(settings).await;
        let (status, body) = app.get(None, "/readyz").await;
        assert_eq!(status, 200, "{body}");
        // No one may connect to the database any more, and those connected are cut off.
        let admin = std::env::var("STEWARD_TEST_PG_URL")
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into());
        let name = url::Url::parse(&url)
            .unwrap()
            .path()
            .trim_start_matches('/')
            .to_owned();
        let pg = sqlx::PgPool::connect(&admin).await.unwrap();
        let run = |sql: String| {
            let pg = pg.clone();
            async move {
                sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
                    .execute(&pg)
                    .await
                    .unwrap();
            }
        };
        run(format!("ALTER DATABASE {name} ALLOW_CONNECTIONS false")).await;
        run(format!(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{name}'"
        ))
        .await;
        let (status, body) = app.get(None, "/readyz").await;
        assert_eq!(status, 503, "{body}");
        assert_eq!(body["checks"]["audit"], "unreachable", "{body}");
        assert_eq!(body["checks"]["sessions"], "unreachable", "{body}");
        assert_eq!(body["checks"]["warehouse"], "ok", "{body}");
        // Back again: ready again.
        run(format!("ALTER DATABASE {name} ALLOW_CONNECTIONS true")).await;
        let (status, body) = app.get(None, "/readyz").await;
        assert_eq!(status, 200, "{body}");
    })
    .await;
}

#[tokio::test]
async fn with_the_shared_tier_an_instance_serves_what_another_ran_but_never_personal_data() {
    crate::helpers::with_postgres_database("steward_shared_cache", |url| async move {
        let (mut settings, _copy) = own_warehouse();
        settings.sessions.database = url.clone();
        settings.cache.shared = true;
        let a = spawn(settings.clone()).await;
        settings.index_dir = fresh_index_dir();
        let b = spawn(settings).await;

        let (_, first) = a.ask("alice", DAU).await;
        assert!(first.get("cached").is_none(), "{first}");
        let (_, other) = b.ask("alice", DAU).await;
        assert_eq!(other["cached"], true, "B serves what A ran: {other}");
        assert_eq!(other["data"], first["data"]);

        // carol may read customers' emails; those rows stay in A's memory.
        let pii = "Show me the email addresses of customers who churned last month.";
        let (_, on_a) = a.ask("carol", pii).await;
        assert!(on_a.to_string().contains(".example"), "{on_a}");
        let (_, on_b) = b.ask("carol", pii).await;
        assert_eq!(on_b["data"], on_a["data"]);
        // B ran the listing itself (its count of the same rows is public, so shared).
        let q = &events(&b, "carol", "question", 1).await[0];
        let statements = q["statements"].as_array().unwrap();
        assert_eq!(statements.len(), 2, "{q}");
        assert!(statements[0].get("cached_as_of").is_none(), "{q}");
        assert!(statements[1]["cached_as_of"].is_string(), "{q}");
        let (_, again) = a.ask("carol", pii).await;
        assert_eq!(again["cached"], true, "{again}");
        let store = SessionStore::connect(&steward::session::SessionSettings {
            database: url,
            ..Default::default()
        })
        .await
        .unwrap();
        let bodies: Vec<String> = sqlx::query_scalar("SELECT body FROM result_cache")
            .fetch_all(store.pool())
            .await
            .unwrap();
        assert!(!bodies.is_empty());
        assert!(
            bodies.iter().all(|b| !b.contains(".example")),
            "no email address is stored in steward's database"
        );
    })
    .await;
}
