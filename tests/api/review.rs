//! The review loop end to end: feedback → candidate → an approval blocked by
//! the regression run → an approval after a fix → the new verified query
//! answers the question. Plus the hostile and malformed requests.

use serde_json::{Value, json};

use crate::helpers::{TestApp, demo_db, demo_settings, fresh_index_dir, spawn};

/// The demo app with a small labelled set for the regression run: a
/// question the shipped verified queries answer right, and a metric
/// question.
async fn app() -> TestApp {
    let dir = fresh_index_dir();
    std::fs::create_dir_all(&dir).unwrap();
    let set = dir.join("review-set.jsonl");
    std::fs::write(
        &set,
        concat!(
            r#"{"id": "plans", "expect": "sql", "question": "How many customers are on each plan?", "user": "alice", "gold_sql": "SELECT plan, COUNT(*) FROM customers GROUP BY plan"}"#,
            "\n",
            r#"{"id": "dau", "expect": "metric", "question": "What was DAU last week?", "user": "alice", "metric": "dau"}"#,
            "\n",
        ),
    )
    .unwrap();
    let mut settings = demo_settings();
    settings.review.eval_sets = vec![set];
    spawn(settings).await
}

async fn feedback(app: &TestApp, user: &str, body: Value) -> (u16, Value) {
    app.post(Some(user), "/api/feedback", &body).await
}

