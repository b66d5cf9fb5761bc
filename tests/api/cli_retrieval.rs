//! `steward ingest`, `steward search` and `steward eval-retrieval` as a user
//! runs them.

use std::io::{BufRead, BufReader};
use std::process::Stdio;
use std::time::{Duration, Instant};

use crate::helpers::{steward, steward_command};

#[test]
fn ingest_reports_json_and_exits_1_when_a_document_is_bad() {
    let docs = tempfile::tempdir().unwrap();
    let index = tempfile::tempdir().unwrap();
    std::fs::write(docs.path().join("good.md"), "# Good\nfine text\n").unwrap();
    std::fs::write(
        docs.path().join("bad.md"),
        "---\npermissions: [x]\n---\n# Bad\n",
    )
    .unwrap();
    let out = steward(&[
        "ingest",
        docs.path().to_str().unwrap(),
        "--index",
        index.path().to_str().unwrap(),
        "--json",
    ]);
    assert_eq!(out.status.code(), Some(1));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["added"], serde_json::json!(["good.md"]));
    assert_eq!(report["errors"].as_array().unwrap().len(), 1);
    assert!(report["errors"][0].as_str().unwrap().contains("bad.md"));
    assert_eq!(report["chunks"], 1);
    let found = steward(&["search", "fine", "--index", index.path().to_str().unwrap()]);
    assert!(String::from_utf8_lossy(&found.stdout).contains("good.md#good"));
}

#[test]
fn eval_retrieval_scores_the_labelled_set_and_rejects_bad_cases() {
    let out = steward(&["eval-retrieval", "eval/retrieval.jsonl", "--json"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(report["cases"].as_u64().unwrap() >= 60);
    assert_eq!(report["modes"][0]["mode"], "bm25");
    let recall = report["modes"][0]["recall"].as_f64().unwrap();
    assert!((0.5..=1.0).contains(&recall), "{report}");

    let dir = tempfile::tempdir().unwrap();
    let cases = [
        (
            "malformed.jsonl",
            "{\"question\": \"x\"\n",
            "malformed.jsonl:1",
        ),
        (
            "unknown.jsonl",
            "{\"question\": \"x\", \"relevant\": [\"nope.md#nope\"]}\n",
            "not a chunk id",
        ),
        (
            "extra.jsonl",
            "{\"question\": \"x\", \"relevant\": [], \"answer\": 1}\n",
            "unknown field",
        ),
    ];
    for (name, text, want) in cases {
        let path = dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        let out = steward(&["eval-retrieval", path.to_str().unwrap()]);
        assert_eq!(out.status.code(), Some(1), "{name}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(want), "{name}: {err}");
    }
    // A case may name a configured user instead of groups; restricted chunks need them.
    let by_user = dir.path().join("by_user.jsonl");
    let case = |user: &str| {
        format!(
            "{{\"query\": \"gross margin\", \"chunk_ids\": [\"finance/board-metrics.md#board-reporting-pack-gross-margin\"], \"user\": \"{user}\"}}\n"
        )
    };
    let recall = |user: &str| {
        std::fs::write(&by_user, case(user)).unwrap();
        let out = steward(&["eval-retrieval", by_user.to_str().unwrap(), "--json"]);
        serde_json::from_slice::<serde_json::Value>(&out.stdout).unwrap()["modes"][0]["recall"]
            .as_f64()
            .unwrap()
    };
    assert_eq!(recall("bob"), 1.0);
    assert_eq!(recall("alice"), 0.0);
    std::fs::write(&by_user, case("mallory")).unwrap();
    let out = steward(&["eval-retrieval", by_user.to_str().unwrap()]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown user"));

    let zero = steward(&["eval-retrieval", "eval/retrieval.jsonl", "-k", "0"]);
    assert!(String::from_utf8_lossy(&zero.stderr).contains("at least 1"));
    let missing = steward(&["search", "x", "--index", dir.path().to_str().unwrap()]);
    assert!(String::from_utf8_lossy(&missing.stderr).contains("holds no index"));
}

#[test]
fn without_a_model_search_is_bm25_and_says_why() {
    let empty = tempfile::tempdir().unwrap();
    let run = |model: &str| {
        steward_command()
            .env("STEWARD_RETRIEVAL__MODEL", model)
            .env("EMBEDDING_MODEL_CACHE", empty.path())
            .args(["search", "churn dashboard", "--mode", "dense"])
            .output()
            .unwrap()
    };
    let auto = run("auto");
    assert_eq!(auto.status.code(), Some(1));
    let err = String::from_utf8_lossy(&auto.stderr);
    assert!(err.contains("no embedding model installed"), "{err}");
    let broken = run(empty.path().to_str().unwrap());
    let err = String::from_utf8_lossy(&broken.stderr);
    assert!(err.contains("model.onnx"), "names the missing file: {err}");
    let bm25 = steward_command()
        .env("STEWARD_RETRIEVAL__MODEL", "auto")
        .env("EMBEDDING_MODEL_CACHE", empty.path())
        .args(["search", "which dashboard shows churn"])
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&bm25.stdout).contains("dashboards.md#dashboards-churn-dashboard")
    );
}

#[test]
fn ingest_watch_reindexes_a_changed_corpus() {
    let docs = tempfile::tempdir().unwrap();
    let index = tempfile::tempdir().unwrap();
    std::fs::write(docs.path().join("one.md"), "# One\nfirst\n").unwrap();
    let mut child = steward_command()
        .args([
            "ingest",
            docs.path().to_str().unwrap(),
            "--index",
            index.path().to_str().unwrap(),
            "--watch",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let (tx, rx) = std::sync::mpsc::channel::<String>();
    let stdout = child.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let wait_for = |needle: &str| {
        let deadline = Instant::now() + Duration::from_secs(60);
        while Instant::now() < deadline {
            if let Ok(line) = rx.recv_timeout(Duration::from_millis(200))
                && line.contains(needle)
            {
                return true;
            }
        }
        false
    };
    assert!(wait_for("1 added"), "first run");
    assert!(wait_for("index:"), "first summary done");
    // Give the watcher a moment to be armed, then change the corpus.
    std::thread::sleep(Duration::from_millis(500));
    std::fs::write(docs.path().join("two.md"), "# Two\nsecond\n").unwrap();
    let added = wait_for("1 added, 0 changed, 1 unchanged");
    std::fs::remove_file(docs.path().join("one.md")).unwrap();
    let deleted = wait_for("1 deleted");
    let _ = child.kill();
    let _ = child.wait();
    assert!(added, "the new document was ingested");
    assert!(deleted, "the removed document left the index");
}
