//! The audit trail through the running app: every question and statement is
//! recorded (question redacted, never rows), the admin API, failing closed,
//! admin re-runs and who may do them, `/metrics`, and the `steward audit` CLI.

use serde_json::{Value, json};
use steward::session::SessionStore;
use steward::settings::Settings;

use crate::helpers::{TestApp, demo_settings, session, spawn, steward_command};

struct Setup {
    app: TestApp,
    settings: Settings,
    db: SessionStore,
}

async fn setup() -> Setup {
    let settings = demo_settings();
    let app = spawn(settings.clone()).await;
    let db = SessionStore::connect(&settings.sessions).await.unwrap();
    Setup { app, settings, db }
}

async fn admin_get(app: &TestApp, path: &str) -> (u16, Value) {
    app.get(Some("bob"), path).await
}

/// The events of `user`, newest first.
async fn events_of(app: &TestApp, user: &str, extra: &str) -> Vec<Value> {
    let (status, body) = admin_get(app, &format!("/api/admin/audit?user={user}{extra}")).await;
    assert_eq!(status, 200, "{body}");
    body["events"].as_array().unwrap().clone()
}

#[tokio::test]
async fn questions_and_statements_are_recorded_redacted_and_chained() {
    let s = setup().await;
    let (status, answer) = s
        .app
        .ask("alice", "What was DAU last week vs the week before?")
        .await;
    assert_eq!(status, 200);
    let events = events_of(&s.app, "alice", "&kind=question").await;
    let q = &events[0];
    assert_eq!(q["question"], "What was DAU last week vs the week before?");
    assert_eq!(
        (&q["outcome"], &q["channel"], &q["plan"]),
        (&json!("answered"), &json!("api"), &json!("metric"))
    );
    assert_eq!(q["roles"], json!(["analyst"]));
    let statements = q["statements"].as_array().unwrap();
    assert_eq!(statements.len(), 2, "{q}");
    assert!(
        statements
            .iter()
            .all(|st| st["rows"] == 1 && st["result_hash"].as_str().unwrap().len() == 64)
    );
    assert_eq!(q["tables"], json!(["events"]));
    // The statement events, written before each ran, name the question and hold the SQL.
    let (status, shown) = admin_get(
        &s.app,
        &format!("/api/admin/audit/{}", q["id"].as_str().unwrap()),
    )
    .await;
    assert_eq!(status, 200);
    let children = shown["children"].as_array().unwrap();
    assert_eq!(children.len(), 2);
    for (child, run) in children.iter().zip(answer["queries"].as_array().unwrap()) {
        assert_eq!(child["kind"], "statement");
        assert_eq!(child["sql"], run["sql"]);
        assert_eq!(child["outcome"], "started");
    }
    // Never the rows: the answer's numbers are not in the stored events.
    assert!(!shown.to_string().contains("187.28"), "{shown}");

    // Personal data in a question is redacted before it is stored.
    s.app
        .ask("alice", "How many signups came from jane.roe@mail.example.com or card 4111 1111 1111 1111 or +1 (780) 434-4357?")
        .await;
    let q = &events_of(&s.app, "alice", "&kind=question&limit=1").await[0];
    let text = q["question"].as_str().unwrap();
    assert!(
        text.contains("[email]") && text.contains("[card]") && text.contains("[phone]"),
        "{text}"
    );
    assert!(
        !text.contains("jane.roe") && !text.contains("4111"),
        "{text}"
    );

    // A refused question is recorded as refused, with the reason.
    s.app
        .ask(
            "alice",
            "Show me the email addresses of customers who churned last month.",
        )
        .await;
    let refused = events_of(&s.app, "alice", "&outcome=refused").await;
    assert!(!refused.is_empty());
    assert!(refused[0]["detail"]["reason"].is_string(), "{}", refused[0]);

    // Filters by table and time, and the chain verifies.
    assert!(events_of(&s.app, "alice", "&table=events").await.len() >= 3);
    assert!(
        events_of(&s.app, "alice", "&table=invoices")
            .await
            .is_empty()
    );
    assert!(
        events_of(&s.app, "alice", "&until=2000-01-01")
            .await
            .is_empty()
    );
    let (status, report) = admin_get(&s.app, "/api/admin/audit/verify").await;
    assert_eq!(status, 200);
    assert_eq!(report["problems"], json!([]), "{report}");
}

