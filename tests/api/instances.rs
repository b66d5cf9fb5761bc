//! Several `steward serve` processes on loopback sharing one PostgreSQL
//! database for sessions, the audit trail, conversations and the result
//! cache, with the warehouse in PostgreSQL too: a revocation on one instance
//! is refused on the others at their next request, a result one ran is
//! served by the others from the shared cache tier, a conversation goes on
//! at another instance, the audit chain stays whole with all of them
//! appending under load, and an instance killed mid-answer loses no
//! committed event and leaves no half-written one.

use std::process::{Child, Stdio};
use std::time::Duration;

use serde_json::{Value, json};
use steward::session::{SessionSettings, SessionStore};

use crate::helpers::{
    TestApp, as_of, demo_db, fresh_index_dir, session, steward_command, with_postgres_database,
};
use crate::oidc_provider::free_port;

/// One `steward serve` process; killed when dropped.
struct Instance {
    base: String,
    child: Child,
}

impl Drop for Instance {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts an instance on `warehouse` with steward's database at `shared`
/// and the audit key in `key_file` (every instance must hold the same key).
async fn start(warehouse: &str, shared: &str, key_file: &std::path::Path) -> Instance {
    let port = free_port();
    let child = steward_command()
        .args(["serve", "--bind", &format!("127.0.0.1:{port}")])
        .env("STEWARD_WAREHOUSE", warehouse)
        .env("STEWARD_SESSIONS__DATABASE", shared)
        .env("STEWARD_AUDIT__KEY_FILE", key_file)
        .env("STEWARD_AS_OF", as_of().to_string())
        .env("STEWARD_LIMITS__QUESTIONS_PER_MINUTE", "0")
        .env("STEWARD_CACHE__SHARED", "true")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let instance = Instance {
        base: format!("http://127.0.0.1:{port}"),
        child,
    };
    let client = reqwest::Client::new();
    for _ in 0..480 {
        if let Ok(r) = client.get(format!("{}/readyz", instance.base)).send().await
            && r.status() == 200
        {
            return instance;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    panic!("instance on port {port} never became ready");
}

async fn ask(client: &reqwest::Client, base: &str, user: &str, question: &str) -> (u16, Value) {
    match client
        .post(format!("{base}/api/chat"))
        .header("X-Steward-Dev-User", user)
        .json(&json!({ "question": question }))
        .send()
        .await
    {
        Ok(r) => (r.status().as_u16(), r.json().await.unwrap_or(Value::Null)),
        Err(_) => (0, Value::Null),
    }
}

async fn me_with(client: &reqwest::Client, base: &str, cookie: &str) -> u16 {
    client
        .get(format!("{base}/api/me"))
        .header("cookie", cookie)
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

const MIX: [&str; 5] = [
    "What was our DAU last week vs the week before?",
    "How many signups last week?",
    "Signups last week by platform",
    "What was revenue last month?",
    "Show me the KPI overview",
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn instances_sharing_postgres_agree_on_revocations_and_one_audit_chain() {
    with_postgres_database("steward_instances_wh", |warehouse| async move {
        steward::demo::postgres::load(demo_db(), &warehouse)
            .await
            .expect("the demo loads into PostgreSQL");
        with_postgres_database("steward_instances", |shared| async move {
            let dir = fresh_index_dir();
            std::fs::create_dir_all(&dir).unwrap();
            let key = dir.join("audit.key");
            // The first instance creates the key and the schema; the others share both.
            let a = start(&warehouse, &shared, &key).await;
            let (b, c) = tokio::join!(
                start(&warehouse, &shared, &key),
                start(&warehouse, &shared, &key)
            );
            let client = reqwest::Client::new();
            let store = SessionStore::connect(&SessionSettings {
                database: shared.clone(),
                ..SessionSettings::default()
            })
            .await
            .unwrap();

            // A session works on every instance until one of them revokes it.
            let (cookie, _) = session(&store, "alice", &["analyst"], 60).await;
            for i in [&a, &b, &c] {
                assert_eq!(me_with(&client, &i.base, &cookie).await, 200);
            }
            let r = client
                .post(format!("{}/api/admin/sessions/revoke", c.base))
                .header("X-Steward-Dev-User", "bob")
                .json(&json!({"user": "alice", "reason": "left the company"}))
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 200);
            for i in [&a, &b, &c] {
                assert_eq!(me_with(&client, &i.base, &cookie).await, 401, "{}", i.base);
            }

            // The result cache is shared too: B serves what A ran.
            let tickets = "How many tickets were opened last week?";
            let (_, on_a) = ask(&client, &a.base, "alice", tickets).await;
            let (_, on_b) = ask(&client, &b.base, "alice", tickets).await;
            assert_eq!(on_b["cached"], true, "{on_b}");
            assert_eq!(on_b["data"], on_a["data"]);

            // Boards live in the shared database: made on A, pinned on B,
            // opened on C under the viewer's own grants, in the order pinned.
            let on = |i: &Instance| TestApp {
                base: i.base.clone(),
                client: client.clone(),
            };
            let (status, board) = on(&a)
                .post(
                    Some("alice"),
                    "/api/boards",
                    &json!({"name": "Shared", "shared": true}),
                )
                .await;
            assert_eq!(status, 201, "{board}");
            let board = board["id"].as_str().unwrap().to_owned();
            for q in [tickets, "How many customers are on each plan?"] {
                let (status, pin) = on(&b)
                    .post(
                        Some("alice"),
                        &format!("/api/boards/{board}/pins"),
                        &json!({ "question": q }),
                    )
                    .await;
                assert_eq!(status, 201, "{pin}");
            }
            let (_, opened) = on(&c)
                .get(Some("erin"), &format!("/api/boards/{board}"))
                .await;
            assert_eq!(opened["board"]["pins"], 2, "{opened}");
            assert_eq!(opened["pins"][0]["question"], tickets, "{opened}");
            let pin = opened["pins"][1]["id"].as_str().unwrap();
            let (status, run) = on(&c)
                .post(
                    Some("erin"),
                    &format!("/api/boards/{board}/pins/{pin}/run"),
                    &json!({}),
                )
                .await;
            assert_eq!(status, 200, "{run}");
            assert!(
                run["answer"]["sql"].as_str().unwrap().contains("EMEA"),
                "erin's row filter: {run}"
            );

            // Subscriptions too: made on A, listed on B.
            let (status, sub) = on(&a)
                .post(
                    Some("alice"),
                    "/api/subscriptions",
                    &json!({"question": "x", "cron": "0 9 * * *", "alert": {"metric": "signups", "above": true, "threshold": 1.0}}),
                )
                .await;
            assert_eq!(status, 201, "{sub}");
            let (_, listed) = on(&b).get(Some("alice"), "/api/subscriptions").await;
            assert_eq!(listed["subscriptions"][0]["id"], sub["id"], "{listed}");
            assert_eq!(listed["subscriptions"][0]["alert_firing"], false);

            // A conversation started on one instance continues on another.
            let conversation = "shared-conversation-1";
            let follow = |base: String, question: &'static str| {
                let client = client.clone();
                async move {
                    let r = client
                        .post(format!("{base}/api/chat"))
                        .header("X-Steward-Dev-User", "erin")
                        .json(&json!({ "question": question, "conversation_id": conversation }))
                        .send()
                        .await
                        .unwrap();
                    r.json::<Value>().await.unwrap()
                }
            };
            let first = follow(a.base.clone(), "How many signups last week?").await;
            assert_eq!(first["metric"], "signups", "{first}");
            let next = follow(c.base.clone(), "and the week before?").await;
            assert_eq!(next["metric"], "signups", "{next}");
            assert_ne!(next["data"], first["data"], "{next}");

            // All three append under load: every answer has its question
            // event, and the chain verifies.
            let asks = (0..45).map(|n| {
                let base = [&a, &b, &c][n % 3].base.clone();
                let client = client.clone();
                async move {
                    let user = ["alice", "dave", "erin"][n % 3];
                    ask(&client, &base, user, MIX[n % MIX.len()]).await
                }
            });
            let replies = futures_util::future::join_all(asks).await;
            for (status, body) in &replies {
                assert_eq!(*status, 200, "{body}");
            }
            let count = |outcome_filter: &'static str| {
                let store = &store;
                async move {
                    sqlx::query_scalar::<_, i64>(sqlx::AssertSqlSafe(format!(
                        "SELECT count(*) FROM audit_events WHERE kind = 'question' {outcome_filter}"
                    )))
                    .fetch_one(store.pool())
                    .await
                    .unwrap()
                }
            };
            // The 45, plus two tickets questions, two follow-ups and erin's board run.
            assert_eq!(count("AND outcome = 'answered'").await, 45 + 5);

            // Kill one instance in the middle of answering.
            let b_base = b.base.clone();
            let doomed = (0..12).map(|n| {
                let (client, base) = (client.clone(), b_base.clone());
                async move { ask(&client, &base, "dave", MIX[n % MIX.len()]).await }
            });
            let statements_of_dave = || async {
                sqlx::query_scalar::<_, i64>(
                    "SELECT count(*) FROM audit_events WHERE principal = 'dave' AND kind = 'statement'",
                )
                .fetch_one(store.pool())
                .await
                .unwrap()
            };
            let before = statements_of_dave().await;
            let killing = async {
                // As soon as the first statement of these questions is
                // recorded, the others are still being answered.
                while statements_of_dave().await == before {
                    tokio::time::sleep(Duration::from_millis(2)).await;
                }
                let mut b = b;
                let _ = b.child.kill();
                let _ = b.child.wait();
            };
            let (doomed, ()) = tokio::join!(futures_util::future::join_all(doomed), killing);
            let answered_before_death = doomed.iter().filter(|(s, _)| *s == 200).count() as i64;
            assert!(
                answered_before_death < 12,
                "the instance died with answers in flight"
            );
            // Each answer that got out has its event; none that did not
            // reach the client is recorded as answered twice or half.
            let answered = count("AND outcome = 'answered'").await;
            assert!(
                answered >= 49 + answered_before_death && answered <= 49 + 12,
                "{answered} answered events, {answered_before_death} answers returned"
            );
            // The survivors go on appending, and the whole chain verifies.
            let (status, body) = ask(&client, &a.base, "alice", MIX[0]).await;
            assert_eq!(status, 200, "{body}");
            let r = client
                .get(format!("{}/api/admin/audit/verify", c.base))
                .header("X-Steward-Dev-User", "bob")
                .send()
                .await
                .unwrap();
            let report: Value = r.json().await.unwrap();
            assert_eq!(report["problems"], json!([]), "{report}");
            // Every stored statement event parses (no partial rows): verify
            // read them all.
            let events: i64 = sqlx::query_scalar("SELECT count(*) FROM audit_events")
                .fetch_one(store.pool())
                .await
                .unwrap();
            assert_eq!(report["events"].as_i64(), Some(events), "{report}");
            drop((a, c));
        })
        .await;
    })
    .await;
}
