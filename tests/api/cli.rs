//! The `steward` command line.

use crate::helpers::{AS_OF, demo_db, root, steward};

#[test]
fn ask_prints_answers_and_exits_3_on_refusal() {
    let db = format!("sqlite://{}", demo_db().display());
    let ok = steward(&[
        "ask",
        "--user",
        "alice",
        "--json",
        "--warehouse",
        &db,
        "--as-of",
        AS_OF,
        "How are we doing?",
    ]);
    assert_eq!(
        ok.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    let json: serde_json::Value = serde_json::from_slice(&ok.stdout).unwrap();
    assert_eq!(json["kind"], "overview");
    let refused = steward(&[
        "ask",
        "--user",
        "alice",
        "--warehouse",
        &db,
        "--as-of",
        AS_OF,
        "What is our NPS?",
    ]);
    assert_eq!(refused.status.code(), Some(3));
}

#[test]
fn ask_rejects_unknown_users_and_empty_questions() {
    let db = format!("sqlite://{}", demo_db().display());
    assert_eq!(
        steward(&["ask", "--user", "mallory", "--warehouse", &db, "hi"])
            .status
            .code(),
        Some(2)
    );
    assert_eq!(
        steward(&["ask", "--user", "alice", "--warehouse", &db, "  "])
            .status
            .code(),
        Some(2)
    );
}

#[test]
fn a_broken_metric_file_fails_start_up_with_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let policies = dir.path().join("policies");
    std::fs::create_dir_all(policies.join("semantic")).unwrap();
    for f in ["schema.yaml", "roles.yaml"] {
        std::fs::copy(root().join("policies").join(f), policies.join(f)).unwrap();
    }
    std::fs::write(
        policies.join("semantic/bad.yml"),
        "metrics:\n  - name: x\n    type: simple\n    type_params: {measure: missing}\n",
    )
    .unwrap();
    let db = format!("sqlite://{}", demo_db().display());
    let out = steward(&[
        "ask",
        "--user",
        "alice",
        "--warehouse",
        &db,
        "--policies",
        policies.to_str().unwrap(),
        "hi",
    ]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("bad.yml:4:") && err.contains("missing"),
        "{err}"
    );
}

#[test]
fn demo_init_rejects_bad_arguments_and_keeps_the_old_file() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("demo.sqlite");
    std::fs::write(&out, b"previous contents").unwrap();
    let bad_scale = steward(&[
        "demo",
        "init",
        "--out",
        out.to_str().unwrap(),
        "--scale",
        "0",
    ]);
    assert_ne!(bad_scale.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&bad_scale.stderr).contains("scale"));
    let bad_date = steward(&[
        "demo",
        "init",
        "--out",
        out.to_str().unwrap(),
        "--as-of",
        "2026-02-30",
    ]);
    assert_ne!(bad_date.status.code(), Some(0));
    assert_eq!(
        std::fs::read(&out).unwrap(),
        b"previous contents",
        "nothing lost"
    );
}

#[test]
fn demo_init_writes_a_manifest_with_the_planted_drop() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("demo.sqlite");
    let run = steward(&[
        "demo",
        "init",
        "--out",
        out.to_str().unwrap(),
        "--as-of",
        "2026-06-04",
        "--scale",
        "0.02",
    ]);
    assert_eq!(
        run.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("demo.sqlite.json")).unwrap())
            .unwrap();
    assert_eq!(manifest["as_of"], "2026-06-04");
    assert_eq!(manifest["planted_drop_on"], "2026-06-02");
}

#[test]
fn ingest_indexes_a_corpus_and_rejects_a_missing_one() {
    let dir = tempfile::tempdir().unwrap();
    let index = dir.path().join("index");
    let missing = steward(&["ingest", "/no/such/dir", "--index", index.to_str().unwrap()]);
    assert_ne!(missing.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&missing.stderr).contains("does not exist"));
    assert!(!index.exists());
    let ok = steward(&["ingest", "ingest/docs", "--index", index.to_str().unwrap()]);
    assert_eq!(
        ok.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    let stdout = String::from_utf8_lossy(&ok.stdout);
    let documents = std::fs::read_dir(root().join("ingest/docs"))
        .unwrap()
        .count();
    assert!(stdout.contains("documents:"), "{stdout}");
    assert!(documents > 10);
    assert!(
        stdout.contains(
            "vendor-integration-notes.md#vendor-integration-notes-assistant-configuration"
        ),
        "the planted injection is reported by chunk id: {stdout}"
    );
    assert!(stdout.contains("BM25 only"), "{stdout}");
    assert!(index.join("manifest.json").exists());

    // Searching the index as a group and as nobody.
    let idx = index.to_str().unwrap();
    let admin = steward(&["search", "gross margin", "--group", "admin", "--index", idx]);
    assert!(String::from_utf8_lossy(&admin.stdout).contains("finance/board-metrics.md#"));
    let nobody = steward(&["search", "gross margin", "--index", idx]);
    assert!(!String::from_utf8_lossy(&nobody.stdout).contains("finance/"));
    let bad = steward(&["search", "x", "--mode", "sideways", "--index", idx]);
    assert_eq!(bad.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("unknown mode"));
    let dense = steward(&["search", "x", "--mode", "dense", "--index", idx]);
    assert!(String::from_utf8_lossy(&dense.stderr).contains("needs an embedding model"));
}