#[tokio::test]
async fn the_audit_api_is_for_admins_and_refuses_bad_filters() {
    let s = setup().await;
    for path in [
        "/api/admin/audit",
        "/api/admin/audit/verify",
        &format!("/api/admin/audit/{}", "a".repeat(32)),
    ] {
        assert_eq!(s.app.get(Some("alice"), path).await.0, 403, "{path}");
        assert_eq!(s.app.get(None, path).await.0, 401, "{path}");
    }
    for bad in [
        "?since=yesterday",
        "?until=2026-13-01",
        "?limit=0",
        "?limit=5000",
        "?nope=1",
        "?user=%00",
    ] {
        let (status, body) = admin_get(&s.app, &format!("/api/admin/audit{bad}")).await;
        assert_eq!(status, 400, "{bad}: {body}");
    }
    assert_eq!(admin_get(&s.app, "/api/admin/audit/not-an-id").await.0, 404);
    assert_eq!(
        admin_get(&s.app, &format!("/api/admin/audit/{}", "0".repeat(32)))
            .await
            .0,
        404
    );
}

async fn post_rerun(app: &TestApp, id: &str, auth: (&str, &str), body: Value) -> (u16, Value) {
    let r = app
        .client
        .post(format!("{}/api/admin/queries/{id}/rerun", app.base))
        .header(auth.0, auth.1)
        .json(&body)
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn admins_who_signed_in_recently_can_rerun_with_a_reason_and_pii_stays_protected() {
    let s = setup().await;
    let (status, answer) = s
        .app
        .ask("alice", "What was DAU last week vs the week before?")
        .await;
    assert_eq!(status, 200);
    let q = &events_of(&s.app, "alice", "&kind=question&limit=1").await[0];
    let statement = q["statements"][0]["id"].as_str().unwrap().to_owned();
    let question = q["id"].as_str().unwrap().to_owned();

    let (fresh_cookie, fresh_csrf) = session(&s.db, "bob", &["admin"], 60).await;
    let rerun = |id: String, body: Value, cookie: String, csrf: String| {
        let app = &s.app;
        async move {
            let r = app
                .client
                .post(format!("{}/api/admin/queries/{id}/rerun", app.base))
                .header("cookie", cookie)
                .header("x-csrf-token", csrf)
                .json(&body)
                .send()
                .await
                .unwrap();
            (
                r.status().as_u16(),
                r.json::<Value>().await.unwrap_or(Value::Null),
            )
        }
    };
    let reason = json!({"reason": "customer complaint #4411: DAU looks low"});
    let (status, result) = rerun(
        statement.clone(),
        reason.clone(),
        fresh_cookie.clone(),
        fresh_csrf.clone(),
    )
    .await;
    assert_eq!(status, 200, "{result}");
    assert_eq!(result["original_id"], statement.as_str());
    assert_eq!(result["sql"], answer["queries"][0]["sql"]);
    assert_eq!(
        result["rows"][0][0], answer["data"]["rows"][0][1],
        "{result} vs {answer}"
    );
    // The re-run is its own event, linked to the original, with the reason.
    let (_, shown) = admin_get(&s.app, &format!("/api/admin/audit/{statement}")).await;
    let child = &shown["children"][0];
    assert_eq!(
        (&child["kind"], &child["principal"], &child["outcome"]),
        (&json!("rerun"), &json!("bob"), &json!("ok"))
    );
    assert_eq!(child["purpose"], "customer complaint #4411: DAU looks low");
    assert_eq!(child["id"], result["rerun_id"]);
    assert_eq!(child["statements"].as_array().unwrap().len(), 1);

    // carol (compliance) may read customer emails; bob (admin) may not: the
    // guard refuses her statement under his grants, and the attempt is recorded.
    let (_, carol) = s
        .app
        .ask(
            "carol",
            "Show me the email addresses of customers who churned last month.",
        )
        .await;
    assert!(carol.to_string().contains(".example"), "{carol}");
    let pii = events_of(&s.app, "carol", "&kind=question&limit=1").await[0]["statements"][0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let (status, body) = rerun(
        pii.clone(),
        reason.clone(),
        fresh_cookie.clone(),
        fresh_csrf.clone(),
    )
    .await;
    assert_eq!(
        (status, &body["error"]["code"]),
        (403, &json!("denied")),
        "{body}"
    );
    assert!(!body.to_string().contains(".example"));
    let (_, shown) = admin_get(&s.app, &format!("/api/admin/audit/{pii}")).await;
    assert_eq!(shown["children"][0]["outcome"], "denied");

    // Each way to get it wrong.
    let (status, body) = rerun(
        statement.clone(),
        json!({}),
        fresh_cookie.clone(),
        fresh_csrf.clone(),
    )
    .await;
    assert_eq!(
        (status, &body["error"]["code"]),
        (400, &json!("reason_required"))
    );
    let (status, _) = rerun(
        statement.clone(),
        json!({"reason": "  "}),
        fresh_cookie.clone(),
        fresh_csrf.clone(),
    )
    .await;
    assert_eq!(status, 400);
    let (status, _) = rerun(
        statement.clone(),
        json!({"reason": "x".repeat(501)}),
        fresh_cookie.clone(),
        fresh_csrf.clone(),
    )
    .await;
    assert_eq!(status, 400);
    let (status, _) = rerun(
        "0".repeat(32),
        reason.clone(),
        fresh_cookie.clone(),
        fresh_csrf.clone(),
    )
    .await;
    assert_eq!(status, 404);
    let (status, body) = rerun(
        question,
        reason.clone(),
        fresh_cookie.clone(),
        fresh_csrf.clone(),
    )
    .await;
    assert_eq!(
        (status, &body["error"]["code"]),
        (400, &json!("not_a_statement"))
    );
    let (status, _) = rerun(
        statement.clone(),
        reason.clone(),
        fresh_cookie.clone(),
        "wrong".into(),
    )
    .await;
    assert_eq!(status, 403, "CSRF");
    let (stale_cookie, stale_csrf) = session(&s.db, "bob", &["admin"], 3600).await;
    let (status, body) = rerun(statement.clone(), reason.clone(), stale_cookie, stale_csrf).await;
    assert_eq!(
        (status, &body["error"]["code"]),
        (403, &json!("reauthentication_required")),
        "{body}"
    );
    let (analyst_cookie, analyst_csrf) = session(&s.db, "alice", &["analyst"], 60).await;
    let (status, body) = rerun(
        statement.clone(),
        reason.clone(),
        analyst_cookie,
        analyst_csrf,
    )
    .await;
    assert_eq!((status, &body["error"]["code"]), (403, &json!("forbidden")));
    // The dev header is no sign-in at all.
    let (status, body) = post_rerun(
        &s.app,
        &statement,
        ("x-steward-dev-user", "bob"),
        reason.clone(),
    )
    .await;
    assert_eq!(
        (status, &body["error"]["code"]),
        (403, &json!("reauthentication_required"))
    );
    let (status, _) = post_rerun(&s.app, &statement, ("x-steward-dev-user", "alice"), reason).await;
    assert_eq!(status, 403);
    // Only the one successful re-run was recorded.
    let (_, shown) = admin_get(&s.app, &format!("/api/admin/audit/{statement}")).await;
    assert_eq!(shown["children"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn when_the_audit_trail_cannot_be_written_nothing_runs_and_no_answer_leaves() {
    let s = setup().await;
    s.app.ask("alice", "How many signups last week?").await;
    // Statements cannot be recorded: the statement does not run, and the answer says why.
    sqlx::raw_sql(
        "CREATE TRIGGER no_statements BEFORE INSERT ON audit_events WHEN NEW.kind = 'statement' \
         BEGIN SELECT RAISE(ABORT, 'disk full'); END",
    )
    .execute(s.db.pool())
    .await
    .unwrap();
    let (status, answer) = s
        .app
        .ask("alice", "What was DAU last week vs the week before?")
        .await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["kind"], "refusal");
    assert!(
        answer["answer"].as_str().unwrap().contains("audit trail"),
        "{answer}"
    );
    assert!(
        answer["key_numbers"].as_array().unwrap().is_empty() && answer["data"]["rows"] == json!([])
    );
    let q = &events_of(&s.app, "alice", "&kind=question&limit=1").await[0];
    assert_eq!(q["statements"], json!([]), "nothing ran: {q}");
    // Questions cannot be recorded: the answer is withheld.
    sqlx::raw_sql(
        "DROP TRIGGER no_statements; CREATE TRIGGER no_questions BEFORE INSERT ON audit_events \
         WHEN NEW.kind = 'question' BEGIN SELECT RAISE(ABORT, 'disk full'); END",
    )
    .execute(s.db.pool())
    .await
    .unwrap();
    let (status, body) = s.app.ask("alice", "How many signups last week?").await;
    assert_eq!(
        (status, &body["error"]["code"]),
        (503, &json!("audit_unavailable")),
        "{body}"
    );
    assert!(!body.to_string().contains("signups"), "{body}");
    // The Metrics API fails closed too.
    let (status, _) = s
        .app
        .get(
            Some("alice"),
            "/api/metrics/signups?start=2026-11-09&end=2026-11-16",
        )
        .await;
    assert_eq!(
        status, 200,
        "no question event there; its statement is still recorded"
    );
    sqlx::raw_sql(
        "CREATE TRIGGER no_statements BEFORE INSERT ON audit_events WHEN NEW.kind = 'statement' \
         BEGIN SELECT RAISE(ABORT, 'disk full'); END",
    )
    .execute(s.db.pool())
    .await
    .unwrap();
    let (status, body) = s
        .app
        .get(
            Some("alice"),
            "/api/metrics/signups?start=2026-11-09&end=2026-11-16",
        )
        .await;
    assert_eq!(
        (status, &body["error"]["code"]),
        (503, &json!("audit_unavailable")),
        "{body}"
    );
    let _ = &s.settings;
}

#[tokio::test]
async fn metrics_are_exposed_for_prometheus() {
    let s = setup().await;
    s.app
        .ask("alice", "What was DAU last week vs the week before?")
        .await;
    s.app
        .ask(
            "alice",
            "Show me the email addresses of customers who churned last month.",
        )
        .await;
    let r = s
        .app
        .client
        .get(format!("{}/metrics", s.app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(
        r.headers()["content-type"]
            .to_str()
            .unwrap()
            .contains("text")
    );
    let text = r.text().await.unwrap();
    for needle in [
        "steward_http_requests_total{route=\"/api/chat\",method=\"POST\",status=\"200\"}",
        "steward_http_request_duration_seconds_bucket{",
        "steward_guard_decisions_total{decision=\"allowed\"}",
        "steward_warehouse_seconds_count",
        "steward_audit_events_total{kind=\"question\"}",
        "steward_llm_tokens_total",
    ] {
        assert!(text.contains(needle), "{needle} missing from:\n{text}");
    }
    assert!(!text.contains("alice"), "no users in metrics");
}

#[tokio::test]
async fn the_audit_command_lists_shows_verifies_purges_and_refuses_bad_reruns() {
    let s = setup().await;
    s.app.ask("alice", "How many signups last week?").await;
    let cli = |args: &[&str]| {
        steward_command()
            .env("STEWARD_SESSIONS__DATABASE", &s.settings.sessions.database)
            .env("STEWARD_AUDIT__KEY_FILE", &s.settings.audit.key_file)
            .args(args)
            .output()
            .unwrap()
    };
    let listed = cli(&["audit", "list", "--user", "alice", "--json"]);
    assert!(
        listed.status.success(),
        "{}",
        String::from_utf8_lossy(&listed.stderr)
    );
    let events: Vec<Value> = serde_json::from_slice(&listed.stdout).unwrap();
    assert!(events.iter().any(|e| e["kind"] == "question"));
    let id = events[0]["id"].as_str().unwrap();
    let shown = cli(&["audit", "show", id]);
    assert!(shown.status.success());
    assert!(String::from_utf8_lossy(&shown.stdout).contains(id));
    assert_eq!(cli(&["audit", "show", "nope"]).status.code(), Some(1));
    let verified = cli(&["audit", "verify"]);
    assert!(
        verified.status.success(),
        "{}",
        String::from_utf8_lossy(&verified.stdout)
    );
    assert!(String::from_utf8_lossy(&verified.stdout).contains("intact"));
    assert_eq!(
        cli(&["audit", "list", "--since", "soon"]).status.code(),
        Some(1)
    );
    let purged = cli(&["audit", "purge"]);
    assert!(purged.status.success());
    assert!(String::from_utf8_lossy(&purged.stdout).contains("purged 0"));
    // Tampering shows in the command's exit code.
    sqlx::raw_sql("UPDATE audit_events SET body = REPLACE(body, 'alice', 'mallory')")
        .execute(s.db.pool())
        .await
        .unwrap();
    assert_eq!(cli(&["audit", "verify"]).status.code(), Some(1));
    // Re-runs need a reason and a real token.
    let token = fresh_token_file("not-a-token");
    let t = token.to_str().unwrap();
    assert_eq!(
        cli(&["audit", "rerun", id, "--reason", "x", "--token-file", t])
            .status
            .code(),
        Some(4)
    );
    let no_idp = cli(&[
        "audit",
        "rerun",
        id,
        "--reason",
        "checking",
        "--token-file",
        t,
    ]);
    assert!(!no_idp.status.success());
    assert!(String::from_utf8_lossy(&no_idp.stderr).contains("identity provider"));
}

fn fresh_token_file(contents: &str) -> std::path::PathBuf {
    let dir = crate::helpers::fresh_index_dir();
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("token");
    std::fs::write(&path, contents).unwrap();
    path
}

#[tokio::test]
async fn reruns_by_token_need_an_admin_whose_token_shows_a_recent_sign_in() {
    use crate::oidc_provider::{OidcProvider, user_tokens};
    let Some(idp) = OidcProvider::start("reruns_by_token", None, 0) else {
        return;
    };
    let mut settings = demo_settings();
    settings.auth.oidc = Some(steward::auth::oidc::OidcSettings::new(
        &idp.issuer,
        "steward",
    ));
    let app = spawn(settings.clone()).await;
    app.ask("alice", "How many signups last week?").await;
    let q = &events_of(&app, "alice", "&kind=question&limit=1").await[0];
    let statement = q["statements"][0]["id"].as_str().unwrap().to_owned();
    let token = |user: &'static str, password: &'static str| {
        let idp = &idp;
        async move {
            user_tokens(idp, user, password).await["access_token"]
                .as_str()
                .unwrap()
                .to_owned()
        }
    };
    let bob = token("bob", "bob-pw").await;
    let alice = token("alice", "alice-pw").await;
    let reason = json!({"reason": "checking last week's signups"});

    // Over HTTP: the bearer token's auth_time is the sign-in.
    let bearer = format!("Bearer {bob}");
    let (status, body) =
        post_rerun(&app, &statement, ("authorization", &bearer), reason.clone()).await;
    assert_eq!(status, 200, "{body}");
    let bearer = format!("Bearer {alice}");
    let (status, _) = post_rerun(&app, &statement, ("authorization", &bearer), reason).await;
    assert_eq!(status, 403);

    // From the command line, with the token in a file.
    let cli = |token: &str, max_age: &str| {
        let file = fresh_token_file(token);
        steward_command()
            .env("STEWARD_SESSIONS__DATABASE", &settings.sessions.database)
            .env("STEWARD_AUDIT__KEY_FILE", &settings.audit.key_file)
            .env("STEWARD_AUDIT__RERUN_LOGIN_MAX_AGE_SECS", max_age)
            .env("STEWARD_AUTH__OIDC__ISSUER", &idp.issuer)
            .env("STEWARD_AUTH__OIDC__CLIENT_ID", "steward")
            .args([
                "audit",
                "rerun",
                &statement,
                "--reason",
                "checking signups",
                "--json",
            ])
            .arg("--token-file")
            .arg(file)
            .output()
            .unwrap()
    };
    let ok = cli(&bob, "600");
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    let result: Value = serde_json::from_slice(&ok.stdout).unwrap();
    assert_eq!(result["original_id"], statement.as_str());
    let analyst = cli(&alice, "600");
    assert_eq!(analyst.status.code(), Some(4));
    assert!(String::from_utf8_lossy(&analyst.stderr).contains("admin role"));
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let stale = cli(&bob, "0");
    assert_eq!(stale.status.code(), Some(4));
    assert!(String::from_utf8_lossy(&stale.stderr).contains("sign-in within"));
    // Two successful re-runs (HTTP and CLI), each linked to the statement.
    let (_, shown) = admin_get(&app, &format!("/api/admin/audit/{statement}")).await;
    let channels: Vec<&str> = shown["children"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["channel"].as_str().unwrap())
        .collect();
    assert_eq!(channels, ["api", "cli"]);
}
