//! Scans the log of the whole integration suite (`target/test-logs/api.log`,
//! written by `tests/api` through steward's redacting writer; cargo runs that
//! binary before this one) for personal data: every value of every column
//! classed `pii` in the demo warehouse and the Chinook fixture, the test
//! identity provider's emails, and anything shaped like an email, phone
//! number, card number or national id.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use sqlx::{Connection, Row, SqliteConnection};

fn root() -> PathBuf {
    // Read at run time (cargo sets it for test processes): a test binary
    // reused from a shared target directory may have been compiled in
    // another checkout, whose path `env!` would have baked in.
    std::env::var_os("CARGO_MANIFEST_DIR")
        .map_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")), PathBuf::from)
}

/// `(table, column)` of every `pii` column in a `schema.yaml`.
fn pii_columns(schema: &Path) -> Vec<(String, String)> {
    let doc: serde_yaml_ng::Value =
        serde_yaml_ng::from_str(&std::fs::read_to_string(schema).unwrap()).unwrap();
    let mut out = Vec::new();
    for (table, t) in doc["tables"].as_mapping().unwrap() {
        for (column, c) in t["columns"].as_mapping().unwrap() {
            if c["class"].as_str() == Some("pii") {
                out.push((
                    table.as_str().unwrap().to_owned(),
                    column.as_str().unwrap().to_owned(),
                ));
            }
        }
    }
    out
}

/// Distinct values of the `pii` columns of a SQLite database that could only
/// appear in a log by leaking (six characters or more, not just digits).
async fn pii_values(db: &Path, schema: &Path) -> BTreeSet<String> {
    let mut conn = SqliteConnection::connect(&format!("sqlite://{}?mode=ro", db.display()))
        .await
        .unwrap();
    let mut values = BTreeSet::new();
    for (table, column) in pii_columns(schema) {
        let sql = format!(
            "SELECT DISTINCT CAST(\"{column}\" AS TEXT) AS v FROM \"{table}\" WHERE \"{column}\" IS NOT NULL"
        );
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .fetch_all(&mut conn)
            .await
            .unwrap_or_else(|e| panic!("{table}.{column}: {e}"));
        for row in rows {
            let v: String = row.get("v");
            let v = v.trim();
            if v.chars().count() >= 6 && !v.chars().all(|c| c.is_ascii_digit()) {
                values.insert(v.to_owned());
            }
        }
    }
    values
}

#[tokio::test]
async fn the_whole_suites_logs_hold_no_personal_data() {
    let path = root().join("target/test-logs/api.log");
    let log = std::fs::read_to_string(&path).unwrap_or_else(|_| {
        panic!(
            "{} is missing: run the whole suite (`cargo test`), whose api tests write it",
            path.display()
        )
    });
    let demo = log
        .lines()
        .next()
        .and_then(|l| l.strip_prefix("# demo="))
        .map(PathBuf::from)
        .expect("the log names the demo warehouse");
    assert!(
        log.lines().count() > 500 && log.contains("planned") && log.contains("audit"),
        "the log covers a whole run ({} lines)",
        log.lines().count()
    );

    let mut values = pii_values(&demo, &root().join("policies/schema.yaml")).await;
    let chinook = root().join("tests/fixtures/chinook");
    values.extend(
        pii_values(
            &chinook.join("chinook.sqlite"),
            &chinook.join("policies/schema.yaml"),
        )
        .await,
    );
    let users: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(root().join("tests/oidc/users.json")).unwrap(),
    )
    .unwrap();
    for u in users.as_object().unwrap().values() {
        values.insert(u["email"].as_str().unwrap().to_owned());
    }
    assert!(values.len() > 1000, "{} values to look for", values.len());

    let body: String = log.lines().skip(1).collect::<Vec<_>>().join("\n");
    let leaked: Vec<&String> = values
        .iter()
        .filter(|v| body.contains(v.as_str()))
        .take(10)
        .collect();
    assert!(
        leaked.is_empty(),
        "personal data in the suite's logs: {leaked:?}"
    );
    for (kind, pattern) in [
        ("email", r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+\.[A-Za-z]{2,}"),
        (
            "phone",
            r"\+\d{1,3}[\s-]\(?\d{2,4}\)?[\s-]\d{3}[\s-]?\d{2,4}",
        ),
        ("ssn", r"\b\d{3}-\d{2}-\d{4}\b"),
        ("card", r"\b4\d{3}[ -]?\d{4}[ -]?\d{4}[ -]?\d{4}\b"),
    ] {
        let re = regex::Regex::new(pattern).unwrap();
        // Digits after a decimal point are a fraction (a duration such as
        // `elapsed_secs=1.4627452029999999`), not a card or an id.
        let found = re
            .find_iter(&body)
            .find(|m| !body[..m.start()].ends_with('.'));
        assert!(
            found.is_none(),
            "a {kind} reached the logs: {:?}",
            found.map(|m| m.as_str())
        );
    }
}