#[test]
fn policy_check_reports_decisions_with_exit_codes() {
    let denied = steward(&[
        "policy",
        "check",
        "--user",
        "alice",
        "--json",
        "SELECT contact_email FROM customers",
    ]);
    assert_eq!(denied.status.code(), Some(3));
    let report: serde_json::Value = serde_json::from_slice(&denied.stdout).unwrap();
    assert_eq!(report["decision"], "denied");
    assert!(
        report["reason"]
            .as_str()
            .unwrap()
            .contains("PII; role analyst may not read it")
    );

    let allowed = steward(&[
        "policy",
        "check",
        "--user",
        "erin",
        "--json",
        "SELECT region FROM customers",
    ]);
    assert_eq!(allowed.status.code(), Some(0));
    let report: serde_json::Value = serde_json::from_slice(&allowed.stdout).unwrap();
    assert!(
        report["sql"]
            .as_str()
            .unwrap()
            .contains("WHERE (region = 'EMEA')"),
        "{report}"
    );

    for bad in [
        vec!["policy", "check", "--user", "mallory", "SELECT 1"],
        vec![
            "policy",
            "check",
            "--user",
            "alice",
            "--dialect",
            "oracle",
            "SELECT 1",
        ],
    ] {
        assert_eq!(steward(&bad).status.code(), Some(2), "{bad:?}");
    }
    let hostile = steward(&[
        "policy",
        "check",
        "--user",
        "carol",
        "SELECT 1; DROP TABLE customers",
    ]);
    assert_eq!(hostile.status.code(), Some(3));
}