#[tokio::test]
async fn feedback_becomes_a_verified_query_only_through_a_passing_review() {
    let app = app().await;
    let question = "How many customers are on each plan?";
    let (status, answer) = app.ask("alice", question).await;
    assert_eq!(status, 200, "{answer}");
    let event = answer["event_id"]
        .as_str()
        .expect("answers carry their event id");

    // Alice thinks it should count only customers who have not churned.
    let corrected =
        "SELECT plan, COUNT(*) AS active FROM customers WHERE churned_at IS NULL GROUP BY plan";
    let (status, out) = feedback(
        &app,
        "alice",
        json!({"event_id": event, "rating": "down", "comment": "should exclude churned; ask me at alice@example.com", "corrected_sql": corrected}),
    )
    .await;
    assert_eq!(status, 201, "{out}");
    let candidate = out["candidate_id"].as_str().unwrap().to_owned();

    // The steward sees it, with what alice saw and a redacted comment.
    let (status, queue) = app
        .get(Some("bob"), "/api/review/candidates?status=pending")
        .await;
    assert_eq!(status, 200, "{queue}");
    let c = queue["candidates"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == candidate.as_str())
        .expect("the candidate is queued");
    assert_eq!(c["question"], question);
    assert_eq!(c["proposed_by"], "alice");
    assert_eq!(c["seen"]["kind"], "sql", "{c}");
    let (_, fb) = app.get(Some("bob"), "/api/review/feedback").await;
    let text = fb.to_string();
    assert!(text.contains("should exclude churned"), "{fb}");
    assert!(
        !text.contains("alice@example.com"),
        "comments are redacted: {fb}"
    );

    // As proposed, it answers the plans question differently from its gold
    // result: the regression run blocks the approval and shows the diff.
    let path = format!("/api/review/candidates/{candidate}/approve");
    let (status, blocked) = app
        .post(Some("bob"), &path, &json!({"role": "analyst"}))
        .await;
    assert_eq!(status, 409, "{blocked}");
    assert_eq!(blocked["error"]["code"], "regression");
    let wrong = blocked["regression"]["turned_wrong"].as_array().unwrap();
    assert_eq!(wrong.len(), 1, "{blocked}");
    assert!(
        wrong[0]["id"].as_str().unwrap().ends_with(":plans"),
        "{blocked}"
    );
    assert_eq!(wrong[0]["before"]["right"], true);
    assert_eq!(wrong[0]["after"]["right"], false);
    // Nothing was stored, and the question still gets the old answer.
    let (_, verified) = app.get(Some("bob"), "/api/review/verified").await;
    assert_eq!(verified["version"], 0, "{verified}");
    let (_, again) = app.ask("alice", question).await;
    assert!(
        !again["sql"].as_str().unwrap().contains("churned_at"),
        "{again}"
    );

    // The fix: it is a different question. Approved, it becomes version 1.
    let fixed = "How many active customers are on each plan?";
    let (status, done) = app
        .post(
            Some("bob"),
            &path,
            &json!({"role": "analyst", "question": fixed, "note": "active customers, not all"}),
        )
        .await;
    assert_eq!(status, 200, "{done}");
    assert_eq!(done["verified"]["version"], 1);
    assert_eq!(done["verified"]["owner"], "bob");
    assert_eq!(done["verified"]["role"], "analyst");
    assert!(
        done["regression"]["turned_wrong"]
            .as_array()
            .unwrap()
            .is_empty()
    );
    assert!(
        done["regression"]["turned_right"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["id"] == "candidate"),
        "{done}"
    );

    // The new verified query answers the question, under the asker's grants.
    let (_, answer) = app.ask("alice", fixed).await;
    assert_eq!(answer["kind"], "sql", "{answer}");
    assert!(
        answer["sql"]
            .as_str()
            .unwrap()
            .contains("churned_at IS NULL"),
        "{answer}"
    );
    let expected = crate::helpers::oracle(
        demo_db(),
        "SELECT COUNT(*) * 1.0 FROM customers WHERE churned_at IS NULL",
    )
    .await[0];
    let total: f64 = answer["data"]["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r[1].as_f64().unwrap())
        .sum();
    assert_eq!(total, expected, "{answer}");
    // erin's row filter still applies to it.
    let (_, erin) = app.ask("erin", fixed).await;
    let erin_total: f64 = erin["data"]["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r[1].as_f64().unwrap())
        .sum();
    assert!(erin_total < total, "{erin}");

    // Decided once: approving or rejecting it again is a conflict.
    let (status, _) = app
        .post(Some("bob"), &path, &json!({"role": "analyst"}))
        .await;
    assert_eq!(status, 409);
    let reject = format!("/api/review/candidates/{candidate}/reject");
    let (status, _) = app.post(Some("bob"), &reject, &json!({})).await;
    assert_eq!(status, 409);

    // The audit trail records the blocked and the approved decision.
    let (_, events) = app.get(Some("bob"), "/api/admin/audit?kind=review").await;
    let outcomes: Vec<&str> = events["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["outcome"].as_str().unwrap())
        .collect();
    assert!(
        outcomes.contains(&"blocked") && outcomes.contains(&"approved"),
        "{events}"
    );
    // Both regression runs are attributed to bob, who approved: purpose
    // `regression`, a review event as parent, bob's channel; no event names
    // the users or roles the labelled cases ran as.
    let review_ids: Vec<&Value> = events["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| &e["id"])
        .collect();
    let (_, bobs) = app
        .get(
            Some("bob"),
            "/api/admin/audit?user=bob&kind=question&limit=1000",
        )
        .await;
    let runs: Vec<&Value> = bobs["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["purpose"] == "regression")
        .collect();
    assert!(runs.len() >= 4, "{} regression questions", runs.len());
    for run in &runs {
        assert!(review_ids.contains(&&run["parent"]), "{run}");
        assert_eq!(run["channel"], "api", "{run}");
    }
    for user in ["carol", "dave", "sam", "role:analyst", "role:compliance"] {
        let (_, theirs) = app
            .get(Some("bob"), &format!("/api/admin/audit?user={user}"))
            .await;
        assert_eq!(theirs["events"], json!([]), "{user}: {theirs}");
    }

    // New SQL approved for an approved question supersedes the old pair.
    let (_, a2) = app
        .ask("alice", "How many customers do we have by region?")
        .await;
    let (_, out) = feedback(
        &app,
        "alice",
        json!({"event_id": a2["event_id"], "rating": "down", "corrected_sql": "SELECT region, COUNT(*) FROM customers GROUP BY region"}),
    )
    .await;
    let second = out["candidate_id"].as_str().unwrap();
    let (status, replaced) = app
        .post(
            Some("bob"),
            &format!("/api/review/candidates/{second}/approve"),
            &json!({"role": "analyst", "question": "how many active customers are on each plan", "sql": "SELECT plan, COUNT(*) AS n FROM customers WHERE churned_at IS NULL GROUP BY plan ORDER BY n DESC"}),
        )
        .await;
    assert_eq!(status, 200, "{replaced}");
    let (_, verified) = app.get(Some("bob"), "/api/review/verified").await;
    assert_eq!(verified["version"], 2, "{verified}");
    assert_eq!(
        verified["verified_queries"].as_array().unwrap().len(),
        1,
        "v1 is superseded"
    );
}

#[tokio::test]
async fn feedback_and_review_refuse_hostile_and_malformed_requests() {
    let app = app().await;
    let (_, answer) = app
        .ask("alice", "How many customers are on each plan?")
        .await;
    let event = answer["event_id"].as_str().unwrap().to_owned();

    // Unauthenticated, malformed, unknown fields, oversized.
    let (status, _) = app
        .post(
            None,
            "/api/feedback",
            &json!({"event_id": event, "rating": "up"}),
        )
        .await;
    assert_eq!(status, 401);
    for (body, code) in [
        (json!({"event_id": "nothex", "rating": "up"}), 400),
        (json!({"event_id": event, "rating": "sideways"}), 422),
        (
            json!({"event_id": event, "rating": "up", "admin": true}),
            422,
        ),
        (
            json!({"event_id": event, "rating": "up", "comment": "x".repeat(2001)}),
            400,
        ),
        (
            json!({"event_id": event, "rating": "up", "corrected_sql": format!("SELECT {} FROM customers", "1+".repeat(12_000) + "1")}),
            400,
        ),
    ] {
        let (status, out) = feedback(&app, "alice", body.clone()).await;
        assert!(
            status == code || (code == 422 && status == 400),
            "{body} → {status} {out}"
        );
    }
    let (status, _) = feedback(
        &app,
        "alice",
        json!({"event_id": event, "rating": "up", "comment": "x".repeat(100_000)}),
    )
    .await;
    assert_eq!(status, 413, "the body limit applies first");
    // Someone else's answer, or an event that is not a question: 404.
    let (status, _) = feedback(&app, "carol", json!({"event_id": event, "rating": "down"})).await;
    assert_eq!(status, 404);
    let (status, _) = feedback(
        &app,
        "alice",
        json!({"event_id": "0123456789abcdef0123456789abcdef", "rating": "down"}),
    )
    .await;
    assert_eq!(status, 404);
    // A viewer may not propose SQL; an analyst may not propose PII or writes.
    let (_, dave_answer) = app.ask("dave", "What was DAU last week?").await;
    let (status, _) = feedback(
        &app,
        "dave",
        json!({"event_id": dave_answer["event_id"], "rating": "down", "corrected_sql": "SELECT 1"}),
    )
    .await;
    assert_eq!(status, 403);
    for sql in [
        "SELECT contact_email FROM customers",
        "DELETE FROM customers",
        "SELECT plan FROM customers; DROP TABLE customers",
    ] {
        let (status, out) = feedback(
            &app,
            "alice",
            json!({"event_id": event, "rating": "down", "corrected_sql": sql}),
        )
        .await;
        assert_eq!(status, 422, "{sql}: {out}");
        assert_eq!(out["error"]["code"], "sql_rejected");
    }
    // A thumbs up from erin proposes nothing: the SQL that ran for her
    // carries her row filter.
    let (_, erin) = app
        .ask("erin", "How many customers are on each plan?")
        .await;
    assert_eq!(erin["kind"], "sql", "{erin}");
    let (status, out) = feedback(
        &app,
        "erin",
        json!({"event_id": erin["event_id"], "rating": "up"}),
    )
    .await;
    assert_eq!(status, 201, "{out}");
    assert!(out["candidate_id"].is_null(), "{out}");
    // alice's thumbs up on the same question proposes the statement that ran.
    let (status, out) = feedback(&app, "alice", json!({"event_id": event, "rating": "up"})).await;
    assert_eq!(status, 201, "{out}");
    assert!(out["candidate_id"].is_string(), "{out}");
    // A thumbs down without SQL is stored, with no candidate.
    let (status, out) = feedback(&app, "alice", json!({"event_id": event, "rating": "down"})).await;
    assert_eq!(status, 201);
    assert!(out["candidate_id"].is_null(), "{out}");

    // Only stewards review.
    let (status, out) = feedback(
        &app,
        "alice",
        json!({"event_id": event, "rating": "down", "corrected_sql": "SELECT plan FROM customers"}),
    )
    .await;
    assert_eq!(status, 201, "{out}");
    let id = out["candidate_id"].as_str().unwrap().to_owned();
    let approve = format!("/api/review/candidates/{id}/approve");
    for user in ["alice", "carol", "dave"] {
        assert_eq!(app.get(Some(user), "/api/review/candidates").await.0, 403);
        assert_eq!(
            app.post(Some(user), &approve, &json!({"role": "analyst"}))
                .await
                .0,
            403
        );
    }
    assert_eq!(app.get(None, "/api/review/candidates").await.0, 401);
    assert_eq!(
        app.get(Some("bob"), "/api/review/candidates?status=odd")
            .await
            .0,
        400
    );
    // Unknown role; a role the guard refuses the SQL under; bad ids.
    let (status, _) = app
        .post(Some("bob"), &approve, &json!({"role": "root"}))
        .await;
    assert_eq!(status, 400);
    let (status, out) = app
        .post(
            Some("bob"),
            &approve,
            &json!({"role": "support", "sql": "SELECT plan, SUM(mrr_usd) FROM customer_contracts GROUP BY plan"}),
        )
        .await;
    assert_eq!(status, 422, "{out}");
    for bad in ["../../etc", "0123456789abcdef0123456789abcdef"] {
        let (status, _) = app
            .post(
                Some("bob"),
                &format!("/api/review/candidates/{bad}/approve"),
                &json!({"role": "analyst"}),
            )
            .await;
        assert_eq!(status, 404, "{bad}");
    }
    // Rejected: it is never a verified query.
    let (status, c) = app
        .post(
            Some("bob"),
            &format!("/api/review/candidates/{id}/reject"),
            &json!({"note": "duplicate"}),
        )
        .await;
    assert_eq!(status, 200, "{c}");
    assert_eq!(c["status"], "rejected");
    assert_eq!(
        app.post(Some("bob"), &approve, &json!({"role": "analyst"}))
            .await
            .0,
        409
    );
    let (_, verified) = app.get(Some("bob"), "/api/review/verified").await;
    assert_eq!(verified["version"], 0);
}

/// `steward verified export`: the file's pairs, plus approved ones (which
/// replace a file pair for the same question), in a file `serve` loads.
#[tokio::test]
async fn verified_export_writes_the_pairs_in_force() {
    use steward::orchestrator::verified::{self, VerifiedQuery};
    use steward::review::ReviewStore;

    let dir = fresh_index_dir();
    std::fs::create_dir_all(&dir).unwrap();
    let db = format!("sqlite://{}", dir.join("steward.db").display());
    let export = |out: Option<&std::path::Path>| {
        let mut cmd = crate::helpers::steward_command();
        cmd.env("STEWARD_SESSIONS__DATABASE", &db)
            .args(["verified", "export"]);
        if let Some(o) = out {
            cmd.arg("--out").arg(o);
        }
        cmd.output().unwrap()
    };
    let policies = crate::helpers::root().join("policies");
    let policy = steward::policy::Policy::load(&policies).unwrap();
    let file = verified::load(&policies, &policy, steward::sql::Dialect::Sqlite).unwrap();

    let out = export(None);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    assert_eq!(text.matches("- question:").count(), file.len(), "{text}");

    // Approve a pair for a question the file has, and one it has not.
    let store = ReviewStore::new(
        steward::session::SessionStore::connect(&steward::session::SessionSettings {
            database: db.clone(),
            ..Default::default()
        })
        .await
        .unwrap(),
    );
    for (i, question) in [file[0].question.as_str(), "How many plans are there?"]
        .iter()
        .enumerate()
    {
        let id = format!("{i:032x}");
        store
            .add_candidate(&pending(
                &id,
                question,
                "SELECT COUNT(DISTINCT plan) AS plans FROM customers",
            ))
            .await
            .unwrap();
        let mut pair = VerifiedQuery::new(
            *question,
            "SELECT COUNT(DISTINCT plan) AS plans FROM customers",
        );
        pair.role = Some("analyst".into());
        store
            .approve(&id, &pair, "bob", None, 1_700_000_000, i as i64)
            .await
            .unwrap();
    }
    // An approval whose regression run saw an older version is refused.
    let mut stale = VerifiedQuery::new("Stale?", "SELECT 1 AS one FROM customers");
    stale.role = Some("analyst".into());
    store
        .add_candidate(&pending(&format!("{:032x}", 9), "Stale?", &stale.sql))
        .await
        .unwrap();
    let err = store
        .approve(
            &format!("{:032x}", 9),
            &stale,
            "bob",
            None,
            1_700_000_000,
            1,
        )
        .await
        .unwrap_err();
    assert!(
        matches!(err, steward::review::ReviewError::Conflict(_)),
        "{err}"
    );
    assert_eq!(store.max_version().await.unwrap(), 2);
    let target = dir.join("out").join("verified_queries.yaml");
    std::fs::create_dir_all(target.parent().unwrap()).unwrap();
    let out = export(Some(&target));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // It loads as a policy directory's file, and the guard accepts every pair.
    let written = verified::load(
        target.parent().unwrap(),
        &policy,
        steward::sql::Dialect::Sqlite,
    )
    .unwrap();
    assert_eq!(written.len(), file.len() + 1, "one replaced, one added");
    let approved: Vec<&VerifiedQuery> = written.iter().filter(|p| p.owner.is_some()).collect();
    assert_eq!(approved.len(), 2);
    assert!(
        approved
            .iter()
            .all(|p| p.owner.as_deref() == Some("bob") && p.role.as_deref() == Some("analyst"))
    );
    assert_eq!(
        approved
            .iter()
            .map(|p| p.version.unwrap())
            .collect::<Vec<_>>(),
        [1, 2]
    );
    assert!(
        approved[0]
            .approved_at
            .as_deref()
            .unwrap()
            .starts_with("2023-11-14")
    );
    assert!(!dir.join("out").join("verified_queries.yaml.tmp").exists());

    // A policy directory that is not there: a clear error, nothing written.
    let mut cmd = crate::helpers::steward_command();
    let out = cmd
        .env("STEWARD_SESSIONS__DATABASE", &db)
        .args(["verified", "export", "--policies", "/nonexistent/policies"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("nonexistent"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A pending candidate as the review queue stores it.
fn pending(id: &str, question: &str, sql: &str) -> steward::review::Candidate {
    steward::review::Candidate {
        id: id.to_owned(),
        question: question.to_owned(),
        sql: sql.to_owned(),
        proposed_by: "alice".into(),
        feedback_id: "f".into(),
        event_id: "e".into(),
        seen: json!({}),
        status: "pending".into(),
        reviewed_by: None,
        reviewed_at: None,
        review_note: None,
        created_at: 0,
    }
}