#[test]
fn policy_init_proposes_classes_and_never_overwrites() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("draft");
    let chinook = format!(
        "sqlite://{}",
        root()
            .join("tests/fixtures/chinook/chinook.sqlite")
            .display()
    );
    let ok = steward(&[
        "policy",
        "init",
        "--warehouse",
        &chinook,
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_eq!(
        ok.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    let policy = steward::policy::Policy::load(&out).unwrap();
    let class = |t: &str, c: &str| policy.schema.column(t, c).unwrap().class;
    use steward::policy::ColumnClass::{Pii, Public};
    assert_eq!(class("customer", "email"), Pii);
    assert_eq!(class("customer", "phone"), Pii);
    assert_eq!(class("employee", "lastname"), Pii);
    assert_eq!(class("track", "name"), Public);
    let before = std::fs::read(out.join("schema.yaml")).unwrap();
    let again = steward(&[
        "policy",
        "init",
        "--warehouse",
        &chinook,
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_eq!(again.status.code(), Some(2));
    assert_eq!(
        std::fs::read(out.join("schema.yaml")).unwrap(),
        before,
        "nothing overwritten"
    );
    let missing = steward(&[
        "policy",
        "init",
        "--warehouse",
        "sqlite:///no/such.db",
        "--out",
        dir.path().join("x").to_str().unwrap(),
    ]);
    assert_eq!(missing.status.code(), Some(1));
}

#[test]
fn eval_reports_scores_and_rejects_bad_files() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}", demo_db().display());
    let good = dir.path().join("set.jsonl");
    std::fs::write(
        &good,
        concat!(
            "{\"id\":\"a\",\"question\":\"What was DAU last week?\",\"user\":\"alice\",\"expect\":\"metric\",\"metric\":\"dau\"}\n",
            "{\"id\":\"b\",\"question\":\"Forecast revenue for next quarter.\",\"user\":\"alice\",\"expect\":\"refusal\"}\n",
            "{\"id\":\"c\",\"question\":\"How many customers does each plan have?\",\"user\":\"alice\",\"expect\":\"sql\",",
            "\"gold_sql\":\"SELECT plan, COUNT(*) FROM customers GROUP BY plan\"}\n",
        ),
    )
    .unwrap();
    let out = steward(&[
        "eval",
        good.to_str().unwrap(),
        "--json",
        "--warehouse",
        &db,
        "--as-of",
        AS_OF,
    ]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["questions"], 3);
    assert_eq!(report["execution_cases"], 1);
    assert_eq!(
        report["execution_accuracy"], 0.0,
        "no model: the SQL question is not answered"
    );
    assert_eq!(report["refusal_recall"], 1.0);
    assert_eq!(report["pii_leaks"], 0);
    let routing = report["routing_accuracy"].as_f64().unwrap();
    assert!((routing - 2.0 / 3.0).abs() < 1e-9, "{report}");

    for (name, text) in [
        ("empty.jsonl", ""),
        ("broken.jsonl", "{\"id\":\"a\",\"question\":\"q\"}\n"),
        (
            "user.jsonl",
            "{\"id\":\"a\",\"question\":\"q\",\"user\":\"mallory\",\"expect\":\"docs\"}\n",
        ),
    ] {
        let path = dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        let out = steward(&["eval", path.to_str().unwrap(), "--warehouse", &db]);
        assert_eq!(
            out.status.code(),
            Some(2),
            "{name}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let missing = steward(&["eval", "no/such/file.jsonl"]);
    assert_eq!(missing.status.code(), Some(2));
    // The single-shot baseline needs a model to ask.
    let good = dir.path().join("good.jsonl");
    std::fs::write(
        &good,
        "{\"id\":\"a\",\"question\":\"q\",\"user\":\"alice\",\"expect\":\"docs\"}\n",
    )
    .unwrap();
    let out = steward(&[
        "eval",
        good.to_str().unwrap(),
        "--warehouse",
        &db,
        "--baseline",
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("--baseline needs a language model"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = steward(&["eval", good.to_str().unwrap(), "--llm-path", "bogus"]);
    assert_eq!(out.status.code(), Some(2), "clap refuses an unknown path");
}

#[test]
fn a_bad_llm_url_stops_start_up_with_a_clear_error() {
    let db = format!("sqlite://{}", demo_db().display());
    let out = steward(&[
        "ask",
        "--user",
        "alice",
        "--warehouse",
        &db,
        "--llm",
        "file:///etc/passwd",
        "hi",
    ]);
    assert_ne!(out.status.code(), Some(0));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("http"), "{err}");
}

#[test]
fn a_dbt_project_that_is_not_there_or_both_sources_fail_clearly() {
    let db = format!("sqlite://{}", demo_db().display());
    let out = steward(&[
        "ask",
        "--user",
        "alice",
        "--warehouse",
        &db,
        "--dbt-project",
        "/nonexistent/analytics",
        "how many signups last week?",
    ]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("/nonexistent/analytics/dbt_project.yml"),
        "{err}"
    );

    let out = steward(&[
        "ask",
        "--user",
        "alice",
        "--dbt-project",
        "a",
        "--dbt-manifest",
        "b",
        "hi",
    ]);
    assert_eq!(out.status.code(), Some(2), "clap refuses both");

    let dir = tempfile::tempdir().unwrap();
    let manifest = dir.path().join("semantic_manifest.json");
    std::fs::write(&manifest, "{\"semantic_models\": [\n{\"name\": ").unwrap();
    let out = steward(&[
        "ask",
        "--user",
        "alice",
        "--warehouse",
        &db,
        "--dbt-manifest",
        manifest.to_str().unwrap(),
        "hi",
    ]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("semantic_manifest.json:2:") && err.contains("not a semantic manifest"),
        "{err}"
    );
}

#[test]
fn the_demo_policy_loads_as_a_dbt_project_from_the_command_line() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("dbt_project.yml"),
        "name: demo\nversion: '1'\nprofile: demo\n",
    )
    .unwrap();
    let models = dir.path().join("models/marts");
    std::fs::create_dir_all(&models).unwrap();
    for f in ["product.yml", "revenue.yml"] {
        std::fs::copy(root().join("policies/semantic").join(f), models.join(f)).unwrap();
    }
    let db = format!("sqlite://{}", demo_db().display());
    let out = steward(&[
        "ask",
        "--user",
        "alice",
        "--warehouse",
        &db,
        "--dbt-project",
        dir.path().to_str().unwrap(),
        "how many signups last week?",
    ]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("Signups"), "{text}");
}
